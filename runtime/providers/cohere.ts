import type { AccountContext, Adapter, Endpoint, InboundRequest, StreamTranslator, Translated, UpstreamRequest, Usage } from "./adapter.ts";
import type { ErrorType } from "../error-type.ts";
import { classifyCohere, streamError } from "./classify.ts";
import { openaiAdapter } from "./openai.ts";
import { SseDecoder, type SseEvent } from "./sse.ts";

// Cohere's Chat API v2 (https://docs.cohere.com/reference/chat) and Embed API
// v2 (https://docs.cohere.com/reference/embed), both under the SDK's base URL
// `https://api.cohere.com`, key as `Authorization: Bearer`.
//
//   OpenAI chat request  ─► POST /v2/chat   ─► { id, finish_reason, message: { content[], tool_plan, tool_calls }, usage }
//   OpenAI embeddings    ─► POST /v2/embed  ─► { id, embeddings: { float: [[…]] }, meta: { billed_units } }
//   legacy completions   ─► not served (Cohere's v2 API has no prompt-completion endpoint)
//
// Streams are SSE (`event: <type>` + `data: {"type":…}`), one event per step:
// message-start, content-start/-delta/-end, tool-plan-delta,
// tool-call-start/-delta/-end, citation-start/-end, message-end (finish_reason,
// usage, error), then `data: [DONE]`.
//
// Choices made where the formats differ:
// - Usage is Cohere's `billed_units` (what is invoiced and what prices apply
//   to), falling back to `tokens` when no billed units are reported; cached
//   prompt tokens from `cached_tokens`.
// - The tool plan (the model's visible "I will call X" text) becomes the
//   assistant content when the message has no text of its own, and an assistant
//   message that carries tool calls sends its text back as `tool_plan`, so a
//   round trip keeps it.
// - Thinking content (reasoning models) is not part of OpenAI's chat shape and is dropped.

type Json = Record<string, unknown>;

const PATHS: Partial<Record<Endpoint, string>> = { chat: "/v2/chat", embeddings: "/v2/embed" };

const FINISH: Record<string, string> = {
  complete: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_call: "tool_calls",
  content_blocked: "content_filter",
};

/** OpenAI's finish reason for Cohere's (upper case on the wire; the enum has also been spelt lower case). */
export function finishReason(reason: unknown): string {
  return (typeof reason === "string" && FINISH[reason.toLowerCase()]) || "stop";
}

function isErrorFinish(reason: unknown): boolean {
  return typeof reason === "string" && reason.toLowerCase().startsWith("error");
}

/** What an error finish means: ERROR_TOXIC the content filter, ERROR_LIMIT the context window, ERROR the model failing. */
function errorFinishType(reason: unknown): ErrorType {
  const r = String(reason).toLowerCase();
  return r === "error_toxic" ? "content_filter" : r === "error_limit" ? "context_length_exceeded" : "server_error";
}

export const cohereAdapter: Adapter = {
  format: null,
  supports: (endpoint) => PATHS[endpoint] !== undefined,
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
    const headers: Record<string, string> = { "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json", "accept-encoding": "identity" };
    if (account.apiKey !== null) headers.authorization = `Bearer ${account.apiKey}`;
    const body = req.endpoint === "embeddings" ? embedRequest(req.json, model) : chatRequest(req.json, model, req.stream);
    return { path: account.basePath + PATHS[req.endpoint]!, headers, body: JSON.stringify(body) };
  },
  response(json: unknown, req: InboundRequest, model: string): unknown {
    // Not Cohere's answer (no message, no embeddings): undefined, and the account has failed.
    if (json === null || typeof json !== "object") return undefined;
    const j = json as Json;
    if (req.endpoint === "embeddings") return j.embeddings !== undefined ? embedResponse(json, req.json, model) : undefined;
    return j.message !== null && typeof j.message === "object" ? chatResponse(json, model, nowSeconds()) : undefined;
  },
  stream(_req: InboundRequest, model: string, maxEventBytes?: number): StreamTranslator {
    return new CohereStream(model, nowSeconds(), maxEventBytes);
  },
  usage(json: unknown): Usage | undefined {
    if (json === null || typeof json !== "object") return undefined;
    const j = json as { usage?: unknown; meta?: { billed_units?: { input_tokens?: unknown } | null } | null; choices?: unknown };
    if (j.usage !== undefined) return cohereUsage(j.usage) ?? openaiAdapter.usage(json);
    const embedTokens = j.meta?.billed_units?.input_tokens;
    if (typeof embedTokens === "number") return { input: embedTokens, output: 0, cached: 0 };
    return undefined;
  },
  classify: classifyCohere,
};

