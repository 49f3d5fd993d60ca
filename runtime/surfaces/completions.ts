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
import { validateRequest } from "../request-validate.ts";
import type { Carry } from "./carry.ts";
import { ChatForms, ChatSink, objectOf } from "./chat-sink.ts";
import { headersMatching, inShape, OPENAI_HEADERS, readRequest, type SurfaceHandler } from "./surface.ts";

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
class CompletionsSink extends ChatSink {
  constructor(res: ResponseSink, forms: { headers(): Record<string, string> }) {
    super(res, forms, { json: "application/json", stream: "text/event-stream; charset=utf-8" });
  }

  protected answer(chat: Json): unknown {
    return fromChat(chat, false);
  }

  /** The gateway's error body is already OpenAI's. */
  protected error(_status: number, parsed: Json | undefined, text: string): unknown {
    return parsed ?? { error: { message: text, type: "server_error", code: null, param: null } };
  }

  protected event(data: string, raw: string): boolean {
    const parsed = data === "[DONE]" ? undefined : objectOf(data);
    // [DONE], errors and anything unreadable go through as they are.
    return this.res.write(parsed === undefined || parsed.error !== undefined ? `${raw}\n\n` : `data: ${JSON.stringify(fromChat(parsed, true))}\n\n`);
  }
}

const completions: SurfaceHandler = async (call) => {
  const { gateway, res, record, signal } = call;
  const { vk, raw, json } = await readRequest(call, "text_completion");
  validateRequest("completions", json);
  if (typeof json.model !== "string" || json.model === "") throw badRequest("You must provide a model parameter.", "missing_model", "model");
  if (json.stream !== undefined && typeof json.stream !== "boolean") throw badRequest("'stream' must be true or false.", "invalid_type", "stream");
  record.model = json.model;
  record.stream = json.stream === true;
  const forms = new ChatForms("a chat endpoint (this account has no legacy completions)", (carry) => toChat(json, carry));
  const req: InboundRequest = { endpoint: "completions", raw, json, stream: json.stream === true, headers: headersMatching(call.req.headers, OPENAI_HEADERS), toChat: forms.toChat };
  await gateway.proxy(req, new CompletionsSink(res, forms), record, signal, vk, res);
};

/** POST /v1/completions; errors in OpenAI's shape. */
export function completionsRoute(method: string): SurfaceHandler {
  if (method === "POST") return inShape((e) => e.body(), completions);
  return inShape((e) => e.body(), async () => {
    throw new HttpError(405, "invalid_request_error", "method_not_allowed", `/v1/completions takes POST, not ${method}.`, { allow: "POST" });
  });
}
