// Invariant (DESIGN.md): the reservation is an upper bound of what a request
// can cost, so spend never exceeds a limit by more than one request's
// reservation. For arbitrary requests (any script, images, files, audio, tools,
// n, best_of, prompt arrays, echo, with or without an output limit) and
// arbitrary prices, the reservation covers the worst usage a provider could
// report, modelled field by field from the providers' own billing rules:
//
//   text       ≤ its UTF-8 bytes (byte-level tokenizers: a token covers ≥ 1 byte)
//   a message  + 4 tokens of chat framing (OpenAI: 3, and 1 for a name), + 3 to prime the reply
//   a tool     ≤ the UTF-8 bytes of its definition, + Anthropic's tool preamble (≤ 530)
//   an image   ≤ OpenAI 2,833 + 8 × 5,667 (gpt-4o-mini, 8 tiles) | Claude 3.75 MP / 750 | Gemini 16 × 258
//   a file     ≤ 100 pages × (the page's image + 3,000 tokens of text)
//   audio      ≤ 32 tokens a second, at no less than 8 kbit/s (base64: 1,333 bytes a second)
//   output     = every completion generated (prompts × max(n, best_of)) at the limit it was sent with,
//                plus the prompt again under `echo`
//   cache      the provider decides: all input plain, all read from cache, or all written to it
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cost, estimate } from "../../runtime/governance.ts";
import type { PlanPrice, Wire } from "../../runtime/plan.ts";
import type { Endpoint, InboundRequest, Usage } from "../../runtime/providers/adapter.ts";
import { withOutputLimit } from "../../runtime/request-bound.ts";

const WIRES: Wire[] = ["openai", "azure", "anthropic", "bedrock", "gemini", "vertex", "cohere"];
const IMAGE: Record<Wire, number> = {
  openai: 2833 + 8 * 5667,
  azure: 2833 + 8 * 5667,
  anthropic: Math.ceil(3_750_000 / 750),
  bedrock: Math.ceil(3_750_000 / 750),
  cohere: Math.ceil(3_750_000 / 750),
  gemini: 16 * 258,
  vertex: 16 * 258,
};
const bytes = (s: string) => Buffer.byteLength(s);

// Text in every script: ASCII, CJK, emoji, and anything else in Unicode.
const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: fc.constantFrom("日", "本", "語", "한", "😀", "ا") }), fc.string({ unit: "binary" }));
const base64 = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("base64"));
const part = fc.oneof(
  text.map((t) => ({ type: "text", text: t })),
  fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: fc.oneof(fc.webUrl(), base64.map((d) => `data:image/png;base64,${d}`)) }) }),
  fc.record({ type: fc.constant("file"), file: fc.record({ file_data: base64.map((d) => `data:application/pdf;base64,${d}`) }) }),
  fc.record({ type: fc.constant("input_audio"), input_audio: fc.record({ data: base64, format: fc.constantFrom("wav", "mp3") }) }),
);
const message = fc.record(
  { role: fc.constantFrom("system", "user", "assistant"), content: fc.oneof(text, fc.array(part, { maxLength: 4 })), name: text },
  { requiredKeys: ["role", "content"] },
);
const tool = fc.record({ type: fc.constant("function"), function: fc.record({ name: text, description: text, parameters: fc.jsonValue({ maxDepth: 2 }) }) });
const limit = fc.option(fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 100 }).map(String)), { nil: undefined });
const fanOut = fc.option(fc.oneof(fc.integer({ min: 1, max: 128 }), fc.integer({ min: 1, max: 16 }).map(String)), { nil: undefined });

const chat = fc.record(
  { messages: fc.array(message, { minLength: 1, maxLength: 5 }), tools: fc.array(tool, { maxLength: 3 }), n: fanOut, max_tokens: limit, max_completion_tokens: limit },
  { requiredKeys: ["messages"] },
);
const completions = fc.record(
  {
    prompt: fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), fc.array(fc.array(fc.nat(), { minLength: 1 }), { minLength: 1, maxLength: 8 })),
    n: fanOut,
    best_of: fanOut,
    max_tokens: limit,
    echo: fc.boolean(),
  },
  { requiredKeys: ["prompt"] },
);
const embeddings = fc.record({ input: fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 8 })) });

