// OpenAI's Responses API (`POST /v1/responses`) for accounts that do not speak
// it: the request as chat completion parameters, the chat answer as a Response
// (JSON) or as the Responses event stream. Shapes follow the `openai` package's
// resources/responses/responses.d.ts (Response, ResponseStreamEvent, ResponseUsage).
//
// Responses → chat, field by field (the capability table):
//   model, temperature, top_p, parallel_tool_calls, user,     mapped as they are
//   service_tier, stream
//   instructions                                              a system message first
//   input: string | message items (input_text, input_image,   messages (text, image_url, file parts)
//          input_file, output_text)
//   input: function_call / function_call_output items         assistant tool_calls / tool messages
//   tools: function                                           function tools
//   tool_choice: auto | none | required | {type: function}    the same in chat's terms
//   max_output_tokens                                         max_tokens
//   reasoning.effort                                          reasoning_effort
//   text.format: json_schema | json_object | text             response_format
//   reasoning.summary, include, store, prompt_cache_key,      dropped, named: no state is kept and no reasoning
//   client_metadata, metadata, reasoning input items          text comes back from chat
//   previous_response_id, conversation, background, prompt,   refused (400 unsupported_parameter) unless the route
//   truncation auto, other tools and items, …                 sets drop_unsupported_params
import { randomUUID } from "node:crypto";
import { badRequest } from "../errors.ts";
import type { ResponseSink } from "../gateway.ts";
import type { Carry } from "./carry.ts";
import { type ChatUsage, ChatSink, objectOf, withStreamUsage } from "./chat-sink.ts";
import { isObject, type Json } from "../json.ts";

export const MAPPED = new Set([
  "model", "input", "instructions", "temperature", "top_p", "parallel_tool_calls", "user", "service_tier", "stream",
  "tools", "tool_choice", "max_output_tokens", "reasoning", "text", "store", "include", "prompt_cache_key",
  "client_metadata", "metadata", "truncation", "safety_identifier", "stream_options",
]);
/** Fields that ask the upstream to keep or report state a chat upstream does not have: dropped by design. */
const STATEFUL = new Set(["store", "include", "prompt_cache_key", "client_metadata", "metadata", "stream_options"]);

export function validateResponses(body: Json): void {
  if (typeof body.model !== "string" || body.model === "") throw badRequest("Missing required parameter: 'model'.", "missing_required_parameter", "model");
  if (body.stream !== undefined && typeof body.stream !== "boolean") throw badRequest("'stream' must be true or false.", "invalid_type", "stream");
}

/** Input as items: a string is one user message; an item without `type` but with a role is a message. */
function itemsOf(input: unknown): Json[] {
  if (typeof input === "string") return [{ type: "message", role: "user", content: input }];
  return Array.isArray(input) ? input.filter(isObject).map((i) => (i.type === undefined && i.role !== undefined ? { type: "message", ...i } : i)) : [];
}

function contentParts(content: unknown, param: string, carry: Carry): string | Json[] {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const parts: Json[] = [];
  content.forEach((c: Json, i) => {
    if (c?.type === "input_text" || c?.type === "output_text") parts.push({ type: "text", text: String(c.text ?? "") });
    else if (c?.type === "input_image" && typeof c.image_url === "string") parts.push({ type: "image_url", image_url: { url: c.image_url, ...(c.detail !== undefined ? { detail: c.detail } : {}) } });
    else if (c?.type === "input_file" && typeof c.file_data === "string") parts.push({ type: "file", file: { file_data: c.file_data, ...(c.filename !== undefined ? { filename: c.filename } : {}) } });
    else if (c?.type === "refusal") parts.push({ type: "text", text: String(c.refusal ?? "") });
    else carry.refuse(`${param}[${i}].type`, `${String(c?.type)} content has no chat form here`);
  });
  // Chat takes text-only assistant and system content as a string.
  return parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : parts;
}

