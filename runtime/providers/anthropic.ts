// Anthropic's Messages API (POST /v1/messages, `anthropic-version: 2023-06-01`)
// behind OpenAI's chat completions. Field names follow the Messages API as the
// `@anthropic-ai/sdk` type definitions spell them (resources/messages/messages.ts,
// resources/shared.ts `ErrorResponse`) and Anthropic's streaming and error docs.
//
//   OpenAI chat request ─► request()  ─► POST {base}/v1/messages
//   Anthropic Message   ─► response() ─► chat.completion
//   Anthropic SSE       ─► stream()   ─► chat.completion.chunk objects
//
// The version is pinned to 2023-06-01 on purpose: 2026-10-21 (what SDK 1.x
// sends) rejects `temperature`, `top_p` and `top_k`, which OpenAI callers send.

import { DEFAULT_MAX_OUTPUT_TOKENS } from "../governance.ts";
import { Carry } from "../surfaces/carry.ts";
import { idsOf } from "./openai.ts";
import type { AccountContext, Adapter, Endpoint, InboundRequest, StreamTranslator, Translated, UpstreamRequest, Usage } from "./adapter.ts";
import { classifyAnthropic, streamError, type Classified } from "./classify.ts";
import { SseDecoder, type SseEvent } from "./sse.ts";
import { isObject, type Json } from "../json.ts";

export const ANTHROPIC_VERSION = "2023-06-01";

// ---------------------------------------------------------------------------
// Request: OpenAI chat completion parameters → Anthropic MessageCreateParams
// ---------------------------------------------------------------------------

/** An Anthropic content block as sent (TextBlockParam, ImageBlockParam, ToolUseBlockParam, ToolResultBlockParam, DocumentBlockParam). */
type Block = { type: string; [k: string]: unknown };
interface AnthropicMessage {
  role: "user" | "assistant";
  content: string | Block[];
}

/** The text of an OpenAI content value: a string, or parts of which the text (and refusal) parts count. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => (isObject(p) ? (typeof p.text === "string" ? p.text : typeof p.refusal === "string" ? p.refusal : "") : typeof p === "string" ? p : ""))
    .join("");
}

/** `data:<media type>;base64,<data>` split up; undefined for any other URL. */
function dataUrl(url: string): { mediaType: string; data: string } | undefined {
  const m = /^data:([^;,]+)(?:;[^;,]*)*;base64,(.*)$/s.exec(url);
  if (m === null) return undefined;
  // Anthropic takes image/jpeg, png, gif and webp; `image/jpg` is a common misspelling of the first.
  const mediaType = m[1].toLowerCase() === "image/jpg" ? "image/jpeg" : m[1].toLowerCase();
  return { mediaType, data: m[2] };
}

/** One OpenAI user content part as an Anthropic block; undefined for parts Anthropic has no form for (audio). */
function userBlock(part: unknown): Block | undefined {
  if (typeof part === "string") return part === "" ? undefined : { type: "text", text: part };
  if (!isObject(part)) return undefined;
  if (part.type === "text" && typeof part.text === "string") return part.text === "" ? undefined : { type: "text", text: part.text };
  if (part.type === "image_url") {
    const ref = part.image_url;
    const url = typeof ref === "string" ? ref : isObject(ref) && typeof ref.url === "string" ? ref.url : "";
    const inline = dataUrl(url);
    return { type: "image", source: inline ? { type: "base64", media_type: inline.mediaType, data: inline.data } : { type: "url", url } };
  }
  if (part.type === "file" && isObject(part.file) && typeof part.file.file_data === "string") {
    const inline = dataUrl(part.file.file_data);
    if (inline?.mediaType === "application/pdf") return { type: "document", source: { type: "base64", media_type: inline.mediaType, data: inline.data } };
  }
  return undefined;
}

function userContent(content: unknown): string | Block[] {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map(userBlock).filter((b): b is Block => b !== undefined);
}

