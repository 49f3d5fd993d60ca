// Invariant (DESIGN.md): the emitted plan module evaluates to exactly the plan
// the compiler made, whatever the config's strings and numbers are, and no
// config value ever becomes code. The plan travels as JSON text inside string
// literals (compiler/emit.ts), so this holds for any string: quotes,
// backslashes, line and paragraph separators, lone surrogates, `*/`, `${`.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileFile } from "../../compiler/compile.ts";
import { emitPlanModule } from "../../compiler/emit.ts";
import type { Plan } from "../../runtime/plan.ts";

const base = compileFile("examples/routes-and-fallbacks.json").plan!;

/** What the compiler writes, not the config (the bundle's header names them). */
const OURS = new Set(["version", "gwcVersion", "configSha256"]);

/** The plan with its i-th string leaf replaced by strings[i % n], its i-th number by numbers[i % m] (typed arrays kept). */
function substituted(plan: Plan, strings: string[], numbers: number[]): Plan {
  let s = 0;
  let n = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return strings.length === 0 ? v : strings[s++ % strings.length];
    if (typeof v === "number") return numbers.length === 0 ? v : numbers[n++ % numbers.length];
    if (v instanceof Uint32Array || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(walk);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, OURS.has(k) ? x : walk(x)]));
  };
  return walk(plan) as Plan;
}

const hostile = fc.constantFrom('"', "\\", "\u2028", "\u2029", "\ud800", "*/", "${x}", "`", "</script>", "\\\n", '");globalThis.pwned=1;("', "__proto__");
const text = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), hostile, fc.array(hostile, { maxLength: 4 }).map((a) => a.join("")));
// JSON has no -0, NaN or Infinity; the emitter refuses the last two and the plan never holds -0.
const num = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? 0 : d)));

describe("the emitted plan module", () => {
  it("evaluates to exactly the plan, for any strings and numbers in it", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(text, { maxLength: 8 }), fc.array(num, { maxLength: 4 }), async (strings, numbers) => {
        const plan = substituted(base, strings, numbers);
        const src = emitPlanModule(plan);
        const mod = (await import(`data:text/javascript,${encodeURIComponent(src)}`)) as { plan: Plan };
        expect(mod.plan).toEqual(plan);
        expect((globalThis as { pwned?: unknown }).pwned).toBeUndefined();
      }),
      { numRuns: 150 },
    );
  });

  it("refuses what JSON would silently change, and a line break in its header: a non-finite number, a typed array outside the alias tables", () => {
    expect(() => emitPlanModule({ ...base, gwcVersion: "1\nglobalThis.pwned = 1" })).toThrow(/line break/);
    expect(() => emitPlanModule({ ...base, server: { ...base.server, shutdownTimeoutMs: Infinity } })).toThrow(/non-finite/);
    expect(() => emitPlanModule({ ...base, prices: new Float64Array(1) } as unknown as Plan)).toThrow(/typed array/);
  });
});
