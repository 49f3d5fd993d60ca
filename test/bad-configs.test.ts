import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compileSource } from "../compiler/compile.ts";

/**
 * A corpus of configs a person could plausibly write by mistake. Each one must
 * be refused (no plan) with exactly the errors listed in expected.json:
 * code, JSON pointer and 1-based line:col. Warnings are not compared.
 */

interface Expected {
  code: string;
  pointer: string;
  line: number;
  col: number;
}

const dir = fileURLToPath(new URL("./bad-configs/", import.meta.url));
const EXPECTED_FILE = "expected.json";
const expected = JSON.parse(readFileSync(join(dir, EXPECTED_FILE), "utf8")) as Record<string, Expected[]>;
const cases = readdirSync(dir)
  .filter((f) => f.endsWith(".json") && f !== EXPECTED_FILE)
  .sort();

/** Fields that hold secrets; a literal value there must never be echoed. */
const SECRET_FIELDS = new Set(["api_key", "key", "admin_key"]);

/** Literal (non-`${VAR}`) values of secret fields anywhere in a config that is valid JSON. */
function literalSecrets(text: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        if (SECRET_FIELDS.has(k) && typeof child === "string" && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(child)) found.push(child);
        walk(child);
      }
    }
  };
  walk(value);
  return found;
}

function compile(file: string) {
  const text = readFileSync(join(dir, file), "utf8");
  return { text, result: compileSource(text, file) };
}

describe("bad configs corpus", () => {
  it("has at least 20 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it("lists every case in expected.json, and nothing else", () => {
    expect(cases.filter((f) => !(f in expected))).toEqual([]);
    expect(Object.keys(expected).filter((f) => !cases.includes(f))).toEqual([]);
  });

  it("expects at least one error from every case", () => {
    for (const f of cases) expect(expected[f]?.length ?? 0, f).toBeGreaterThan(0);
  });

  it("contains literal secrets to check (so the secret test is not vacuous)", () => {
    const secrets = cases.flatMap((f) => literalSecrets(readFileSync(join(dir, f), "utf8")));
    expect(secrets.length).toBeGreaterThanOrEqual(3);
  });
});

describe.each(cases)("%s", (file) => {

  it("is refused with no plan and messages that name the file", () => {
    const { result } = compile(file);
    expect(result.plan).toBeUndefined();
    expect(result.diagnostics.length).toBeGreaterThan(0);
    for (const d of result.diagnostics) {
      expect(d.file).toContain(file);
      expect(d.message.trim()).not.toBe("");
      expect(d.message).not.toMatch(/undefined|\[object Object\]/);
    }
  });

  it("reports exactly the expected errors", () => {
    const { result } = compile(file);
    const errors = result.diagnostics
      .filter((d) => d.severity === "error")
      .map(({ code, pointer, line, col }) => ({ code, pointer, line, col }));
    expect(errors).toEqual(expected[file]);
  });

  it("never echoes a literal secret", () => {
    const { text, result } = compile(file);
    for (const secret of literalSecrets(text)) {
      for (const d of result.diagnostics) expect(d.message).not.toContain(secret);
    }
  });
});
