// The Anthropic paths under /anthropic: messages, count_tokens, models, and
// the preflight and HEAD answers browsers and SDKs send first. Errors in
// Anthropic's shape.
import { badRequest, HttpError } from "../errors.ts";
import { anthropicMessage, findProblem } from "../request-validate.ts";
import type { InboundRequest } from "../providers/adapter.ts";
import { AnthropicSink, anthropicError, toChat, validateMessages } from "./anthropic.ts";
import { ChatForms } from "./chat-sink.ts";
import { servedModels } from "./model-catalog.ts";
import { headersMatching, identify, inShape, sendJson, readRequest, type SurfaceCall, type SurfaceHandler } from "./surface.ts";

const shape = (err: HttpError) => anthropicError(err.status, err.message);

/** Headers Anthropic defines for a request (`anthropic-version`, `anthropic-beta`, …): relayed as they came. */
const ANTHROPIC_HEADERS = /^anthropic-/;

/** The request for Gateway.proxy; its chat form (for other formats, messages only) made on first need. */
function inbound(call: SurfaceCall, raw: Buffer, json: Record<string, unknown>, endpoint: "messages" | "count_tokens", forms?: ChatForms): InboundRequest {
  return { endpoint, format: "anthropic", raw, json, stream: json.stream === true, headers: headersMatching(call.req.headers, ANTHROPIC_HEADERS), toChat: forms?.toChat };
}

const messages: SurfaceHandler = async (call) => {
  const { gateway, res, record, signal } = call;
  const { vk, raw, json } = await readRequest(call, "chat");
  const problem = findProblem("anthropic", json);
  if (problem !== undefined) throw badRequest(anthropicMessage(problem), problem.code, problem.param);
  validateMessages(json);
  record.model = json.model as string;
  record.stream = json.stream === true;
  const forms = new ChatForms("OpenAI chat", (carry) => toChat(json, carry));
  await gateway.proxy(inbound(call, raw, json, "messages", forms), new AnthropicSink(res, forms), record, signal, vk, res);
};

/**
 * Relayed to an Anthropic account when the route has one; elsewhere (or when
 * none answers) an estimate, marked as one: `"estimated": true` and the
 * `x-gwc-estimate` header.
 */
const countTokens: SurfaceHandler = async (call) => {
  const { gateway, res, record, signal } = call;
  const { vk, raw, json } = await readRequest(call, "other");
  if (typeof json.model !== "string" || json.model === "") throw new HttpError(400, "invalid_request_error", "invalid_request_error", "model: Field required", {}, "model");
  if (!Array.isArray(json.messages)) throw new HttpError(400, "invalid_request_error", "invalid_request_error", "messages: Field required", {}, "messages");
  record.model = json.model;
  if (gateway.routeFormats(json.model).includes("anthropic")) {
    try {
      await gateway.proxy(inbound(call, raw, json, "count_tokens"), res, record, signal, vk);
      return;
    } catch (e) {
      // The caller's own mistakes stand; no Anthropic account answering leaves the estimate.
      if (!(e instanceof HttpError) || e.status < 500 || res.headersSent) throw e;
    }
  }
  const text = JSON.stringify([json.system ?? "", json.messages, json.tools ?? []]);
  sendJson(res, 200, { input_tokens: Math.max(1, Math.ceil(text.length / 4)), estimated: true }, record.id, { "x-gwc-estimate": "characters/4" });
};

/** Anthropic's ModelInfo list (`GET /v1/models`): one page, every model a route serves. */
const models: SurfaceHandler = async (call) => {
  identify(call);
  const ids = await servedModels(call.gateway);
  const one = /^\/anthropic\/v1\/models\/(.+)$/.exec(call.path);
  const info = (id: string) => ({ type: "model", id, display_name: id, created_at: "1970-01-01T00:00:00Z" });
  if (one !== null) {
    const id = decodeURIComponent(one[1]);
    if (!ids.includes(id)) throw new HttpError(404, "not_found_error", "model_not_found", `model: ${id}`, {}, "model");
    return sendJson(call.res, 200, info(id), call.record.id);
  }
  sendJson(call.res, 200, { data: ids.map(info), has_more: false, first_id: ids[0] ?? null, last_id: ids.at(-1) ?? null }, call.record.id);
};

/** What a browser's preflight needs to send the SDK's headers (`dangerouslyAllowBrowser`). */
const preflight: SurfaceHandler = async ({ res, record }) => {
  res.writeHead(204, {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, HEAD, OPTIONS",
    "access-control-allow-headers": "authorization, content-type, x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, x-stainless-*",
    "access-control-max-age": "600",
    "x-request-id": record.id,
  });
  res.end();
};

/** A HEAD is a reachability probe: the path exists, nothing more is said. */
const head: SurfaceHandler = async ({ res, record }) => {
  res.writeHead(200, { "content-type": "application/json", "x-request-id": record.id });
  res.end();
};

/** The handler for an Anthropic path, or undefined when there is none. */
export function anthropicRoute(method: string, path: string): SurfaceHandler | undefined {
  if (method === "OPTIONS") return preflight;
  if (method === "HEAD") return head;
  if (path === "/anthropic/v1/messages" && method === "POST") return inShape(shape, messages);
  if (path === "/anthropic/v1/messages/count_tokens" && method === "POST") return inShape(shape, countTokens);
  if ((path === "/anthropic/v1/models" || path.startsWith("/anthropic/v1/models/")) && method === "GET") return inShape(shape, models);
  return inShape(shape, async () => {
    throw new HttpError(404, "not_found_error", "unknown_url", `Unknown request URL: ${method} ${path}.`);
  });
}
