// The compiler never throws: any JSON, and any mutation of a valid config,
// comes back as diagnostics (or a plan), each with a code, pointer and position.
import fc from "fast-check";
import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/compile.ts";

function expectWellFormed(text: string): void {
  const { diagnostics, plan } = compileSource(text, "fuzz.json");
  if (plan === undefined) expect(diagnostics.some((d) => d.severity === "error")).toBe(true);
  for (const d of diagnostics) {
    expect(d.code).toMatch(/^GWC_[EW]_[A-Z0-9_]+$/);
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.col).toBeGreaterThanOrEqual(1);
    expect(d.pointer === "" || d.pointer.startsWith("/")).toBe(true);
    expect(d.message.length).toBeGreaterThan(10);
  }
}

const examples = readdirSync("examples")
  .filter((f) => f.endsWith(".json"))
  .map((f) => JSON.parse(readFileSync(`examples/${f}`, "utf8")) as unknown);

/** Replaces one node of a JSON value, chosen by a path of indices, with another value. */
function mutate(value: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0 || value === null || typeof value !== "object") return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) {
    if (value.length === 0) return replacement;
    const i = head % value.length;
    return value.map((v, j) => (j === i ? mutate(v, rest, replacement) : v));
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return replacement;
  const key = keys[head % keys.length];
  return { ...(value as Record<string, unknown>), [key]: mutate((value as Record<string, unknown>)[key], rest, replacement) };
}

describe("compiler totality", () => {
  it("returns diagnostics for arbitrary JSON values", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => expectWellFormed(JSON.stringify(v, null, 1))), { numRuns: 300 });
  });

  it("returns diagnostics for arbitrary text", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => expectWellFormed(s)), { numRuns: 300 });
  });

  it("returns diagnostics or a plan for mutated example configs", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...examples),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.oneof(fc.jsonValue(), fc.constantFrom("__proto__", "constructor", "${", "*", -1, 0, 1e300, "")),
        (config, path, replacement) => expectWellFormed(JSON.stringify(mutate(config, path, replacement), null, 2)),
      ),
      { numRuns: 500 },
    );
  });
});
