// POST /anthropic/v1/messages: Anthropic's Messages API in front of the same
// routing, budgets and failover. The request is turned into OpenAI's shape,
// served like any other, and the answer (JSON or stream) turned back, so the
// Anthropic SDK and Claude Code work whichever provider served.
//
//   Anthropic request ─► toOpenAI() ─► Gateway.proxy ─► AnthropicSink ─► Anthropic response / events

import type { ServerResponse } from "node:http";
import { badRequest } from "./errors.ts";
import type { ResponseSink } from "./attempt-types.ts";

type Json = Record<string, unknown>;
type Block = { type: string; [k: string]: unknown };

/** An Anthropic Messages request as OpenAI chat completion parameters. */
export function toOpenAI(body: Json): Json {
  if (typeof body.model !== "string" || body.model === "") throw badRequest("model: Field required", "invalid_request_error", "model");
  if (typeof body.max_tokens !== "number") throw badRequest("max_tokens: Field required", "invalid_request_error", "max_tokens");
  if (!Array.isArray(body.messages)) throw badRequest("messages: Field required", "invalid_request_error", "messages");
  const messages: Json[] = [];
  const system = typeof body.system === "string" ? body.system : Array.isArray(body.system) ? (body.system as Block[]).map((b) => b.text ?? "").join("\n") : "";
  if (system !== "") messages.push({ role: "system", content: system });
  for (const m of body.messages as { role: string; content: string | Block[] }[]) {
    if (typeof m.content === "string") {
      messages.push({ role: m.role, content: m.content });
      continue;
    }
    if (m.role === "assistant") {
      const text = m.content.filter((b) => b.type === "text").map((b) => String(b.text)).join("");
      const calls = m.content
        .filter((b) => b.type === "tool_use")
        .map((b) => ({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
      messages.push({ role: "assistant", content: text === "" ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) });
      continue;
    }
    const parts: Json[] = [];
    for (const b of m.content) {
      if (b.type === "tool_result") {
        const content = typeof b.content === "string" ? b.content : Array.isArray(b.content) ? (b.content as Block[]).map((c) => c.text ?? "").join("") : "";
        messages.push({ role: "tool", tool_call_id: b.tool_use_id, content });
      } else if (b.type === "text") {
        parts.push({ type: "text", text: b.text });
      } else if (b.type === "image") {
        const src = b.source as { type: string; media_type?: string; data?: string; url?: string };
        parts.push({ type: "image_url", image_url: { url: src.type === "base64" ? `data:${src.media_type};base64,${src.data}` : src.url } });
      }
    }
    if (parts.length > 0) messages.push({ role: "user", content: parts });
  }
  const out: Json = { model: body.model, messages, max_tokens: body.max_tokens };
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences)) out.stop = body.stop_sequences;
  if (Array.isArray(body.tools)) {
    out.tools = (body.tools as Json[]).map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } }));
  }
  const choice = body.tool_choice as { type: string; name?: string } | undefined;
  if (choice !== undefined) {
    out.tool_choice =
      choice.type === "any" ? "required" : choice.type === "tool" ? { type: "function", function: { name: choice.name } } : choice.type === "none" ? "none" : "auto";
  }
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

const STOP: Record<string, string> = { stop: "end_turn", length: "max_tokens", tool_calls: "tool_use", function_call: "tool_use", content_filter: "refusal" };

/** An OpenAI chat completion as an Anthropic message. */
export function fromOpenAI(c: Json): Json {
  const choice = ((c.choices as Json[] | undefined) ?? [])[0] ?? {};
  const message = (choice.message ?? {}) as { content?: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[] };
  const content: Json[] = [];
  if (message.content) content.push({ type: "text", text: message.content });
  for (const t of message.tool_calls ?? []) content.push({ type: "tool_use", id: t.id, name: t.function.name, input: parseArgs(t.function.arguments) });
  const u = (c.usage ?? {}) as { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
  const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    id: `msg_${String(c.id ?? "").replace(/^chatcmpl-/, "")}`,
    type: "message",
    role: "assistant",
    model: c.model,
    content,
    stop_reason: STOP[String(choice.finish_reason)] ?? "end_turn",
    stop_sequence: null,
    usage: { input_tokens: (u.prompt_tokens ?? 0) - cached, output_tokens: u.completion_tokens ?? 0, cache_read_input_tokens: cached, cache_creation_input_tokens: 0 },
  };
}