/** `created` for OpenAI's shape: Cohere's answers carry no timestamp. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Cohere's usage block (`{billed_units, tokens, cached_tokens}`) in the gateway's terms. */
export function cohereUsage(u: unknown): Usage | undefined {
  if (u === null || typeof u !== "object") return undefined;
  const usage = u as { billed_units?: Json | null; tokens?: Json | null; cached_tokens?: unknown };
  const pick = (field: "input_tokens" | "output_tokens"): number | undefined => {
    const billed = usage.billed_units?.[field];
    if (typeof billed === "number") return billed;
    const raw = usage.tokens?.[field];
    return typeof raw === "number" ? raw : undefined;
  };
  const input = pick("input_tokens");
  const output = pick("output_tokens");
  if (input === undefined && output === undefined) return undefined;
  const cached = typeof usage.cached_tokens === "number" ? Math.min(usage.cached_tokens, input ?? 0) : 0;
  return { input: input ?? 0, output: output ?? 0, cached };
}

function openaiUsage(u: Usage): Json {
  return { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output, prompt_tokens_details: { cached_tokens: u.cached } };
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/** Text of an OpenAI content value (string or parts). */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => (p !== null && typeof p === "object" && typeof (p as Json).text === "string" ? ((p as Json).text as string) : typeof p === "string" ? p : ""))
    .join("");
}

/** User content: a string, or Cohere's text / image_url parts. */
function userContent(content: unknown): unknown {
  if (!Array.isArray(content)) return typeof content === "string" ? content : textOf(content);
  const parts: Json[] = [];
  for (const p of content as Json[]) {
    if (p?.type === "text" && typeof p.text === "string") parts.push({ type: "text", text: p.text });
    else if (p?.type === "image_url" && p.image_url !== undefined) {
      const image = p.image_url as Json | string;
      parts.push({ type: "image_url", image_url: typeof image === "string" ? { url: image } : image });
    }
  }
  return parts.length > 0 && parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : parts;
}

function message(m: Json): Json | undefined {
  switch (m.role) {
    case "system":
    case "developer":
      return { role: "system", content: textOf(m.content) };
    case "user":
      return { role: "user", content: userContent(m.content) };
    case "assistant": {
      const text = textOf(m.content);
      const calls = Array.isArray(m.tool_calls)
        ? (m.tool_calls as Json[])
            .filter((c) => c?.type === undefined || c.type === "function")
            .map((c) => {
              const fn = (c.function ?? {}) as Json;
              return { id: c.id, type: "function", function: { name: fn.name, arguments: typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? {}) } };
            })
        : [];
      if (calls.length > 0) return text === "" ? { role: "assistant", tool_calls: calls } : { role: "assistant", tool_plan: text, tool_calls: calls };
      return { role: "assistant", content: text };
    }
    case "tool":
      return { role: "tool", tool_call_id: m.tool_call_id, content: textOf(m.content) };
    default:
      return undefined;
  }
}

