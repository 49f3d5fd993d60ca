// Anthropic's Messages API in front of the same routing, budgets and failover
// (what Claude Code and the Anthropic SDK call with ANTHROPIC_BASE_URL at /anthropic).
//
//   to an Anthropic account:  body, anthropic-* headers ─► relayed as they came ─► answer relayed byte for byte
//   to any other account:     body ─► toChat() ─► adapter ─► OpenAI answer ─► AnthropicSink ─► Anthropic answer
//
// Anthropic → OpenAI chat, field by field (the capability table):
//   model, max_tokens, messages, stream, temperature, top_p     mapped
//   system (string or text blocks)                              one system message
//   stop_sequences                                              stop
//   metadata.user_id                                            user
//   tools (custom) / tool_choice (auto, any, tool, none)        tools / tool_choice, disable_parallel_tool_use → parallel_tool_calls
//   thinking {enabled, budget_tokens} | adaptive                reasoning_effort (budget <4k low, <16k medium, else high)
//   output_config.effort / .format json_schema, output_format   reasoning_effort / response_format json_schema
//   service_tier auto | standard_only                           service_tier auto | default
//   content: text, image (base64, url), document (PDF, text)    text, image_url, file, text
//   content: tool_use / tool_result (text)                      tool_calls / tool messages
//   cache_control (anywhere)                                    dropped, named: OpenAI-format upstreams cache on their own
//   thinking / redacted_thinking blocks in the history          dropped, named: signed by Anthropic, no other provider reads them
//   context_management of clear_thinking edits only              dropped, named: no thinking block is translated anyway
//   top_k, container, mcp_servers, other context_management,    refused (400 unsupported_parameter) unless the route sets
//   server tools, other block types, tool_result images         drop_unsupported_params
import type { ResponseSink } from "../gateway.ts";
import { type ChatUsage, ChatSink, errorMessage, objectOf, withStreamUsage } from "./chat-sink.ts";
import { badRequest } from "../errors.ts";
import type { Carry } from "./carry.ts";
import { isObject, type Json } from "../json.ts";

type Block = { type: string; [k: string]: unknown };

/** Fields of a Messages request that chat carries, or that are read elsewhere; anything else is refused or dropped by name. */
export const CARRIED = new Set([
  "model", "max_tokens", "messages", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
  "tools", "tool_choice", "thinking", "output_config", "output_format", "service_tier", "context_management",
]);

/** The checks the Messages API makes before anything else, in its words. */
export function validateMessages(body: Json): void {
  if (typeof body.model !== "string" || body.model === "") throw badRequest("model: Field required", "invalid_request_error", "model");
  if (typeof body.max_tokens !== "number") throw badRequest("max_tokens: Field required", "invalid_request_error", "max_tokens");
  if (!Array.isArray(body.messages)) throw badRequest("messages: Field required", "invalid_request_error", "messages");
  if (body.stream !== undefined && typeof body.stream !== "boolean") throw badRequest("stream: Input should be a valid boolean", "invalid_request_error", "stream");
}

function effortOf(budget: unknown): string {
  const n = typeof budget === "number" ? budget : 0;
  return n < 4096 ? "low" : n < 16384 ? "medium" : "high";
}

function cacheHints(value: unknown, carry: Carry): void {
  if (isObject(value) && value.cache_control !== undefined) carry.note("cache_control");
}

function textOfBlocks(content: unknown, param: string, carry: Carry): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b: Block, i) => {
      cacheHints(b, carry);
      if (b?.type === "text") return String(b.text ?? "");
      carry.refuse(`${param}[${i}].type`, `a ${String(b?.type)} block here has no OpenAI form`);
      return "";
    })
    .join("");
}

/** One user content block as chat parts (or tool messages, pushed to `tools`). */
function userPart(b: Block, param: string, carry: Carry, tools: Json[]): Json | undefined {
  cacheHints(b, carry);
  switch (b.type) {
    case "text":
      return { type: "text", text: String(b.text ?? "") };
    case "image": {
      const src = isObject(b.source) ? b.source : {};
      if (src.type === "base64") return { type: "image_url", image_url: { url: `data:${src.media_type};base64,${src.data}` } };
      if (src.type === "url") return { type: "image_url", image_url: { url: src.url } };
      carry.refuse(`${param}.source.type`, `an image from a ${String(src.type)} source`);
      return undefined;
    }
    case "document": {
      const src = isObject(b.source) ? b.source : {};
      if (src.type === "base64" && src.media_type === "application/pdf") return { type: "file", file: { filename: String(b.title ?? "document.pdf"), file_data: `data:application/pdf;base64,${src.data}` } };
      if (src.type === "text") return { type: "text", text: String(src.data ?? "") };
      carry.refuse(`${param}.source.type`, `a document from a ${String(src.type)} source`);
      return undefined;
    }
    case "tool_result": {
      let content = "";
      if (typeof b.content === "string") content = b.content;
      else if (Array.isArray(b.content)) content = textOfBlocks(b.content, `${param}.content`, carry);
      tools.push({ role: "tool", tool_call_id: b.tool_use_id, content: b.is_error === true && content === "" ? "error" : content });
      return undefined;
    }
    default:
      carry.refuse(`${param}.type`, `a ${String(b.type)} block has no OpenAI form`);
      return undefined;
  }
}

