import { randomUUID } from "node:crypto";
import { badRequest } from "../errors.ts";
import { idsOf } from "./openai.ts";
import type { AccountContext, Adapter, Endpoint, InboundRequest, StreamTranslator, Translated, UpstreamRequest, Usage } from "./adapter.ts";
import { classifyGoogle, streamError } from "./classify.ts";
import { isObject } from "../json.ts";
import { SseDecoder, type SseEvent } from "./sse.ts";

// Google's Generative Language API ("Gemini API", generativelanguage.googleapis.com)
// and, through the helpers exported here, Vertex AI's Gemini endpoints, which
// take and return the same JSON. Field names follow the REST reference
// (models.generateContent, models.streamGenerateContent, models.batchEmbedContents):
//
//   OpenAI chat body                      GenerateContentRequest
//   messages[system|developer]        ->  systemInstruction.parts[].text
//   messages[user|assistant]          ->  contents[] role "user" | "model"
//   image_url data: URL / http URL    ->  inlineData {mimeType, data} / fileData {fileUri}
//   assistant tool_calls              ->  functionCall {name, args} (+ thoughtSignature)
//   tool messages                     ->  functionResponse {name, response} (role "user")
//   tools / tool_choice               ->  tools[].functionDeclarations / toolConfig.functionCallingConfig
//   max_tokens, temperature, top_p... ->  generationConfig
//
// Streams (`?alt=sse`) are SSE events whose data is a whole GenerateContentResponse;
// there is no `[DONE]`: the stream is complete when every candidate carried a finishReason.

type Json = Record<string, unknown>;

/** Google's documented stand-in for a thought signature the caller did not keep (Gemini 3 rejects function calls without one). */
export const SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator";

// ---------------------------------------------------------------------------
// Request: OpenAI chat completion -> GenerateContentRequest
// ---------------------------------------------------------------------------

interface Part {
  text?: string;
  inlineData?: { mimeType: string; data: string };
  fileData?: { mimeType?: string; fileUri: string };
  functionCall?: { name: string; args: Json };
  functionResponse?: { name: string; response: Json };
  thoughtSignature?: string;
}

interface Content {
  role: "user" | "model";
  parts: Part[];
}

/** The GenerateContentRequest for an OpenAI chat completion body. Throws a 400 HttpError for what Gemini cannot take. */
export function toGenerateContent(body: Json): Json {
  if (!Array.isArray(body.messages)) throw badRequest("'messages' must be an array.", "invalid_type", "messages");
  const system: Part[] = [];
  const contents: Content[] = [];
  /** tool_call id -> function name, from earlier assistant messages. */
  const names = new Map<string, string>();
  let toolTurn: Content | undefined;

  body.messages.forEach((raw: unknown, i: number) => {
    const m = (raw ?? {}) as Json;
    const role = m.role;
    const param = `messages[${i}]`;
    if (role !== "tool" && role !== "function") toolTurn = undefined;
    switch (role) {
      case "system":
      case "developer":
        system.push(...textParts(m.content, `${param}.content`));
        break;
      case "user": {
        const parts = userParts(m.content, `${param}.content`);
        if (parts.length > 0) contents.push({ role: "user", parts });
        break;
      }
      case "assistant": {
        const parts = textParts(m.content, `${param}.content`).filter((p) => p.text !== "");
        const calls: unknown[] = Array.isArray(m.tool_calls) ? m.tool_calls : [];
        const legacy = m.function_call as { name?: unknown; arguments?: unknown } | null | undefined;
        if (legacy != null && typeof legacy.name === "string") calls.push({ function: legacy });
        let signed = false;
        for (const c of calls) {
          const call = (c ?? {}) as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown }; extra_content?: { google?: { thought_signature?: unknown } } };
          const name = call.function?.name;
          if (typeof name !== "string" || name === "") throw badRequest(`${param}.tool_calls: every tool call needs a function name.`, "invalid_value", `${param}.tool_calls`);
          if (typeof call.id === "string") names.set(call.id, name);
          const part: Part = { functionCall: { name, args: argsObject(call.function?.arguments) } };
          const signature = call.extra_content?.google?.thought_signature;
          if (typeof signature === "string" && signature !== "") part.thoughtSignature = signature;
          // Only the first call of a turn carries a signature (parallel calls share it).
          if (!signed && part.thoughtSignature === undefined) part.thoughtSignature = SKIP_THOUGHT_SIGNATURE;
          signed = true;
          parts.push(part);
        }
        if (parts.length > 0) contents.push({ role: "model", parts });
        break;
      }
      case "tool":
      case "function": {
        const id = m.tool_call_id;
        const name = (typeof id === "string" ? names.get(id) : undefined) ?? (typeof m.name === "string" ? m.name : undefined);
        if (name === undefined) {
          throw badRequest(`${param} answers tool_call_id '${String(id)}', which no earlier assistant message made.`, "invalid_value", `${param}.tool_call_id`);
        }
        const part: Part = { functionResponse: { name, response: responseObject(m.content) } };
        // Answers to one turn's calls go back together, as one turn.
        if (toolTurn !== undefined) toolTurn.parts.push(part);
        else contents.push((toolTurn = { role: "user", parts: [part] }));
        break;
      }
      default:
        throw badRequest(`${param}.role '${String(role)}' is not one of system, developer, user, assistant, tool.`, "invalid_value", `${param}.role`);
    }
  });

  const out: Json = { contents };
  if (system.length > 0) out.systemInstruction = { parts: system };
  Object.assign(out, toolsOf(body));
  const config = generationConfig(body);
  if (Object.keys(config).length > 0) out.generationConfig = config;
  return out;
}

