// The most a provider can bill for one request, in tokens: what a budget
// reserves before the request goes out. Every figure here is an upper bound,
// never an average, so that spend can never pass a cap by more than one
// request's reservation (DESIGN.md, invariants).
//
//   input  ≤ UTF-8 bytes of the whole body              text, tools, names, JSON framing
//          + images × the provider's most per image     (a URL is a few bytes; a picture is not)
//          + files  × pages × the most per page         (a PDF's pages are read as images)
//          + the provider's tool preamble, when tools are sent
//   output ≤ prompts × max(n, best_of) × output limit   every completion generated is billed
//
// Bytes bound text tokens because every tokenizer these providers use is
// byte-level: a token covers at least one byte, so no text has more tokens
// than bytes (CJK is about one token a character, three bytes each; English
// about four bytes a token). Inline audio (base64 in the body) is also covered
// by its bytes: providers bill 10–32 tokens a second, and no codec they accept
// encodes a second of sound in fewer than 32 base64 bytes.
import type { Endpoint, InboundRequest } from "./providers/adapter.ts";
import type { Wire } from "./plan.ts";

/** Output tokens reserved (and then asked for) for a chat request that sets no output limit. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;
/** OpenAI's own default for `/v1/completions` without `max_tokens`. */
export const DEFAULT_COMPLETION_TOKENS = 16;

/**
 * The most one image can be billed, per wire format (tokens):
 * - OpenAI: gpt-4o-mini bills 2,833 + 5,667 a 512-px tile, and a high-detail
 *   image is at most 8 tiles (2048 × 768 after scaling): 48,169. Every other
 *   OpenAI model bills less (gpt-4o 1,445; patch models at most 1,536 × 2.46).
 * - Anthropic (and Claude on Bedrock): pixels / 750 after scaling; Claude
 *   scales to about 1.15 MP (~1,600 tokens), newer models to about 3.75 MP:
 *   5,000 bounds both.
 * - Gemini / Vertex: 258 a 768-px tile, images scaled to fit 3072 × 3072:
 *   16 tiles, 4,128.
 * - Cohere: 5,000 as for Claude (its vision models tile into fewer tokens).
 */
const IMAGE_TOKENS: Record<Wire, number> = {
  openai: 48_169,
  azure: 48_169,
  anthropic: 5_000,
  bedrock: 5_000,
  gemini: 4_128,
  vertex: 4_128,
  cohere: 5_000,
};
/** Pages a document may have: Anthropic and OpenAI read at most 100 pages of a PDF per request. */
const FILE_PAGES = 100;
/** A page is billed as its image plus its text; text extracted from compressed streams can pass its bytes. */
const PAGE_TEXT_TOKENS = 3_000;
/** Anthropic adds a tool-use system prompt when tools are sent: 530 tokens at most (Claude 3 Opus, `auto`). */
const TOOL_PREAMBLE: Partial<Record<Wire, number>> = { anthropic: 530, bedrock: 530 };
/** No factor is taken past this: a request asking for more is refused by its provider, and by any budget. */
const MAX_FACTOR = 2 ** 31;

export interface TokenBound {
  input: number;
  output: number;
}

/** The most `req` can be billed in input and output tokens when sent to an account speaking `wire`. */
export function requestBound(req: InboundRequest, wire: Wire): TokenBound {
  const json = req.json;
  let input = req.raw.length;
  const media = countMedia(json);
  input += media.images * IMAGE_TOKENS[wire] + media.files * FILE_PAGES * (IMAGE_TOKENS[wire] + PAGE_TEXT_TOKENS);
  if (Array.isArray(json.tools) && json.tools.length > 0) input += TOOL_PREAMBLE[wire] ?? 0;
  if (req.endpoint === "embeddings") return { input, output: 0 };
  const limit = req.outputCap ?? outputLimit(req.endpoint, json);
  const prompts = req.endpoint === "completions" ? promptCount(json.prompt) : 1;
  const completions = Math.max(factor(json.n), req.endpoint === "completions" ? factor(json.best_of) : 1);
  // `echo` returns each prompt inside every completion.
  const perCompletion = limit + (json.echo === true ? input : 0);
  return { input, output: prompts * completions * perCompletion };
}

