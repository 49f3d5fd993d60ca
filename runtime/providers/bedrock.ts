import { randomUUID } from "node:crypto";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { badRequest } from "../errors.ts";
import type { AccountContext, Adapter, Endpoint, InboundRequest, StreamTranslator, Translated, UpstreamRequest, Usage } from "./adapter.ts";
import { classifyBedrock, streamError } from "./classify.ts";
import { DEFAULT_MAX_EVENT_BYTES, EventTooLarge } from "./sse.ts";

/**
 * AWS Bedrock's Converse API (bedrock-runtime, API version 2023-09-30).
 *
 *   POST {endpoint}/model/{modelId}/converse          → JSON
 *   POST {endpoint}/model/{modelId}/converse-stream   → application/vnd.amazon.eventstream
 *   Authorization: AWS4-HMAC-SHA256 … (SigV4, signing name "bedrock")
 *
 * The model id (a foundation model id, an inference profile id or an ARN) is
 * one path label, percent-encoded like the AWS SDKs do (`:` → `%3A`, `/` →
 * `%2F`); SigV4 then encodes the path once more for the canonical request,
 * which SignatureV4 does by default.
 *
 * Credentials: the access key id is the account's `aws_access_key_id` option,
 * the secret is its API key, and `aws_session_token` (temporary credentials)
 * is sent as `x-amz-security-token`. The region (`options.region`) scopes the
 * signature; the host signed is the account's base URL's.
 *
 * Field names follow the service model (aws-sdk-js-v3 client-bedrock-runtime:
 * models_0.ts, protocols/Aws_restJson1.ts) and the Bedrock API reference
 * (Converse, ConverseStream, ConverseStreamOutput, TokenUsage, StopReason).
 */

type Json = Record<string, unknown>;

const sha256 = Hash.bind(null, "sha256");
type Message = ReturnType<EventStreamCodec["decode"]>;
type MessageHeaders = Message["headers"];