/** An OpenAI chat request as Cohere's v2 chat request. */
export function chatRequest(json: Json, model: string, stream: boolean): Json {
  const messages = (Array.isArray(json.messages) ? (json.messages as Json[]) : []).map((m) => (m !== null && typeof m === "object" ? message(m) : undefined)).filter((m) => m !== undefined);
  const out: Json = { model, messages };
  let tools = (Array.isArray(json.tools) ? (json.tools as Json[]) : []).filter((t) => t?.type === "function" && t.function !== undefined);
  const choice = json.tool_choice;
  if (choice !== null && typeof choice === "object") {
    // A named function: Cohere cannot name one, so offer only that one and require a call.
    const wanted = ((choice as Json).function as Json | undefined)?.name;
    const only = tools.filter((t) => (t.function as Json).name === wanted);
    if (only.length > 0) tools = only;
    if (tools.length > 0) out.tool_choice = "REQUIRED";
  } else if (choice === "required" && tools.length > 0) {
    out.tool_choice = "REQUIRED";
  } else if (choice === "none" && tools.length > 0) {
    out.tool_choice = "NONE";
  }
  if (tools.length > 0) {
    out.tools = tools.map((t) => {
      const fn = t.function as Json;
      const f: Json = { name: fn.name };
      if (fn.description !== undefined) f.description = fn.description;
      f.parameters = fn.parameters ?? { type: "object", properties: {} };
      return { type: "function", function: f };
    });
    if (tools.some((t) => (t.function as Json).strict === true)) out.strict_tools = true;
  }
  const maxTokens = json.max_completion_tokens ?? json.max_tokens;
  if (typeof maxTokens === "number") out.max_tokens = maxTokens;
  if (typeof json.temperature === "number") out.temperature = json.temperature;
  if (typeof json.top_p === "number") out.p = json.top_p;
  if (typeof json.stop === "string") out.stop_sequences = [json.stop];
  else if (Array.isArray(json.stop) && json.stop.length > 0) out.stop_sequences = json.stop;
  if (typeof json.seed === "number") out.seed = json.seed;
  if (typeof json.frequency_penalty === "number") out.frequency_penalty = json.frequency_penalty;
  if (typeof json.presence_penalty === "number") out.presence_penalty = json.presence_penalty;
  const format = json.response_format as Json | undefined;
  if (format?.type === "json_object") out.response_format = { type: "json_object" };
  else if (format?.type === "json_schema") {
    const schema = (format.json_schema as Json | undefined)?.schema;
    out.response_format = schema === undefined ? { type: "json_object" } : { type: "json_object", json_schema: schema };
  }
  if (stream) out.stream = true;
  return out;
}

/** An OpenAI embeddings request as Cohere's v2 embed request (`input_type` may be passed through as an extra field). */
export function embedRequest(json: Json, model: string): Json {
  const input = json.input;
  const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((x) => typeof x === "string") ? input : [];
  const out: Json = {
    model,
    texts,
    input_type: typeof json.input_type === "string" ? json.input_type : "search_document",
    embedding_types: ["float"],
  };
  if (typeof json.dimensions === "number") out.output_dimension = json.dimensions;
  return out;
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

function toolCalls(calls: unknown): Json[] {
  if (!Array.isArray(calls)) return [];
  return (calls as Json[]).map((c) => {
    const fn = (c?.function ?? {}) as Json;
    return { id: c?.id, type: "function", function: { name: fn.name, arguments: typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? {}) } };
  });
}

/** A Cohere v2 chat response as an OpenAI `chat.completion`. */
export function chatResponse(json: unknown, model: string, created: number): Json {
  const j = (json ?? {}) as Json;
  const msg = (j.message ?? {}) as Json;
  const text = Array.isArray(msg.content)
    ? (msg.content as Json[])
        .filter((c) => c?.type === "text" && typeof c.text === "string")
        .map((c) => c.text as string)
        .join("")
    : typeof msg.content === "string"
      ? msg.content
      : "";
  const calls = toolCalls(msg.tool_calls);
  const plan = typeof msg.tool_plan === "string" ? msg.tool_plan : "";
  const content = text !== "" ? text : plan !== "" ? plan : calls.length > 0 ? null : "";
  const message: Json = { role: "assistant", content, refusal: null };
  if (calls.length > 0) message.tool_calls = calls;
  const usage = cohereUsage(j.usage);
  const out: Json = {
    id: typeof j.id === "string" ? j.id : "",
    object: "chat.completion",
    created,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: calls.length > 0 ? "tool_calls" : finishReason(j.finish_reason) }],
  };
  if (usage !== undefined) out.usage = openaiUsage(usage);
  return out;
}