/** Text parts of a string or an array of content parts (system and assistant messages). */
function textParts(content: unknown, param: string): Part[] {
  if (content == null) return [];
  if (typeof content === "string") return [{ text: content }];
  if (!Array.isArray(content)) throw badRequest(`${param} must be a string or an array of content parts.`, "invalid_type", param);
  const parts: Part[] = [];
  for (const p of content as Json[]) {
    if (typeof p?.text === "string") parts.push({ text: p.text });
    else if (p?.type !== "refusal") throw badRequest(`${param}: only text parts are allowed here, not '${String(p?.type)}'.`, "invalid_value", param);
  }
  return parts;
}

/** Parts of a user message: text, images, audio and files. */
function userParts(content: unknown, param: string): Part[] {
  if (content == null) return [];
  if (typeof content === "string") return content === "" ? [] : [{ text: content }];
  if (!Array.isArray(content)) throw badRequest(`${param} must be a string or an array of content parts.`, "invalid_type", param);
  const parts: Part[] = [];
  for (const raw of content as Json[]) {
    const p = (raw ?? {}) as Json;
    switch (p.type) {
      case "text":
        if (typeof p.text === "string" && p.text !== "") parts.push({ text: p.text });
        break;
      case "image_url": {
        const url = (p.image_url as { url?: unknown } | undefined)?.url;
        if (typeof url !== "string") throw badRequest(`${param}: image_url needs a url.`, "invalid_value", param);
        parts.push(mediaPart(url, undefined, param));
        break;
      }
      case "input_audio": {
        const audio = (p.input_audio ?? {}) as { data?: unknown; format?: unknown };
        if (typeof audio.data !== "string" || typeof audio.format !== "string") throw badRequest(`${param}: input_audio needs data and format.`, "invalid_value", param);
        parts.push({ inlineData: { mimeType: `audio/${audio.format}`, data: audio.data } });
        break;
      }
      case "file": {
        const file = (p.file ?? {}) as { file_data?: unknown; filename?: unknown };
        if (typeof file.file_data !== "string") throw badRequest(`${param}: Gemini takes files inline (file.file_data), not by file_id.`, "unsupported_value", param);
        parts.push(mediaPart(file.file_data, typeof file.filename === "string" ? file.filename : undefined, param));
        break;
      }
      default:
        throw badRequest(`${param}: content part type '${String(p.type)}' cannot be sent to Gemini.`, "unsupported_value", param);
    }
  }
  return parts;
}

const MIME_BY_EXTENSION: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  heic: "image/heic",
  heif: "image/heif",
  pdf: "application/pdf",
  wav: "audio/wav",
  mp3: "audio/mp3",
  mp4: "video/mp4",
  txt: "text/plain",
};

