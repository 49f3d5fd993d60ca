// Legacy completions (`POST /v1/completions`) for accounts without that
// endpoint (Anthropic, Gemini, Bedrock, Cohere): the prompt as one user turn of
// chat, the chat answer as a `text_completion` (JSON, or chunks ending in
// `[DONE]`). OpenAI-format accounts get the request as it came.
//
//   prompt (a string, or one string in an array)    one user message
//   max_tokens (legacy default 16), temperature,    the same chat fields
//   top_p, n, stop, presence_penalty,
//   frequency_penalty, seed, user, logit_bias,
//   stream, stream_options
//   several prompts, token prompts, suffix, echo,   refused (400 unsupported_parameter) unless the route
//   logprobs, best_of > 1                           sets drop_unsupported_params
import { badRequest, HttpError } from "../errors.ts";
import type { ResponseSink } from "../gateway.ts";
import type { InboundRequest } from "../providers/adapter.ts";
import { Carry, DROPPED_HEADER, withDropped } from "./carry.ts";
import { headersMatching, identify, inShape, OPENAI_HEADERS, parseObject, type SurfaceHandler } from "./surface.ts";

type Json = Record<string, unknown>;

const COPIED = ["temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty", "seed", "user", "logit_bias", "stream", "stream_options"];
/** The legacy endpoint's own default; chat's would be the model's whole output. */
const LEGACY_MAX_TOKENS = 16;

export function toChat(body: Json, carry: Carry): Json {
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (typeof prompt !== "string") {
    carry.refuse("prompt", "only one text prompt can become a chat turn");
    prompt = Array.isArray(prompt) ? prompt.filter((p) => typeof p === "string").join("\n") : "";
  }
  for (const key of ["suffix", "echo", "logprobs"]) if (body[key] !== undefined && body[key] !== null && body[key] !== false) carry.refuse(key);
  if (typeof body.best_of === "number" && body.best_of > 1) carry.refuse("best_of");
  const out: Json = { model: body.model, messages: [{ role: "user", content: prompt }], max_tokens: typeof body.max_tokens === "number" ? body.max_tokens : LEGACY_MAX_TOKENS };
  for (const key of COPIED) if (body[key] !== undefined) out[key] = body[key];
  return out;
}

function choicesOf(c: Json, text: (choice: Json) => string): Json[] {
  return ((c.choices as Json[] | undefined) ?? []).map((choice, i) => ({ text: text(choice), index: typeof choice.index === "number" ? choice.index : i, logprobs: null, finish_reason: choice.finish_reason ?? null }));
}

/** A chat completion (or chunk) as a text_completion (or its chunk). */
export function fromChat(c: Json, chunk: boolean): Json {
  const text = (choice: Json) => {
    const m = (chunk ? choice.delta : choice.message) as { content?: unknown } | undefined;
    return typeof m?.content === "string" ? m.content : "";
  };
  const out: Json = { id: String(c.id ?? "").replace(/^chatcmpl-/, "cmpl-"), object: "text_completion", created: c.created, model: c.model, choices: choicesOf(c, text) };
  if (c.usage !== undefined) out.usage = c.usage;
  if (c.system_fingerprint !== undefined) out.system_fingerprint = c.system_fingerprint;
  return out;
}

/** Writes a chat answer as a legacy completion: a JSON body whole, a stream chunk by chunk. */
class CompletionsSink implements ResponseSink {
  #json = true;
  #status = 200;
  #pending = "";

  constructor(
    private readonly res: ResponseSink,
    private readonly carry: { headers(): Record<string, string> },
  ) {}

  get headersSent(): boolean {
    return this.res.headersSent;
  }
  get destroyed(): boolean {
    return this.res.destroyed;
  }

  writeHead(status: number, headers: Record<string, string>): this {
    this.#status = status;
    this.#json = !String(headers["content-type"]).startsWith("text/event-stream");
    const own = this.carry.headers()[DROPPED_HEADER];
    this.res.writeHead(status, withDropped(headers, own === undefined ? undefined : [own]));
    return this;
  }

  write(chunk: string | Buffer): boolean {
    this.#pending += this.#json ? chunk.toString() : chunk.toString().replace(/\r\n?/g, "\n");
    if (this.#json) return true;
    let out = "";
    for (let end = this.#pending.indexOf("\n\n"); end >= 0; end = this.#pending.indexOf("\n\n")) {
      const event = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      const parsed = data === "[DONE]" ? undefined : safeParse(data);
      // [DONE], errors and anything unreadable go through as they are.
      out += parsed === undefined || parsed.error !== undefined ? `${event}\n\n` : `data: ${JSON.stringify(fromChat(parsed, true))}\n\n`;
    }
    return out === "" || this.res.write(out);
  }

  end(chunk?: string | Buffer): this {
    if (chunk !== undefined) this.write(chunk);
    if (this.#json) {
      const parsed = safeParse(this.#pending);
      this.res.end(this.#status < 400 && parsed !== undefined ? JSON.stringify(fromChat(parsed, false)) : this.#pending);
    } else {
      this.res.end();
    }
    return this;
  }

  once(event: "drain" | "close", listener: () => void): this {
    this.res.once(event, listener);
    return this;
  }

  destroy(): void {
    this.res.destroy();
  }
}

function safeParse(text: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

const completions: SurfaceHandler = async (call) => {
  const { gateway, res, record, signal } = call;
  record.operation = "text_completion";
  const vk = identify(call);
  const raw = await call.body();
  const json = parseObject(raw);
  if (typeof json.model !== "string" || json.model === "") throw badRequest("You must provide a model parameter.", "missing_model", "model");
  if (json.stream !== undefined && typeof json.stream !== "boolean") throw badRequest("'stream' must be true or false.", "invalid_type", "stream");
  record.model = json.model;
  record.stream = json.stream === true;
  const carries: Carry[] = [];
  const forms = new Map<boolean, InboundRequest>();
  const headers = headersMatching(call.req.headers, OPENAI_HEADERS);
  const req: InboundRequest = {
    endpoint: "completions",
    raw,
    json,
    stream: json.stream === true,
    headers,
    toChat(drop) {
      let form = forms.get(drop);
      if (form === undefined) {
        const carry = new Carry("a chat endpoint (this account has no legacy completions)", drop);
        const chat = toChat(json, carry);
        carries.push(carry);
        form = { endpoint: "chat", raw: Buffer.from(JSON.stringify(chat)), json: chat, stream: chat.stream === true };
        forms.set(drop, form);
      }
      return form;
    },
  };
  await gateway.proxy(req, new CompletionsSink(res, { headers: () => carries.at(-1)?.headers() ?? {} }), record, signal, vk, res);
};

/** POST /v1/completions; errors in OpenAI's shape. */
export function completionsRoute(method: string): SurfaceHandler {
  if (method === "POST") return inShape((e) => e.body(), completions);
  return inShape((e) => e.body(), async () => {
    throw new HttpError(405, "invalid_request_error", "method_not_allowed", `/v1/completions takes POST, not ${method}.`, { allow: "POST" });
  });
}
