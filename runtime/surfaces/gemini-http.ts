// The Gemini API paths, at the root and under /gemini (what the Gemini CLI's
// GOOGLE_GEMINI_BASE_URL and @google/genai's baseUrl point at):
//   POST /v1beta/models/{model}:generateContent | :streamGenerateContent?alt=sse | :countTokens
//   GET  /v1beta/models, /v1beta/models/{model}
// The virtual key comes as `x-goog-api-key` or `?key=`. Errors in Google's shape.
import type { IncomingHttpHeaders } from "node:http";
import { HttpError } from "../errors.ts";
import type { InboundRequest } from "../providers/adapter.ts";
import { ChatForms } from "./chat-sink.ts";
import { servedModels } from "./model-catalog.ts";
import { GeminiSink, googleError, toChat } from "./gemini.ts";
import { headersMatching, identify, inShape, sendJson, readRequest, type SurfaceCall, type SurfaceHandler } from "./surface.ts";

const shape = (err: HttpError) => googleError(err.status, err.message);

/** `/gemini` (optional), an API version, then `models/{model}` and, for POST, `:{method}`. */
const PATH = /^(?:\/gemini)?\/(v1beta|v1alpha|v1)\/models(?:\/([^/:]+)(?::([A-Za-z]+))?)?$/;

/** The headers with the key as Google's clients send it (`x-goog-api-key`, `?key=`) where governance reads one. */
function keyHeaders(call: SurfaceCall): IncomingHttpHeaders {
  const header = call.req.headers["x-goog-api-key"];
  const key = typeof header === "string" && header !== "" ? header : call.query.get("key");
  return key === null || key === undefined ? call.req.headers : { ...call.req.headers, "x-api-key": key, authorization: undefined };
}

function callerKey(call: SurfaceCall): number {
  return identify(call, keyHeaders(call));
}

function generate(model: string, method: string): SurfaceHandler {
  return async (call) => {
    const { gateway, res, record, signal } = call;
    const counting = method === "countTokens";
    const { vk, raw, json } = await readRequest(call, counting ? "other" : "chat", keyHeaders(call));
    const stream = method === "streamGenerateContent";
    record.model = model;
    record.stream = stream;
    const g = typeof json.generationConfig === "object" && json.generationConfig !== null ? (json.generationConfig as Record<string, unknown>) : {};
    const forms = new ChatForms("OpenAI chat", (carry) => toChat(json, model, stream, carry));
    const req: InboundRequest = {
      endpoint: counting ? "count_tokens" : "generate",
      format: "gemini",
      model,
      raw,
      json,
      stream,
      outputCap: typeof g.maxOutputTokens === "number" ? g.maxOutputTokens : undefined,
      headers: headersMatching(call.req.headers, GOOGLE_HEADERS),
      toChat: counting ? undefined : forms.toChat,
    };
    if (!counting) return gateway.proxy(req, new GeminiSink(res, model, forms), record, signal, vk, res);
    if (gateway.routeFormats(model).includes("gemini")) {
      try {
        return await gateway.proxy(req, res, record, signal, vk);
      } catch (e) {
        // The caller's own mistakes stand; no Gemini account answering leaves the estimate.
        if (!(e instanceof HttpError) || e.status < 500 || res.headersSent) throw e;
      }
    }
    const text = JSON.stringify([json.systemInstruction ?? "", json.contents ?? (json.generateContentRequest as { contents?: unknown } | undefined)?.contents ?? [], json.tools ?? []]);
    sendJson(res, 200, { totalTokens: Math.max(1, Math.ceil(text.length / 4)) }, record.id, { "x-gwc-estimate": "characters/4" });
  };
}

/** The Model resource for a served model name. */
function modelInfo(id: string): object {
  return { name: `models/${id}`, baseModelId: id, version: "gwc", displayName: id, supportedGenerationMethods: ["generateContent", "streamGenerateContent", "countTokens"] };
}

const list: SurfaceHandler = async (call) => {
  callerKey(call);
  sendJson(call.res, 200, { models: (await servedModels(call.gateway)).map(modelInfo) }, call.record.id);
};

function one(model: string): SurfaceHandler {
  return async (call) => {
    callerKey(call);
    if (!(await servedModels(call.gateway)).includes(model)) throw new HttpError(404, "invalid_request_error", "model_not_found", `models/${model} is not found for this gateway.`, {}, "model");
    sendJson(call.res, 200, modelInfo(model), call.record.id);
  };
}

/** Google's request headers (`x-goog-api-client`, `x-goog-user-project`, …), relayed to Gemini accounts; never the caller's key. */
const GOOGLE_HEADERS = /^x-goog-(?!api-key$)/;

const METHODS = new Set(["generateContent", "streamGenerateContent", "countTokens"]);

/** The handler for a Gemini API path, or undefined. `GET /v1/models` stays OpenAI's (only `/gemini/v1/models` is Google's). */
export function geminiRoute(method: string, path: string): SurfaceHandler | undefined {
  const m = PATH.exec(path);
  if (m === null) return undefined;
  const [, version, encoded, action] = m;
  const gemini = path.startsWith("/gemini/");
  if (version === "v1" && !gemini && action === undefined) return undefined;
  const model = encoded === undefined ? undefined : decodeURIComponent(encoded);
  if (method === "GET" && action === undefined) return inShape(shape, model === undefined ? list : one(model));
  if (method === "POST" && model !== undefined && action !== undefined && METHODS.has(action)) return inShape(shape, generate(model, action));
  return inShape(shape, async () => {
    throw new HttpError(404, "invalid_request_error", "unknown_url", `Unknown request URL: ${method} ${path}.`);
  });
}