/** An Anthropic Messages request as OpenAI chat completion parameters; what chat cannot carry is refused or named in `carry`. */
export function toChat(body: Json, carry: Carry): Json {
  validateMessages(body);
  for (const key of Object.keys(body)) if (!CARRIED.has(key)) carry.refuse(key);
  const messages: Json[] = [];
  const system = textOfBlocks(body.system, "system", carry);
  if (system !== "") messages.push({ role: "system", content: system });
  (body.messages as { role: string; content: string | Block[] }[]).forEach((m, i) => {
    const param = `messages[${i}].content`;
    // A system turn mid-conversation (Claude Code's mid-conversation-system beta) is a system message in chat too.
    if (m.role === "system") {
      messages.push({ role: "system", content: textOfBlocks(m.content, param, carry) });
      return;
    }
    if (typeof m.content === "string") {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (m.role === "assistant") {
      let text = "";
      const calls: Json[] = [];
      m.content.forEach((b, j) => {
        cacheHints(b, carry);
        if (b.type === "text") text += String(b.text ?? "");
        else if (b.type === "tool_use") calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
        else if (b.type === "thinking" || b.type === "redacted_thinking") carry.note(`messages[].content[].${b.type}`);
        else carry.refuse(`${param}[${j}].type`, `a ${String(b.type)} block has no OpenAI form`);
      });
      messages.push({ role: "assistant", content: text === "" ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) });
      return;
    }
    const tools: Json[] = [];
    const parts = m.content.map((b, j) => userPart(b, `${param}[${j}]`, carry, tools)).filter((p): p is Json => p !== undefined);
    messages.push(...tools);
    if (parts.length > 0) messages.push({ role: "user", content: parts });
  });
  // Clearing thinking is done already (no thinking block is translated); other context edits are Anthropic's own.
  if (body.context_management !== undefined) {
    const edits = isObject(body.context_management) && Array.isArray(body.context_management.edits) ? body.context_management.edits : [];
    const thinkingOnly = Object.keys(body.context_management as Json).every((k) => k === "edits") && edits.every((e) => isObject(e) && String(e.type).startsWith("clear_thinking_"));
    if (thinkingOnly) carry.note("context_management");
    else carry.refuse("context_management", "context editing runs only at Anthropic");
  }
  const out: Json = { model: body.model, messages, max_tokens: body.max_tokens };
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences)) out.stop = body.stop_sequences;
  if (isObject(body.metadata) && typeof body.metadata.user_id === "string") out.user = body.metadata.user_id;
  if (body.service_tier === "auto" || body.service_tier === "standard_only") out.service_tier = body.service_tier === "auto" ? "auto" : "default";
  if (Array.isArray(body.tools)) {
    out.tools = (body.tools as Json[])
      .map((t, i) => {
        cacheHints(t, carry);
        if (t.type !== undefined && t.type !== "custom") {
          carry.refuse(`tools[${i}].type`, `Anthropic's server tool ${String(t.type)} runs only at Anthropic`);
          return undefined;
        }
        return { type: "function", function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.input_schema } };
      })
      .filter((t) => t !== undefined);
  }
  const choice = body.tool_choice as { type: string; name?: string; disable_parallel_tool_use?: boolean } | undefined;
  if (choice !== undefined) {
    out.tool_choice = choice.type === "any" ? "required" : choice.type === "tool" ? { type: "function", function: { name: choice.name } } : choice.type === "none" ? "none" : "auto";
    if (choice.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  const thinking = body.thinking as { type?: string; budget_tokens?: number } | undefined;
  if (thinking?.type === "enabled") out.reasoning_effort = effortOf(thinking.budget_tokens);
  else if (thinking?.type === "adaptive") out.reasoning_effort = "medium";
  const config = isObject(body.output_config) ? body.output_config : {};
  if (typeof config.effort === "string") out.reasoning_effort = config.effort === "max" ? "high" : config.effort;
  const format = isObject(config.format) ? config.format : isObject(body.output_format) ? body.output_format : undefined;
  if (format !== undefined) {
    if (format.type === "json_schema") out.response_format = { type: "json_schema", json_schema: { name: "output", schema: format.schema, strict: true } };
    else carry.refuse("output_config.format.type");
  }
  for (const key of Object.keys(config)) if (key !== "effort" && key !== "format") carry.refuse(`output_config.${key}`);
  return withStreamUsage(out, body.stream === true);
}

const STOP: Record<string, string> = { stop: "end_turn", length: "max_tokens", tool_calls: "tool_use", function_call: "tool_use", content_filter: "refusal" };

/** OpenAI usage in Anthropic's terms: input_tokens excludes cache reads, which are reported apart. */
function anthropicUsage(u: ChatUsage | null | undefined): Json {
  const cached = u?.prompt_tokens_details?.cached_tokens ?? 0;
  return { input_tokens: (u?.prompt_tokens ?? 0) - cached, output_tokens: u?.completion_tokens ?? 0, cache_read_input_tokens: cached, cache_creation_input_tokens: 0 };
}

/** An Anthropic message id for an answer that came from elsewhere (an Anthropic id stays as it is). */
function messageId(id: unknown): string {
  const text = String(id ?? "");
  return text.startsWith("msg_") ? text : `msg_${text.replace(/^chatcmpl-/, "")}`;
}

/** An OpenAI chat completion as an Anthropic message. */
export function fromChat(c: Json): Json {
  const choice = ((c.choices as Json[] | undefined) ?? [])[0] ?? {};
  const message = (choice.message ?? {}) as { content?: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[] };
  const content: Json[] = [];
  if (message.content) content.push({ type: "text", text: message.content });
  for (const t of message.tool_calls ?? []) content.push({ type: "tool_use", id: t.id, name: t.function.name, input: parseArgs(t.function.arguments) });
  return {
    id: messageId(c.id),
    type: "message",
    role: "assistant",
    model: c.model,
    content,
    stop_reason: STOP[String(choice.finish_reason)] ?? "end_turn",
    stop_sequence: null,
    usage: anthropicUsage(c.usage as ChatUsage | undefined),
  };
}

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  503: "overloaded_error",
  504: "timeout_error",
  529: "overloaded_error",
};