/** A Responses request as chat completion parameters; what chat cannot carry is refused or named in `carry`. */
export function toChat(body: Json, carry: Carry): Json {
  validateResponses(body);
  for (const key of Object.keys(body)) {
    if (!MAPPED.has(key)) carry.refuse(key, key === "previous_response_id" ? "only the account that stored that response holds it" : "");
    else if (STATEFUL.has(key) && body[key] !== false && body[key] !== null) carry.note(key);
  }
  if (body.truncation === "auto") carry.refuse("truncation");
  const messages: Json[] = [];
  if (typeof body.instructions === "string" && body.instructions !== "") messages.push({ role: "system", content: body.instructions });
  let calls: Json | undefined;
  itemsOf(body.input).forEach((item, i) => {
    const param = `input[${i}]`;
    if (item.type === "function_call") {
      const call = { id: item.call_id, type: "function", function: { name: item.name, arguments: typeof item.arguments === "string" ? item.arguments : JSON.stringify(item.arguments ?? {}) } };
      // Consecutive calls are one assistant turn with several tool calls.
      if (calls !== undefined) (calls.tool_calls as Json[]).push(call);
      else messages.push((calls = { role: "assistant", content: null, tool_calls: [call] }));
      return;
    }
    calls = undefined;
    if (item.type === "function_call_output") {
      const output = typeof item.output === "string" ? item.output : contentParts(item.output, `${param}.output`, carry);
      messages.push({ role: "tool", tool_call_id: item.call_id, content: output });
    } else if (item.type === "message") {
      const role = item.role === "developer" ? "developer" : item.role === "system" ? "system" : item.role === "assistant" ? "assistant" : "user";
      messages.push({ role, content: contentParts(item.content, `${param}.content`, carry) });
    } else if (item.type === "reasoning") {
      carry.note("input[].reasoning");
    } else {
      carry.refuse(`${param}.type`, `a ${String(item.type)} item has no chat form`);
    }
  });
  const out: Json = { model: body.model, messages };
  for (const k of ["temperature", "top_p", "parallel_tool_calls", "user", "service_tier"]) if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
  if (typeof body.safety_identifier === "string" && out.user === undefined) out.user = body.safety_identifier;
  if (typeof body.max_output_tokens === "number") out.max_tokens = body.max_output_tokens;
  if (Array.isArray(body.tools)) {
    const tools = (body.tools as Json[]).flatMap((t, i) => {
      if (t.type !== "function") {
        carry.refuse(`tools[${i}].type`, `a ${String(t.type)} tool runs only at OpenAI`);
        return [];
      }
      const fn: Json = { name: t.name, parameters: t.parameters ?? { type: "object", properties: {} } };
      if (t.description !== undefined) fn.description = t.description;
      if (t.strict !== undefined && t.strict !== null) fn.strict = t.strict;
      return [{ type: "function", function: fn }];
    });
    if (tools.length > 0) out.tools = tools;
  }
  const choice = body.tool_choice;
  if (choice === "auto" || choice === "none" || choice === "required") out.tool_choice = choice;
  else if (isObject(choice) && choice.type === "function") out.tool_choice = { type: "function", function: { name: choice.name } };
  else if (choice !== undefined) carry.refuse("tool_choice");
  if (isObject(body.reasoning)) {
    if (typeof body.reasoning.effort === "string") out.reasoning_effort = body.reasoning.effort;
    if (body.reasoning.summary !== undefined && body.reasoning.summary !== null) carry.note("reasoning.summary");
  }
  const text = isObject(body.text) ? body.text : {};
  const format = isObject(text.format) ? text.format : undefined;
  if (format?.type === "json_schema") out.response_format = { type: "json_schema", json_schema: { name: format.name ?? "output", schema: format.schema, ...(format.strict !== undefined ? { strict: format.strict } : {}) } };
  else if (format?.type === "json_object") out.response_format = { type: "json_object" };
  else if (format !== undefined && format.type !== "text") carry.refuse("text.format.type");
  if (text.verbosity !== undefined && text.verbosity !== null) carry.note("text.verbosity");
  return withStreamUsage(out, body.stream === true);
}