const request: fc.Arbitrary<InboundRequest> = fc
  .oneof(
    chat.map((b) => ["chat", b] as const),
    completions.map((b) => ["completions", b] as const),
    embeddings.map((b) => ["embeddings", b] as const),
  )
  .map(([endpoint, body]) => {
    const json = { model: "m", ...body } as Record<string, unknown>;
    return { endpoint: endpoint as Endpoint, raw: Buffer.from(JSON.stringify(json)), json, stream: false };
  });

const nano = fc.integer({ min: 0, max: 100_000 });
const price: fc.Arbitrary<PlanPrice> = fc.record({ inputNano: nano, outputNano: nano, cachedInputNano: nano, cacheWriteNano: fc.option(nano, { nil: undefined }) }) as fc.Arbitrary<PlanPrice>;

const num = (v: unknown): number | undefined => {
  const x = typeof v === "string" ? Number(v) : v;
  return typeof x === "number" && x > 0 ? Math.ceil(x) : undefined;
};

/** The most input a provider could report for this request, field by field. */
function worstInput(json: Record<string, any>, endpoint: Endpoint, wire: Wire): number {
  if (endpoint === "embeddings") return [json.input].flat().reduce((n: number, s: string) => n + bytes(s), 0);
  if (endpoint === "completions") {
    const p = json.prompt;
    if (typeof p === "string") return bytes(p);
    return (p as unknown[]).reduce<number>((n, x) => n + (typeof x === "string" ? bytes(x) : Array.isArray(x) ? x.length : 1), 0);
  }
  let tokens = 3;
  for (const m of json.messages as any[]) {
    tokens += 4 + (m.name === undefined ? 0 : bytes(m.name));
    for (const p of typeof m.content === "string" ? [{ type: "text", text: m.content }] : m.content) {
      if (p.type === "text") tokens += bytes(p.text);
      else if (p.type === "image_url") tokens += IMAGE[wire];
      else if (p.type === "file") tokens += 100 * (IMAGE[wire] + 3000);
      else if (p.type === "input_audio") tokens += Math.ceil((p.input_audio.data.length / 1333) * 32);
    }
  }
  for (const t of json.tools ?? []) tokens += bytes(JSON.stringify(t));
  if ((json.tools ?? []).length > 0 && (wire === "anthropic" || wire === "bedrock")) tokens += 530;
  return tokens;
}

/** The most output: every completion generated, each at the limit the provider was sent. */
function worstOutput(sent: Record<string, any>, endpoint: Endpoint, input: number): number {
  if (endpoint === "embeddings") return 0;
  const max = num(sent.max_completion_tokens ?? sent.max_tokens)!;
  if (endpoint === "chat") return (num(sent.n) ?? 1) * max;
  const prompts = Array.isArray(sent.prompt) && typeof sent.prompt[0] !== "number" ? sent.prompt.length : 1;
  return prompts * Math.max(num(sent.n) ?? 1, num(sent.best_of) ?? 1) * (max + (sent.echo === true ? input : 0));
}

describe("the reservation", () => {
  it("covers the worst usage any provider could report for the request it was made for", () => {
    fc.assert(
      fc.property(request, fc.constantFrom(...WIRES), fc.constantFrom("openai", "azure", "groq", "anthropic"), price, (req, wire, provider, p) => {
        const sent = withOutputLimit(req, provider);
        // What goes upstream always carries an output limit (or needs none).
        if (req.endpoint !== "embeddings") expect(num(sent.json.max_completion_tokens ?? sent.json.max_tokens)).toBeGreaterThan(0);
        const input = worstInput(req.json, req.endpoint, wire);
        const output = worstOutput(sent.json, req.endpoint, input);
        const reserved = estimate(p, req, wire);
        const usages: Usage[] = [
          { input, output, cached: 0 },
          { input, output, cached: input },
          { input, output, cached: 0, cacheWrite: input },
        ];
        for (const u of usages) expect(reserved).toBeGreaterThanOrEqual(cost(p, u));
      }),
      { numRuns: 2000 },
    );
  });

  it("only adds an output limit, and only where none was set", () => {
    fc.assert(
      fc.property(request, fc.constantFrom("openai", "groq"), (req, provider) => {
        const sent = withOutputLimit(req, provider);
        const { max_tokens: _a, max_completion_tokens: _b, ...rest } = JSON.parse(sent.raw.toString());
        const { max_tokens: _c, max_completion_tokens: _d, ...before } = req.json;
        expect(rest).toEqual(JSON.parse(JSON.stringify(before)));
        if (req.json.max_tokens !== undefined || req.json.max_completion_tokens !== undefined) expect(sent).toBe(req);
      }),
    );
  });
});
