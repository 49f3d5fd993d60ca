// The Lua scripts against a model, on a real redis-server: random sequences of
// take / reserve / settle (with token counts) / cancel / count / acquire / release / lease expiry by
// several instances must leave Redis exactly where the model is, and the
// model's invariants (reserved never negative, what is reserved fits under the
// cap, a lapsed instance holds nothing) hold after every step.
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACQUIRE, COUNT, RENEW, RESERVE, SETTLE, TAKE } from "../../runtime/redis-scripts.ts";
import { startRedis, type RedisProcess } from "./redis-server.ts";

type Scripts = Record<"take" | "reserve" | "settle" | "count" | "acquire" | "renew", (n: number, ...a: (string | number)[]) => Promise<number[]>>;

let server: RedisProcess;
let redis: Redis & Scripts;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url) as Redis & Scripts;
  for (const [name, lua] of Object.entries({ take: TAKE, reserve: RESERVE, settle: SETTLE, count: COUNT, acquire: ACQUIRE, renew: RENEW })) redis.defineCommand(name, { lua });
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const CAPS = [100, 250, 60];
const LIMITS = [10, 25];
const SLOTS = 2;
const INSTANCES = ["a", "b", "c"];
const FAR = String(Date.now() + 86_400_000);

type Step =
  | { op: "reserve"; inst: number; lines: number[]; amount: number }
  | { op: "take"; inst: number; windows: ("none" | "count" | "force")[]; slot: boolean; lines: number[]; amount: number }
  | { op: "settle"; inst: number; lease: number; actual: number; tokens: number[]; cost: number }
  | { op: "count"; lines: number[]; cost: number; force: boolean }
  | { op: "acquire"; inst: number }
  | { op: "release"; inst: number; lease: number }
  | { op: "expire"; inst: number };

const lines = (n: number) => fc.uniqueArray(fc.nat(n - 1), { minLength: 1, maxLength: n }).map((a) => a.sort());
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("reserve" as const), inst: fc.nat(2), lines: lines(CAPS.length), amount: fc.integer({ min: 1, max: 70 }) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("take" as const),
      inst: fc.nat(2),
      windows: fc.array(fc.constantFrom("none" as const, "count" as const, "force" as const), { minLength: LIMITS.length, maxLength: LIMITS.length }),
      slot: fc.boolean(),
      lines: fc.uniqueArray(fc.nat(CAPS.length - 1), { maxLength: CAPS.length }).map((a) => a.sort()),
      amount: fc.integer({ min: 1, max: 70 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("settle" as const),
      inst: fc.nat(2),
      lease: fc.nat(30),
      actual: fc.integer({ min: 0, max: 80 }),
      tokens: fc.uniqueArray(fc.nat(LIMITS.length - 1), { maxLength: LIMITS.length }),
      cost: fc.integer({ min: 1, max: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("count" as const), lines: lines(LIMITS.length), cost: fc.integer({ min: 1, max: 6 }), force: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("acquire" as const), inst: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("release" as const), inst: fc.nat(2), lease: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("expire" as const), inst: fc.nat(2) }) },
);

/** The model: what the scripts promise, in plain TypeScript. */
class Model {
  money = CAPS.map(() => ({ s: 0, r: 0 }));
  /** Lines a reservation has written; settle adds spend only to lines that exist. */
  created = CAPS.map(() => false);
  counts = LIMITS.map(() => 0);
  slots = 0;
  /** Per instance: lease id → what it holds (money lines + amount, or a slot). */
  held = INSTANCES.map(() => new Map<string, { lines: number[]; amount: number } | "slot">());
  expired = INSTANCES.map(() => false);

  /** The preamble: every lapsed instance's holdings return; then the caller holds a live lease. */
  preamble(inst: number): void {
    this.expired.forEach((dead, i) => {
      if (!dead) return;
      for (const h of this.held[i].values()) this.unhold(h);
      this.held[i].clear();
      this.expired[i] = false;
    });
    this.expired[inst] = false;
  }

