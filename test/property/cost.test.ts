// Invariant: what an answer costs is exact, rounded up to a whole nano-USD.
// cost() takes a double path while the total stays below 2^53 (issue #17: the
// BigInt path allocated on every request); for any whole token counts and
// prices, small or past 2^53, it equals the BigInt computation.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bigCost, cost } from "../../runtime/governance.ts";
import type { PlanPrice } from "../../runtime/plan.ts";

/** The reference: every term in BigInt, rounded up. */
function exact(price: PlanPrice, u: { input: number; output: number; cached: number; cacheWrite?: number }): number {
  const cached = Math.min(u.cached, u.input);
  const written = Math.min(u.cacheWrite ?? 0, u.input - cached);
  return bigCost(u.input - cached - written, cached, written, u.output, price, price.cacheWriteNano ?? price.inputNano);
}

const count = fc.oneof(fc.nat(10_000), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const nano = fc.oneof(fc.nat(100_000_000_000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constant(0));

describe("cost", () => {
  it("equals the BigInt computation for any whole counts and prices", () => {
    fc.assert(
      fc.property(
        fc.record({ inputNano: nano, outputNano: nano, cachedInputNano: nano, cacheWriteNano: fc.option(nano, { nil: undefined }) }),
        fc.record({ input: count, output: count, cached: count, cacheWrite: fc.option(count, { nil: undefined }) }),
        (price, usage) => {
          expect(cost(price as PlanPrice, usage)).toBe(exact(price as PlanPrice, usage));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("is exact next to 2^53 and at whole-million boundaries", () => {
    const price = { inputNano: 1, outputNano: 1, cachedInputNano: 1 } as PlanPrice;
    for (const input of [0, 1, 999_999, 1_000_000, 1_000_001, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER]) {
      expect(cost(price, { input, output: 0, cached: 0 })).toBe(exact(price, { input, output: 0, cached: 0 }));
    }
    // Two terms that each fit but whose sum does not: the BigInt path.
    expect(cost(price, { input: 2 ** 52, output: 2 ** 52 + 1, cached: 0 })).toBe(Number((2n ** 53n + 1n + 999_999n) / 1_000_000n));
  });
});