/** A Cohere v2 embed response as an OpenAI embeddings list (base64 when the caller asked, as the openai SDK does by default). */
export function embedResponse(json: unknown, request: Json, model: string): Json {
  const j = (json ?? {}) as { embeddings?: { float?: unknown } | unknown[]; meta?: { billed_units?: { input_tokens?: unknown } } };
  const vectors = (Array.isArray(j.embeddings) ? j.embeddings : Array.isArray(j.embeddings?.float) ? j.embeddings.float : []) as number[][];
  const base64 = request.encoding_format === "base64";
  const tokens = typeof j.meta?.billed_units?.input_tokens === "number" ? j.meta.billed_units.input_tokens : 0;
  return {
    object: "list",
    data: vectors.map((v, index) => ({
      object: "embedding",
      index,
      embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v,
    })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/**
 * Cohere's SSE as OpenAI `chat.completion.chunk`s. Bytes may be split
 * anywhere (inside a UTF-8 sequence, a line, an event); only whole lines are
 * read. Also reads newline-delimited JSON (v1's default framing), one event a line.
 */
export class CohereStream implements StreamTranslator {
  readonly #sse: SseDecoder;
  #id = "";
  #started = false;
  #ended = false;
  /** Cohere's block index of each tool call → OpenAI's tool call index. */
  #calls = new Map<number, number>();
  #lastCall = -1;

  constructor(
    private readonly model: string,
    private readonly created: number,
    maxEventBytes?: number,
  ) {
    this.#sse = new SseDecoder(maxEventBytes, { ndjson: true });
  }

  push(bytes: Buffer): Translated {
    return this.#read(this.#sse.push(bytes));
  }

  end(): Translated & { complete: boolean } {
    const t = this.#read(this.#sse.end());
    return { ...t, complete: this.#ended && t.error === undefined };
  }

  #read(events: SseEvent[]): Translated {
    const out: Translated = { chunks: [] };
    for (const e of events) if (e.hasData) this.#dispatch(e.data, e.event, out);
    return out;
  }

  #chunk(delta: Json, finish: string | null = null): object {
    return {
      id: this.#id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
  }

  #start(out: Translated): void {
    if (this.#started) return;
    this.#started = true;
    out.chunks.push(this.#chunk({ role: "assistant", content: "" }));
  }

  #dispatch(data: string, eventName: string, out: Translated): void {
    if (data.trim() === "[DONE]") return;
    let event: Json;
    try {
      event = JSON.parse(data) as Json;
    } catch {
      return;
    }
    if (event === null || typeof event !== "object") return;
    const type = typeof event.type === "string" ? event.type : eventName;
    const delta = (event.delta ?? {}) as Json;
    const msg = (delta.message ?? {}) as Json;
    switch (type) {
      case "message-start":
        if (typeof event.id === "string") this.#id = event.id;
        this.#start(out);
        return;
      case "content-start":
      case "content-delta": {
        const content = (msg.content ?? {}) as Json;
        if (content.type !== undefined && content.type !== "text") return;
        if (typeof content.text === "string" && content.text !== "") {
          this.#start(out);
          out.chunks.push(this.#chunk({ content: content.text }));
        }
        return;
      }
      case "tool-plan-delta":
        if (typeof msg.tool_plan === "string" && msg.tool_plan !== "") {
          this.#start(out);
          out.chunks.push(this.#chunk({ content: msg.tool_plan }));
        }
        return;
      case "tool-call-start": {
        const call = (msg.tool_calls ?? {}) as Json;
        const fn = (call.function ?? {}) as Json;
        const at = this.#calls.size;
        this.#calls.set(typeof event.index === "number" ? event.index : at, at);
        this.#lastCall = at;
        this.#start(out);
        const args = typeof fn.arguments === "string" ? fn.arguments : "";
        out.chunks.push(this.#chunk({ tool_calls: [{ index: at, id: call.id, type: "function", function: { name: fn.name, arguments: args } }] }));
        return;
      }
      case "tool-call-delta": {
        const fn = ((msg.tool_calls ?? {}) as Json).function as Json | undefined;
        if (typeof fn?.arguments !== "string" || fn.arguments === "") return;
        const at = (typeof event.index === "number" ? this.#calls.get(event.index) : undefined) ?? this.#lastCall;
        if (at < 0) return;
        out.chunks.push(this.#chunk({ tool_calls: [{ index: at, function: { arguments: fn.arguments } }] }));
        return;
      }
      case "message-end": {
        this.#ended = true;
        const usage = cohereUsage(delta.usage);
        if (usage !== undefined) out.usage = usage;
        if (isErrorFinish(delta.finish_reason) || (typeof delta.error === "string" && delta.error !== "")) {
          const message = typeof delta.error === "string" && delta.error !== "" ? delta.error : "the generation failed";
          Object.assign(out, streamError({ errorType: errorFinishType(delta.finish_reason), message }));
          return;
        }
        this.#start(out);
        out.chunks.push(this.#chunk({}, this.#calls.size > 0 ? "tool_calls" : finishReason(delta.finish_reason)));
        return;
      }
      default:
        // content-end, tool-call-end, citation-start/-end, debug: nothing to send
        return;
    }
  }
}
