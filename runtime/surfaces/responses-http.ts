// The Responses API paths: POST /v1/responses (JSON and SSE), and for a
// response an OpenAI-format account stored, GET and DELETE /v1/responses/{id}
// and GET /v1/responses/{id}/input_items. Errors in OpenAI's shape.
//
// A stored response lives at the account that made it, so the gateway
// remembers which one (affinity) and sends reads, deletes and follow-ups
// naming it (`previous_response_id`) there, and nowhere else.
import { HttpError } from "../errors.ts";
import type { ResponseSink } from "../gateway.ts";
import type { InboundRequest } from "../providers/adapter.ts";
import { ChatForms } from "./chat-sink.ts";
import { ResponsesSink, toChat, validateResponses } from "./responses.ts";
import { headersMatching, identify, inShape, OPENAI_HEADERS, readRequest, type SurfaceCall, type SurfaceHandler } from "./surface.ts";

/** Where a stored response lives: the account, the model it was sent, the model the caller named. */
interface Stored {
  account: string;
  model: string | null;
  asked: string;
}

/**
 * Response id → where it is stored, oldest dropped first past the bound. In
 * this process only: with several instances, a follow-up must reach the
 * instance that served the first (or the upstream answers 404 for it).
 */
class Affinity {
  readonly #map = new Map<string, Stored>();
  constructor(readonly max: number) {}
  get(id: string): Stored | undefined {
    return this.#map.get(id);
  }
  set(id: string, where: Stored): void {
    if (this.#map.size >= this.max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(id, where);
  }
  delete(id: string): void {
    this.#map.delete(id);
  }
}

export const affinity = new Affinity(100_000);

const shape = (err: HttpError) => err.body();
const RESPONSE_ID = /"id"\s*:\s*"(resp_[^"\\]+)"/;

/** Passes a relayed answer through and notes the response id in its first bytes (a JSON body, or response.created). */
class IdTap implements ResponseSink {
  id: string | undefined;
  #seen = 0;
  constructor(private readonly res: ResponseSink) {}
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  get destroyed(): boolean {
    return this.res.destroyed;
  }
  writeHead(status: number, headers: Record<string, string>): unknown {
    return this.res.writeHead(status, headers);
  }
  write(chunk: string | Buffer): boolean {
    this.#look(chunk);
    return this.res.write(chunk);
  }
  end(chunk?: string | Buffer): unknown {
    if (chunk !== undefined) this.#look(chunk);
    return this.res.end(chunk);
  }
  once(event: "drain" | "close", listener: () => void): unknown {
    return this.res.once(event, listener);
  }
  destroy(): void {
    this.res.destroy();
  }
  #look(chunk: string | Buffer): void {
    if (this.id !== undefined || this.#seen > 8192) return;
    const text = chunk.toString("utf8", 0, Math.min(chunk.length, 8192));
    this.#seen += text.length;
    this.id = RESPONSE_ID.exec(text)?.[1];
  }
}

const create: SurfaceHandler = async (call) => {
  const { gateway, res, record, signal } = call;
  const { vk, raw, json } = await readRequest(call, "chat");
  validateResponses(json);
  record.model = json.model as string;
  record.stream = json.stream === true;
  const forms = new ChatForms("OpenAI chat (this account does not speak the Responses API)", (carry) => toChat(json, carry));
  const req: InboundRequest = {
    endpoint: "responses",
    format: "openai",
    raw,
    json,
    stream: json.stream === true,
    outputCap: typeof json.max_output_tokens === "number" ? json.max_output_tokens : undefined,
    headers: headersMatching(call.req.headers, OPENAI_HEADERS),
    toChat: forms.toChat,
  };
  const previous = json.previous_response_id;
  if (typeof previous === "string") {
    const where = affinity.get(previous);
    // Unknown here: an OpenAI-format account may still hold it (and says so if not); others refuse it by name.
    if (where !== undefined) req.affinity = { account: where.account, model: where.model };
  }
  const tap = new IdTap(res);
  const sink = new ResponsesSink(res, json, forms);
  await gateway.proxy(req, sink, record, signal, vk, tap);
  if (tap.id !== undefined && record.account !== null && json.store !== false) {
    affinity.set(tap.id, { account: record.account, model: record.responseModel, asked: json.model as string });
  }
};

const PATH = /^\/v1\/responses\/([^/]+)(\/input_items)?$/;

/** Reads or deletes a stored response at the account that stored it. */
const stored: SurfaceHandler = async (call) => {
  const { gateway, res, record, signal, req: http } = call;
  record.operation = "other";
  const vk = identify(call);
  const [, encoded, items] = PATH.exec(call.path)!;
  const id = decodeURIComponent(encoded);
  const where = affinity.get(id);
  if (where === undefined) {
    throw new HttpError(404, "invalid_request_error", "response_not_found", `No response '${id}' is known to this gateway: it keeps responses stored by OpenAI-format accounts it served (answers translated from other providers are not stored).`, {}, "response_id");
  }
  const method = http.method === "DELETE" ? "DELETE" : "GET";
  const query = call.query.toString();
  record.model = where.asked;
  const req: InboundRequest = {
    endpoint: "responses",
    format: "openai",
    raw: Buffer.alloc(0),
    json: { model: where.asked },
    stream: false,
    method,
    subpath: `/${encodeURIComponent(id)}${items ?? ""}${query === "" ? "" : `?${query}`}`,
    headers: headersMatching(http.headers, OPENAI_HEADERS),
    affinity: { account: where.account, model: where.model },
  };
  await gateway.proxy(req, res, record, signal, vk);
  if (method === "DELETE" && res.statusCode === 200) affinity.delete(id);
};

/** The handler for a Responses API path, or undefined. */
export function responsesRoute(method: string, path: string): SurfaceHandler | undefined {
  if (path === "/v1/responses") {
    if (method === "POST") return inShape(shape, create);
    return inShape(shape, async () => {
      throw new HttpError(405, "invalid_request_error", "method_not_allowed", `${path} takes POST, not ${method}.`, { allow: "POST" });
    });
  }
  const m = PATH.exec(path);
  if (m === null) return undefined;
  if (method === "GET" || (method === "DELETE" && m[2] === undefined)) return inShape(shape, stored);
  return inShape(shape, async () => {
    throw new HttpError(405, "invalid_request_error", "method_not_allowed", `${path} takes ${m[2] === undefined ? "GET or DELETE" : "GET"}, not ${method}.`);
  });
}
