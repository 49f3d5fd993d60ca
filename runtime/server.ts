import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { AnthropicSink, anthropicError, toOpenAI } from "./anthropic-inbound.ts";
import { CallerSignal } from "./caller-signal.ts";
import { errorTypeOfStatus } from "./error-type.ts";
import { badRequest, HttpError } from "./errors.ts";
import type { Gateway, Runtime } from "./gateway.ts";
import type { Endpoint } from "./providers/adapter.ts";
import { adminApi } from "./admin-api.ts";
import { uiCompiler, uiPage } from "./ui-page.ts";
import { newRecord, type Operation, type RequestRecord } from "./request-record.ts";
import { storeHealth } from "./state-store.ts";

const ENDPOINTS: Record<string, Endpoint> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completions",
  "/v1/embeddings": "embeddings",
};

const OPERATIONS: Record<Endpoint, Operation> = { chat: "chat", completions: "text_completion", embeddings: "embeddings" };

export interface GatewayServer {
  server: Server;
  /** The gateway new requests go to; swapping it is a reload. */
  gateway: Gateway;
  /** Stops accepting, lets in-flight requests finish (up to the plan's shutdown timeout), closes pools. */
  shutdown(): Promise<void>;
}

/**
 * The HTTP face: OpenAI-compatible endpoints over node:http. A request reads
 * `state.gateway` once when it starts, so a reload never disturbs it.
 */
export function createGatewayServer(runtime: Runtime, gateway: Gateway): GatewayServer {
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;
  const state: GatewayServer = {
    server: createServer((req, res) => {
      inFlight++;
      const signal = new CallerSignal();
      const record = newRecord(requestIdOf(req), req.method ?? "GET", pathOf(req.url ?? "/"));
      res.once("close", () => {
        if (!res.writableFinished) {
          signal.abort();
          record.errorType ??= "cancelled";
        }
        if (--inFlight === 0) idle?.();
        finish(runtime, record, res.statusCode);
      });
      handle(runtime, state.gateway, req, res, signal, draining, record).catch(() => res.destroy());
    }),
    gateway,
    async shutdown() {
      draining = true;
      const closed = new Promise<void>((ok) => state.server.close(() => ok()));
      state.server.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((ok) => (idle = ok)),
          new Promise<void>((ok) => setTimeout(ok, state.gateway.plan.server.shutdownTimeoutMs).unref()),
        ]);
      }
      state.server.closeAllConnections();
      await closed;
      await runtime.close();
    },
  };
  state.server.keepAliveTimeout = 65_000;
  return state;
}

/** The caller's own `x-request-id` when it is a plain token, else a new one. */
function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers["x-request-id"];
  return typeof incoming === "string" && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

/** The response is over: close the record and hand it to every observer. An observer's failure never reaches the request. */
function finish(runtime: Runtime, record: RequestRecord, status: number): void {
  record.status = status;
  record.durationMs = performance.now() - record.startMono;
  if (status >= 400 && record.errorType === null) record.errorType = errorTypeOfStatus(status);
  for (const observe of runtime.observers) {
    try {
      observe(record);
    } catch (e) {
      console.error(`gwc: an observer failed on request ${record.id}: ${(e as Error)?.message ?? e}`);
    }
  }
}