function mimeOf(name: string): string | undefined {
  const ext = /\.([a-z0-9]+)$/i.exec(name.split(/[?#]/)[0])?.[1]?.toLowerCase();
  return ext === undefined ? undefined : MIME_BY_EXTENSION[ext];
}

/** A data: URL becomes inlineData; any other URL (https://, gs://, a Files API URI) becomes fileData. */
function mediaPart(url: string, filename: string | undefined, param: string): Part {
  if (url.startsWith("data:")) {
    const comma = url.indexOf(",");
    if (comma < 0) throw badRequest(`${param}: malformed data: URL.`, "invalid_value", param);
    const meta = url.slice(5, comma).split(";");
    const payload = url.slice(comma + 1);
    const base64 = meta.slice(1).some((m) => m.toLowerCase() === "base64");
    const mimeType = meta[0] || (filename && mimeOf(filename)) || "application/octet-stream";
    const data = base64 ? payload : Buffer.from(decodeURIComponent(payload), "utf8").toString("base64");
    return { inlineData: { mimeType, data } };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    const mimeType = mimeOf(filename ?? url);
    return { fileData: mimeType === undefined ? { fileUri: url } : { mimeType, fileUri: url } };
  }
  // A bare base64 payload (OpenAI's file.file_data may be one).
  return { inlineData: { mimeType: (filename && mimeOf(filename)) || "application/octet-stream", data: url } };
}

/** functionCall.args must be an object; arguments that are not a JSON object are kept under `arguments`. */
function argsObject(args: unknown): Json {
  if (args == null || args === "") return {};
  if (typeof args === "object" && !Array.isArray(args)) return args as Json;
  if (typeof args === "string") {
    try {
      const parsed = JSON.parse(args) as unknown;
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Json;
    } catch {
      // kept as text below
    }
  }
  return { arguments: args };
}

/** functionResponse.response must be an object: a JSON object as is, anything else as `{content}`. */
function responseObject(content: unknown): Json {
  let text: string;
  if (typeof content === "string") text = content;
  else if (Array.isArray(content)) text = content.map((p) => (typeof (p as Json)?.text === "string" ? (p as Json).text : "")).join("");
  else if (content == null) text = "";
  else return typeof content === "object" ? (content as Json) : { content };
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Json;
  } catch {
    // plain text
  }
  return { content: text };
}

/** `tools` and `toolConfig` from OpenAI's `tools` and `tool_choice`. */
function toolsOf(body: Json): Json {
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  let declarations = tools
    .filter((t) => t?.type === "function" || (t?.type === undefined && t?.function !== undefined))
    .map((t) => {
      const f = (t.function ?? {}) as { name?: unknown; description?: unknown; parameters?: unknown };
      if (typeof f.name !== "string" || f.name === "") throw badRequest("Every function tool needs a name.", "invalid_value", "tools");
      const d: Json = { name: f.name };
      if (typeof f.description === "string") d.description = f.description;
      if (f.parameters != null && typeof f.parameters === "object") d.parametersJsonSchema = f.parameters;
      return d;
    });
  if (declarations.length < tools.length) {
    const other = tools.find((t) => !(t?.type === "function" || (t?.type === undefined && t?.function !== undefined)));
    throw badRequest(`Tools of type '${String(other?.type)}' cannot be sent to Gemini; only function tools can.`, "unsupported_value", "tools");
  }
  if (declarations.length === 0) return {};

  let config: Json | undefined;
  const choice = body.tool_choice as unknown;
  if (choice === "none") config = { mode: "NONE" };
  else if (choice === "auto") config = { mode: "AUTO" };
  else if (choice === "required") config = { mode: "ANY" };
  else if (choice !== null && typeof choice === "object") {
    const c = choice as { type?: unknown; function?: { name?: unknown }; allowed_tools?: { mode?: unknown; tools?: Json[] } };
    if (c.type === "function" && typeof c.function?.name === "string") {
      config = { mode: "ANY", allowedFunctionNames: [c.function.name] };
    } else if (c.type === "allowed_tools" && Array.isArray(c.allowed_tools?.tools)) {
      const allowed = c.allowed_tools.tools.map((t) => (t?.function as { name?: unknown } | undefined)?.name).filter((n): n is string => typeof n === "string");
      if (c.allowed_tools.mode === "required") config = { mode: "ANY", allowedFunctionNames: allowed };
      else declarations = declarations.filter((d) => allowed.includes(d.name as string)); // AUTO cannot name functions: offer only these
    } else {
      throw badRequest("tool_choice is not one of none, auto, required, a function or allowed_tools.", "invalid_value", "tool_choice");
    }
  }
  const out: Json = { tools: [{ functionDeclarations: declarations }] };
  if (config !== undefined) out.toolConfig = { functionCallingConfig: config };
  return out;
}

function generationConfig(body: Json): Json {
  const g: Json = {};
  const num = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (num(max)) g.maxOutputTokens = max;
  if (num(body.temperature)) g.temperature = body.temperature;
  if (num(body.top_p)) g.topP = body.top_p;
  if (num(body.n)) g.candidateCount = body.n;
  if (num(body.presence_penalty)) g.presencePenalty = body.presence_penalty;
  if (num(body.frequency_penalty)) g.frequencyPenalty = body.frequency_penalty;
  if (num(body.seed)) g.seed = body.seed;
  if (typeof body.stop === "string") g.stopSequences = [body.stop];
  else if (Array.isArray(body.stop) && body.stop.length > 0) g.stopSequences = body.stop;
  const format = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | null | undefined;
  if (format?.type === "json_object") g.responseMimeType = "application/json";
  if (format?.type === "json_schema") {
    g.responseMimeType = "application/json";
    if (format.json_schema?.schema != null) g.responseJsonSchema = format.json_schema.schema;
  }
  return g;
}

// ---------------------------------------------------------------------------
// Response: GenerateContentResponse -> OpenAI chat.completion
// ---------------------------------------------------------------------------

interface Candidate {
  index?: unknown;
  content?: { parts?: unknown };
  finishReason?: unknown;
}

const FILTERED = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "LANGUAGE"]);

