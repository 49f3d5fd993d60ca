/**
 * A local mock of Anthropic's Messages API (POST /v1/messages) for gateway
 * integration tests.
 *
 * It speaks Anthropic's wire format as of `anthropic-version: 2023-06-01`
 * (shapes checked against the `@anthropic-ai/sdk` type definitions —
 * resources/messages/messages.ts `Message`, `Usage`, `RawMessageStreamEvent`,
 * resources/shared.ts `ErrorResponse` — and against Anthropic's streaming and
 * error docs): JSON messages, and SSE streams of `event:` + `data:` lines with
 * message_start, content_block_start/delta/stop (text_delta, input_json_delta),
 * ping, message_delta (stop_reason, cumulative usage), message_stop and error.
 * It can be told to misbehave (error statuses, 529 overloaded, resets, hangs,
 * broken streams, in-stream errors) one request at a time.
 *
 * Order of handling for every request:
 *   1. the body is read and the request is recorded in `requests`;
 *   2. `x-api-key` (or `Authorization: Bearer`) is checked (401 authentication_error otherwise);
 *   3. `anthropic-version` is checked (400 invalid_request_error otherwise);
 *   4. the route is checked (404 not_found_error otherwise);
 *   5. the body is validated like the API does (400 invalid_request_error);
 *   6. one behavior is taken from `queue` (or `fallback` when it is empty)
 *      and applied. Steps 2–5 do not consume a behavior.
 *
 * Answers are deterministic: the text is `[name] you said: <last user text>`;
 * when tools are given and the last user turn is not a tool result, the answer
 * is a tool_use of the first tool (or the one tool_choice names); after a tool
 * result, the text is `[name] tool said: <result>`.
 *
 * Beyond plain messages, what Claude Code and the SDKs lean on:
 * - `thinking` on (`enabled` or `adaptive`): the answer opens with a thinking
 *   block carrying a `signature` (streamed as thinking_delta + signature_delta);
 *   a thinking block sent back whose signature or text was altered is refused
 *   with the API's 400, as the real API does.
 * - Prompt caching (when `cache` is not fixed by the options): every
 *   `cache_control` breakpoint marks a prefix (tools, then system, then
 *   messages); a prefix seen before is read from the cache, the rest up to the
 *   last breakpoint is written: `cache_read_input_tokens`,
 *   `cache_creation_input_tokens` and `cache_creation.ephemeral_{5m,1h}_input_tokens`.
 * - `POST /v1/messages/count_tokens`, `GET /v1/models`.
 * - `role: "system"` messages under the `mid-conversation-system-*` beta.
 * - Structured outputs: `output_config.format` (or `output_format`) json_schema
 *   answers a JSON value of the schema.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { mockServer } from "./mock-server.ts";
import { sampleOf } from "./sample-json.ts";

export type Behavior =
  /** `tool`: answer with this tool_use (when the request declares that tool and the last turn is the user's). */
  | { kind: "ok"; delayMs?: number; tool?: { name: string; input: Record<string, unknown> } }
  | { kind: "status"; status: number; retryAfterSeconds?: number; body?: unknown }
  /** 529 with Anthropic's overloaded_error body. */
  | { kind: "overloaded" }
  | { kind: "reset" }
  | { kind: "hang" }
  /** Streams message_start, the first block's start and `chunks` deltas, then drops the connection. */
  | { kind: "stream-fail-after"; chunks: number }
  /** A 200 stream whose first event is `event: error` (overloaded_error); a 529 for JSON requests. */
  | { kind: "stream-error-first" }
  /** Streams message_start, the first block's start and `chunks` deltas, then an `event: error` and the end. */
  | { kind: "stream-error-after"; chunks: number }
  /** Streams: everything up to message_stop (stop_reason and usage included), then a clean close without it. */
  | { kind: "stream-no-stop" };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export interface MockAnthropicUpstream {
  /** Base URL in the Anthropic SDK convention: http://127.0.0.1:PORT (no /v1). */
  url: string;
  /** Label put into responses (content text, `x-mock-upstream` header). */
  name: string;
  requests: RecordedRequest[];
  /** Behaviors consumed in order, one per request; when empty, `fallback` applies. */
  queue: Behavior[];
  fallback: Behavior;
  /** Every answer sent (JSON body, or the stream's events in order), for comparing with what a client got. */
  answers: { path: string; message?: any; events?: { type: string }[]; body?: any }[];
  /** Closes the server and destroys open sockets (incl. hanging ones). */
  close(): Promise<void>;
}

