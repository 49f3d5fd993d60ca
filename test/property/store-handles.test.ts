// Invariant (DESIGN.md: counters are all-or-nothing and never drift): the
// embedded store keeps a handle on each line's counter (and on the counters of
// each array of keys it settles), issue #17. A handle is trusted only while it
// is still that store's entry for that key. For any sequence of reserve,
// settle, cancel and count over line objects and key arrays reused as
// governance reuses them — across two stores, and across snapshots that drop
// expired counters — every answer and every counter equals a plain model's.
import fc from "fast-check";
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type CountLine, MemoryStore, type MoneyLine } from "../../runtime/state-store.ts";
import { tempDir } from "../helpers.ts";

const T0 = 1_764_720_000_000;
const OWNERS = ["vk:a", "vk:b", "team:t"];
const WINDOWS = [0, 1];
const SPAN = 1000;

/** Plain maps: what the store must answer. */
class Model {
  money = new Map<string, { spent: number; reserved: number; expiresAt: number }>();
  counts = new Map<string, { count: number; expiresAt: number }>();
  reserve(lines: readonly MoneyLine[], amount: number): number {
    const i = lines.findIndex((l) => {
      const m = this.money.get(l.key);
      return (m === undefined ? 0 : m.spent + m.reserved) + amount > l.cap;
    });
    if (i >= 0) return i;
    for (const l of lines) {
      const m = this.money.get(l.key) ?? { spent: 0, reserved: 0, expiresAt: l.expiresAt };
      m.reserved += amount;
      this.money.set(l.key, m);
    }
    return -1;
  }
  settle(keys: readonly string[], reserved: number, actual: number): void {
    for (const k of keys) {
      const m = this.money.get(k);
      if (m === undefined) continue;
      m.reserved -= reserved;
      m.spent += actual;
    }
  }
  count(lines: readonly CountLine[], cost: number, force: boolean): number {
    const i = force ? -1 : lines.findIndex((l) => (this.counts.get(l.key)?.count ?? 0) + cost > l.limit);
    if (i >= 0) return i;
    for (const l of lines) {
      const c = this.counts.get(l.key);
      if (c === undefined) this.counts.set(l.key, { count: cost, expiresAt: l.expiresAt });
      else c.count += cost;
    }
    return -1;
  }
  /** What a snapshot at `now` drops. */
  expire(now: number): void {
    for (const [k, m] of this.money) if (m.expiresAt <= now && m.reserved === 0) this.money.delete(k);
    for (const [k, c] of this.counts) if (c.expiresAt <= now) this.counts.delete(k);
  }
}

type Op =
  | { kind: "reserve"; store: number; lines: number[]; amount: number }
  | { kind: "settle"; store: number; which: number; actual: number; fresh: boolean }
  | { kind: "cancel"; store: number; which: number; fresh: boolean }
  | { kind: "count"; store: number; lines: number[]; cost: number; force: boolean }
  | { kind: "snapshot"; store: number; advance: number };

const LINES = OWNERS.length * WINDOWS.length;
const lineSet = fc.uniqueArray(fc.nat(LINES - 1), { minLength: 1, maxLength: 4 });
const store = fc.nat(1);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("reserve" as const), store, lines: lineSet, amount: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant("settle" as const), store, which: fc.nat(), actual: fc.nat(60), fresh: fc.boolean() }),
  fc.record({ kind: fc.constant("cancel" as const), store, which: fc.nat(), fresh: fc.boolean() }),
  fc.record({ kind: fc.constant("count" as const), store, lines: lineSet, cost: fc.integer({ min: 1, max: 5 }), force: fc.boolean() }),
  fc.record({ kind: fc.constant("snapshot" as const), store, advance: fc.nat(2 * SPAN) }),
);

describe("the embedded store's handles on its counters", () => {
  it("answer as plain maps do, with lines and key arrays reused across stores and expiries", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 100 }), { minLength: LINES, maxLength: LINES }), fc.array(op, { maxLength: 80 }), (caps, ops) => {
        const dirs = [tempDir("gwc-handles-"), tempDir("gwc-handles-")];
        let now = T0;
        const stores = dirs.map((d) => new MemoryStore(d, 3_600_000, () => now));
        const models = [new Model(), new Model()];
        // One object per line and one array per set of keys, shared by both stores, as governance shares them within a window.
        const money: MoneyLine[] = [];
        const counts: CountLine[] = [];
        OWNERS.forEach((o, i) =>
          WINDOWS.forEach((w) => {
            money.push({ key: `${o}|daily|${T0 + w * SPAN}`, cap: caps[i * WINDOWS.length + w], expiresAt: T0 + (w + 1) * SPAN });
            counts.push({ key: `${o}|req|${T0 + w * SPAN}`, limit: caps[i * WINDOWS.length + w] % 20, expiresAt: T0 + (w + 1) * SPAN });
          }),
        );
        const keyArrays = new Map<string, string[]>();
        const keysOf = (lines: number[]) => keyArrays.get(lines.join()) ?? keyArrays.set(lines.join(), lines.map((i) => money[i].key)).get(lines.join())!;
        const open: { store: number; lines: number[]; amount: number }[] = [];
        try {
          for (const o of ops) {
            const s = stores[o.store];
            const m = models[o.store];
            if (o.kind === "reserve") {
              const lines = o.lines.map((i) => money[i]);
              const got = s.reserve(lines, o.amount);
              expect(got).toBe(m.reserve(lines, o.amount));
              if (got === -1) open.push({ store: o.store, lines: o.lines, amount: o.amount });
            } else if (o.kind === "settle" || o.kind === "cancel") {
              const mine = open.filter((r) => r.store === o.store);
              if (mine.length === 0) continue;
              const r = mine[o.which % mine.length];
              open.splice(open.indexOf(r), 1);
              const keys = o.fresh ? [...keysOf(r.lines)] : keysOf(r.lines);
              const actual = o.kind === "settle" ? o.actual : 0;
              s.settle(keys, r.amount, actual);
              m.settle(keys, r.amount, actual);
            } else if (o.kind === "count") {
              const lines = o.lines.map((i) => counts[i]);
              expect(s.count(lines, o.cost, o.force)).toBe(m.count(lines, o.cost, o.force));
            } else {
              now += o.advance;
              s.snapshot();
              m.expire(now);
            }
            for (const [i, st] of stores.entries()) {
              for (const l of money) {
                const want = models[i].money.get(l.key);
                expect(st.money(l.key)).toEqual({ spent: want?.spent ?? 0, reserved: want?.reserved ?? 0 });
              }
              for (const l of counts) expect(st.counter(l.key)).toBe(models[i].counts.get(l.key)?.count ?? 0);
            }
          }
        } finally {
          for (const st of stores) st.close();
          for (const d of dirs) rmSync(d, { recursive: true, force: true });
        }
      }),
      { numRuns: 300 },
    );
  });
});
