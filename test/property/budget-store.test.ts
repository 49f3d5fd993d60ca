// Invariant (DESIGN.md): money is integer and never drifts; spend is reserved
// before a request and settled after it. For any interleaving of concurrent
// reserve/settle/cancel across the four tiers, no budget's spent ever passes
// its cap except by what settles reported beyond their reservations, and the
// final spent equals the sum of settled costs exactly.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryStore, type MoneyLine } from "../../runtime/state-store.ts";

// Four tiers: org ⊃ team ⊃ key ⊃ key/provider, with caps in nano-USD.
const tiers = ["org", "team", "vk", "vk/provider"];

type Op = { kind: "reserve"; amount: number } | { kind: "settle"; which: number; actual: number } | { kind: "cancel"; which: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("reserve" as const), amount: fc.integer({ min: 1, max: 5_000_000 }) }),
  fc.record({ kind: fc.constant("settle" as const), which: fc.nat(), actual: fc.integer({ min: 0, max: 6_000_000 }) }),
  fc.record({ kind: fc.constant("cancel" as const), which: fc.nat() }),
);

describe("budget store", () => {
  it("never overspends beyond what settles reported, and ends exact", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50_000_000 }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.subarray([0, 1, 2, 3], { minLength: 1 }), { minLength: 1, maxLength: 8 }),
        fc.array(op, { maxLength: 200, size: "max" }),
        (caps, requestTiers, ops) => {
          const store = new MemoryStore();
          const lines: MoneyLine[] = tiers.map((t, i) => ({ key: t, cap: caps[i], expiresAt: Infinity }));
          const open: { tiers: number[]; amount: number }[] = [];
          const settled = [0, 0, 0, 0];
          const overshoot = [0, 0, 0, 0];
          let n = 0;
          for (const o of ops) {
            if (o.kind === "reserve") {
              const mine = requestTiers[n++ % requestTiers.length];
              const room = mine.every((t) => store.money(tiers[t]).spent + store.money(tiers[t]).reserved + o.amount <= caps[t]);
              const failed = store.reserve(mine.map((t) => lines[t]), o.amount);
              // Granted exactly when every tier it pays into has room.
              expect(failed < 0).toBe(room);
              if (failed < 0) open.push({ tiers: mine, amount: o.amount });
            } else if (open.length > 0) {
              const [r] = open.splice(o.which % open.length, 1);
              const keys = r.tiers.map((t) => tiers[t]);
              if (o.kind === "settle") {
                store.settle(keys, r.amount, o.actual);
                for (const t of r.tiers) {
                  settled[t] += o.actual;
                  overshoot[t] += Math.max(0, o.actual - r.amount);
                }
              } else {
                store.cancel(keys, r.amount);
              }
            }
            for (let t = 0; t < 4; t++) {
              const { spent, reserved } = store.money(tiers[t]);
              expect(spent + reserved).toBeLessThanOrEqual(caps[t] + overshoot[t]);
              expect(Number.isInteger(spent) && Number.isInteger(reserved)).toBe(true);
            }
          }
          for (const r of open.splice(0)) store.cancel(r.tiers.map((t) => tiers[t]), r.amount);
          for (let t = 0; t < 4; t++) expect(store.money(tiers[t])).toEqual({ spent: settled[t], reserved: 0 });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses a reservation on every tier when any one tier lacks room", () => {
    const store = new MemoryStore();
    const lines = [
      { key: "org", cap: 100, expiresAt: Infinity },
      { key: "vk", cap: 10, expiresAt: Infinity },
    ];
    expect(store.reserve(lines, 8)).toBe(-1);
    expect(store.reserve(lines, 8)).toBe(1);
    expect(store.money("org")).toEqual({ spent: 0, reserved: 8 });
  });

  it("charges a provider's report beyond its reservation in full, and takes no reservation while over the cap", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 1, max: 1e9 }), (cap, over, next) => {
        const store = new MemoryStore();
        const line = { key: "vk", cap, expiresAt: Infinity };
        expect(store.reserve([line], cap)).toBe(-1);
        store.settle(["vk"], cap, cap + over);
        expect(store.money("vk")).toEqual({ spent: cap + over, reserved: 0 });
        expect(store.reserve([line], next)).toBe(0);
        // Back in bounds (the next period is a new line): reservations fit again.
        expect(store.reserve([{ ...line, key: "vk|next" }], Math.min(next, cap))).toBe(-1);
      }),
    );
  });
});