export interface StartOptions {
  name?: string;
  /** The only key accepted; any non-empty key when absent. */
  apiKey?: string;
  /** Text deltas per text block (split by code point), and a pause between events. */
  stream?: { chunks?: number; intervalMs?: number };
  /** Prompt-cache tokens reported in every usage (default 0 and 0). */
  cache?: { read?: number; creation?: number };
  fallback?: Behavior;
  /**
   * The answer to every text request, instead of `[name] you said: …`. A final
   * assistant message (prefill) that this text starts with is continued: only
   * the rest is sent, as the Messages API does.
   */
  text?: string;
}

// ---------------------------------------------------------------------------
// Anthropic error bodies (shared.ts ErrorResponse: { type: "error", error: { type, message }, request_id })
// ---------------------------------------------------------------------------

export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "billing_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "timeout_error"
  | "api_error"
  | "overloaded_error";

export function errorBody(type: AnthropicErrorType, message: string, requestId: string | null = null) {
  return { type: "error" as const, error: { type, message }, request_id: requestId };
}

/** Default Anthropic-shaped error body for an HTTP status (docs: api/errors). */
export function defaultErrorBody(status: number, requestId: string | null = null) {
  switch (status) {
    case 400:
      return errorBody("invalid_request_error", "Invalid request.", requestId);
    case 401:
      return errorBody("authentication_error", "invalid x-api-key", requestId);
    case 402:
      return errorBody("billing_error", "Your credit balance is too low to access the Anthropic API.", requestId);
    case 403:
      return errorBody("permission_error", "Your API key does not have permission to use the specified resource.", requestId);
    case 404:
      return errorBody("not_found_error", "Not found", requestId);
    case 413:
      return errorBody("request_too_large", "Request exceeds the maximum allowed number of bytes.", requestId);
    case 429:
      return errorBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit.", requestId);
    case 500:
      return errorBody("api_error", "Internal server error", requestId);
    case 504:
      return errorBody("timeout_error", "Request timed out", requestId);
    case 529:
      return errorBody("overloaded_error", "Overloaded", requestId);
    default:
      return status >= 500 ? errorBody("api_error", `Upstream error (HTTP ${status}).`, requestId) : errorBody("invalid_request_error", `Request failed (HTTP ${status}).`, requestId);
  }
}

// ---------------------------------------------------------------------------
// Deterministic content helpers
// ---------------------------------------------------------------------------