async function handle(runtime: Runtime, gateway: Gateway, req: IncomingMessage, res: ServerResponse, signal: CallerSignal, draining: boolean, record: RequestRecord): Promise<void> {
  const requestId = record.id;
  const path = record.path;
  try {
    if (req.method === "GET") {
      if (path === "/healthz") return json(res, 200, { status: "ok" }, requestId);
      if (path === "/readyz") {
        // A store that cannot write its snapshots degrades readiness, never liveness.
        const state = storeHealth(gateway.governance.store);
        const status = draining ? "draining" : state?.ok === false ? "degraded" : "ready";
        return json(res, status === "ready" ? 200 : 503, state === undefined ? { status } : { status, state }, requestId);
      }
      if (path === "/v1/usage") return usage(gateway, req, res, requestId);
      if (path === "/ui" || path === "/ui/") return ui(res);
      if (path === "/ui/compiler.js") return uiScript(res);
      if (path === "/v1/models") {
        const data = gateway.models().map((id) => ({ id, object: "model", created: 0, owned_by: "gwc" }));
        return json(res, 200, { object: "list", data }, requestId);
      }
    }
    if (path.startsWith("/admin/api/")) return await adminApi(runtime, gateway, req, res, path);
    if (path === "/anthropic/v1/messages" && req.method === "POST") return await anthropic(gateway, req, res, record, signal);
    const endpoint = ENDPOINTS[path];
    if (endpoint === undefined) {
      throw new HttpError(404, "invalid_request_error", "unknown_url", `Unknown request URL: ${req.method} ${path}.`);
    }
    if (req.method !== "POST") {
      throw new HttpError(405, "invalid_request_error", "method_not_allowed", `${path} takes POST, not ${req.method}.`, { allow: "POST" });
    }
    record.operation = OPERATIONS[endpoint];
    const vk = gateway.governance.identify(req.headers);
    record.keyId = gateway.plan.virtualKeys[vk]?.id ?? null;
    const raw = await readBody(req, gateway.plan.server.maxBodyBytes);
    const parsed = parseJson(raw);
    if (typeof parsed.model !== "string" || parsed.model === "") throw badRequest("You must provide a model parameter.", "missing_model", "model");
    if (parsed.stream !== undefined && typeof parsed.stream !== "boolean") throw badRequest("'stream' must be true or false.", "invalid_type", "stream");
    const stream = parsed.stream === true && endpoint !== "embeddings";
    record.model = parsed.model;
    record.stream = stream;
    await gateway.proxy({ endpoint, raw, json: parsed, stream }, res, record, signal, vk);
  } catch (e) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const err = e instanceof HttpError ? e : new HttpError(500, "server_error", "internal_error", "The gateway failed to handle this request; it has been logged.");
    record.errorType = err.errorType;
    if (!(e instanceof HttpError)) console.error(`gwc: request ${requestId} failed: ${(e as Error)?.message ?? e}`);
    json(res, err.status, err.body(), requestId, err.headers);
  }
}

/** Anthropic's Messages API over the same routing; errors in Anthropic's shape. */
async function anthropic(gateway: Gateway, req: IncomingMessage, res: ServerResponse, record: RequestRecord, signal: CallerSignal): Promise<void> {
  const requestId = record.id;
  record.operation = "chat";
  try {
    const vk = gateway.governance.identify(req.headers);
    record.keyId = gateway.plan.virtualKeys[vk]?.id ?? null;
    const raw = await readBody(req, gateway.plan.server.maxBodyBytes);
    const json = toOpenAI(parseJson(raw));
    const body = Buffer.from(JSON.stringify(json));
    record.model = typeof json.model === "string" ? json.model : null;
    record.stream = json.stream === true;
    await gateway.proxy({ endpoint: "chat", raw: body, json, stream: json.stream === true }, new AnthropicSink(res), record, signal, vk);
  } catch (e) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const err = e instanceof HttpError ? e : new HttpError(500, "server_error", "internal_error", "The gateway failed to handle this request.");
    record.errorType = err.errorType;
    res.writeHead(err.status, { "content-type": "application/json", "x-request-id": requestId, ...err.headers });
    res.end(JSON.stringify(anthropicError(err.status, err.message)));
  }
}

/** A key sees its own spend and limits; the admin key sees every key's. */
function usage(gateway: Gateway, req: IncomingMessage, res: ServerResponse, requestId: string): void {
  const gov = gateway.governance;
  const now = Date.now();
  if (gov.isAdmin(req.headers)) {
    return json(res, 200, { object: "list", data: gateway.plan.virtualKeys.map((_, i) => gov.usageOf(i, now)) }, requestId);
  }
  if (gov.open) throw new HttpError(404, "invalid_request_error", "no_virtual_keys", "This gateway has no virtual keys, so there is no per-key usage.");
  json(res, 200, gov.usageOf(gov.identify(req.headers), now), requestId);
}

/** The dashboard: one self-contained page; its data comes from /admin/api behind the admin key. */
function ui(res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    // Everything is inline; nothing may load from elsewhere.
    // ajv compiles the schema into a function in the browser, as it does in `gwc check`: hence 'unsafe-eval'.
    "content-security-policy": "default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
    "x-frame-options": "DENY",
  });
  res.end(uiPage());
}

/** The compiler's checks for the dashboard's config page, loaded when that page opens. */
function uiScript(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" });
  res.end(uiCompiler());
}

function json(res: ServerResponse, status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "x-request-id": requestId, ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, "invalid_request_error", "request_too_large", `The request body is larger than ${limit} bytes.`);
  if (Number(req.headers["content-length"] ?? 0) > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(tooLarge());
      } else {
        chunks.push(c);
      }
    });
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJson(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString("utf8"));
  } catch {
    throw badRequest("The request body is not valid JSON.", "invalid_json");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw badRequest("The request body must be a JSON object.", "invalid_json");
  return value as Record<string, unknown>;
}