  unhold(h: { lines: number[]; amount: number } | "slot"): void {
    if (h === "slot") this.slots--;
    else for (const l of h.lines) this.money[l].r -= h.amount;
  }
}

describe("Redis Lua scripts", () => {
  it("agree with the model over random sequences by three instances", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const p = `{t${++run}:}`;
        const zset = `${p}instances`;
        const hold = (i: number) => `${p}h:${INSTANCES[i]}`;
        const m = (i: number) => `${p}m:line${i}`;
        const c = (i: number) => `${p}c:win${i}`;
        const slot = `${p}k:slot`;
        const pre = (i: number) => [INSTANCES[i], 60_000, p];
        const model = new Model();
        const leases = INSTANCES.map(() => [] as string[]);
        let seq = 0;
        for (const s of steps) {
          switch (s.op) {
            case "reserve": {
              const lease = String(++seq);
              const args = [...pre(s.inst), lease, String(s.amount), ...s.lines.flatMap((l) => [String(CAPS[l]), FAR])];
              const out = await redis.reserve(2 + s.lines.length, zset, hold(s.inst), ...s.lines.map(m), ...args);
              model.preamble(s.inst);
              const full = s.lines.findIndex((l) => model.money[l].s + model.money[l].r + s.amount > CAPS[l]);
              expect(out[0]).toBe(full);
              if (full === -1) {
                for (const l of s.lines) {
                  model.money[l].r += s.amount;
                  model.created[l] = true;
                }
                model.held[s.inst].set(lease, { lines: s.lines, amount: s.amount });
                leases[s.inst].push(lease);
              }
              break;
            }
            case "take": {
              // One script: checked windows, forced windows, the slot, the money lines; all or nothing.
              const lease = String(++seq);
              const counted = s.windows.flatMap((w, l) => (w === "count" ? [l] : []));
              const forced = s.windows.flatMap((w, l) => (w === "force" ? [l] : []));
              const keys = [...counted.map(c), ...forced.map(c), ...(s.slot ? [slot] : []), ...s.lines.map(m)];
              const args = [...pre(s.inst), lease, String(s.amount), counted.length, forced.length, s.slot ? 1 : 0, SLOTS];
              args.push(...counted.flatMap((l) => [LIMITS[l], FAR]), ...forced.map(() => FAR), ...s.lines.flatMap((l) => [String(CAPS[l]), FAR]));
              const out = await redis.take(2 + keys.length, zset, hold(s.inst), ...keys, ...args);
              model.preamble(s.inst);
              let refused = counted.findIndex((l) => model.counts[l] + 1 > LIMITS[l]);
              if (refused === -1 && s.slot && model.slots + 1 > SLOTS) refused = counted.length;
              const broke = s.lines.findIndex((l) => model.money[l].s + model.money[l].r + s.amount > CAPS[l]);
              if (refused === -1 && broke >= 0) refused = counted.length + 1 + broke;
              expect(out[0]).toBe(refused);
              if (refused === -1) {
                for (const l of [...counted, ...forced]) model.counts[l] += 1;
                if (s.slot) {
                  model.slots++;
                  model.held[s.inst].set(`${lease}k`, "slot");
                  leases[s.inst].push(`${lease}k`);
                }
                if (s.lines.length > 0) {
                  for (const l of s.lines) {
                    model.money[l].r += s.amount;
                    model.created[l] = true;
                  }
                  model.held[s.inst].set(lease, { lines: s.lines, amount: s.amount });
                  leases[s.inst].push(lease);
                }
              }
              // The values it answers are the counters as they now are (after it took, or as found when it refused).
              const values = [...counted.map((l) => model.counts[l]), ...forced.map((l) => model.counts[l]), ...(s.slot ? [model.slots] : []), ...s.lines.flatMap((l) => [model.money[l].s, model.money[l].r])];
              expect(out.slice(1)).toEqual(values);
              break;
            }
            case "settle": {
              // Any lease id this instance ever had, settled or lapsed or not: a second settle must not return money twice.
              const lease = leases[s.inst][s.lease % Math.max(1, leases[s.inst].length)] ?? "none";
              const held = model.held[s.inst].get(lease);
              const keys = held === undefined || held === "slot" ? [0] : held.lines;
              // With token windows: the same script forces them up by `cost`.
              const tokens = s.tokens.length === 0 ? [] : [keys.length, s.cost, ...s.tokens.map(() => FAR)];
              await redis.settle(2 + keys.length + s.tokens.length, zset, hold(s.inst), ...keys.map(m), ...s.tokens.map(c), ...pre(s.inst), lease, String(s.actual), ...tokens);
              model.preamble(s.inst);
              const still = model.held[s.inst].get(lease);
              if (still !== undefined) {
                model.unhold(still);
                model.held[s.inst].delete(lease);
              }
              // Spend lands on lines that exist.
              for (const l of keys) if (model.created[l]) model.money[l].s += s.actual;
              for (const l of s.tokens) model.counts[l] += s.cost;
              break;
            }
            case "count": {
              const args = [String(s.cost), s.force ? "1" : "0", ...s.lines.flatMap((l) => [String(LIMITS[l]), FAR])];
              const out = await redis.count(s.lines.length, ...s.lines.map(c), ...args);
              const over = s.force ? -1 : s.lines.findIndex((l) => model.counts[l] + s.cost > LIMITS[l]);
              expect(out[0]).toBe(over);
              if (over === -1) for (const l of s.lines) model.counts[l] += s.cost;
              break;
            }
            case "acquire": {
              const lease = String(++seq);
              const [taken] = await redis.acquire(3, zset, hold(s.inst), slot, ...pre(s.inst), lease, SLOTS);
              model.preamble(s.inst);
              expect(taken).toBe(model.slots < SLOTS ? 1 : 0);
              if (taken === 1) {
                model.slots++;
                model.held[s.inst].set(lease, "slot");
                leases[s.inst].push(lease);
              }
              break;
            }
            case "release": {
              const lease = leases[s.inst][s.lease % Math.max(1, leases[s.inst].length)] ?? "none";
              await redis.settle(2, zset, hold(s.inst), ...pre(s.inst), lease, "0");
              model.preamble(s.inst);
              const still = model.held[s.inst].get(lease);
              if (still !== undefined) {
                model.unhold(still);
                model.held[s.inst].delete(lease);
              }
              break;
            }
            case "expire":
              // The instance's lease lapses (as if it died a TTL ago); the next script by anyone reaps it.
              await redis.zadd(zset, 0, INSTANCES[s.inst]);
              model.expired[s.inst] = true;
              break;
          }
          for (let l = 0; l < CAPS.length; l++) {
            const [sp, rs] = await redis.hmget(m(l), "s", "r");
            expect({ line: l, s: Number(sp ?? 0), r: Number(rs ?? 0) }).toEqual({ line: l, ...model.money[l] });
            expect(model.money[l].r).toBeGreaterThanOrEqual(0);
            // Reservations never take a line past its cap (spend above reserved may: usage is what it is).
            expect(model.money[l].r).toBeLessThanOrEqual(Math.max(0, CAPS[l]));
          }
          for (let l = 0; l < LIMITS.length; l++) expect(Number((await redis.get(c(l))) ?? 0)).toBe(model.counts[l]);
          expect(Number((await redis.get(slot)) ?? 0)).toBe(model.slots);
          expect(model.slots).toBeLessThanOrEqual(SLOTS);
        }
        // Every counter that exists expires with its period or window (none is kept forever).
        for (const key of [...CAPS.map((_, l) => m(l)), ...LIMITS.map((_, l) => c(l))]) {
          const ttl = await redis.pttl(key);
          expect(ttl === -2 || ttl > 0, `${key} has no expiry`).toBe(true);
        }
        // Every instance lapses: all reservations and slots come back.
        for (const name of INSTANCES) await redis.zadd(zset, 0, name);
        await redis.renew(2, zset, `${p}h:reaper`, "reaper", 60_000, p);
        for (let l = 0; l < CAPS.length; l++) expect(Number((await redis.hget(m(l), "r")) ?? 0)).toBe(0);
        expect(Number((await redis.get(slot)) ?? 0)).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
