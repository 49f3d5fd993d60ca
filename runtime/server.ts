import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { readBody, tooLarge } from "./body-reader.ts";
import { CallerSignal } from "./caller-signal.ts";
import { errorTypeOfStatus } from "./error-type.ts";
import { badRequest, HttpError } from "./errors.ts";
import { callerDeadline } from "./caller-deadline.ts";
import type { Gateway, Runtime } from "./gateway.ts";
import { event } from "./log.ts";
import type { GatewayMetrics } from "./metrics.ts";
import type { Endpoint } from "./providers/adapter.ts";
import { adminApi } from "./admin-api.ts";
import { type Linked, LiveList } from "./live-list.ts";
import { uiCompiler, uiPage } from "./ui-page.ts";
import { newRecord, type Operation, type RequestRecord } from "./request-record.ts";
import { validateRequest } from "./request-validate.ts";
import { storeHealth, type StoreHealth } from "./state-store.ts";
import { anthropicError } from "./surfaces/anthropic.ts";
import { surfaceRoute } from "./surfaces/routes.ts";
import { fanOut, needsFanOut } from "./surfaces/fan-out.ts";
import { servedModels } from "./surfaces/model-catalog.ts";
import { headersMatching, OPENAI_HEADERS } from "./surfaces/surface.ts";

/** The OpenAI paths served here; the other surfaces (runtime/surfaces/) serve theirs. */
const ENDPOINTS: Record<string, "chat" | "embeddings"> = {
  "/v1/chat/completions": "chat",
  "/v1/embeddings": "embeddings",
};

const OPERATIONS: Partial<Record<Endpoint, Operation>> = { chat: "chat", completions: "text_completion", embeddings: "embeddings" };

export interface GatewayServer {
  server: Server;
  /** The gateway new requests go to; swapping it is a reload (its server settings apply to new connections). */
  gateway: Gateway;
  /** Why the gateway is not ready, by cause (e.g. `accept`: descriptors exhausted); empty when ready. */
  readonly unready: Map<string, string>;
  /**
   * Drains: stops accepting, closes idle connections at once, answers every
   * request with `Connection: close`, and resolves as soon as the last request
   * has ended. Requests still running at the plan's shutdown timeout are cut:
   * a stream gets an error event (`shutting_down`), a pending answer a 503.
   * Then the pools and the store close (the store's final snapshot).
   */
  shutdown(): Promise<void>;
}

/** One request in flight, for the drain: its response, how to stop it, and whether it streams. */
interface Live extends Linked<Live> {
  res: ServerResponse;
  signal: CallerSignal;
  record: RequestRecord;
  surface: "openai" | "anthropic";
}

/** How long requests cut at the shutdown timeout get to settle their budgets before the final snapshot. */
const SETTLE_GRACE_MS = 2000;
/** How often node checks connections against the header timeout. */
const CONNECTION_CHECK_MS = 500;

/**
 * The HTTP face: OpenAI-compatible endpoints over node:http. A request reads
 * `state.gateway` once when it starts, so a reload never disturbs it.
 */