/** Tool call arguments (a JSON text) as the `input` object Anthropic takes; `{}` when they are not a JSON object. */
function toolInput(args: unknown): Json {
  if (isObject(args)) return args;
  if (typeof args !== "string" || args.trim() === "") return {};
  try {
    const parsed: unknown = JSON.parse(args);
    return isObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

function assistantContent(m: Json): string | Block[] {
  const text = textOf(m.content);
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls.filter(isObject) : [];
  if (calls.length === 0) return text;
  const blocks: Block[] = text === "" ? [] : [{ type: "text", text }];
  for (const c of calls) {
    const fn = isObject(c.function) ? c.function : {};
    blocks.push({ type: "tool_use", id: String(c.id ?? ""), name: String(fn.name ?? ""), input: toolInput(fn.arguments) });
  }
  return blocks;
}

const asBlocks = (content: string | Block[]): Block[] => (typeof content === "string" ? (content === "" ? [] : [{ type: "text", text: content }]) : content);
const isEmpty = (content: string | Block[]) => (typeof content === "string" ? content === "" : content.length === 0);

/**
 * OpenAI messages as Anthropic's: system and developer messages lifted into
 * `system`, tool results into user `tool_result` blocks, and consecutive turns
 * of one role merged (Anthropic alternates user and assistant).
 */
export function toAnthropicMessages(messages: unknown): { system: string | undefined; messages: AnthropicMessage[] } {
  const system: string[] = [];
  const out: AnthropicMessage[] = [];
  const add = (role: "user" | "assistant", content: string | Block[]) => {
    if (isEmpty(content)) return;
    const last = out.at(-1);
    if (last?.role === role) last.content = [...asBlocks(last.content), ...asBlocks(content)];
    else out.push({ role, content });
  };
  for (const m of Array.isArray(messages) ? messages : []) {
    if (!isObject(m)) continue;
    switch (m.role) {
      case "system":
      case "developer": {
        const text = textOf(m.content);
        if (text !== "") system.push(text);
        break;
      }
      case "user":
        add("user", userContent(m.content));
        break;
      case "assistant":
        add("assistant", assistantContent(m));
        break;
      case "tool": {
        const result: Block = { type: "tool_result", tool_use_id: String(m.tool_call_id ?? "") };
        const text = textOf(m.content);
        if (text !== "") result.content = text;
        add("user", [result]);
        break;
      }
    }
  }
  return { system: system.length > 0 ? system.join("\n\n") : undefined, messages: out };
}

function toolChoice(choice: unknown, parallel: unknown): Json | undefined {
  let out: Json | undefined;
  if (choice === "auto") out = { type: "auto" };
  else if (choice === "none") return { type: "none" };
  else if (choice === "required") out = { type: "any" };
  else if (isObject(choice) && choice.type === "function" && isObject(choice.function) && typeof choice.function.name === "string") {
    out = { type: "tool", name: choice.function.name };
  }
  if (parallel === false) out = { ...(out ?? { type: "auto" }), disable_parallel_tool_use: true };
  return out;
}

/**
 * Chat fields and what becomes of them (beyond messages, tools and sampling, mapped above and below):
 *
 *   response_format json_schema      output_config.format (structured outputs)
 *   reasoning_effort                 output_config.effort (minimal → low)
 *   user / safety_identifier         metadata.user_id
 *   store, metadata, prompt_cache_key, service_tier,    dropped, named: about OpenAI's own
 *   stream_options, n = 1, seed                         state and billing, or no-ops here
 *   n > 1, logprobs, top_logprobs, frequency_penalty,   refused (400 unsupported_parameter)
 *   presence_penalty, logit_bias, response_format       unless the route sets
 *   json_object, modalities, audio, prediction,         drop_unsupported_params
 *   web_search_options, verbosity, functions
 */
const REFUSED = ["logprobs", "top_logprobs", "frequency_penalty", "presence_penalty", "logit_bias", "modalities", "audio", "prediction", "web_search_options", "verbosity", "functions", "function_call"];
const NOTED = ["store", "metadata", "prompt_cache_key", "service_tier", "seed"];

function carryExtras(json: Json, body: Json, carry: Carry): void {
  for (const key of REFUSED) {
    const v = json[key];
    // Defaults that ask for nothing are no loss.
    if (v === undefined || v === null || v === false || v === 0) continue;
    carry.refuse(key, "Anthropic's Messages API has no such setting");
  }
  for (const key of NOTED) if (json[key] !== undefined && json[key] !== null && json[key] !== false) carry.note(key);
  if (typeof json.n === "number" && json.n > 1) carry.refuse("n", "Anthropic returns one choice per request");
  const format = isObject(json.response_format) ? json.response_format : undefined;
  const config: Json = {};
  if (format?.type === "json_schema" && isObject(format.json_schema)) config.format = { type: "json_schema", schema: format.json_schema.schema };
  else if (format !== undefined && format.type !== "text") carry.refuse("response_format", `Anthropic has no ${String(format.type)} mode; send a json_schema`);
  if (typeof json.reasoning_effort === "string") config.effort = json.reasoning_effort === "minimal" ? "low" : json.reasoning_effort;
  if (Object.keys(config).length > 0) body.output_config = config;
  if (body.metadata === undefined && typeof json.safety_identifier === "string") body.metadata = { user_id: json.safety_identifier };
}

/** The Messages API request body for an OpenAI chat completion request; what Anthropic cannot carry is refused or named in `carry`. */
export function toAnthropicRequest(json: Json, model: string, stream: boolean, carry = new Carry("Anthropic", false)): Json {
  const { system, messages } = toAnthropicMessages(json.messages);
  const maxTokens = json.max_completion_tokens ?? json.max_tokens;
  const body: Json = { model, max_tokens: typeof maxTokens === "number" && maxTokens > 0 ? maxTokens : DEFAULT_MAX_OUTPUT_TOKENS, messages };
  if (system !== undefined) body.system = system;
  if (typeof json.temperature === "number") body.temperature = json.temperature;
  if (typeof json.top_p === "number") body.top_p = json.top_p;
  if (typeof json.stop === "string") body.stop_sequences = [json.stop];
  else if (Array.isArray(json.stop) && json.stop.length > 0) body.stop_sequences = json.stop.filter((s) => typeof s === "string");
  const tools = Array.isArray(json.tools) ? json.tools.filter((t): t is Json => isObject(t) && t.type === "function" && isObject(t.function)) : [];
  if (tools.length > 0) {
    body.tools = tools.map((t) => {
      const fn = t.function as Json;
      const tool: Json = { name: fn.name, input_schema: isObject(fn.parameters) ? fn.parameters : { type: "object", properties: {} } };
      if (typeof fn.description === "string") tool.description = fn.description;
      return tool;
    });
    const choice = toolChoice(json.tool_choice, json.parallel_tool_calls);
    if (choice !== undefined) body.tool_choice = choice;
  }
  if (typeof json.user === "string" && json.user !== "") body.metadata = { user_id: json.user };
  carryExtras(json, body, carry);
  if (stream) body.stream = true;
  return body;
}

// ---------------------------------------------------------------------------
// Response: Anthropic Message → OpenAI chat.completion
// ---------------------------------------------------------------------------

const FINISH: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  pause_turn: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
};

/** An Anthropic stop_reason as OpenAI's finish_reason. */
export function finishReason(stopReason: unknown): string {
  return FINISH[String(stopReason)] ?? "stop";
}

/** Anthropic's `usage.service_tier` in OpenAI's terms. */
const serviceTier = (usage: unknown) => (isObject(usage) && usage.service_tier === "priority" ? "priority" : "default");

/** OpenAI's `system_fingerprint` names the backend configuration: here, the wire and its version. */
const FINGERPRINT = `fp_anthropic_${ANTHROPIC_VERSION}`;

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export function usageOf(u: unknown): Usage | undefined {
  if (!isObject(u) || typeof u.input_tokens !== "number") return undefined;
  const cached = num(u.cache_read_input_tokens);
  const cacheWrite = num(u.cache_creation_input_tokens);
  return { input: u.input_tokens + cached + cacheWrite, output: num(u.output_tokens), cached, cacheWrite };
}

function openaiUsage(u: Usage): Json {
  return {
    prompt_tokens: u.input,
    completion_tokens: u.output,
    total_tokens: u.input + u.output,
    prompt_tokens_details: { cached_tokens: u.cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

/** An Anthropic Message as an OpenAI chat completion. */
export function toOpenAIResponse(json: unknown, model: string, now = Date.now()): Json {
  const msg = isObject(json) ? json : {};
  const blocks = Array.isArray(msg.content) ? msg.content.filter(isObject) : [];
  const text = blocks
    .filter((b) => b.type === "text")
    .map((b) => String(b.text ?? ""))
    .join("");
  const calls = blocks
    .filter((b) => b.type === "tool_use")
    .map((b) => ({ id: String(b.id ?? ""), type: "function", function: { name: String(b.name ?? ""), arguments: JSON.stringify(b.input ?? {}) } }));
  const message: Json = { role: "assistant", content: text === "" && calls.length > 0 ? null : text, refusal: null, annotations: [] };
  if (calls.length > 0) message.tool_calls = calls;
  return {
    id: String(msg.id ?? ""),
    object: "chat.completion",
    created: Math.floor(now / 1000),
    model: typeof msg.model === "string" ? msg.model : model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(msg.stop_reason) }],
    usage: openaiUsage(usageOf(msg.usage) ?? { input: 0, output: 0, cached: 0 }),
    service_tier: serviceTier(msg.usage),
    system_fingerprint: FINGERPRINT,
  };
}

// ---------------------------------------------------------------------------
// Streams: Anthropic SSE → chat.completion.chunk objects
// ---------------------------------------------------------------------------

class AnthropicStream implements StreamTranslator {
  readonly #sse: SseDecoder;
  readonly #created: number;
  #id = "";
  #model: string;
  #tier = "default";
  /** The role chunk waits for the first real delta, so an error right after message_start can still fail over. */
  #rolePending = false;
  #finished = false;
  #stopped = false;
  #usage: { input: number; output: number; cacheRead: number; cacheWrite: number } | undefined;
  /** Open tool_use blocks by Anthropic block index: their OpenAI tool call index, arguments so far, start input. */
  #tools = new Map<number, { index: number; args: string; input: unknown }>();
  #toolCount = 0;

  constructor(model: string, now: number, maxEventBytes?: number) {
    this.#sse = new SseDecoder(maxEventBytes);
    this.#model = model;
    this.#created = Math.floor(now / 1000);
  }

  push(bytes: Buffer): Translated {
    return this.#translate(this.#sse.push(bytes));
  }

  end(): Translated & { complete: boolean } {
    const t = this.#translate(this.#sse.end());
    return { ...t, complete: this.#stopped && t.error === undefined };
  }

  #chunk(delta: Json, finish: string | null = null): Json {
    return {
      id: this.#id,
      object: "chat.completion.chunk",
      created: this.#created,
      model: this.#model,
      service_tier: this.#tier,
      system_fingerprint: FINGERPRINT,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
  }

  #emit(chunks: Json[], delta: Json, finish: string | null = null): void {
    if (this.#rolePending) {
      this.#rolePending = false;
      chunks.push(this.#chunk({ role: "assistant", content: "", refusal: null }));
    }
    chunks.push(this.#chunk(delta, finish));
  }

  #translate(events: { event: string; data: string }[]): Translated {
    const chunks: Json[] = [];
    let usageChanged = false;
    let error: Classified | undefined;
    for (const { event, data } of events) {
      let json: Json | undefined;
      try {
        const parsed: unknown = JSON.parse(data);
        json = isObject(parsed) ? parsed : undefined;
      } catch {
        json = undefined;
      }
      const type = event !== "" ? event : String(json?.type ?? "");
      if (type === "error") {
        // `event: error` with overloaded_error, api_error, …: classified as the same body over HTTP would be.
        error = classifyAnthropic(200, {}, data);
        continue;
      }
      if (json === undefined) continue;
      switch (type) {
        case "message_start": {
          const message = isObject(json.message) ? json.message : {};
          if (typeof message.id === "string") this.#id = message.id;
          if (typeof message.model === "string") this.#model = message.model;
          this.#tier = serviceTier(message.usage);
          this.#rolePending = true;
          if (this.#mergeUsage(message.usage)) usageChanged = true;
          break;
        }
        case "content_block_start": {
          const block = isObject(json.content_block) ? json.content_block : {};
          const index = num(json.index);
          if (block.type === "text" && typeof block.text === "string" && block.text !== "") this.#emit(chunks, { content: block.text });
          if (block.type === "tool_use") {
            const tool = { index: this.#toolCount++, args: "", input: block.input };
            this.#tools.set(index, tool);
            this.#emit(chunks, { tool_calls: [{ index: tool.index, id: String(block.id ?? ""), type: "function", function: { name: String(block.name ?? ""), arguments: "" } }] });
          }
          break;
        }
        case "content_block_delta": {
          const delta = isObject(json.delta) ? json.delta : {};
          if (delta.type === "text_delta" && typeof delta.text === "string" && delta.text !== "") this.#emit(chunks, { content: delta.text });
          if (delta.type === "input_json_delta" && typeof delta.partial_json === "string" && delta.partial_json !== "") {
            const tool = this.#tools.get(num(json.index));
            if (tool !== undefined) {
              tool.args += delta.partial_json;
              this.#emit(chunks, { tool_calls: [{ index: tool.index, function: { arguments: delta.partial_json } }] });
            }
          }
          break;
        }
        case "content_block_stop": {
          const index = num(json.index);
          const tool = this.#tools.get(index);
          // A tool with no input streams no JSON: its arguments are still an object.
          if (tool !== undefined && tool.args === "") this.#emit(chunks, { tool_calls: [{ index: tool.index, function: { arguments: JSON.stringify(tool.input ?? {}) } }] });
          this.#tools.delete(index);
          break;
        }
        case "message_delta": {
          const delta = isObject(json.delta) ? json.delta : {};
          if (this.#mergeUsage(json.usage)) usageChanged = true;
          if (!this.#finished && typeof delta.stop_reason === "string") {
            this.#finished = true;
            this.#emit(chunks, {}, finishReason(delta.stop_reason));
          }
          break;
        }
        case "message_stop":
          this.#stopped = true;
          if (!this.#finished) {
            this.#finished = true;
            this.#emit(chunks, {}, "stop");
          }
          break;
        // ping, and event types added later: nothing to send.
      }
    }
    const out: Translated = { chunks };
    if (usageChanged && this.#usage !== undefined) {
      const u = this.#usage;
      out.usage = { input: u.input + u.cacheRead + u.cacheWrite, output: u.output, cached: u.cacheRead, cacheWrite: u.cacheWrite };
    }
    if (error !== undefined) Object.assign(out, streamError(error));
    return out;
  }

  /** message_start's usage, then message_delta's (cumulative; fields it leaves null keep their value). */
  #mergeUsage(u: unknown): boolean {
    if (!isObject(u)) return false;
    const prev = this.#usage ?? { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
    const pick = (v: unknown, old: number) => (typeof v === "number" ? v : old);
    this.#usage = {
      input: pick(u.input_tokens, prev.input),
      output: pick(u.output_tokens, prev.output),
      cacheRead: pick(u.cache_read_input_tokens, prev.cacheRead),
      cacheWrite: pick(u.cache_creation_input_tokens, prev.cacheWrite),
    };
    return true;
  }
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export const anthropicAdapter: Adapter = {
  format: "anthropic",
  supports: (endpoint: Endpoint) => endpoint === "chat" || endpoint === "messages" || endpoint === "count_tokens",
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: req.stream ? "text/event-stream" : "application/json",
      "anthropic-version": ANTHROPIC_VERSION,
      "accept-encoding": "identity",
    };
    if (account.apiKey !== null) headers["x-api-key"] = account.apiKey;
    const carry = new Carry("Anthropic", req.dropUnsupported === true);
    const body = JSON.stringify(toAnthropicRequest(req.json, model, req.stream, carry));
    return { path: `${account.basePath}/v1/messages`, headers, body, dropped: carry.dropped };
  },
  listModels(account: AccountContext): UpstreamRequest {
    const headers: Record<string, string> = { "anthropic-version": ANTHROPIC_VERSION };
    if (account.apiKey !== null) headers["x-api-key"] = account.apiKey;
    return { method: "GET", path: `${account.basePath}/v1/models?limit=1000`, headers, body: "" };
  },
  modelIds: (json) => idsOf((json as { data?: unknown } | null)?.data, "id"),
  relay(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
    // The caller's anthropic-version and anthropic-beta go as they came: they decide what its body means.
    const headers: Record<string, string> = { "anthropic-version": ANTHROPIC_VERSION, ...req.headers, "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json", "accept-encoding": "identity" };
    if (account.apiKey !== null) headers["x-api-key"] = account.apiKey;
    const path = `${account.basePath}/v1/messages${req.endpoint === "count_tokens" ? "/count_tokens" : ""}`;
    return { path, headers, body: req.json.model === model ? req.raw : JSON.stringify({ ...req.json, model }) };
  },
  // OpenAI's `created` needs a clock: Anthropic's answers carry no time.
  // Anything but a Message (`{"type":"message",…}`) is not an answer: undefined, and the account has failed.
  response: (json: unknown, _req: InboundRequest, model: string) => (isObject(json) && json.type === "message" ? toOpenAIResponse(json, model) : undefined),
  stream: (_req: InboundRequest, model: string, maxEventBytes?: number) => new AnthropicStream(model, Date.now(), maxEventBytes),
  usage: (json: unknown) => (isObject(json) ? usageOf(json.usage) : undefined),
  classify: classifyAnthropic,
};

/** For tests: a translator with a fixed clock. */
export function anthropicStream(model: string, now: number): StreamTranslator {
  return new AnthropicStream(model, now);
}
