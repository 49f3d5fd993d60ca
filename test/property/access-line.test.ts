// Invariant: the access line written as text (accessJson, no intermediate
// objects) is exactly the documented line (accessLine) for any record: any
// ids, model names or paths (quotes, U+2028, `__proto__`), any numbers.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_TYPES } from "../../runtime/error-type.ts";
import { accessJson, accessLine, timeAt } from "../../runtime/log.ts";
import { newRecord } from "../../runtime/request-record.ts";

// Control characters and lone surrogates too: the line quotes text itself when nothing needs escaping.
const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.constantFrom('a"b', "x\u2028y", "__proto__", "\\", "</script>", "é😀", "\u0000\u001f\n\t", "\ud800", "a\udc00b", "\ud83d"));
// Any duration, and ones on the microsecond grid the line writes (0.41 as 0.410).
const num = fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.integer({ min: 0, max: 1e9 }).map((us) => us / 1000));
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
        const line = `{${accessJson(rec)}}`;
        expect(JSON.parse(line)).toEqual(JSON.parse(JSON.stringify(accessLine(rec))));
        // Written as UTF-8 it reads back the same: a lone surrogate is escaped, never replaced by U+FFFD.
        expect(Buffer.from(line, "utf8").toString("utf8")).toBe(line);
      }),
      { numRuns: 300 },
    );
  });

  it("stamps a line's time as pino's isoTime writes it, whatever order the times come in", () => {
    // A batch's ends alternate between neighbouring milliseconds and seconds: the cached second must never leak into another.
    const ms = fc.oneof(fc.integer({ min: 0, max: 8.64e15 }), fc.double({ min: 0, max: 8.64e15, noNaN: true }), fc.integer({ min: 1_764_759_990_000, max: 1_764_759_994_000 }));
    fc.assert(
      fc.property(fc.array(ms, { minLength: 1, maxLength: 20 }), (times) => {
        for (const t of times) expect(timeAt(t)).toBe(`,"time":"${new Date(Math.floor(t)).toISOString()}"`);
      }),
      { numRuns: 300 },
    );
  });
});