export function createGatewayServer(runtime: Runtime, gateway: Gateway): GatewayServer {
  const live = new LiveList<Live>();
  let draining = false;
  let idle: (() => void) | undefined;
  let current = gateway;
  const unready = new Map<string, string>();
  const server = createServer({ requestTimeout: 0, connectionsCheckingInterval: CONNECTION_CHECK_MS }, (req, res) => {
    const signal = new CallerSignal();
    const record = newRecord(requestIdOf(req), req.method ?? "GET", pathOf(req.url ?? "/"));
    if (runtime.tracing !== undefined) record.trace = runtime.tracing.begin(req.headers, record);
    const entry: Live = { res, signal, record, surface: record.path.startsWith("/anthropic/") ? "anthropic" : "openai", prev: undefined, next: undefined };
    live.add(entry);
    // A write after the response ended (a relay racing a cut) must not become an uncaught 'error'.
    res.on("error", ignore);
    if (draining) res.shouldKeepAlive = false;
    // "close" comes once: a plain listener (once() wraps it).
    res.on("close", () => {
      if (!res.writableFinished) {
        signal.abort();
        record.errorType ??= "cancelled";
      }
      finish(runtime, record, res.statusCode);
    });
    void serve(entry, req);
  });
  /** One request, counted until its handler is done, not its socket: a budget settles after the response ends. */
  const serve = async (entry: Live, req: IncomingMessage): Promise<void> => {
    const { res } = entry;
    try {
      await handle(runtime, current, req, res, entry.signal, draining, entry.record, unready);
    } catch {
      res.destroy();
    } finally {
      live.delete(entry);
      if (draining) setImmediate(() => server.closeIdleConnections());
      if (live.size === 0) idle?.();
    }
  };
  // `Expect: 100-continue`: an oversized body is refused before its sender sends it.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    const limit = current.plan.server.maxBodyBytes;
    if (Number(req.headers["content-length"] ?? 0) <= limit) {
      res.writeContinue();
      server.emit("request", req, res);
      return;
    }
    const err = tooLarge(limit);
    res.writeHead(err.status, { "content-type": "application/json", ...err.headers });
    res.end(JSON.stringify(err.body()));
  });
  server.on("clientError", (e: NodeJS.ErrnoException, socket: Duplex) => clientError(e, socket, current.plan.server));
  // Accept failures arrive here once listening. Out of descriptors (EMFILE), libuv itself accepts
  // and closes what it cannot hold and reports nothing; any other accept failure lands here: the
  // gateway stays up, says so on /readyz, and recovers with the next accepted connection.
  let refused = 0;
  server.on("error", (e: NodeJS.ErrnoException) => {
    if (!server.listening) return; // a listen failure: whoever called listen() handles it
    if (refused++ === 0) event("accept_failed", { error: e.code ?? e.message }, `refusing new connections: accept failed (${e.code ?? e.message}); serving the open ones`, "error");
    unready.set("accept", `new connections are being refused: ${e.code ?? e.message}`);
  });
  server.on("connection", () => {
    if (refused === 0) return;
    event("accept_recovered", { refused }, `accepting connections again (${refused} refused)`);
    refused = 0;
    unready.delete("accept");
  });
  const apply = (g: Gateway) => {
    const s = g.plan.server;
    server.headersTimeout = s.headerTimeoutMs;
    server.keepAliveTimeout = s.keepAliveTimeoutMs;
  };
  apply(gateway);
  return {
    server,
    unready,
    get gateway() {
      return current;
    },
    set gateway(g: Gateway) {
      current = g;
      apply(g);
    },
    async shutdown() {
      draining = true;
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      server.closeIdleConnections();
      // Answers not yet begun say `Connection: close`; the rest close when they end.
      for (const { res } of live) if (!res.headersSent) res.shouldKeepAlive = false;
      if (live.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const done = new Promise<void>((ok) => (idle = ok));
        const timedOut = await Promise.race([
          done.then(() => false),
          new Promise<boolean>((ok) => (timer = setTimeout(ok, current.plan.server.shutdownTimeoutMs, true))),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          for (const entry of live) cut(entry);
          await Promise.race([done, new Promise<void>((ok) => setTimeout(ok, SETTLE_GRACE_MS).unref())]);
        }
      }
      server.closeAllConnections();
      await closed;
      await runtime.close();
    },
  };
}

const ignore = () => {};

/**
 * A request still running at the shutdown timeout: a stream ends with an
 * error event in its surface's shape (never a clean finish), an answer not
 * yet begun is a 503; then the upstream is abandoned, and the attempt
 * settles its budget to the usage the stream reported.
 */
function cut({ res, signal, record, surface }: Live): void {
  const message = "The gateway is shutting down; the answer is incomplete.";
  if (res.headersSent) {
    if (record.stream && !res.writableEnded) {
      res.end(
        surface === "anthropic"
          ? `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message } })}\n\n`
          : `data: ${JSON.stringify({ error: { message, type: "server_error", code: "shutting_down", param: null } })}\n\n`,
      );
    }
  } else {
    const body = surface === "anthropic" ? anthropicError(503, "The gateway is shutting down.") : { error: { message: "The gateway is shutting down.", type: "server_error", code: "shutting_down", param: null } };
    record.errorType = "cancelled";
    res.writeHead(503, { "content-type": "application/json", connection: "close", "x-request-id": record.id });
    res.end(JSON.stringify(body));
  }
  signal.abort();
}

/**
 * A connection that never made a whole request: its headers did not arrive in
 * time (408), were too large (431), or did not parse (400). Answered in JSON
 * when the socket can still take it, then closed; never thrown.
 */
function clientError(e: NodeJS.ErrnoException, socket: Duplex, settings: Gateway["plan"]["server"]): void {
  if (e.code === "ECONNRESET" || !socket.writable || (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    e.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "Request Timeout", "request_timeout", `The request headers did not arrive within ${settings.headerTimeoutMs} ms (server.header_timeout).`]
      : e.code === "HPE_HEADER_OVERFLOW"
        ? [431, "Request Header Fields Too Large", "headers_too_large", "The request headers are too large."]
        : [400, "Bad Request", "malformed_request", "The request is not valid HTTP/1.1."];
  const body = JSON.stringify({ error: { message, type: "invalid_request_error", code, param: null } });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  (socket as Socket).destroySoon();
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
      event("observer_failed", { req_id: record.id, error: (e as Error)?.message ?? String(e) }, `an observer failed on request ${record.id}`, "error");
    }
  }
}

