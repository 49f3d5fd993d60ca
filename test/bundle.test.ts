// What `gwc build` writes is held in memory by every gateway for its whole
// life (V8 keeps a module's source), so its shape is a memory figure:
// bench/README.md "Memory" has the numbers behind each assertion here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { asciiOnly } from "../compiler/bundle.ts";
import { buildBundle } from "./helpers.ts";

describe("the built bundle", () => {
  it("is ASCII only, even with non-ASCII in the config: V8 holds an ASCII source at one byte a character, any other at two", () => {
    const dir = buildBundle({ accounts: [{ id: "café-µ", provider: "openai", api_key: "${OPENAI_API_KEY}", model: "gpt-4o—mini" }] });
    const bytes = readFileSync(join(dir, "gateway.mjs"));
    expect(bytes.findIndex((b) => b > 0x7f)).toBe(-1);
  });

  it("escapes non-ASCII without changing what the code means: strings, regular expressions (with and without u), comments", () => {
    const source = `// µ — comment
      return [/^(?:µs|ns)+$/.test("µsns"), /😀+/u.test("😀😀"), /[é]/.test("é"), "né\u2028😀".length, String.raw\`a\`];`;
    const escaped = asciiOnly(source);
    expect(/[^\x00-\x7f]/.test(escaped)).toBe(false);
    expect(new Function(escaped)()).toEqual(new Function(source)());
    expect(new Function(escaped)()).toEqual([true, true, true, 5, "a"]);
  });
});