/** ceil(chars / 4), at least 1. */
function tokensForChars(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

/** Split `text` into at most `n` non-empty pieces (by code point) whose concatenation is `text`. */
function splitText(text: string, n: number): string[] {
  const cps = Array.from(text);
  const count = Math.max(1, Math.min(Math.floor(n) || 1, cps.length || 1));
  const out: string[] = [];
  const base = Math.floor(cps.length / count);
  const extra = cps.length % count;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push(cps.slice(at, at + len).join(""));
    at += len;
  }
  return out;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789";
let idCounter = 0;
/** Anthropic-looking ids: `msg_01…`, `toolu_01…`, `req_01…`. */
function newId(prefix: string): string {
  idCounter += 1;
  let s = "01";
  let x = idCounter * 2654435761 + Math.floor(Math.random() * 1e9);
  for (let i = 0; i < 22; i++) {
    s += ALPHABET[x % ALPHABET.length];
    x = Math.floor(x / ALPHABET.length) + i * 7919 + idCounter;
  }
  return `${prefix}${s}`;
}

const MODELS: [string, string, string][] = [
  ["claude-opus-4-8", "Claude Opus 4.8", "2026-08-05T00:00:00Z"],
  ["claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z"],
  ["claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"],
];

const VERSIONS = new Set(["2023-06-01", "2023-01-01", "2026-10-21"]);

type Block = Record<string, any>;

/** A message's content as blocks (a string is one text block). */
function blocksOf(content: unknown): Block[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return Array.isArray(content) ? (content as Block[]) : [];
}

function textOfBlocks(blocks: Block[]): string {
  return blocks
    .filter((b) => b?.type === "text" && typeof b.text === "string")
    .map((b) => b.text as string)
    .join("");
}

function toolResultText(block: Block): string {
  return typeof block.content === "string" ? block.content : Array.isArray(block.content) ? textOfBlocks(block.content) : "";
}

/** The API's own checks, with its wording where known; undefined when the body is valid. */
function validate(body: any, version: string, betas: Set<string>): string | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return "Request body must be a JSON object.";
  if (typeof body.model !== "string" || body.model === "") return "model: Field required";
  if (typeof body.max_tokens !== "number") return "max_tokens: Field required";
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) return "max_tokens: Input should be greater than or equal to 1";
  if (!Array.isArray(body.messages)) return "messages: Field required";
  if (body.messages.length === 0) return "messages: at least one message is required";
  if (version === "2026-10-21") {
    for (const p of ["temperature", "top_p", "top_k"]) if (body[p] !== undefined) return `${p}: Extra inputs are not permitted`;
  }
  if (typeof body.temperature === "number" && (body.temperature < 0 || body.temperature > 1)) return "temperature: Input should be less than or equal to 1";
  if (body.system !== undefined && typeof body.system !== "string" && !(Array.isArray(body.system) && body.system.every((b: Block) => b?.type === "text" && typeof b.text === "string"))) {
    return "system: Input should be a valid string or a list of text blocks";
  }
  if (body.stop_sequences !== undefined && !(Array.isArray(body.stop_sequences) && body.stop_sequences.every((s: unknown) => typeof s === "string"))) {
    return "stop_sequences: Input should be a valid list of strings";
  }
  const tools: Block[] = body.tools ?? [];
  if (!Array.isArray(tools)) return "tools: Input should be a valid list";
  for (const [i, t] of tools.entries()) {
    if (typeof t?.name !== "string" || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return `tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`;
    if (t.input_schema === null || typeof t.input_schema !== "object" || t.input_schema.type !== "object") return `tools.${i}.custom.input_schema.type: Input should be 'object'`;
  }
  if (body.tool_choice !== undefined) {
    const type = body.tool_choice?.type;
    if (!["auto", "any", "tool", "none"].includes(type)) return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'";
    if (type === "tool" && !tools.some((t) => t.name === body.tool_choice.name)) return `tool_choice.tool.name: Tool '${body.tool_choice.name}' not found in tools`;
  }
  const systemTurns = [...betas].some((b) => b.startsWith("mid-conversation-system-"));
  for (const [i, m] of (body.messages as Block[]).entries()) {
    if (m?.role !== "user" && m?.role !== "assistant" && !(systemTurns && m?.role === "system")) {
      return `messages.${i}.role: Unexpected role "${m?.role}". The Messages API accepts a top-level \`system\` parameter, not "system" as an input message role.`;
    }
    if (typeof m.content !== "string" && !Array.isArray(m.content)) return `messages.${i}.content: Input should be a valid string or list of content blocks`;
    if (m.content === "" && !(m.role === "assistant" && i === body.messages.length - 1)) return `messages.${i}: all messages must have non-empty content except for the optional final assistant message`;
    for (const [j, b] of blocksOf(m.content).entries()) {
      if (b?.type === "text" && (typeof b.text !== "string" || b.text === "")) return `messages.${i}.content.${j}.text: text content blocks must be non-empty`;
      if (b?.type === "image") {
        const src = b.source;
        if (src?.type === "base64" && !["image/jpeg", "image/png", "image/gif", "image/webp"].includes(src.media_type)) {
          return `messages.${i}.content.${j}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`;
        }
        if (src?.type !== "base64" && src?.type !== "url") return `messages.${i}.content.${j}.image.source: Input tag does not match any of the expected tags: 'base64', 'url'`;
      }
      if (b?.type === "tool_use" && (m.role !== "assistant" || typeof b.id !== "string" || b.input === null || typeof b.input !== "object" || Array.isArray(b.input))) {
        return `messages.${i}.content.${j}.tool_use: Input should be a valid tool_use block`;
      }
    }
    // Every tool_use is answered by a tool_result in the next message, and every tool_result answers one.
    const uses = blocksOf(m.content).filter((b) => b?.type === "tool_use").map((b) => b.id as string);
    const next = body.messages[i + 1];
    if (uses.length > 0 && next !== undefined) {
      const results = new Set(blocksOf(next.content).filter((b) => b?.type === "tool_result").map((b) => b.tool_use_id));
      const missing = uses.filter((id) => !results.has(id));
      if (missing.length > 0) {
        return `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
      }
    }
    const prevUses = new Set(i > 0 ? blocksOf(body.messages[i - 1].content).filter((b) => b?.type === "tool_use").map((b) => b.id) : []);
    for (const [j, b] of blocksOf(m.content).entries()) {
      if (b?.type === "tool_result" && (m.role !== "user" || !prevUses.has(b.tool_use_id))) {
        return `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

interface Plan {
  id: string;
  model: string;
  input: number;
  output: number;
  /** Text pieces (text_delta events), or null when answering with a tool call. */
  pieces: string[] | null;
  tool: { id: string; name: string; input: Record<string, unknown> } | null;
  stopReason: "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";
  stopSequence: string | null;
  /** The thinking block that opens the answer when `thinking` is on. */
  thinking: { text: string; signature: string } | null;
  cache: { read: number; creation5m: number; creation1h: number };
}

/** Where the request marks `cache_control` breakpoints: the prefix up to each, and its TTL. */
function breakpoints(body: any): { prefix: string; ttl: string }[] {
  const seq: unknown[] = [];
  const out: { prefix: string; ttl: string }[] = [];
  const visit = (block: any) => {
    seq.push(block);
    if (block && typeof block === "object" && block.cache_control) out.push({ prefix: JSON.stringify(seq), ttl: block.cache_control.ttl === "1h" ? "1h" : "5m" });
  };
  for (const t of Array.isArray(body.tools) ? body.tools : []) visit(t);
  if (typeof body.system === "string") visit(body.system);
  else for (const b of Array.isArray(body.system) ? body.system : []) visit(b);
  for (const m of body.messages as Block[]) {
    seq.push(m.role);
    for (const b of blocksOf(m.content)) visit(b);
  }
  return out;
}

/** The API's word for a thinking block that does not come back as it was sent. */
const BAD_SIGNATURE = "Invalid `signature` in `thinking` block";

export function startAnthropicUpstream(opts: StartOptions = {}): Promise<MockAnthropicUpstream> {
  const name = opts.name ?? "mock";
  const streamChunks = Math.max(1, Math.floor(opts.stream?.chunks ?? 4));
  const intervalMs = Math.max(0, opts.stream?.intervalMs ?? 0);
  const fixedCache = opts.cache;
  /** Cached prefixes (prompt caching), and the thinking text each signature was issued for. */
  const cached = new Set<string>();
  const signed = new Map<string, string>();
  const srv = mockServer();
  const { server, sleep, gone } = srv;

  const mock: MockAnthropicUpstream = {
    url: "",
    name,
    requests: [],
    queue: [],
    fallback: opts.fallback ?? { kind: "ok" },
    answers: [],
    close: srv.close,
  };

  /** Cache reads and writes for this request: fixed by the options, or simulated from its breakpoints. */
  function cacheFor(body: any): Plan["cache"] {
    if (fixedCache) return { read: fixedCache.read ?? 0, creation5m: fixedCache.creation ?? 0, creation1h: 0 };
    const points = breakpoints(body);
    if (points.length === 0) return { read: 0, creation5m: 0, creation1h: 0 };
    let read = 0;
    for (const p of points) if (cached.has(p.prefix)) read = tokensForChars(p.prefix.length);
    const last = points[points.length - 1];
    const creation = Math.max(0, tokensForChars(last.prefix.length) - read);
    for (const p of points) cached.add(p.prefix);
    return { read, creation5m: last.ttl === "5m" ? creation : 0, creation1h: last.ttl === "1h" ? creation : 0 };
  }

  /** A thinking block sent back must be one this mock signed, unaltered. */
  function checkThinking(body: any): string | undefined {
    for (const [i, m] of (body.messages as Block[]).entries()) {
      if (m.role !== "assistant") continue;
      for (const [j, b] of blocksOf(m.content).entries()) {
        if (b?.type === "thinking" && signed.get(b.signature) !== b.thinking) return `messages.${i}.content.${j}: ${BAD_SIGNATURE}`;
      }
    }
    return undefined;
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string, extra: Record<string, string> = {}) {
    if (gone(res)) return;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, {
      "request-id": requestId,
      "x-mock-upstream": name,
      "content-type": typeof body === "string" && !body.trimStart().startsWith("{") ? "text/plain; charset=utf-8" : "application/json",
      "content-length": String(Buffer.byteLength(text)),
      ...extra,
    });
    res.end(text);
  }

  function startSse(res: ServerResponse, requestId: string): boolean {
    if (gone(res)) return false;
    res.writeHead(200, {
      "request-id": requestId,
      "x-mock-upstream": name,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    });
    res.flushHeaders();
    return true;
  }

  /** One SSE event: `event: <type>` and its JSON on one `data:` line. */
  function sse(res: ServerResponse, data: { type: string }): boolean {
    if (gone(res)) return false;
    res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);
    return true;
  }

  function plan(body: any, scripted?: { name: string; input: Record<string, unknown> }): Plan {
    const messages: Block[] = body.messages;
    const lastUser = [...messages].reverse().find((m) => m.role === "user");
    const lastBlocks = blocksOf(lastUser?.content);
    const results = lastBlocks.filter((b) => b?.type === "tool_result");
    const userText = textOfBlocks(lastBlocks);
    const input = tokensForChars(JSON.stringify([body.system ?? "", messages, body.tools ?? []]).length);
    const tools: Block[] = Array.isArray(body.tools) ? body.tools : [];
    const choice = body.tool_choice;
    const last = messages.at(-1);
    const thinkingOn = body.thinking?.type === "enabled" || body.thinking?.type === "adaptive";
    let thinking: Plan["thinking"] = null;
    if (thinkingOn) {
      const text = `[${name}] thinking about: ${Array.from(userText).slice(-40).join("")}`;
      const signature = Buffer.from(`${name}:${newId("sig_")}`).toString("base64");
      signed.set(signature, text);
      thinking = { text, signature };
    }
    const thought = thinking ? tokensForChars(Array.from(thinking.text).length) : 0;
    const cache = cacheFor(body);
    const base = { id: newId("msg_"), model: body.model, input: Math.max(0, input - cache.read - cache.creation5m - cache.creation1h), thinking, cache };
    if (tools.length > 0 && last?.role === "user" && results.length === 0 && choice?.type !== "none") {
      const tool = (scripted && tools.find((t) => t.name === scripted.name)) ?? (choice?.type === "tool" ? tools.find((t) => t.name === choice.name)! : tools[0]);
      const toolInput = scripted && scripted.name === tool.name ? scripted.input : (sampleOf({ type: "object", ...tool.input_schema }, userText) as Record<string, unknown>);
      return { ...base, output: thought + tokensForChars(JSON.stringify(toolInput).length + tool.name.length), pieces: null, tool: { id: newId("toolu_"), name: tool.name, input: toolInput }, stopReason: "tool_use", stopSequence: null };
    }
    // Structured outputs (output_config.format, or the beta's output_format): a JSON value of the schema.
    const format = body.output_config?.format ?? body.output_format;
    let text =
      format?.type === "json_schema"
        ? JSON.stringify(sampleOf(format.schema, userText))
        : results.length > 0
          ? `[${name}] tool said: ${results.map(toolResultText).join(" | ")}`
          : (opts.text ?? `[${name}] you said: ${userText}`);
    // A final assistant message is prefill: the answer continues it, as the Messages API does.
    const prefill = last?.role === "assistant" ? textOfBlocks(blocksOf(last.content)) : "";
    if (prefill !== "" && text.startsWith(prefill)) text = text.slice(prefill.length);
    let stopReason: Plan["stopReason"] = "end_turn";
    let stopSequence: string | null = null;
    for (const s of (body.stop_sequences ?? []) as string[]) {
      const at = s === "" ? -1 : text.indexOf(s);
      if (at >= 0) {
        text = text.slice(0, at);
        stopReason = "stop_sequence";
        stopSequence = s;
      }
    }
    const cps = Array.from(text);
    if (tokensForChars(cps.length) > body.max_tokens) {
      text = cps.slice(0, body.max_tokens * 4).join("");
      stopReason = "max_tokens";
      stopSequence = null;
    }
    return { ...base, output: thought + tokensForChars(Array.from(text).length), pieces: splitText(text, streamChunks).filter((p) => p !== ""), tool: null, stopReason, stopSequence };
  }

  function usage(p: Plan, output: number) {
    return {
      input_tokens: p.input,
      cache_creation_input_tokens: p.cache.creation5m + p.cache.creation1h,
      cache_read_input_tokens: p.cache.read,
      cache_creation: { ephemeral_5m_input_tokens: p.cache.creation5m, ephemeral_1h_input_tokens: p.cache.creation1h },
      output_tokens: output,
      service_tier: "standard",
    };
  }

  function contentBlocks(p: Plan): Block[] {
    const head: Block[] = p.thinking ? [{ type: "thinking", thinking: p.thinking.text, signature: p.thinking.signature }] : [];
    if (p.tool) return [...head, { type: "tool_use", id: p.tool.id, name: p.tool.name, input: p.tool.input }];
    const text = p.pieces!.join("");
    return text === "" ? head : [...head, { type: "text", text }];
  }

  function message(p: Plan) {
    return {
      id: p.id,
      type: "message",
      role: "assistant",
      model: p.model,
      content: contentBlocks(p),
      stop_reason: p.stopReason,
      stop_sequence: p.stopSequence,
      stop_details: null,
      usage: usage(p, p.output),
    };
  }

  /** The events of the whole stream, in order, split where a broken stream may stop: head, deltas, tail. */
  function events(p: Plan): { head: { type: string }[]; deltas: { type: string }[]; tail: { type: string }[] } {
    const head: { type: string }[] = [
      { type: "message_start", message: { id: p.id, type: "message", role: "assistant", model: p.model, content: [], stop_reason: null, stop_sequence: null, stop_details: null, usage: usage(p, 1) } } as { type: string },
    ];
    const deltas: { type: string }[] = [];
    // A thinking block comes first: its text, then its signature, then it closes.
    const at = p.thinking ? 1 : 0;
    if (p.thinking) {
      head.push({ type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } } as { type: string });
      for (const thinking of splitText(p.thinking.text, streamChunks)) head.push({ type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking } } as { type: string });
      head.push({ type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: p.thinking.signature } } as { type: string });
      head.push({ type: "content_block_stop", index: 0 } as { type: string });
    }
    if (p.tool) {
      head.push({ type: "content_block_start", index: at, content_block: { type: "tool_use", id: p.tool.id, name: p.tool.name, input: {} } } as { type: string });
      head.push({ type: "ping" });
      // Tool input streams as partial JSON, starting with an empty fragment as the API does.
      for (const part of ["", ...splitText(JSON.stringify(p.tool.input), streamChunks)]) {
        deltas.push({ type: "content_block_delta", index: at, delta: { type: "input_json_delta", partial_json: part } } as { type: string });
      }
    } else {
      head.push({ type: "content_block_start", index: at, content_block: { type: "text", text: "" } } as { type: string });
      head.push({ type: "ping" });
      for (const text of p.pieces!) deltas.push({ type: "content_block_delta", index: at, delta: { type: "text_delta", text } } as { type: string });
    }
    const tail: { type: string }[] = [
      { type: "content_block_stop", index: at } as { type: string },
      {
        type: "message_delta",
        delta: { stop_reason: p.stopReason, stop_sequence: p.stopSequence, stop_details: null },
        usage: { input_tokens: p.input, cache_creation_input_tokens: p.cache.creation5m + p.cache.creation1h, cache_read_input_tokens: p.cache.read, output_tokens: p.output },
      } as { type: string },
      { type: "message_stop" },
    ];
    return { head, deltas, tail };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    const raw = await readBody(req).catch(() => "");
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    let body: any = undefined;
    let parsed = true;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
        parsed = false;
      }
    }
    mock.requests.push({ method, path, headers: { ...req.headers }, body });
    const requestId = newId("req_");

    // x-api-key; the API also takes `Authorization: Bearer` (what SDK 1.x sends) and prefers x-api-key when both come.
    const auth = req.headers.authorization;
    const bearer = typeof auth === "string" ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined;
    const key = req.headers["x-api-key"] ?? bearer;
    if (typeof key !== "string" || key === "" || (opts.apiKey !== undefined && key !== opts.apiKey)) {
      return sendJson(res, 401, errorBody("authentication_error", typeof key === "string" && key !== "" ? "invalid x-api-key" : "x-api-key header is required", requestId), requestId);
    }
    const version = req.headers["anthropic-version"];
    if (typeof version !== "string" || version === "") {
      return sendJson(res, 400, errorBody("invalid_request_error", "anthropic-version: header is required", requestId), requestId);
    }
    if (!VERSIONS.has(version)) {
      return sendJson(res, 400, errorBody("invalid_request_error", `anthropic-version: invalid version '${version}'`, requestId), requestId);
    }
    const betaHeader = req.headers["anthropic-beta"];
    const betas = new Set((Array.isArray(betaHeader) ? betaHeader.join(",") : betaHeader ?? "").split(",").map((b) => b.trim()).filter(Boolean));
    if (method === "GET" && (path === "/v1/models" || path.startsWith("/v1/models/"))) return models(res, path, requestId);
    const counting = method === "POST" && path === "/v1/messages/count_tokens";
    if (!counting && (method !== "POST" || path !== "/v1/messages")) {
      return sendJson(res, 404, errorBody("not_found_error", "Not Found", requestId), requestId);
    }
    // count_tokens takes the messages body without max_tokens.
    const checked = counting && parsed && body && typeof body === "object" ? { max_tokens: 1, ...body } : body;
    const invalid = (parsed ? validate(checked, version, betas) : "There was an issue with your request body: it is not valid JSON.") ?? checkThinking(body);
    if (invalid !== undefined) return sendJson(res, 400, errorBody("invalid_request_error", invalid, requestId), requestId);
    if (counting) {
      const answer = { input_tokens: tokensForChars(JSON.stringify([body.system ?? "", body.messages, body.tools ?? []]).length) };
      mock.answers.push({ path, body: answer });
      return sendJson(res, 200, answer, requestId);
    }

    const behavior: Behavior = mock.queue.length > 0 ? mock.queue.shift()! : mock.fallback;
    const wantsStream = body.stream === true;

    switch (behavior.kind) {
      case "reset":
        req.socket.destroy();
        return;

      case "hang":
        return;

      case "status": {
        const extra: Record<string, string> = {};
        if (behavior.retryAfterSeconds !== undefined) extra["retry-after"] = String(behavior.retryAfterSeconds);
        return sendJson(res, behavior.status, behavior.body !== undefined ? behavior.body : defaultErrorBody(behavior.status, requestId), requestId, extra);
      }

      case "overloaded":
        return sendJson(res, 529, defaultErrorBody(529, requestId), requestId);

      case "stream-error-first": {
        if (!wantsStream) return sendJson(res, 529, defaultErrorBody(529, requestId), requestId);
        if (!startSse(res, requestId)) return;
        sse(res, errorBody("overloaded_error", "Overloaded", requestId));
        res.end();
        return;
      }

      case "stream-fail-after":
      case "stream-error-after": {
        const p = plan(body);
        if (!wantsStream) {
          // A JSON answer cut in the middle.
          if (gone(res)) return;
          const text = JSON.stringify(message(p));
          res.writeHead(200, { "request-id": requestId, "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
          res.write(text.slice(0, Math.floor(text.length / 2)));
          await sleep(5);
          res.socket?.destroy();
          return;
        }
        if (!startSse(res, requestId)) return;
        const { head, deltas } = events(p);
        for (const e of head) if (!sse(res, e)) return;
        for (const e of deltas.slice(0, Math.max(0, Math.floor(behavior.chunks)))) {
          if (intervalMs > 0) await sleep(intervalMs);
          if (!sse(res, e)) return;
        }
        // Let the written events reach the client before the error or the cut (a gateway holds
        // everything back until the first token, so they must arrive as reads of their own).
        await sleep(Math.max(intervalMs, 25));
        if (behavior.kind === "stream-error-after") {
          if (!sse(res, errorBody("overloaded_error", "Overloaded", requestId))) return;
          res.end();
          return;
        }
        res.socket?.destroy();
        return;
      }

      case "stream-no-stop": {
        const p = plan(body);
        if (!wantsStream) return sendJson(res, 200, message(p), requestId);
        if (!startSse(res, requestId)) return;
        const { head, deltas, tail } = events(p);
        for (const e of [...head, ...deltas, ...tail.slice(0, -1)]) if (!sse(res, e)) return;
        res.end();
        return;
      }

      case "ok": {
        if (behavior.delayMs && behavior.delayMs > 0) await sleep(behavior.delayMs);
        if (gone(res)) return;
        const p = plan(body, behavior.tool);
        if (!wantsStream) {
          mock.answers.push({ path, message: message(p) });
          return sendJson(res, 200, message(p), requestId);
        }
        if (!startSse(res, requestId)) return;
        const { head, deltas, tail } = events(p);
        mock.answers.push({ path, events: [...head, ...deltas, ...tail] });
        for (const e of head) if (!sse(res, e)) return;
        for (const e of deltas) {
          if (intervalMs > 0) await sleep(intervalMs);
          if (!sse(res, e)) return;
        }
        for (const e of tail) if (!sse(res, e)) return;
        res.end();
        return;
      }
    }
  }

  /** GET /v1/models and /v1/models/{id}, in the API's page shape. */
  function models(res: ServerResponse, path: string, requestId: string) {
    const all = MODELS.map(([id, display_name, created_at]) => ({ type: "model", id, display_name, created_at }));
    if (path === "/v1/models") {
      return sendJson(res, 200, { data: all, has_more: false, first_id: all[0].id, last_id: all[all.length - 1].id }, requestId);
    }
    const one = all.find((m) => m.id === decodeURIComponent(path.slice("/v1/models/".length)));
    return one ? sendJson(res, 200, one, requestId) : sendJson(res, 404, errorBody("not_found_error", "model not found", requestId), requestId);
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!gone(res) && !res.headersSent) sendJson(res, 500, defaultErrorBody(500), "req_error");
      else res.socket?.destroy();
    });
  });

  return srv.listen().then((port) => {
    mock.url = `http://127.0.0.1:${port}`;
    return mock;
  });
}