async function handle(
  runtime: Runtime,
  gateway: Gateway,
  req: IncomingMessage,
  res: ServerResponse,
  signal: CallerSignal,
  draining: boolean,
  record: RequestRecord,
  unready: ReadonlyMap<string, string>,
): Promise<void> {
  const requestId = record.id;
  const path = record.path;
  try {
    if (req.method === "GET") {
      if (path === "/healthz") return json(res, 200, { status: "ok" }, requestId);
      if (path === "/readyz") return readyz(res, draining, unready, storeHealth(gateway.governance.store), requestId);
      if (path === "/v1/usage") return usage(gateway, req, res, requestId);
      if (path === "/metrics" && runtime.metrics !== undefined) return await metrics(runtime.metrics, res);
      if (path === "/ui" || path === "/ui/") return ui(res);
      if (path === "/ui/compiler.js") return uiScript(res);
      if (path === "/v1/models") {
        const data = (await servedModels(gateway)).map((id) => ({ id, object: "model", created: 0, owned_by: "gwc" }));
        return json(res, 200, { object: "list", data }, requestId);
      }
    }
    if (path.startsWith("/admin/api/")) return await adminApi(runtime, gateway, req, res, path);
    // Anthropic, Gemini, the Responses API, legacy completions: each surface answers in its own shape.
    const surface = surfaceRoute(req.method ?? "GET", path);
    if (surface !== undefined) {
      const query = new URLSearchParams((req.url ?? "").slice(path.length + 1));
      return await surface({
        gateway,
        req,
        res,
        record,
        signal,
        path,
        query,
        body: () => readBody(req, res, gateway.plan.server.maxBodyBytes, bodyTimeoutMs(gateway)),
        parse: parseJson,
        unread: () => unreadBody(req, res, gateway.plan.server),
      });
    }
    const endpoint = ENDPOINTS[path];
    if (endpoint === undefined) {
      throw new HttpError(404, "invalid_request_error", "unknown_url", `Unknown request URL: ${req.method} ${path}.`);
    }
    if (req.method !== "POST") {
      throw new HttpError(405, "invalid_request_error", "method_not_allowed", `${path} takes POST, not ${req.method}.`, { allow: "POST" });
    }
    record.operation = OPERATIONS[endpoint] ?? "other";
    const vk = gateway.governance.identify(req.headers);
    record.keyId = gateway.plan.virtualKeys[vk]?.id ?? null;
    const raw = await readBody(req, res, gateway.plan.server.maxBodyBytes, bodyTimeoutMs(gateway));
    if (gateway.plan.observability.logBodies) record.requestBody = raw.toString();
    const parsed = parseJson(raw);
    validateRequest(endpoint, parsed);
    const stream = parsed.stream === true && endpoint !== "embeddings";
    record.model = parsed.model as string;
    record.stream = stream;
    const inbound = { endpoint, raw, json: parsed, stream, headers: headersMatching(req.headers, OPENAI_HEADERS) };
    // `n` choices from providers that give one per call: n calls, merged.
    if (endpoint === "chat" && needsFanOut(gateway, inbound)) return await fanOut(gateway, inbound, res, record, signal, vk);
    await gateway.proxy(inbound, res, record, signal, vk, res, callerDeadline(req.headers));
  } catch (e) {
    if (res.headersSent) {
      // Cut mid-answer: the caller must not take it for a whole one. (An answer already ended, e.g. by the drain, stands.)
      if (!res.writableEnded) res.destroy();
      return;
    }
    await unreadBody(req, res, gateway.plan.server);
    const err = e instanceof HttpError ? e : new HttpError(500, "server_error", "internal_error", "The gateway failed to handle this request; it has been logged.");
    record.errorType = err.errorType;
    if (!(e instanceof HttpError)) event("request_failed", { req_id: requestId, error: (e as Error)?.message ?? String(e) }, `request ${requestId} failed inside the gateway`, "error");
    json(res, err.status, err.body(), requestId, err.headers);
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

/** Prometheus text. Only configured ids and counts are in it, so it needs no key (like /healthz). */
async function metrics(m: GatewayMetrics, res: ServerResponse): Promise<void> {
  const text = await m.text();
  res.writeHead(200, { "content-type": m.contentType });
  res.end(text);
}

function json(res: ServerResponse, status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "x-request-id": requestId, ...headers });
  res.end(JSON.stringify(body));
}

/**
 * Answered before its body was read (401, 404, a refused model): the body is
 * read and discarded first, within the same bounds as any body, so a client
 * still sending it reads the answer instead of a reset, and the connection
 * closes after it.
 */
async function unreadBody(req: IncomingMessage, res: ServerResponse, s: Gateway["plan"]["server"]): Promise<void> {
  if (req.readableEnded || !res.shouldKeepAlive) return;
  await readBody(req, res, 0, s.bodyTimeoutMs).catch(ignore);
}

const bodyTimeoutMs = (gateway: Gateway) => gateway.plan.server.bodyTimeoutMs;

/**
 * Ready unless draining, something listed in `unready` (each cause with its
 * reason), or a store that cannot write its snapshots: these degrade
 * readiness, never liveness.
 */
function readyz(res: ServerResponse, draining: boolean, unready: ReadonlyMap<string, string>, state: StoreHealth | undefined, requestId: string): void {
  const body = (status: string) => ({ status, ...(unready.size > 0 ? { reasons: Object.fromEntries(unready) } : {}), ...(state === undefined ? {} : { state }) });
  if (draining) return json(res, 503, body("draining"), requestId);
  if (unready.size > 0 || state?.ok === false) return json(res, 503, body("degraded"), requestId);
  json(res, 200, body("ready"), requestId);
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