/** OpenAI's finish_reason for Gemini's finishReason; null while the candidate is still going. */
export function finishReason(reason: unknown, calledTools: boolean): string | null {
  if (typeof reason !== "string" || reason === "" || reason === "FINISH_REASON_UNSPECIFIED") return null;
  if (reason === "MAX_TOKENS") return "length";
  if (FILTERED.has(reason)) return "content_filter";
  return calledTools ? "tool_calls" : "stop";
}

/** Tokens from usageMetadata: thinking tokens are billed as output; cached tokens are part of the prompt. */
export function usageOf(meta: unknown): Usage | undefined {
  if (meta == null || typeof meta !== "object") return undefined;
  const m = meta as Record<string, unknown>;
  const n = (k: string) => (typeof m[k] === "number" ? (m[k] as number) : 0);
  if (typeof m.promptTokenCount !== "number" && typeof m.candidatesTokenCount !== "number") return undefined;
  return { input: n("promptTokenCount") + n("toolUsePromptTokenCount"), output: n("candidatesTokenCount") + n("thoughtsTokenCount"), cached: n("cachedContentTokenCount") };
}

/** OpenAI's usage object for usageMetadata. */
export function openaiUsage(meta: unknown): Json | undefined {
  const u = usageOf(meta);
  if (u === undefined) return undefined;
  const thoughts = (meta as { thoughtsTokenCount?: unknown }).thoughtsTokenCount;
  return {
    prompt_tokens: u.input,
    completion_tokens: u.output,
    total_tokens: u.input + u.output,
    prompt_tokens_details: { cached_tokens: u.cached },
    completion_tokens_details: { reasoning_tokens: typeof thoughts === "number" ? thoughts : 0 },
  };
}

interface PartsView {
  text: string;
  calls: Json[];
}

/** Visible text (thought summaries left out) and OpenAI tool calls of a candidate's parts. */
function readParts(parts: unknown, streamIndex?: () => number): PartsView {
  let text = "";
  const calls: Json[] = [];
  if (!Array.isArray(parts)) return { text, calls };
  for (const raw of parts) {
    const p = (raw ?? {}) as { text?: unknown; thought?: unknown; functionCall?: { name?: unknown; args?: unknown }; thoughtSignature?: unknown };
    if (typeof p.text === "string" && p.thought !== true) text += p.text;
    if (p.functionCall != null && typeof p.functionCall.name === "string") {
      const call: Json = {
        id: toolCallId(),
        type: "function",
        function: { name: p.functionCall.name, arguments: JSON.stringify(p.functionCall.args ?? {}) },
      };
      if (streamIndex !== undefined) call.index = streamIndex();
      // Gemini 3 needs the signature back with the call; Google's own OpenAI endpoint carries it here too.
      if (typeof p.thoughtSignature === "string") call.extra_content = { google: { thought_signature: p.thoughtSignature } };
      calls.push(call);
    }
  }
  return { text, calls };
}