/** The output limit the request sets, or the one the gateway will set for it (see `withOutputLimit`). */
function outputLimit(endpoint: Endpoint, json: Record<string, unknown>): number {
  const set = positive(json.max_completion_tokens ?? json.max_tokens ?? json.max_output_tokens);
  if (set !== undefined) return set;
  return endpoint === "completions" ? DEFAULT_COMPLETION_TOKENS : DEFAULT_MAX_OUTPUT_TOKENS;
}

/**
 * The request as sent under a budget: one that sets no output limit gets the
 * one it was reserved for, so what the provider bills stays within the
 * reservation. OpenAI's chat takes `max_completion_tokens` (its reasoning
 * models refuse `max_tokens`); other OpenAI-format providers and the
 * completions endpoint take `max_tokens`; the other adapters read either.
 */
export function withOutputLimit(req: InboundRequest, provider: string): InboundRequest {
  const json = req.json;
  // Gemini's request keeps its limit in generationConfig (its surface reads it into outputCap).
  if (req.endpoint === "generate") {
    if (req.outputCap !== undefined) return req;
    const config = typeof json.generationConfig === "object" && json.generationConfig !== null ? json.generationConfig : {};
    const capped = { ...json, generationConfig: { ...config, maxOutputTokens: DEFAULT_MAX_OUTPUT_TOKENS } };
    return { ...req, json: capped, raw: Buffer.from(JSON.stringify(capped)) };
  }
  if (json.max_completion_tokens !== undefined || json.max_tokens !== undefined || json.max_output_tokens !== undefined) return req;
  const field = LIMIT_FIELD[req.endpoint]?.(provider);
  if (field === undefined) return req;
  const capped = { ...json, [field]: outputLimit(req.endpoint, json) };
  return { ...req, json: capped, raw: Buffer.from(JSON.stringify(capped)) };
}

/** The output-limit field each endpoint takes upstream; none for embeddings (no output). */
const LIMIT_FIELD: Partial<Record<Endpoint, (provider: string) => string>> = {
  chat: (provider) => (provider === "openai" || provider === "azure" ? "max_completion_tokens" : "max_tokens"),
  completions: () => "max_tokens",
  responses: () => "max_output_tokens",
};

/** Prompts in a completions `prompt`: a string or one token list is one; an array of strings or of token lists is one each. */
function promptCount(prompt: unknown): number {
  if (!Array.isArray(prompt) || prompt.length === 0) return 1;
  return typeof prompt[0] === "number" ? 1 : Math.min(prompt.length, MAX_FACTOR);
}

/** Images and documents anywhere in the request's messages (OpenAI's shapes: chat parts and Responses items). */
function countMedia(json: Record<string, unknown>): { images: number; files: number } {
  const counts = { images: 0, files: 0 };
  for (const list of [json.messages, json.input]) {
    if (!Array.isArray(list)) continue;
    for (const m of list) {
      const content = (m as { content?: unknown } | null)?.content;
      if (Array.isArray(content)) for (const part of content) countPart(part, counts);
      else countPart(m, counts);
    }
  }
  return counts;
}

function countPart(part: unknown, counts: { images: number; files: number }): void {
  if (typeof part !== "object" || part === null) return;
  const type = (part as { type?: unknown }).type;
  if (type === "image_url" || type === "input_image" || type === "image") counts.images++;
  else if (type === "file" || type === "input_file" || type === "document" || type === "video_url") counts.files++;
}

/** A fan-out field (`n`, `best_of`): its value when it is a positive number (or a numeric string a lenient provider may read), else 1. */
function factor(v: unknown): number {
  return positive(v) ?? 1;
}

function positive(v: unknown): number | undefined {
  const x = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof x !== "number" || !(x > 0)) return undefined;
  return Math.min(Math.ceil(x), MAX_FACTOR);
}
