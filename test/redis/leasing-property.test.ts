// Budget leasing's invariants, on a real redis-server with three RedisStores
// (as three instances): random sequences of reservations (single lines and
// several at once) and settlements at or below what was reserved, while the
// stores report on their own timers. After every step Redis never holds more
// than a line's cap in spent + reserved (no over-grant, ever); once every
// reservation is settled and the stores close, Redis has exactly the spend
// the settlements add up to and nothing reserved.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RedisStore } from "../../runtime/state-store-redis.ts";
import { redisForSuite } from "./redis-server.ts";

const suite = redisForSuite();

const CAPS = [1000, 400];
const FAR = Date.now() + 3_600_000;

type Step = { op: "reserve"; inst: number; lines: number[]; amount: number } | { op: "settle"; inst: number; which: number; share: number } | { op: "wait"; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("reserve" as const),
      inst: fc.nat(2),
      lines: fc.uniqueArray(fc.nat(CAPS.length - 1), { minLength: 1, maxLength: CAPS.length }).map((a) => a.sort()),
      amount: fc.integer({ min: 1, max: 120 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("settle" as const), inst: fc.nat(2), which: fc.nat(50), share: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 40 }) }) },
);

describe("budget leasing", () => {
  it("never lets spent + reserved pass a cap, and ends with exactly the settled spend and nothing reserved", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const prefix = `lp${++run}:`;
        const config = { urlEnv: "X", prefix, leaseTtlMs: 60_000, whenDown: "reject" as const, budgetLeasing: { maxSliceNano: 300, reportMs: 20 } };
        const stores = [0, 1, 2].map(() => new RedisStore(config, suite.server().url));
        await Promise.all(stores.map((s) => s.ready(3000)));
        const lines = CAPS.map((cap, i) => ({ key: `b${i}|daily|0`, cap, expiresAt: FAR }));
        const held: { keys: string[]; amount: number }[][] = [[], [], []];
        const spent = CAPS.map(() => 0);
        const check = async () => {
          for (let i = 0; i < CAPS.length; i++) {
            const [s, r] = await suite.direct().hmget(`{${prefix}}m:${lines[i].key}`, "s", "r");
            expect(Number(s ?? 0) + Number(r ?? 0)).toBeLessThanOrEqual(CAPS[i]);
            expect(Number(r ?? 0)).toBeGreaterThanOrEqual(0);
          }
        };
        try {
          for (const s of steps) {
            if (s.op === "reserve") {
              const chosen = s.lines.map((i) => lines[i]);
              const refused = await stores[s.inst].reserve(chosen, s.amount);
              if (refused === -1) held[s.inst].push({ keys: chosen.map((l) => l.key), amount: s.amount });
            } else if (s.op === "settle") {
              const mine = held[s.inst];
              if (mine.length === 0) continue;
              const [r] = mine.splice(s.which % mine.length, 1);
              const actual = Math.floor(r.amount * s.share);
              for (const k of r.keys) spent[lines.findIndex((l) => l.key === k)] += actual;
              await stores[s.inst].settle(r.keys, r.amount, actual);
            } else {
              await new Promise((ok) => setTimeout(ok, s.ms));
            }
            await check();
          }
          for (let inst = 0; inst < 3; inst++) {
            for (const r of held[inst]) {
              for (const k of r.keys) spent[lines.findIndex((l) => l.key === k)] += r.amount;
              await stores[inst].settle(r.keys, r.amount, r.amount);
            }
          }
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
        for (let i = 0; i < CAPS.length; i++) {
          const [s, r] = await suite.direct().hmget(`{${prefix}}m:${lines[i].key}`, "s", "r");
          expect({ line: i, spent: Number(s ?? 0), reserved: Number(r ?? 0) }).toEqual({ line: i, spent: spent[i], reserved: 0 });
        }
      }),
      { numRuns: 25 },
    );
  });
});