function responsesUsage(u: ChatUsage | undefined): Json | null {
  if (u === undefined) return null;
  const input = u.prompt_tokens ?? 0;
  const output = u.completion_tokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: u.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: u.completion_tokens_details?.reasoning_tokens ?? 0 },
    total_tokens: input + output,
  };
}

const itemId = (prefix: string) => `${prefix}_${randomUUID().replace(/-/g, "")}`;

/** The echo of the request a Response carries (its settings), as the API returns them. */
function echo(body: Json): Json {
  const text = isObject(body.text) ? body.text : {};
  return {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: (isObject(body.reasoning) ? body.reasoning.effort : null) ?? null, summary: null },
    store: false,
    temperature: body.temperature ?? 1,
    text: { format: text.format ?? { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: "disabled",
    metadata: isObject(body.metadata) ? body.metadata : {},
    user: body.user ?? null,
  };
}

/** An OpenAI chat completion as a Response. */
export function fromChat(c: Json, request: Json): Json {
  const choice = ((c.choices as Json[] | undefined) ?? [])[0] ?? {};
  const message = (choice.message ?? {}) as { content?: string | null; refusal?: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[] };
  const output: Json[] = [];
  if (message.content || message.refusal) {
    const part = message.refusal ? { type: "refusal", refusal: message.refusal } : { type: "output_text", text: message.content, annotations: [], logprobs: [] };
    output.push({ id: itemId("msg"), type: "message", status: "completed", role: "assistant", content: [part] });
  }
  for (const t of message.tool_calls ?? []) output.push({ id: itemId("fc"), type: "function_call", status: "completed", call_id: t.id, name: t.function.name, arguments: t.function.arguments });
  const truncated = choice.finish_reason === "length";
  return {
    id: `resp_${String(c.id ?? randomUUID()).replace(/^chatcmpl-/, "")}`,
    object: "response",
    created_at: typeof c.created === "number" ? c.created : Math.floor(Date.now() / 1000),
    status: truncated ? "incomplete" : "completed",
    error: null,
    incomplete_details: truncated ? { reason: "max_output_tokens" } : null,
    model: c.model,
    output,
    usage: responsesUsage(c.usage as ChatUsage | undefined),
    ...echo(request),
  };
}

/** The Responses error body for a gateway error (the same `{"error":…}` shape as chat). */
function errorOf(status: number, parsed: Json | undefined): Json {
  const e = isObject(parsed?.error) ? parsed.error : {};
  return { error: { message: String(e.message ?? "The upstream failed."), type: String(e.type ?? (status >= 500 ? "server_error" : "invalid_request_error")), code: e.code ?? null, param: e.param ?? null } };
}

/**
 * Stands where the gateway writes an OpenAI chat answer and writes the
 * Responses API's instead: a JSON body whole; a stream as the Responses event
 * sequence (response.created, output items with their deltas, response.completed
 * with usage), each event numbered.
 */
export class ResponsesSink extends ChatSink {
  #seq = 0;
  #response: Json | undefined;
  /** The open output item: a message (text) or a function call (by chat tool index). */
  #item: { index: number; id: string; kind: "text" | "call"; text: string; call?: Json } | undefined;
  #items: Json[] = [];
  #calls = new Map<number, number>();
  #usage: ChatUsage | undefined;
  #finish: string | null = null;

  constructor(
    res: ResponseSink,
    private readonly request: Json,
    forms: { headers(): Record<string, string> },
  ) {
    super(res, forms, { json: "application/json", stream: "text/event-stream; charset=utf-8" });
  }

  protected answer(chat: Json): unknown {
    return fromChat(chat, this.request);
  }

  protected error(status: number, parsed: Json | undefined): unknown {
    return errorOf(status, parsed);
  }

  protected event(data: string): boolean {
    if (data === "[DONE]") return this.#complete();
    const c = objectOf(data);
    return c === undefined || this.#chunk(c);
  }

  #send(type: string, data: Json): boolean {
    return this.res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data, sequence_number: this.#seq++ })}\n\n`);
  }

  #chunk(c: Json): boolean {
    if (c.error !== undefined) {
      const e = isObject(c.error) ? c.error : {};
      return this.#send("error", { code: e.code ?? "stream_interrupted", message: String(e.message ?? "The upstream failed."), param: null });
    }
    if (this.#response === undefined) {
      this.#response = { id: `resp_${String(c.id ?? randomUUID()).replace(/^chatcmpl-/, "")}`, object: "response", created_at: c.created ?? Math.floor(Date.now() / 1000), status: "in_progress", error: null, incomplete_details: null, model: c.model, output: [], usage: null, ...echo(this.request) };
      this.#send("response.created", { response: this.#response });
      this.#send("response.in_progress", { response: this.#response });
    }
    if (isObject(c.usage)) this.#usage = c.usage as ChatUsage;
    let ok = true;
    for (const choice of (c.choices as Json[] | undefined) ?? []) {
      const delta = (choice.delta ?? {}) as { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
      if (delta.content) {
        if (this.#item?.kind !== "text") this.#open("text", { type: "message", status: "in_progress", role: "assistant", content: [] });
        const item = this.#item!;
        item.text += delta.content;
        ok = this.#send("response.output_text.delta", { item_id: item.id, output_index: item.index, content_index: 0, delta: delta.content, logprobs: [] });
      }
      for (const t of delta.tool_calls ?? []) {
        if (!this.#calls.has(t.index)) {
          this.#open("call", { type: "function_call", status: "in_progress", call_id: t.id, name: t.function?.name, arguments: "" });
          this.#calls.set(t.index, this.#item!.index);
        }
        const item = this.#item!;
        if (t.function?.arguments) {
          item.text += t.function.arguments;
          ok = this.#send("response.function_call_arguments.delta", { item_id: item.id, output_index: item.index, delta: t.function.arguments });
        }
      }
      if (typeof choice.finish_reason === "string") this.#finish = choice.finish_reason;
    }
    return ok;
  }

  #open(kind: "text" | "call", item: Json): void {
    this.#close();
    const id = itemId(kind === "text" ? "msg" : "fc");
    this.#item = { index: this.#items.length, id, kind, text: "", call: item };
    this.#items.push({ id, ...item });
    this.#send("response.output_item.added", { output_index: this.#item.index, item: { id, ...item } });
    if (kind === "text") this.#send("response.content_part.added", { item_id: id, output_index: this.#item.index, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } });
  }

  #close(): void {
    const item = this.#item;
    if (item === undefined) return;
    this.#item = undefined;
    let done: Json;
    if (item.kind === "text") {
      const part = { type: "output_text", text: item.text, annotations: [], logprobs: [] };
      this.#send("response.output_text.done", { item_id: item.id, output_index: item.index, content_index: 0, text: item.text, logprobs: [] });
      this.#send("response.content_part.done", { item_id: item.id, output_index: item.index, content_index: 0, part });
      done = { id: item.id, type: "message", status: "completed", role: "assistant", content: [part] };
    } else {
      this.#send("response.function_call_arguments.done", { item_id: item.id, output_index: item.index, name: item.call!.name, arguments: item.text });
      done = { id: item.id, ...item.call, status: "completed", arguments: item.text };
    }
    this.#items[item.index] = done;
    this.#send("response.output_item.done", { output_index: item.index, item: done });
  }

  #complete(): boolean {
    this.#close();
    const truncated = this.#finish === "length";
    const response = {
      ...this.#response,
      status: truncated ? "incomplete" : "completed",
      incomplete_details: truncated ? { reason: "max_output_tokens" } : null,
      output: this.#items,
      usage: responsesUsage(this.#usage),
    };
    return this.#send(truncated ? "response.incomplete" : "response.completed", { response });
  }
}
