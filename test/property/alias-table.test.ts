// Invariant (DESIGN.md): weighted picks are exact — an alias table built from
// integer weights reproduces the configured split exactly, checked by
// enumeration, not sampling; a down account gets nothing and the others keep
// their proportions.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildAliasTable } from "../../compiler/alias-table.ts";
import { impliedCounts, pickAlias } from "../../runtime/alias-pick.ts";
import { fromConfig } from "../../compiler/testing.ts";

const weights = fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 64, size: "max" });

/** counts/denominator equals weights/Σweights, compared by cross-multiplying in BigInt. */
function expectExact(counts: number[], denominator: number, w: number[]): void {
  const total = w.reduce((a, b) => a + b, 0);
  w.forEach((wi, i) => expect(BigInt(counts[i]) * BigInt(total)).toBe(BigInt(wi) * BigInt(denominator)));
}

describe("alias table", () => {
  it("implies exactly the configured weights", () => {
    fc.assert(
      fc.property(weights, (w) => {
        const table = buildAliasTable(w.map((_, i) => i), w)!;
        expectExact(impliedCounts(table, w.length), table.n * table.total, w);
      }),
      { numRuns: 300 },
    );
  });

  it("holds only integers within its column height", () => {
    fc.assert(
      fc.property(weights, (w) => {
        const table = buildAliasTable(w.map((_, i) => i), w)!;
        for (let c = 0; c < table.n; c++) {
          expect(Number.isInteger(table.prob[c])).toBe(true);
          expect(table.prob[c]).toBeLessThanOrEqual(table.total);
        }
      }),
    );
  });

  it("gives zero-weight entries no share and no column", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 32, size: "max" }), (w) => {
        const table = buildAliasTable(w.map((_, i) => i), w);
        if (w.every((x) => x === 0)) {
          expect(table).toBeNull();
          return;
        }
        expectExact(impliedCounts(table!, w.length), table!.n * table!.total, w);
        expect(table!.n).toBe(w.filter((x) => x > 0).length);
      }),
    );
  });

  it("picks match the implied distribution cell by cell", () => {
    // Small tables: every one of the n·total equal cells of [0, 1), sampled at
    // its midpoint, lands on the target the table assigns it.
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }), (w) => {
        const table = buildAliasTable(w.map((_, i) => i), w)!;
        const cells = table.n * table.total;
        const counts = new Array<number>(w.length).fill(0);
        for (let k = 0; k < cells; k++) counts[pickAlias(table, (k + 0.5) / cells)]++;
        expect(counts).toEqual(impliedCounts(table, w.length));
      }),
    );
  });
});

describe("outages", () => {
  const config = fc
    .array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 12 })
    .filter((w) => w.some((x) => x > 0))
    .chain((w) => fc.tuple(fc.constant(w), fc.subarray(w.map((_, i) => i))));

  it("down accounts get 0 and the rest keep their proportions, for every outage set", () => {
    fc.assert(
      fc.property(config, ([w, downIdx]) => {
        const gw = fromConfig({ accounts: w.map((weight, i) => ({ id: `a${i}`, provider: "openai", weight })) });
        const down = downIdx.map((i) => `a${i}`);
        const shares = gw.distribution({ down });
        const alive = w.map((x, i) => (downIdx.includes(i) ? 0 : x));
        const total = alive.reduce((a, b) => a + b, 0);
        shares.forEach((s, i) => {
          if (total === 0) return expect(s.numerator).toBe(0);
          expect(BigInt(s.numerator) * BigInt(total)).toBe(BigInt(alive[i]) * BigInt(s.denominator));
        });
        // And the pick agrees: never a down account, null only when nothing is up.
        for (const random of [0, 0.25, 0.5, 0.75, 0.999999]) {
          const picked = gw.pick({ down, random });
          if (total === 0) expect(picked).toBeNull();
          else expect(down).not.toContain(picked);
        }
      }),
      { numRuns: 200 },
    );
  });
});
