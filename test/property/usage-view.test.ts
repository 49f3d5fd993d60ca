// Metering reads a relayed answer's top-level `usage` without parsing the
// whole answer when it can (runtime/upstream.ts usageView). Whatever the
// document — usage first, last or absent, "usage" keys nested elsewhere,
// `"usage":{...}` quoted inside strings, any whitespace — it must read exactly
// what JSON.parse would.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { usageView } from "../../runtime/upstream.ts";

const usageObject = fc.record({
  prompt_tokens: fc.nat(),
  completion_tokens: fc.nat(),
  total_tokens: fc.nat(),
  prompt_tokens_details: fc.option(fc.record({ cached_tokens: fc.nat() }), { nil: undefined }),
});
// Values that try to fool a text search: nested "usage" keys and quoted look-alikes.
const trap = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  usageObject.map((u) => ({ usage: u })),
  fc.string().map((s) => `${s}"usage":{"prompt_tokens":999}${s}`),
  fc.constant({ x_groq: { usage: { prompt_tokens: 1 } } }),
);
const member = fc.tuple(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("choices", "service_tier", "x_groq", "usage ", `quoted "usage`)), trap);

const document = fc
  .record({
    before: fc.array(member, { maxLength: 5 }),
    usage: fc.option(usageObject, { nil: undefined }),
    after: fc.array(fc.oneof(member, fc.tuple(fc.constantFrom("service_tier", "system_fingerprint"), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)))), { maxLength: 4 }),
    indent: fc.constantFrom(undefined, 1, 2, "\t"),
  })
  .map(({ before, usage, after, indent }) => {
    const entries: [string, unknown][] = [...before, ...(usage === undefined ? [] : [["usage", usage] as [string, unknown]]), ...after];
    // Built by hand so a key may repeat, as a sloppy upstream might send it (JSON.parse keeps the last).
    const sep = indent === undefined ? "" : "\n";
    return `{${sep}${entries.map(([k, v]) => `${JSON.stringify(k)}:${indent === undefined ? "" : " "}${JSON.stringify(v, null, indent)}`).join(`,${sep}`)}${sep}}`;
  });

describe("usageView", () => {
  it("reads the same top-level usage as JSON.parse, for any document", () => {
    fc.assert(
      fc.property(document, (text) => {
        const view = usageView(Buffer.from(text)) as { usage?: unknown } | undefined;
        expect(view?.usage).toEqual((JSON.parse(text) as { usage?: unknown }).usage);
      }),
      { numRuns: 2000 },
    );
  });

  it("parses only the usage of a real OpenAI answer, however long its content", () => {
    const content = "word ".repeat(20_000);
    const body = Buffer.from(
      JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o",
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage: { prompt_tokens: 9, completion_tokens: 20_000, total_tokens: 20_009, prompt_tokens_details: { cached_tokens: 0 } },
        service_tier: "default",
        system_fingerprint: "fp_1",
      }),
    );
    const view = usageView(body) as Record<string, unknown>;
    // Only the usage member was parsed: the choices were never read.
    expect(Object.keys(view)).toEqual(["usage"]);
    expect(view.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 20_000 });
  });
});