function toolCallId(): string {
  return `call_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
}

function completionId(json: Json): string {
  return typeof json.responseId === "string" && json.responseId !== "" ? `chatcmpl-${json.responseId}` : `chatcmpl-${randomUUID().replace(/-/g, "")}`;
}

/** Seconds since the epoch: Vertex's createTime when given (the Gemini API sends none). */
function createdOf(json: Json): number {
  const at = typeof json.createTime === "string" ? Date.parse(json.createTime) : NaN;
  return Math.floor((Number.isNaN(at) ? Date.now() : at) / 1000);
}

function modelOf(json: Json, model: string): string {
  return typeof json.modelVersion === "string" && json.modelVersion !== "" ? json.modelVersion : model;
}

/** An OpenAI chat.completion for a GenerateContentResponse. */
export function fromGenerateContent(upstream: unknown, model: string): Json {
  const json = (upstream ?? {}) as Json;
  const candidates = Array.isArray(json.candidates) ? (json.candidates as Candidate[]) : [];
  const blocked = (json.promptFeedback as { blockReason?: unknown } | undefined)?.blockReason;
  const choices = candidates.map((c, i) => {
    const { text, calls } = readParts(c.content?.parts);
    const finish = finishReason(c.finishReason, calls.length > 0) ?? (calls.length > 0 ? "tool_calls" : "stop");
    const message: Json = { role: "assistant", content: text !== "" || (calls.length === 0 && finish !== "content_filter") ? text : null, refusal: null };
    if (calls.length > 0) message.tool_calls = calls;
    return { index: typeof c.index === "number" ? c.index : i, message, logprobs: null, finish_reason: finish };
  });
  if (choices.length === 0) {
    // No candidates: the prompt itself was blocked.
    choices.push({ index: 0, message: { role: "assistant", content: null, refusal: null }, logprobs: null, finish_reason: blocked !== undefined ? "content_filter" : "stop" });
  }
  const out: Json = { id: completionId(json), object: "chat.completion", created: createdOf(json), model: modelOf(json, model), choices };
  const usage = openaiUsage(json.usageMetadata);
  if (usage !== undefined) out.usage = usage;
  return out;
}

// ---------------------------------------------------------------------------
// Streams: SSE of GenerateContentResponse -> chat.completion.chunk
// ---------------------------------------------------------------------------

/**
 * Translates `streamGenerateContent?alt=sse`: SSE events (runtime/providers/sse.ts,
 * bounded, each byte scanned once) whose data is a GenerateContentResponse, into chunks.
 */
export class GeminiStreamTranslator implements StreamTranslator {
  readonly #sse: SseDecoder;
  #id: string | undefined;
  #created: number | undefined;
  #model: string;
  /** Candidates that have had their opening chunk (role) / their finish chunk. */
  #opened = new Set<number>();
  #finished = new Set<number>();
  /** Tool calls so far, per candidate (OpenAI's tool_calls[].index). */
  #calls = new Map<number, number>();
  #blocked = false;

  constructor(model: string, maxEventBytes?: number) {
    this.#model = model;
    this.#sse = new SseDecoder(maxEventBytes);
  }

  push(bytes: Buffer): Translated {
    return this.#read(this.#sse.push(bytes));
  }

  end(): Translated & { complete: boolean } {
    const t = this.#read(this.#sse.end());
    const complete = t.error === undefined && (this.#blocked || (this.#finished.size > 0 && [...this.#opened].every((i) => this.#finished.has(i))));
    return { ...t, complete };
  }

  #read(events: SseEvent[]): Translated {
    const out: Translated = { chunks: [] };
    for (const { data, hasData } of events) if (hasData) this.#dispatch(data, out);
    return out;
  }

  #dispatch(data: string, out: Translated): void {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return; // not JSON (or cut off at the end: end() then finds no finishReason)
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) return;
    this.#event(json as Json, out);
  }

  #event(json: Json, out: Translated): void {
    if (json.error !== undefined) {
      // An error event (`{"error":{"code":503,"status":"UNAVAILABLE",…}}`), read as the same body over HTTP.
      if (out.error === undefined) Object.assign(out, streamError(classifyGoogle(200, {}, JSON.stringify(json))));
      return;
    }
    this.#id ??= completionId(json);
    this.#created ??= createdOf(json);
    if (typeof json.modelVersion === "string" && json.modelVersion !== "") this.#model = json.modelVersion;
    const usage = usageOf(json.usageMetadata);
    if (usage !== undefined) out.usage = usage;
    const chunk = (index: number, delta: Json, finish: string | null) => ({
      id: this.#id,
      object: "chat.completion.chunk",
      created: this.#created,
      model: this.#model,
      choices: [{ index, delta, logprobs: null, finish_reason: finish }],
    });

    const candidates = Array.isArray(json.candidates) ? (json.candidates as Candidate[]) : [];
    if (candidates.length === 0 && (json.promptFeedback as { blockReason?: unknown } | undefined)?.blockReason !== undefined && !this.#blocked) {
      this.#blocked = true;
      if (!this.#opened.has(0)) out.chunks.push(chunk(0, { role: "assistant", content: "" }, null));
      this.#opened.add(0);
      this.#finished.add(0);
      out.chunks.push(chunk(0, {}, "content_filter"));
      return;
    }
    candidates.forEach((c, position) => {
      const index = typeof c.index === "number" ? c.index : position;
      if (this.#finished.has(index)) return;
      const { text, calls } = readParts(c.content?.parts, () => {
        const n = this.#calls.get(index) ?? 0;
        this.#calls.set(index, n + 1);
        return n;
      });
      const delta: Json = {};
      if (!this.#opened.has(index)) {
        this.#opened.add(index);
        delta.role = "assistant";
        delta.content = text;
      } else if (text !== "") {
        delta.content = text;
      }
      if (calls.length > 0) delta.tool_calls = calls;
      if (Object.keys(delta).length > 0) out.chunks.push(chunk(index, delta, null));
      const finish = finishReason(c.finishReason, (this.#calls.get(index) ?? 0) > 0);
      if (finish !== null) {
        this.#finished.add(index);
        out.chunks.push(chunk(index, {}, finish));
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Embeddings: OpenAI embeddings <-> batchEmbedContents
// ---------------------------------------------------------------------------

/** The texts of an OpenAI embeddings `input`; token arrays cannot be sent to Google. */
export function embeddingInputs(body: Json): string[] {
  const input = body.input;
  if (typeof input === "string") return [input];
  if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === "string")) return input as string[];
  throw badRequest("Google embedding models take 'input' as a string or an array of strings (not tokens).", "invalid_value", "input");
}

/** OpenAI's embedding list for vectors in input order. */
export function embeddingList(vectors: number[][], body: Json, model: string, promptTokens: number): Json {
  const base64 = body.encoding_format === "base64";
  return {
    object: "list",
    data: vectors.map((v, index) => ({
      object: "embedding",
      index,
      embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v,
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

// ---------------------------------------------------------------------------
// Adapters
// ---------------------------------------------------------------------------

/** What differs between the Gemini API and Vertex AI: where a model's methods live, how to authenticate, embeddings. */
export interface GoogleWire {
  /** Path (and query) of `method` (`generateContent`, ...) of `model` under the account. */
  methodPath(account: AccountContext, model: string, method: string): string;
  auth(apiKey: string | null): Record<string, string>;
  embeddings: {
    method: string;
    body(json: Json, model: string): Json;
    response(json: unknown, req: InboundRequest, model: string): unknown;
    usage(json: unknown): Usage | undefined;
  };
}

/** An adapter over a Google wire: chat (JSON and SSE) and embeddings. */
export function googleAdapter(wire: GoogleWire): Adapter {
  return {
    format: "gemini",
    supports: (endpoint: Endpoint) => endpoint === "chat" || endpoint === "embeddings" || endpoint === "generate" || endpoint === "count_tokens",
    request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
      const headers: Record<string, string> = { "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json", "accept-encoding": "identity", ...wire.auth(account.apiKey) };
      if (req.endpoint === "embeddings") {
        return { path: wire.methodPath(account, model, wire.embeddings.method), headers, body: JSON.stringify(wire.embeddings.body(req.json, model)) };
      }
      const method = req.stream ? "streamGenerateContent?alt=sse" : "generateContent";
      return { path: wire.methodPath(account, model, method), headers, body: JSON.stringify(toGenerateContent(req.json)) };
    },
    relay(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
      // The model is in the path, not the body: the body goes as it came.
      const headers: Record<string, string> = { ...req.headers, "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json", "accept-encoding": "identity", ...wire.auth(account.apiKey) };
      const method = req.endpoint === "count_tokens" ? "countTokens" : req.stream ? "streamGenerateContent?alt=sse" : "generateContent";
      return { path: wire.methodPath(account, model, method), headers, body: req.raw };
    },
    response(json: unknown, req: InboundRequest, model: string): unknown {
      // Not Google's answer (no candidates, no block, no vectors): undefined, and the account has failed.
      if (!isObject(json)) return undefined;
      if (req.endpoint === "embeddings") return Array.isArray(json.embeddings) || Array.isArray(json.predictions) ? wire.embeddings.response(json, req, model) : undefined;
      return Array.isArray(json.candidates) || isObject(json.promptFeedback) ? fromGenerateContent(json, model) : undefined;
    },
    stream: (_req: InboundRequest, model: string, maxEventBytes?: number) => new GeminiStreamTranslator(model, maxEventBytes),
    usage(json: unknown): Usage | undefined {
      return usageOf((json as { usageMetadata?: unknown } | null)?.usageMetadata) ?? wire.embeddings.usage(json);
    },
    classify: classifyGoogle,
  };
}

/** `models/{model}` unless the name already is a resource (`models/...`, `tunedModels/...`); each segment URL-encoded. */
function geminiModelPath(model: string): string {
  const name = /^(models|tunedModels)\//.test(model) ? model : `models/${model}`;
  return name.split("/").map(encodeURIComponent).join("/");
}

/**
 * Google's Gemini API: `POST {base}/v1beta/models/{model}:generateContent`
 * (`:streamGenerateContent?alt=sse` for streams, `:batchEmbedContents` for
 * embeddings), key in `x-goog-api-key`. A base URL that already ends in an API
 * version (`.../v1beta`, `.../v1`) is used as is.
 */
const googleAdapterBase = googleAdapter({
  methodPath(account, model, method) {
    const version = /\/v1(alpha|beta)?\d*$/.test(account.basePath) ? "" : "/v1beta";
    return `${account.basePath}${version}/${geminiModelPath(model)}:${method}`;
  },
  auth: (apiKey): Record<string, string> => (apiKey === null ? {} : { "x-goog-api-key": apiKey }),
  embeddings: {
    method: "batchEmbedContents",
    body(json, model) {
      const dims = typeof json.dimensions === "number" ? { outputDimensionality: json.dimensions } : {};
      const name = /^(models|tunedModels)\//.test(model) ? model : `models/${model}`;
      return { requests: embeddingInputs(json).map((text) => ({ model: name, content: { parts: [{ text }] }, ...dims })) };
    },
    response(json, req, model) {
      const embeddings = (json as { embeddings?: { values?: number[] }[] } | null)?.embeddings ?? [];
      const meta = usageOf((json as { usageMetadata?: unknown } | null)?.usageMetadata);
      return embeddingList(embeddings.map((e) => e?.values ?? []), req.json, model, meta?.input ?? 0);
    },
    // batchEmbedContents reports no token counts.
    usage: () => undefined,
  },
});

export const geminiAdapter: Adapter = {
  ...googleAdapterBase,
  listModels(account: AccountContext): UpstreamRequest {
    const version = /\/v1(alpha|beta)?\d*$/.test(account.basePath) ? "" : "/v1beta";
    return { method: "GET", path: `${account.basePath}${version}/models?pageSize=1000`, headers: account.apiKey === null ? {} : { "x-goog-api-key": account.apiKey }, body: "" };
  },
  modelIds: (json) => idsOf((json as { models?: unknown } | null)?.models, "name").map((n) => n.replace(/^models\//, "")),
};
