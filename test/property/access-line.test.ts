// Invariant: the access line written as text (accessJson, no intermediate
// objects) is exactly the documented line (accessLine) for any record: any
// ids, model names or paths (quotes, U+2028, `__proto__`), any numbers.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_TYPES } from "../../runtime/error-type.ts";
import { accessJson, accessLine } from "../../runtime/log.ts";
import { newRecord } from "../../runtime/request-record.ts";

const text = fc.oneof(fc.string(), fc.constantFrom('a"b', "x\u2028y", "__proto__", "\\", "</script>", "é😀"));
const num = fc.double({ min: 0, max: 1e7, noNaN: true });
const record = fc.record({
  id: text,
  method: text,
  path: text,
  status: fc.integer({ min: 100, max: 599 }),
  model: fc.option(text),
  route: fc.option(text),
  keyId: fc.option(text),
  errorType: fc.option(fc.constantFrom(...ERROR_TYPES)),
  attempts: fc.array(fc.record({ account: text, provider: text, model: text, status: fc.option(fc.integer({ min: 100, max: 599 })), errorType: fc.option(fc.constantFrom(...ERROR_TYPES)), ms: num }), { maxLength: 4 }),
  usage: fc.option(fc.record({ inputTokens: fc.nat(), outputTokens: fc.nat(), cacheReadTokens: fc.nat(), cacheWriteTokens: fc.nat() })),
  costNanoUsd: fc.option(fc.nat()),
  ttftMs: fc.option(num),
  durationMs: num,
  upstreamMs: num,
});

describe("access line (property)", () => {
  it("written as text, parses to exactly the documented fields and values", () => {
    fc.assert(
      fc.property(record, (r) => {
        const rec = Object.assign(newRecord("x", "GET", "/"), r);
        expect(JSON.parse(`{${accessJson(rec)}}`)).toEqual(JSON.parse(JSON.stringify(accessLine(rec))));
      }),
      { numRuns: 300 },
    );
  });
});
