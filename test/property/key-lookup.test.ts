// Invariant: which key a request is, and whether it is refused, depends only
// on its own headers. identify() remembers keys it has matched (by the key,
// and the `Authorization: Bearer <key>` header as sent, issue #17); for any
// sequence of header forms — bearer in any case and spacing, x-api-key, both,
// neither, unknown keys — every answer equals a fresh Governance's.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/compile.ts";
import { Governance } from "../../runtime/governance.ts";
import { HttpError } from "../../runtime/errors.ts";
import { MemoryStore } from "../../runtime/state-store.ts";

const KEYS = 3;

function governance(): Governance {
  const config = {
    accounts: [{ id: "a", provider: "openai", base_url: "http://127.0.0.1:9/v1", api_key: "${K}", model: "gpt-4o" }],
    virtual_keys: Array.from({ length: KEYS }, (_, k) => ({ id: `vk-${k}`, key: `\${VK_${k}}` })),
  };
  const { plan, diagnostics } = compileSource(JSON.stringify(config), "key-lookup.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  const env = Object.fromEntries(Array.from({ length: KEYS }, (_, k) => [`VK_${k}`, `key-${k}`]));
  return new Governance(plan, new MemoryStore(null), new Map(), { ...env, K: "x" });
}

/** The key index, or the 401's code. */
function answer(gov: Governance, headers: Record<string, string>): number | string {
  try {
    return gov.identify(headers);
  } catch (e) {
    if (!(e instanceof HttpError) || e.status !== 401) throw e;
    return e.code;
  }
}

const secret = fc.oneof(fc.nat(KEYS - 1).map((k) => `key-${k}`), fc.constantFrom("key-9", "", "Bearer key-0", "key-0 "));
const scheme = fc.constantFrom("Bearer ", "bearer ", "BEARER  ", "Bearer\t", "Basic ", "", "Bearer");
const headers = fc.record(
  { authorization: fc.tuple(scheme, secret, fc.constantFrom("", " ")).map(([s, k, tail]) => `${s}${k}${tail}`), "x-api-key": secret },
  { requiredKeys: [] },
);

describe("key lookup", () => {
  it("answers every request as a fresh gateway would, whatever came before", () => {
    fc.assert(
      fc.property(fc.array(headers, { maxLength: 60 }), (requests) => {
        const gov = governance();
        for (const h of requests) expect(answer(gov, h)).toBe(answer(governance(), h));
      }),
      { numRuns: 200 },
    );
  });
});