/** An error in Anthropic's shape. */
export function anthropicError(status: number, message: string): Json {
  return { type: "error", error: { type: ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error"), message } };
}

/**
 * Stands where the gateway writes an OpenAI answer and writes Anthropic's to
 * the real response instead: a JSON body is translated whole; an SSE stream
 * event by event (message_start, content blocks, message_delta, message_stop).
 */
export class AnthropicSink extends ChatSink {
  #started = false;
  #block: { index: number; kind: "text" | "tool" } | undefined;
  #blocks = 0;
  #toolBlocks = new Map<number, number>();
  #stop = "end_turn";
  #usage: ChatUsage | undefined;

  constructor(res: ResponseSink, forms: { headers(): Record<string, string> }) {
    super(res, forms, { json: "application/json", stream: "text/event-stream; charset=utf-8" });
  }

  protected answer(chat: Json): unknown {
    return fromChat(chat);
  }

  protected error(status: number, parsed: Json | undefined): unknown {
    return anthropicError(status, errorMessage(parsed));
  }

  protected event(data: string): boolean {
    return data === "[DONE]" ? this.#finish() : this.#chunk(objectOf(data));
  }

  #send(event: string, data: Json): boolean {
    return this.res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  }

  #chunk(c: Json | undefined): boolean {
    if (c === undefined) return true;
    if (c.error !== undefined) {
      this.#closeBlock();
      return this.res.write(`event: error\ndata: ${JSON.stringify(anthropicError(500, String((c.error as Json).message)))}\n\n`);
    }
    if (!this.#started) {
      this.#started = true;
      this.#send("message_start", {
        message: { id: messageId(c.id), type: "message", role: "assistant", model: String(c.model ?? ""), content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(undefined) },
      });
    }
    if (isObject(c.usage)) this.#usage = c.usage as ChatUsage;
    let ok = true;
    for (const choice of (c.choices as Json[] | undefined) ?? []) {
      const delta = (choice.delta ?? {}) as { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
      if (delta.content) {
        if (this.#block?.kind !== "text") this.#openBlock("text", { type: "text", text: "" });
        ok = this.#send("content_block_delta", { index: this.#block!.index, delta: { type: "text_delta", text: delta.content } });
      }
      for (const t of delta.tool_calls ?? []) {
        let index = this.#toolBlocks.get(t.index);
        if (index === undefined) {
          this.#openBlock("tool", { type: "tool_use", id: t.id, name: t.function?.name, input: {} });
          index = this.#block!.index;
          this.#toolBlocks.set(t.index, index);
        }
        if (t.function?.arguments) ok = this.#send("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: t.function.arguments } });
      }
      if (typeof choice.finish_reason === "string") this.#stop = STOP[choice.finish_reason] ?? "end_turn";
    }
    return ok;
  }

  #openBlock(kind: "text" | "tool", content_block: Json): void {
    this.#closeBlock();
    this.#block = { index: this.#blocks++, kind };
    this.#send("content_block_start", { index: this.#block.index, content_block });
  }

  #closeBlock(): void {
    if (this.#block !== undefined) this.#send("content_block_stop", { index: this.#block.index });
    this.#block = undefined;
  }

  #finish(): boolean {
    this.#closeBlock();
    // The usage came with the last chunk: the final counts, input side included (the SDK takes them from here).
    this.#send("message_delta", { delta: { stop_reason: this.#stop, stop_sequence: null }, usage: anthropicUsage(this.#usage) });
    return this.#send("message_stop", {});
  }
}

function parseArgs(text: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return {};
  }
}
