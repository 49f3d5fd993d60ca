/**
 * A local mock of the OpenAI HTTP API for gateway integration tests.
 *
 * It speaks OpenAI's wire format (shapes checked against the `openai` npm
 * package's type definitions — resources/chat/completions/completions.d.ts,
 * resources/completions.d.ts, resources/embeddings.d.ts, resources/models.d.ts,
 * resources/shared.d.ts `ErrorObject` — and against a captured real
 * `stream_options.include_usage` chat stream), and can be told to misbehave
 * (error statuses, resets, hangs, broken streams) one request at a time.
 *
 * Order of handling for every request:
 *   1. the body is read and the request is recorded in `requests`;
 *   2. `Authorization: Bearer <token>` is checked (401 otherwise);
 *   3. the route is checked (404 otherwise);
 *   4. one behavior is taken from `queue` (or `fallback` when it is empty)
 *      and applied. Steps 2 and 3 do not consume a behavior.
 *
 * The Responses API (`/v1/responses…`) is answered by openai-responses.ts.
 * Chat with `response_format` json_schema (or json_object) answers JSON.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { mockServer } from "./mock-server.ts";
import { responsesApi, responsesRouteOf } from "./openai-responses.ts";
import { sampleOf } from "./sample-json.ts";

const COMPRESS: Record<string, (b: Buffer) => Buffer> = { gzip: gzipSync, br: brotliCompressSync, deflate: deflateSync, zstd: (b) => gzipSync(b) };

export type Behavior =
  /**
   * A real answer. `tool`: on the Responses API, call this function with these arguments (when declared
   * and the last input is the user's). `encoding` compresses it (and says so in `content-encoding`)
   * though the gateway asked for identity.
   */
  | { kind: "ok"; delayMs?: number; tool?: { name: string; input: Record<string, unknown> }; encoding?: "gzip" | "br" | "deflate" | "zstd" }
  /** An upstream that lies: this status (200 by default) with a body that is not the protocol (HTML, broken JSON, another shape). */
  | { kind: "lie"; status?: number; contentType?: string; headers?: Record<string, string>; body: string | Buffer }
  /** The real stream's first `chunks` content events, then `text` as sent (garbage, an unterminated event), then the end. */
  | { kind: "stream-then"; chunks: number; text: string }
  /** After `afterEvents` events of the real stream (its role chunk first), one event that never ends: `bytes` of data with no line end (default 50 MB), then a close. */
  | { kind: "endless-event"; afterEvents?: number; bytes?: number }
  | { kind: "status"; status: number; retryAfterSeconds?: number; body?: unknown }
  | { kind: "reset" }
  | { kind: "hang" }
  | { kind: "stream-fail-after"; chunks: number }
  | { kind: "stream-error-first" }
  /** Streams: a comment, the role chunk and `chunks` content chunks, then silence (first-token and stall timeouts). */
  | { kind: "stream-hang-after"; chunks: number }
  /** Streams: the whole answer, finish_reason and usage included, then a clean close without `[DONE]`. */
  | { kind: "stream-no-done" };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export interface MockUpstream {
  /** Base URL in the OpenAI SDK convention: http://127.0.0.1:PORT/v1 */
  url: string;
  /** Label put into responses (content text, `x-mock-upstream` header). */
  name: string;
  requests: RecordedRequest[];
  /** Behaviors consumed in order, one per request; when empty, `fallback` applies. */
  queue: Behavior[];
  fallback: Behavior;
  /** Requests being answered now, and the most at once so far. */
  active: number;
  peak: number;
  /** Every Responses API answer sent (the response object, and the stream's events), for comparing with what a client got. */
  answers: { path: string; body: any; events?: { type: string }[] }[];
  /** Closes the server and destroys open sockets (incl. hanging ones). */
  close(): Promise<void>;
}