/** An error in Anthropic's shape, from the gateway's OpenAI-shaped one. */
export function anthropicError(status: number, message: string): Json {
  const type =
    status === 400 || status === 404 || status === 413 ? "invalid_request_error"
    : status === 401 ? "authentication_error"
    : status === 402 ? "billing_error"
    : status === 403 ? "permission_error"
    : status === 429 ? "rate_limit_error"
    : status === 529 || status === 503 ? "overloaded_error"
    : "api_error";
  return { type: "error", error: { type, message } };
}

/**
 * Stands where the gateway writes its OpenAI answer and writes Anthropic's to
 * the real response instead: a JSON body is translated whole; an SSE stream
 * event by event (message_start, content blocks, message_delta, message_stop).
 */
export class AnthropicSink implements ResponseSink {
  #status = 200;
  #json = true;
  #pending = "";
  #started = false;
  #block: { index: number; kind: "text" | "tool" } | undefined;
  #blocks = 0;
  #toolBlocks = new Map<number, number>();
  #stop = "end_turn";
  #usage = { input_tokens: 0, output_tokens: 0 };
  #id = "";
  #model = "";

  constructor(private readonly res: ServerResponse) {}

  get headersSent(): boolean {
    return this.res.headersSent;
  }
  get destroyed(): boolean {
    return this.res.destroyed;
  }
  get writableFinished(): boolean {
    return this.res.writableFinished;
  }

  writeHead(status: number, headers: Record<string, string>): this {
    this.#status = status;
    this.#json = !String(headers["content-type"]).startsWith("text/event-stream");
    const { "content-type": _, ...rest } = headers;
    this.res.writeHead(status, { ...rest, "content-type": this.#json ? "application/json" : "text/event-stream; charset=utf-8" });
    return this;
  }

  write(chunk: string | Buffer): boolean {
    if (this.#json) {
      this.#pending += chunk.toString();
      return true;
    }
    return this.#events(chunk.toString());
  }

  end(chunk?: string | Buffer): this {
    if (chunk !== undefined) this.write(chunk);
    if (this.#json) {
      const parsed = safeParse(this.#pending) as Json | undefined;
      const body =
        this.#status < 400 && parsed !== undefined
          ? fromOpenAI(parsed)
          : anthropicError(this.#status, String((parsed?.error as Json | undefined)?.message ?? "The upstream failed."));
      this.res.end(JSON.stringify(body));
    } else {
      this.res.end();
    }
    return this;
  }

  once(event: string, listener: () => void): this {
    this.res.once(event, listener);
    return this;
  }

  destroy(): void {
    this.res.destroy();
  }

  #send(event: string, data: Json): boolean {
    return this.res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  }

  #events(text: string): boolean {
    this.#pending += text;
    let ok = true;
    for (let end = this.#pending.indexOf("\n\n"); end >= 0; end = this.#pending.indexOf("\n\n")) {
      const event = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data === "[DONE]") ok = this.#finish();
      else if (data !== "") ok = this.#chunk(safeParse(data) as Json | undefined);
    }
    return ok;
  }

  #chunk(c: Json | undefined): boolean {
    if (c === undefined) return true;
    if (c.error !== undefined) {
      this.#closeBlock();
      return this.res.write(`event: error\ndata: ${JSON.stringify(anthropicError(500, String((c.error as Json).message)))}\n\n`);
    }
    if (!this.#started) {
      this.#started = true;
      this.#id = `msg_${String(c.id ?? "").replace(/^chatcmpl-/, "")}`;
      this.#model = String(c.model ?? "");
      this.#send("message_start", {
        message: { id: this.#id, type: "message", role: "assistant", model: this.#model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } },
      });
    }
    const u = c.usage as { prompt_tokens?: number; completion_tokens?: number } | null | undefined;
    if (u) this.#usage = { input_tokens: u.prompt_tokens ?? 0, output_tokens: u.completion_tokens ?? 0 };
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
    this.#send("message_delta", { delta: { stop_reason: this.#stop, stop_sequence: null }, usage: { output_tokens: this.#usage.output_tokens, input_tokens: this.#usage.input_tokens } });
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

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