/** The path label as the AWS SDKs encode it (`encodeURIComponent`, plus `!'()*`). */
function encodeLabel(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export const bedrockAdapter: Adapter = {
  format: null,
  supports: (endpoint: Endpoint) => endpoint === "chat",

  async request(req: InboundRequest, account: AccountContext, model: string): Promise<UpstreamRequest> {
    const body = JSON.stringify(toConverse(req.json));
    const path = `${account.basePath}/model/${encodeLabel(model)}/${req.stream ? "converse-stream" : "converse"}`;
    const accessKeyId = account.options.aws_access_key_id;
    if (accessKeyId === undefined || accessKeyId === "" || account.apiKey === null) {
      // Start-up resolves both; this only guards a hand-built context.
      throw new Error("a Bedrock account needs an AWS access key id and secret access key");
    }
    const url = new URL(account.baseUrl);
    const signer = new SignatureV4({
      service: "bedrock",
      region: account.options.region || "us-east-1",
      credentials: { accessKeyId, secretAccessKey: account.apiKey, sessionToken: account.options.aws_session_token || undefined },
      sha256,
    });
    const signed = await signer.sign({
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === "" ? undefined : Number(url.port),
      path,
      query: {},
      headers: {
        host: url.host,
        "content-type": "application/json",
        accept: req.stream ? "application/vnd.amazon.eventstream" : "application/json",
      },
      body,
    });
    // Not signed: the encoding asked for does not change what is sent.
    return { path, headers: { ...signed.headers, "accept-encoding": "identity" }, body };
  },

  response(json: unknown, _req: InboundRequest, model: string): unknown {
    return fromConverse(json, model);
  },

  stream(_req: InboundRequest, model: string, maxEventBytes?: number): StreamTranslator {
    return new ConverseStreamTranslator(model, maxEventBytes);
  },

  usage(json: unknown): Usage | undefined {
    return converseUsage((json as { usage?: unknown } | null | undefined)?.usage);
  },

  classify: classifyBedrock,
};

// ---------------------------------------------------------------------------
// Request: OpenAI chat → Converse
// ---------------------------------------------------------------------------

const IMAGE_FORMATS: Record<string, string> = { "image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp" };
const DOCUMENT_FORMATS: Record<string, string> = {
  "application/pdf": "pdf",
  "text/csv": "csv",
  "application/msword": "doc",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
  "application/vnd.ms-excel": "xls",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
  "text/html": "html",
  "text/plain": "txt",
  "text/markdown": "md",
};

interface ConverseMessage {
  role: "user" | "assistant";
  content: Json[];
}

/** The Converse request body for an OpenAI chat completion request. */
export function toConverse(body: Json): Json {
  if (typeof body.n === "number" && body.n > 1) throw badRequest("Bedrock returns one choice per request; 'n' must be 1.", "unsupported_parameter", "n");
  if (!Array.isArray(body.messages)) throw badRequest("'messages' must be an array.", "invalid_type", "messages");
  const system: Json[] = [];
  const messages: ConverseMessage[] = [];
  const add = (role: "user" | "assistant", blocks: Json[]) => {
    if (blocks.length === 0) return;
    const last = messages.at(-1);
    // Converse wants roles to alternate: consecutive turns of one role become one message.
    if (last !== undefined && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  let toolBlocks = false;
  body.messages.forEach((m: unknown, i: number) => {
    const msg = (m ?? {}) as Json;
    const at = `messages[${i}]`;
    switch (msg.role) {
      case "system":
      case "developer":
        for (const text of texts(msg.content, at)) system.push({ text });
        break;
      case "user":
        add("user", userBlocks(msg.content, at));
        break;
      case "assistant": {
        const blocks: Json[] = texts(msg.content, at).map((text) => ({ text }));
        const calls = Array.isArray(msg.tool_calls) ? (msg.tool_calls as Json[]) : [];
        calls.forEach((c, j) => {
          const fn = (c.function ?? {}) as Json;
          blocks.push({ toolUse: { toolUseId: String(c.id ?? ""), name: String(fn.name ?? ""), input: parseArguments(fn.arguments, `${at}.tool_calls[${j}].function.arguments`) } });
          toolBlocks = true;
        });
        add("assistant", blocks);
        break;
      }
      case "tool": {
        const content = texts(msg.content, at).map((text) => ({ text }));
        add("user", [{ toolResult: { toolUseId: String(msg.tool_call_id ?? ""), content } }]);
        toolBlocks = true;
        break;
      }
      default:
        throw badRequest(`Bedrock cannot take a message with role '${String(msg.role)}'.`, "invalid_value", `${at}.role`);
    }
  });

  const out: Json = { messages };
  if (system.length > 0) out.system = system;

  const inference: Json = {};
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === "number") inference.maxTokens = maxTokens;
  if (typeof body.temperature === "number") inference.temperature = body.temperature;
  if (typeof body.top_p === "number") inference.topP = body.top_p;
  if (typeof body.stop === "string") inference.stopSequences = [body.stop];
  else if (Array.isArray(body.stop) && body.stop.length > 0) inference.stopSequences = body.stop;
  if (Object.keys(inference).length > 0) out.inferenceConfig = inference;

  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  const choice = body.tool_choice;
  // Converse has no "none": without tool blocks in the history the tools are left out; with them
  // they must stay (Bedrock refuses toolUse/toolResult blocks without a toolConfig), choice left to the model.
  if (tools.length > 0 && !(choice === "none" && !toolBlocks)) {
    const specs = tools.map((t, i) => {
      if (t.type !== "function") throw badRequest(`Bedrock takes only function tools, not '${String(t.type)}'.`, "invalid_value", `tools[${i}].type`);
      const fn = (t.function ?? {}) as Json;
      const spec: Json = { name: fn.name, inputSchema: { json: fn.parameters ?? { type: "object", properties: {} } } };
      if (typeof fn.description === "string" && fn.description !== "") spec.description = fn.description;
      return { toolSpec: spec };
    });
    const toolConfig: Json = { tools: specs };
    if (choice === "auto") toolConfig.toolChoice = { auto: {} };
    else if (choice === "required") toolConfig.toolChoice = { any: {} };
    else if (choice !== null && typeof choice === "object") {
      const name = ((choice as Json).function as Json | undefined)?.name;
      if (typeof name === "string") toolConfig.toolChoice = { tool: { name } };
    }
    out.toolConfig = toolConfig;
  }
  return out;
}

/** Bedrock refuses text blocks that are empty or only whitespace ("… is blank"). */
function blank(text: string): boolean {
  return text.trim() === "";
}

/** The texts of a message's content: a string, or text (and refusal) parts. Blank texts are dropped: Bedrock refuses them. */
function texts(content: unknown, at: string): string[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return blank(content) ? [] : [content];
  if (!Array.isArray(content)) throw badRequest(`${at}.content must be a string or an array of parts.`, "invalid_type", `${at}.content`);
  const out: string[] = [];
  content.forEach((p: unknown, j: number) => {
    const part = (p ?? {}) as Json;
    if (part.type === "text" && typeof part.text === "string") {
      if (!blank(part.text)) out.push(part.text);
    } else if (part.type === "refusal" && typeof part.refusal === "string") {
      if (!blank(part.refusal)) out.push(part.refusal);
    } else {
      throw badRequest(`Bedrock takes only text here, not a '${String(part.type)}' part.`, "invalid_value", `${at}.content[${j}]`);
    }
  });
  return out;
}

/** A user message's content blocks: text, images and documents (as data: URLs). */
function userBlocks(content: unknown, at: string): Json[] {
  if (typeof content === "string") return blank(content) ? [] : [{ text: content }];
  if (!Array.isArray(content)) throw badRequest(`${at}.content must be a string or an array of parts.`, "invalid_type", `${at}.content`);
  const blocks: Json[] = [];
  content.forEach((p: unknown, j: number) => {
    const part = (p ?? {}) as Json;
    const param = `${at}.content[${j}]`;
    if (part.type === "text") {
      if (typeof part.text === "string" && !blank(part.text)) blocks.push({ text: part.text });
    } else if (part.type === "image_url") {
      const url = String(((part.image_url ?? {}) as Json).url ?? "");
      const data = dataUrl(url);
      const format = data && IMAGE_FORMATS[data.mime];
      if (!data || !format) throw badRequest("Bedrock takes images only inline, as data: URLs of PNG, JPEG, GIF or WebP (it fetches no URLs).", "invalid_image", param);
      blocks.push({ image: { format, source: { bytes: data.base64 } } });
    } else if (part.type === "file") {
      const file = (part.file ?? {}) as Json;
      const data = dataUrl(String(file.file_data ?? ""));
      const format = data && DOCUMENT_FORMATS[data.mime];
      if (!data || !format) throw badRequest("Bedrock takes files only inline (file_data as a data: URL) in pdf, csv, doc, docx, xls, xlsx, html, txt or md.", "invalid_file", param);
      blocks.push({ document: { format, name: documentName(file.filename, blocks.length), source: { bytes: data.base64 } } });
    } else {
      throw badRequest(`Bedrock cannot take a '${String(part.type)}' content part.`, "invalid_value", param);
    }
  });
  return blocks;
}

/** `data:<mime>;base64,<data>` → its parts; Converse wants the bytes base64 in JSON, as they came. */
function dataUrl(url: string): { mime: string; base64: string } | undefined {
  const m = /^data:([^;,]+)((?:;[^;,]+)*);base64,(.*)$/s.exec(url);
  if (m === null) return undefined;
  return { mime: m[1].toLowerCase(), base64: m[3] };
}

/** Document names: letters, digits, single spaces, hyphens, parentheses and square brackets. */
function documentName(filename: unknown, n: number): string {
  const base = typeof filename === "string" ? filename.replace(/\.[^.]*$/, "") : "";
  const clean = base.replace(/[^A-Za-z0-9\s\-()[\]]/g, "-").replace(/\s+/g, " ").trim();
  return clean === "" ? `document-${n + 1}` : clean;
}

/** Tool call arguments: Converse carries them as a JSON document, not a string. */
function parseArguments(args: unknown, param: string): unknown {
  if (args === undefined || args === null || args === "") return {};
  if (typeof args !== "string") return args;
  try {
    return JSON.parse(args);
  } catch {
    throw badRequest("Tool call arguments must be valid JSON to send to Bedrock.", "invalid_value", param);
  }
}

// ---------------------------------------------------------------------------
// Response: Converse → OpenAI chat.completion
// ---------------------------------------------------------------------------

const FINISH: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  content_filtered: "content_filter",
  guardrail_intervened: "content_filter",
};

function finishReason(stopReason: unknown): string {
  return FINISH[String(stopReason)] ?? "stop";
}

/**
 * Converse's usage as the gateway counts it. Bedrock reports `inputTokens`
 * without the tokens read from or written to the prompt cache; OpenAI's
 * `prompt_tokens` includes them, with the reads as `cached_tokens`.
 */
export function converseUsage(u: unknown): Usage | undefined {
  if (u === null || typeof u !== "object") return undefined;
  const usage = u as { inputTokens?: unknown; outputTokens?: unknown; cacheReadInputTokens?: unknown; cacheWriteInputTokens?: unknown };
  if (typeof usage.inputTokens !== "number") return undefined;
  const count = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const read = count(usage.cacheReadInputTokens);
  const written = count(usage.cacheWriteInputTokens);
  return { input: usage.inputTokens + read + written, output: count(usage.outputTokens), cached: read, cacheWrite: written };
}

function openaiUsage(u: Usage): Json {
  return { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output, prompt_tokens_details: { cached_tokens: u.cached } };
}

/** A Converse response as an OpenAI chat completion. */
export function fromConverse(json: unknown, model: string): Json {
  const body = json as { output?: { message?: { content?: unknown } }; stopReason?: unknown; usage?: unknown } | null | undefined;
  if (body === null || typeof body !== "object" || typeof body.output?.message !== "object") {
    throw new Error("Bedrock answered 200 with a body that is not a Converse response");
  }
  const blocks = Array.isArray(body.output.message.content) ? (body.output.message.content as Json[]) : [];
  let text = "";
  const toolCalls: Json[] = [];
  for (const b of blocks) {
    if (typeof b.text === "string") text += b.text;
    else if (b.toolUse !== null && typeof b.toolUse === "object") {
      const t = b.toolUse as Json;
      toolCalls.push({ id: t.toolUseId, type: "function", function: { name: t.name, arguments: JSON.stringify(t.input ?? {}) } });
    }
    // reasoningContent, citationsContent and the like have no place in a chat completion.
  }
  const message: Json = { role: "assistant", content: text === "" && toolCalls.length > 0 ? null : text, refusal: null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  const out: Json = {
    id: `chatcmpl-${randomUUID()}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(body.stopReason) }],
  };
  const usage = converseUsage(body.usage);
  if (usage !== undefined) out.usage = openaiUsage(usage);
  return out;
}

// ---------------------------------------------------------------------------
// Stream: ConverseStream's event stream → OpenAI chat.completion.chunk
// ---------------------------------------------------------------------------

/** Prelude (total length, headers length, prelude CRC) and message CRC. */
const MIN_FRAME = 16;

function header(headers: MessageHeaders, name: string): string | undefined {
  const h = headers[name];
  return h !== undefined && typeof h.value === "string" ? h.value : undefined;
}

/**
 * Decodes `application/vnd.amazon.eventstream` frames (each one length-
 * prefixed; EventStreamCodec checks both CRCs and parses the headers) and
 * turns the Converse events into chunks:
 *
 *   messageStart       → delta {role: "assistant", content: ""}, sent with the first delta after it
 *   contentBlockStart  → (toolUse) delta {tool_calls: [{index, id, type, function: {name, arguments: ""}}]}
 *   contentBlockDelta  → delta {content} | {tool_calls: [{index, function: {arguments}}]}
 *   messageStop        → delta {}, finish_reason
 *   metadata           → usage (the gateway sends the usage chunk itself)
 *   exception / error  → error
 *
 * The stream is complete once messageStop and metadata (always Bedrock's
 * last event) have both arrived, with no partial frame left.
 */
export class ConverseStreamTranslator implements StreamTranslator {
  readonly #codec = new EventStreamCodec(toUtf8, fromUtf8);
  readonly #id = `chatcmpl-${randomUUID()}`;
  readonly #created = Math.floor(Date.now() / 1000);
  /** Bytes of the frame not yet whole, as the slices they came in (joined once the frame is complete). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #started = false;
  /** contentBlockIndex → index in OpenAI's tool_calls. */
  readonly #tools = new Map<number, number>();
  #stopped = false;
  #metadata = false;
  #failed = false;

  constructor(
    private readonly model: string,
    /** One frame larger than this is an error (Bedrock's own limit is 16 MiB of payload; a chat event is far smaller). */
    private readonly maxFrameBytes = DEFAULT_MAX_EVENT_BYTES,
  ) {}

  push(bytes: Buffer): Translated {
    const out: Translated = { chunks: [] };
    if (this.#failed || bytes.length === 0) return out;
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    while (this.#pendingBytes >= 4) {
      if (this.#pending[0].length < 4) this.#pending = [Buffer.concat(this.#pending)];
      const total = this.#pending[0].readUInt32BE(0);
      if (total < MIN_FRAME) return this.#fail(out, `malformed event stream (a frame of ${total} bytes)`);
      if (total > this.maxFrameBytes) {
        this.#failed = true;
        this.#pending = [];
        this.#pendingBytes = 0;
        throw new EventTooLarge(this.maxFrameBytes);
      }
      // Joined only once the whole frame is here: a large frame costs its size once, not once per read.
      if (this.#pendingBytes < total) break;
      const all = this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending);
      const frame = all.subarray(0, total);
      this.#pending = total < all.length ? [all.subarray(total)] : [];
      this.#pendingBytes -= total;
      let message: Message;
      try {
        message = this.#codec.decode(frame);
      } catch (e) {
        return this.#fail(out, `malformed event stream (${(e as Error).message})`);
      }
      this.#message(message, out);
      if (out.error !== undefined) return this.#fail(out, out.error);
    }
    return out;
  }

  end(): Translated & { complete: boolean } {
    return { chunks: [], complete: !this.#failed && this.#stopped && this.#metadata && this.#pendingBytes === 0 };
  }

  /** A frame that cannot be read is the upstream failing (server_error); an exception frame says what it was. */
  #fail(out: Translated, error: string): Translated {
    this.#failed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (out.errorType === undefined) Object.assign(out, streamError({ errorType: "server_error", message: error }));
    else out.error = error;
    return out;
  }

  #chunk(delta: Json, finish: string | null = null): Json {
    return { id: this.#id, object: "chat.completion.chunk", created: this.#created, model: this.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
  }

  /** The role chunk, once, before anything else. */
  #start(out: Translated): void {
    if (this.#started) return;
    this.#started = true;
    out.chunks.push(this.#chunk({ role: "assistant", content: "" }));
  }

  #toolIndex(block: number): number {
    let index = this.#tools.get(block);
    if (index === undefined) this.#tools.set(block, (index = this.#tools.size));
    return index;
  }

  #message(message: Message, out: Translated): void {
    const type = header(message.headers, ":message-type");
    const text = toUtf8(message.body);
    if (type === "exception") {
      // throttlingException, modelStreamErrorException, …: classified as the same exception over HTTP.
      const exception = header(message.headers, ":exception-type") ?? "exception";
      const c = classifyBedrock(200, { "x-amzn-errortype": exception }, text);
      Object.assign(out, streamError({ ...c, message: `${exception}: ${c.message}` }));
      return;
    }
    if (type === "error") {
      const code = header(message.headers, ":error-code") ?? "error";
      const c = classifyBedrock(200, { "x-amzn-errortype": code }, text);
      Object.assign(out, streamError({ ...c, message: `${code}: ${header(message.headers, ":error-message") ?? c.message}` }));
      return;
    }
    if (type !== "event") return;
    let payload: Json;
    try {
      payload = (JSON.parse(text) ?? {}) as Json;
    } catch {
      out.error = "malformed event stream (an event whose payload is not JSON)";
      return;
    }
    switch (header(message.headers, ":event-type")) {
      case "messageStart":
        // The role chunk waits for the first real delta: a stream that opens and then throws
        // (throttlingException right after messageStart) has sent nothing yet and can fail over.
        break;
      case "contentBlockStart": {
        const toolUse = ((payload.start ?? {}) as Json).toolUse as Json | undefined;
        if (toolUse === undefined || toolUse === null) break;
        this.#start(out);
        const index = this.#toolIndex(Number(payload.contentBlockIndex));
        out.chunks.push(this.#chunk({ tool_calls: [{ index, id: toolUse.toolUseId, type: "function", function: { name: toolUse.name, arguments: "" } }] }));
        break;
      }
      case "contentBlockDelta": {
        const delta = (payload.delta ?? {}) as Json;
        if (typeof delta.text === "string") {
          this.#start(out);
          if (delta.text !== "") out.chunks.push(this.#chunk({ content: delta.text }));
        } else if (delta.toolUse !== null && typeof delta.toolUse === "object") {
          this.#start(out);
          const input = (delta.toolUse as Json).input;
          const index = this.#toolIndex(Number(payload.contentBlockIndex));
          out.chunks.push(this.#chunk({ tool_calls: [{ index, function: { arguments: typeof input === "string" ? input : "" } }] }));
        }
        break;
      }
      case "messageStop":
        this.#start(out);
        this.#stopped = true;
        out.chunks.push(this.#chunk({}, finishReason(payload.stopReason)));
        break;
      case "metadata": {
        this.#metadata = true;
        const usage = converseUsage(payload.usage);
        if (usage !== undefined) out.usage = usage;
        break;
      }
      default:
      // contentBlockStop, and events this gateway does not know: nothing to send.
    }
  }
}