export interface StartOptions {
  name?: string;
  stream?: { chunks?: number; intervalMs?: number };
  fallback?: Behavior;
  /**
   * The answer to every chat request, instead of `[name] you said: …`. A last
   * assistant message with `prefix: true` (Mistral's and DeepSeek's prefix
   * completion) that this text starts with is continued: only the rest is sent.
   */
  text?: string;
  /**
   * Bill as a model that writes to its limit: every choice reports its whole
   * `max_completion_tokens` / `max_tokens` as output, and input is counted
   * as a real tokenizer does for the text's script (ASCII about 4 characters
   * a token, anything else about one token a character, as CJK text is).
   * Off: output is the number of content pieces and input is characters / 4.
   */
  writesToLimit?: boolean;
}

// ---------------------------------------------------------------------------
// OpenAI error bodies
// ---------------------------------------------------------------------------

interface OpenAIErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

function errorBody(message: string, type: string, param: string | null, code: string | null) {
  const error: OpenAIErrorObject = { message, type, param, code };
  return { error };
}

/** Default OpenAI-shaped error body for an HTTP status. */
export function defaultErrorBody(status: number, model = "gpt-4o-mini"): { error: OpenAIErrorObject } {
  switch (status) {
    case 400:
      return errorBody("Invalid request.", "invalid_request_error", null, null);
    case 401:
      return errorBody(
        "Incorrect API key provided: sk-mock. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        null,
        "invalid_api_key",
      );
    case 403:
      return errorBody(
        "Country, region, or territory not supported",
        "request_forbidden",
        null,
        "unsupported_country_region_territory",
      );
    case 404:
      return errorBody(
        `The model \`${model}\` does not exist or you do not have access to it.`,
        "invalid_request_error",
        null,
        "model_not_found",
      );
    case 429:
      return errorBody(
        `Rate limit reached for ${model} in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        "requests",
        null,
        "rate_limit_exceeded",
      );
    case 500:
      return errorBody(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        null,
        null,
      );
    case 502:
      return errorBody("Bad gateway.", "server_error", null, null);
    case 503:
      return errorBody(
        "That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists.",
        "server_error",
        null,
        null,
      );
    case 504:
      return errorBody("Gateway timeout.", "server_error", null, null);
    default:
      return status >= 500
        ? errorBody(`Upstream error (HTTP ${status}).`, "server_error", null, null)
        : errorBody(`Request failed (HTTP ${status}).`, "invalid_request_error", null, null);
  }
}

// ---------------------------------------------------------------------------
// Deterministic content helpers
// ---------------------------------------------------------------------------

/** Text of a message `content` (string, array of content parts, or null). */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => {
        if (typeof p === "string") return p;
        if (p && typeof p === "object") {
          const part = p as Record<string, unknown>;
          if (typeof part.text === "string") return part.text;
          if (typeof part.refusal === "string") return part.refusal;
        }
        return "";
      })
      .join("");
  }
  return "";
}

/** ceil(chars / 4), at least 1. */
function tokensForChars(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

/** Tokens of a text as a real tokenizer counts its script: ASCII about 4 characters a token, other characters (CJK) about one each. */
function tokensForScript(text: string): number {
  let ascii = 0;
  let other = 0;
  for (const ch of text) ch.charCodeAt(0) < 128 ? ascii++ : other++;
  return Math.max(1, Math.ceil(ascii / 4) + other);
}

/** A positive integer request field (`n`, `best_of`), or `fallback`. */
function count(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : fallback;
}

/**
 * Split `text` into at most `n` non-empty pieces (by code point) whose
 * concatenation is `text`.
 */
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

/** Deterministic obfuscation padding (OpenAI sends random characters here). */
function obfuscation(seq: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const len = 1 + (seq * 7) % 12;
  let s = "";
  for (let i = 0; i < len; i++) s += alphabet[(seq * 31 + i * 17) % alphabet.length];
  return s;
}

/** FNV-1a 32-bit. */
function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Deterministic vector; every value is k/1024 so it survives a float32 round trip exactly. */
function embeddingFor(text: string, dims: number): number[] {
  const v: number[] = [];
  for (let i = 0; i < dims; i++) v.push(((fnv1a(text, i + 1) % 2001) - 1000) / 1024);
  return v;
}

let idCounter = 0;
function newId(prefix: string): string {
  idCounter += 1;
  const rand = Math.random().toString(36).slice(2, 10);
  return `${prefix}${idCounter.toString(36).padStart(4, "0")}${rand}`;
}

const SYSTEM_FINGERPRINT = "fp_mock0001";
const MODELS = [
  { id: "gpt-4o-mini", created: 1721172741, owned_by: "system" },
  { id: "gpt-4o", created: 1715367049, owned_by: "system" },
  { id: "gpt-3.5-turbo-instruct", created: 1692901427, owned_by: "system" },
  { id: "text-embedding-3-small", created: 1705948997, owned_by: "system" },
];

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

type Route = "chat" | "completions" | "embeddings" | "models";

function routeOf(method: string, path: string): Route | null {
  if (method === "POST" && path === "/v1/chat/completions") return "chat";
  if (method === "POST" && path === "/v1/completions") return "completions";
  if (method === "POST" && path === "/v1/embeddings") return "embeddings";
  if (method === "GET" && path === "/v1/models") return "models";
  return null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

export function startOpenAIUpstream(opts: StartOptions = {}): Promise<MockUpstream> {
  const name = opts.name ?? "mock";
  const streamChunks = Math.max(1, Math.floor(opts.stream?.chunks ?? 4));
  const intervalMs = Math.max(0, opts.stream?.intervalMs ?? 0);
  const srv = mockServer();
  const { server, sleep, gone } = srv;

  const mock: MockUpstream = {
    url: "",
    name,
    requests: [],
    queue: [],
    fallback: opts.fallback ?? { kind: "ok" },
    active: 0,
    peak: 0,
    answers: [],
    close: srv.close,
  };
  const responses = responsesApi(name, streamChunks);

  const baseHeaders = (): Record<string, string> => ({
    "x-request-id": newId("req_"),
    "x-mock-upstream": name,
  });

  function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
    if (gone(res)) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...baseHeaders(),
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      ...extra,
    });
    res.end(text);
  }

  function sendRawBody(res: ServerResponse, status: number, body: unknown, extra: Record<string, string>) {
    if (typeof body !== "string") return sendJson(res, status, body, extra);
    if (gone(res)) return;
    const trimmed = body.trimStart();
    const type = trimmed.startsWith("{") || trimmed.startsWith("[")
      ? "application/json"
      : trimmed.startsWith("<")
        ? "text/html; charset=utf-8"
        : "text/plain; charset=utf-8";
    res.writeHead(status, {
      ...baseHeaders(),
      "content-type": type,
      "content-length": String(Buffer.byteLength(body)),
      ...extra,
    });
    res.end(body);
  }

  function startSse(res: ServerResponse): boolean {
    if (gone(res)) return false;
    res.writeHead(200, {
      ...baseHeaders(),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    });
    res.flushHeaders();
    return true;
  }

  function sse(res: ServerResponse, data: unknown): boolean {
    if (gone(res)) return false;
    res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
    return true;
  }

  // ---- response builders ---------------------------------------------------

  interface ChatPlan {
    model: string;
    created: number;
    id: string;
    promptTokens: number;
    /** Choices asked for (`n`); each is the same answer. */
    choices: number;
    /** Output tokens each choice reports. */
    perChoice: number;
    /** Text pieces (content deltas) — or null when answering with a tool call. */
    pieces: string[] | null;
    toolCall: null | { id: string; type: "function" | "custom"; name: string; args: string };
  }

  function planChat(body: any): ChatPlan | { error: { status: number; body: unknown } } {
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      return { error: { status: 400, body: errorBody("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error", null, null) } };
    }
    if (typeof body.model !== "string" || body.model === "") {
      return { error: { status: 400, body: errorBody("you must provide a model parameter", "invalid_request_error", null, null) } };
    }
    const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
    if (messages.length === 0) {
      return { error: { status: 400, body: errorBody("Missing required parameter: 'messages'.", "invalid_request_error", "messages", "missing_required_parameter") } };
    }
    let chars = 0;
    for (const m of messages) chars += contentText(m?.content).length;
    const promptTokens = opts.writesToLimit ? tokensForScript(messages.map((m) => contentText(m?.content)).join("")) : tokensForChars(chars);
    const last = messages[messages.length - 1];
    const tools: any[] = Array.isArray(body.tools) ? body.tools : [];
    const limit = count(body.max_completion_tokens ?? body.max_tokens, 0);
    // Writing to the limit with none set: as far as gpt-4o's own ceiling on output.
    const perChoice = (pieces: number) => (opts.writesToLimit ? limit || 16_384 : pieces);
    const base = { model: body.model, created: Math.floor(Date.now() / 1000), id: newId("chatcmpl-"), promptTokens, choices: count(body.n, 1) };

    if (tools.length > 0 && last?.role === "user" && body.tool_choice !== "none") {
      let tool = tools[0];
      const choice = body.tool_choice;
      if (choice && typeof choice === "object") {
        const wanted = choice.function?.name ?? choice.custom?.name;
        tool = tools.find((t) => (t?.function?.name ?? t?.custom?.name) === wanted) ?? tool;
      }
      const type: "function" | "custom" = tool?.type === "custom" ? "custom" : "function";
      const toolName = String(tool?.function?.name ?? tool?.custom?.name ?? "tool");
      return { ...base, perChoice: perChoice(1), pieces: null, toolCall: { id: newId("call_"), type, name: toolName, args: type === "custom" ? "" : "{}" } };
    }

    let lastUser = "";
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i]?.role === "user") {
        lastUser = contentText(messages[i].content);
        break;
      }
    }
    const format = body.response_format;
    let text =
      format?.type === "json_schema"
        ? JSON.stringify(sampleOf(format.json_schema?.schema, lastUser))
        : format?.type === "json_object"
          ? JSON.stringify({ answer: lastUser })
          : (opts.text ?? `[${name}] you said: ${lastUser}`);
    if (last?.role === "assistant" && last.prefix === true && typeof last.content === "string" && text.startsWith(last.content)) text = text.slice(last.content.length);
    const pieces = splitText(text, streamChunks);
    return { ...base, perChoice: perChoice(pieces.length), pieces, toolCall: null };
  }

  function chatUsage(plan: ChatPlan) {
    const completion = plan.perChoice * plan.choices;
    return {
      prompt_tokens: plan.promptTokens,
      completion_tokens: completion,
      total_tokens: plan.promptTokens + completion,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
  }

  function chatCompletion(plan: ChatPlan) {
    const tc = plan.toolCall;
    const message = tc
      ? {
          role: "assistant",
          content: null,
          tool_calls: [
            tc.type === "custom"
              ? { id: tc.id, type: "custom", custom: { name: tc.name, input: tc.args } }
              : { id: tc.id, type: "function", function: { name: tc.name, arguments: tc.args } },
          ],
          refusal: null,
          annotations: [],
        }
      : { role: "assistant", content: plan.pieces!.join(""), refusal: null, annotations: [] };
    return {
      id: plan.id,
      object: "chat.completion",
      created: plan.created,
      model: plan.model,
      choices: Array.from({ length: plan.choices }, (_, index) => ({ index, message, logprobs: null, finish_reason: tc ? "tool_calls" : "stop" })),
      usage: chatUsage(plan),
      service_tier: "default",
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  }

  /** All SSE events (parsed objects) of a chat stream, before `[DONE]`. */
  function chatChunks(plan: ChatPlan, body: any): { content: object[]; tail: object[]; head: object } {
    const includeUsage = body?.stream_options?.include_usage === true;
    const includeObfuscation = body?.stream_options?.include_obfuscation !== false;
    let seq = 0;
    const chunk = (choices: object[], usage?: object) => {
      const c: Record<string, unknown> = {
        id: plan.id,
        object: "chat.completion.chunk",
        created: plan.created,
        model: plan.model,
        service_tier: "default",
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices,
      };
      if (includeUsage) c.usage = usage ?? null;
      if (includeObfuscation) c.obfuscation = obfuscation(++seq);
      return c;
    };
    const choice = (delta: object, finish: string | null) => ({ index: 0, delta, logprobs: null, finish_reason: finish });

    const tc = plan.toolCall;
    let head: object;
    const content: object[] = [];
    if (tc) {
      head = chunk([
        choice(
          {
            role: "assistant",
            content: null,
            tool_calls: [
              tc.type === "custom"
                ? { index: 0, id: tc.id, type: "custom", custom: { name: tc.name, input: "" } }
                : { index: 0, id: tc.id, type: "function", function: { name: tc.name, arguments: "" } },
            ],
            refusal: null,
          },
          null,
        ),
      ]);
      content.push(
        chunk([
          choice(
            { tool_calls: [tc.type === "custom" ? { index: 0, custom: { input: tc.args } } : { index: 0, function: { arguments: tc.args } }] },
            null,
          ),
        ]),
      );
    } else {
      head = chunk([choice({ role: "assistant", content: "", refusal: null }, null)]);
      for (const piece of plan.pieces!) content.push(chunk([choice({ content: piece }, null)]));
    }
    const tail: object[] = [chunk([choice({}, tc ? "tool_calls" : "stop")])];
    if (includeUsage) tail.push(chunk([], chatUsage(plan)));
    return { head, content, tail };
  }

  interface CompletionPlan {
    model: string;
    created: number;
    id: string;
    promptTokens: number;
    /** One list of text pieces per prompt. */
    pieces: string[][];
    /** Output tokens each completion reports, per prompt. */
    perChoice: number[];
    /** Completions generated per prompt (`best_of`, at least `n`), of which `n` are returned. */
    generated: number;
    returned: number;
  }

  function planCompletion(body: any): CompletionPlan | { error: { status: number; body: unknown } } {
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      return { error: { status: 400, body: errorBody("We could not parse the JSON body of your request.", "invalid_request_error", null, null) } };
    }
    if (typeof body.model !== "string" || body.model === "") {
      return { error: { status: 400, body: errorBody("you must provide a model parameter", "invalid_request_error", null, null) } };
    }
    const p = body.prompt;
    let prompts: string[];
    let tokens = 0;
    if (typeof p === "string") {
      prompts = [p];
      tokens = tokensForChars(p.length);
    } else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "string")) {
      prompts = p as string[];
      tokens = tokensForChars(prompts.join("").length);
    } else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "number")) {
      prompts = [`<${p.length} tokens>`];
      tokens = p.length;
    } else if (Array.isArray(p) && p.length > 0 && p.every((x) => Array.isArray(x))) {
      prompts = (p as unknown[][]).map((x) => `<${x.length} tokens>`);
      tokens = Math.max(1, (p as unknown[][]).reduce((n, x) => n + x.length, 0));
    } else {
      prompts = ["<|endoftext|>"];
      tokens = 1;
    }
    if (opts.writesToLimit && prompts.every((pr) => !pr.startsWith("<"))) tokens = prompts.reduce((n, pr) => n + tokensForScript(pr), 0);
    const pieces = prompts.map((pr) => splitText(`[${name}] you said: ${pr}`, streamChunks));
    // OpenAI's completions default to 16 tokens when max_tokens is not set.
    const limit = count(body.max_tokens, 16);
    const returned = count(body.n, 1);
    return {
      model: body.model,
      created: Math.floor(Date.now() / 1000),
      id: newId("cmpl-"),
      promptTokens: tokens,
      pieces,
      perChoice: pieces.map((ps) => (opts.writesToLimit ? limit : ps.length)),
      generated: Math.max(returned, count(body.best_of, 1)),
      returned,
    };
  }

  function completionUsage(plan: CompletionPlan) {
    const completion = plan.perChoice.reduce((n, c) => n + c, 0) * plan.generated;
    return { prompt_tokens: plan.promptTokens, completion_tokens: completion, total_tokens: plan.promptTokens + completion };
  }

  function completion(plan: CompletionPlan) {
    return {
      id: plan.id,
      object: "text_completion",
      created: plan.created,
      model: plan.model,
      choices: plan.pieces.flatMap((ps, p) =>
        Array.from({ length: plan.returned }, (_, i) => ({ text: ps.join(""), index: p * plan.returned + i, logprobs: null, finish_reason: "stop" })),
      ),
      usage: completionUsage(plan),
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  }

  function completionChunks(plan: CompletionPlan, body: any): { head: null; content: object[]; tail: object[] } {
    const includeUsage = body?.stream_options?.include_usage === true;
    const chunk = (choices: object[], usage?: object) => {
      const c: Record<string, unknown> = {
        id: plan.id,
        object: "text_completion",
        created: plan.created,
        model: plan.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices,
      };
      if (includeUsage) c.usage = usage ?? null;
      return c;
    };
    const content: object[] = [];
    const tail: object[] = [];
    plan.pieces.forEach((ps, index) => {
      for (const text of ps) content.push(chunk([{ text, index, logprobs: null, finish_reason: null }]));
      tail.push(chunk([{ text: "", index, logprobs: null, finish_reason: "stop" }]));
    });
    if (includeUsage) tail.push(chunk([], completionUsage(plan)));
    return { head: null, content, tail };
  }

  function embeddings(body: any): { status: number; body: unknown } {
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      return { status: 400, body: errorBody("We could not parse the JSON body of your request.", "invalid_request_error", null, null) };
    }
    if (typeof body.model !== "string" || body.model === "") {
      return { status: 400, body: errorBody("you must provide a model parameter", "invalid_request_error", null, null) };
    }
    const input = body.input;
    let items: { key: string; tokens: number }[];
    if (typeof input === "string") items = [{ key: input, tokens: input.length / 4 }];
    else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === "string"))
      items = (input as string[]).map((s) => ({ key: s, tokens: s.length / 4 }));
    else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === "number"))
      items = [{ key: JSON.stringify(input), tokens: input.length }];
    else if (Array.isArray(input) && input.length > 0 && input.every((x) => Array.isArray(x)))
      items = (input as unknown[][]).map((x) => ({ key: JSON.stringify(x), tokens: x.length }));
    else
      return {
        status: 400,
        body: errorBody("'input' is a required property", "invalid_request_error", "input", null),
      };
    const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : 8;
    const base64 = body.encoding_format === "base64";
    const data = items.map((it, index) => {
      const vec = embeddingFor(it.key, dims);
      return {
        object: "embedding",
        index,
        embedding: base64 ? Buffer.from(new Float32Array(vec).buffer).toString("base64") : vec,
      };
    });
    const promptTokens = Math.max(1, Math.ceil(items.reduce((n, it) => n + it.tokens, 0)));
    return {
      status: 200,
      body: { object: "list", data, model: body.model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } },
    };
  }

  // ---- request handling ----------------------------------------------------

  interface Prepared {
    /** Non-stream JSON answer. */
    json: { status: number; body: unknown };
    /** Present when the request asked for a stream and the answer is 200. */
    stream: { head: object | null; content: object[]; tail: object[] } | null;
  }

  function prepare(route: Route, body: any): Prepared {
    if (route === "models") {
      return {
        json: { status: 200, body: { object: "list", data: MODELS.map((m) => ({ id: m.id, object: "model", created: m.created, owned_by: m.owned_by })) } },
        stream: null,
      };
    }
    if (route === "embeddings") return { json: embeddings(body), stream: null };
    const wantsStream = body?.stream === true;
    if (route === "chat") {
      const plan = planChat(body);
      if ("error" in plan) return { json: plan.error, stream: null };
      return { json: { status: 200, body: chatCompletion(plan) }, stream: wantsStream ? chatChunks(plan, body) : null };
    }
    const plan = planCompletion(body);
    if ("error" in plan) return { json: plan.error, stream: null };
    return { json: { status: 200, body: completion(plan) }, stream: wantsStream ? completionChunks(plan, body) : null };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    const raw = await readBody(req).catch(() => "");
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    let body: any = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    mock.requests.push({ method, path, headers: { ...req.headers }, body });

    const auth = req.headers["authorization"];
    const token = typeof auth === "string" ? /^Bearer\s+(\S.*)$/i.exec(auth)?.[1]?.trim() : undefined;
    if (!token) {
      return sendJson(
        res,
        401,
        errorBody(
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
          "invalid_request_error",
          null,
          "invalid_api_key",
        ),
      );
    }

    const route = routeOf(method, path) ?? responsesRouteOf(method, path);
    if (!route) {
      return sendJson(res, 404, errorBody(`Invalid URL (${method} ${path})`, "invalid_request_error", null, null));
    }

    const behavior: Behavior = mock.queue.length > 0 ? mock.queue.shift()! : mock.fallback;
    const model = typeof body?.model === "string" ? body.model : undefined;

    switch (behavior.kind) {
      case "reset":
        req.socket.destroy();
        return;

      case "hang":
        // Never answer; close() destroys the socket.
        return;

      case "status": {
        const extra: Record<string, string> = {};
        if (behavior.retryAfterSeconds !== undefined) extra["retry-after"] = String(behavior.retryAfterSeconds);
        const payload = behavior.body !== undefined ? behavior.body : defaultErrorBody(behavior.status, model);
        return sendRawBody(res, behavior.status, payload, extra);
      }

      case "stream-error-first": {
        const err = defaultErrorBody(500, model);
        if (body?.stream === true) {
          if (!startSse(res)) return;
          sse(res, err);
          res.end();
        } else {
          // Non-streaming request: a 200 whose JSON body is an error object.
          sendJson(res, 200, err);
        }
        return;
      }

      case "stream-fail-after": {
        if (route === "create" || route === "read") {
          // A Responses stream that breaks after `chunks` events (a JSON answer: cut at once).
          const answer = route === "create" ? responses.create(body) : responses.read(method, path);
          if (!answer.events || !startSse(res)) return void res.socket?.destroy();
          for (const e of answer.events.slice(0, behavior.chunks)) res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
          await sleep(Math.max(intervalMs, 5));
          res.socket?.destroy();
          return;
        }
        const prepared = prepare(route, body);
        if (!prepared.stream) {
          // Non-streaming request (or a request error): start the body, then cut it.
          if (gone(res)) return;
          const text = JSON.stringify(prepared.json.body);
          res.writeHead(prepared.json.status, {
            ...baseHeaders(),
            "content-type": "application/json",
            "content-length": String(Buffer.byteLength(text)),
          });
          res.write(text.slice(0, Math.floor(text.length / 2)));
          await sleep(5);
          res.socket?.destroy();
          return;
        }
        if (!startSse(res)) return;
        if (prepared.stream.head) sse(res, prepared.stream.head);
        const n = Math.max(0, Math.floor(behavior.chunks));
        const content = prepared.stream.content.slice(0, n);
        for (let i = 0; i < content.length; i++) {
          if (i > 0 && intervalMs > 0) await sleep(intervalMs);
          if (!sse(res, content[i])) return;
        }
        // Let the written chunks reach the client, then drop the connection.
        await sleep(Math.max(intervalMs, 25));
        res.socket?.destroy();
        return;
      }

      case "lie": {
        if (gone(res)) return;
        res.writeHead(behavior.status ?? 200, { ...baseHeaders(), "content-type": behavior.contentType ?? "text/html; charset=utf-8", ...behavior.headers });
        res.end(behavior.body);
        return;
      }

      case "stream-then":
      case "endless-event": {
        // Chat and legacy completions streams only; the Responses API's events are not played here.
        if (route === "create" || route === "read") return sendJson(res, 501, { error: { message: `the mock plays ${behavior.kind} on chat streams only`, type: "server_error", param: null, code: null } });
        const prepared = prepare(route, body);
        if (!prepared.stream || !startSse(res)) return;
        const events = [prepared.stream.head, ...prepared.stream.content].filter((e) => e !== null);
        const n = behavior.kind === "stream-then" ? behavior.chunks + 1 : (behavior.afterEvents ?? 0);
        for (const e of events.slice(0, n)) if (!sse(res, e)) return;
        if (behavior.kind === "stream-then") {
          res.end(behavior.text);
          return;
        }
        // One event that never ends: data with no line end at all, written until the budget or the client goes.
        res.write("data: ");
        const piece = "x".repeat(64 * 1024);
        for (let sent = 0; sent < (behavior.bytes ?? 50 * 1024 * 1024) && !gone(res); sent += piece.length) {
          if (!res.write(piece)) await new Promise<void>((ok) => { res.once("drain", ok); res.once("close", ok); });
        }
        res.end();
        return;
      }

      case "stream-hang-after": {
        // Chat and completions only (not the Responses API).
        if (route === "create" || route === "read") return void res.socket?.destroy();
        const prepared = prepare(route, body);
        if (!prepared.stream) return; // JSON: headers never come
        if (!startSse(res)) return;
        res.write(": keep-alive\n\n");
        if (prepared.stream.head) sse(res, prepared.stream.head);
        for (const c of prepared.stream.content.slice(0, behavior.chunks)) if (!sse(res, c)) return;
        return; // silence; close() destroys the socket
      }

      case "stream-no-done": {
        // Chat and completions only (not the Responses API).
        if (route === "create" || route === "read") return void res.socket?.destroy();
        const prepared = prepare(route, body);
        if (!prepared.stream) return sendJson(res, prepared.json.status, prepared.json.body);
        if (!startSse(res)) return;
        if (prepared.stream.head) sse(res, prepared.stream.head);
        for (const c of [...prepared.stream.content, ...prepared.stream.tail]) if (!sse(res, c)) return;
        res.end();
        return;
      }

      case "ok": {
        if (behavior.delayMs && behavior.delayMs > 0) await sleep(behavior.delayMs);
        if (gone(res)) return;
        if (route === "create" || route === "read") {
          const answer = route === "create" ? responses.create(body, behavior.tool) : responses.read(method, path);
          if (answer.status === 200) mock.answers.push({ path, body: answer.body, events: answer.events });
          if (!answer.events) return sendJson(res, answer.status, answer.body);
          if (!startSse(res)) return;
          for (let i = 0; i < answer.events.length; i++) {
            if (i > 0 && intervalMs > 0) await sleep(intervalMs);
            if (gone(res)) return;
            res.write(`event: ${answer.events[i].type}\ndata: ${JSON.stringify(answer.events[i])}\n\n`);
          }
          res.end();
          return;
        }
        const prepared = prepare(route, body);
        if (behavior.encoding !== undefined) {
          // The whole answer (JSON, or the full SSE text) compressed in one piece.
          const plain = prepared.stream
            ? [prepared.stream.head, ...prepared.stream.content, ...prepared.stream.tail].filter((c) => c !== null).map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n"
            : JSON.stringify(prepared.json.body);
          res.writeHead(prepared.json.status, {
            ...baseHeaders(),
            "content-type": prepared.stream ? "text/event-stream; charset=utf-8" : "application/json",
            "content-encoding": behavior.encoding,
          });
          res.end(COMPRESS[behavior.encoding](Buffer.from(plain)));
          return;
        }
        if (!prepared.stream) return sendJson(res, prepared.json.status, prepared.json.body);
        if (!startSse(res)) return;
        if (prepared.stream.head) sse(res, prepared.stream.head);
        for (let i = 0; i < prepared.stream.content.length; i++) {
          if (i > 0 && intervalMs > 0) await sleep(intervalMs);
          if (!sse(res, prepared.stream.content[i])) return;
        }
        for (const c of prepared.stream.tail) if (!sse(res, c)) return;
        if (!sse(res, "[DONE]")) return;
        res.end();
        return;
      }
    }
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    mock.peak = Math.max(mock.peak, ++mock.active);
    res.once("close", () => mock.active--);
    handle(req, res).catch(() => {
      if (!gone(res) && !res.headersSent) sendJson(res, 500, defaultErrorBody(500));
      else res.socket?.destroy();
    });
  });

  return srv.listen().then((port) => {
    mock.url = `http://127.0.0.1:${port}/v1`;
    return mock;
  });
}
