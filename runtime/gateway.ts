import type { ServerResponse } from "node:http";
import { errors as undiciErrors } from "undici";
import { HttpError } from "./errors.ts";
import { AccountHealth } from "./health.ts";
import type { Plan, PlanRoute } from "./plan.ts";
import { PoolBusyError, ProviderPool } from "./pool.ts";
import type { Adapter, InboundRequest } from "./providers/adapter.ts";
import { adapterFor } from "./providers/index.ts";
import { Router } from "./router.ts";
import { resolveApiKeys } from "./secrets.ts";

interface AccountRuntime {
  id: string;
  adapter: Adapter | undefined;
  pool: ProviderPool;
  basePath: string;
  apiKey: string | null;
  health: AccountHealth;
}

/** What one try at one account came to, when it did not answer the caller. */
interface Failure {
  account: string;
  status?: number;
  retryAfterMs?: number;
  timeout?: boolean;
  reason: string;
}

const ERROR_TEXT_LIMIT = 300;

/**
 * State that outlives a config reload: pools (by pool id) and circuit
 * breakers (by account id). A reload builds a new Gateway over the same
 * Runtime; requests in flight finish on the Gateway they started with.
 */
export class Runtime {
  readonly pools = new Map<string, ProviderPool>();
  readonly health = new Map<string, AccountHealth>();

  /** Builds a gateway for a plan; throws StartupError when a secret is missing. */
  load(plan: Plan, env: NodeJS.ProcessEnv = process.env): Gateway {
    const apiKeys = resolveApiKeys(plan, env);
    const used = new Set<string>();
    const accounts = plan.accounts.map((a, i): AccountRuntime => {
      const config = plan.pools[a.pool];
      const url = new URL(a.baseUrl);
      let pool = this.pools.get(config.id);
      if (pool === undefined || JSON.stringify(pool.config) !== JSON.stringify(config)) {
        if (pool !== undefined) retire(pool);
        pool = new ProviderPool(config, url.origin);
        this.pools.set(config.id, pool);
      }
      used.add(config.id);
      let health = this.health.get(a.id);
      if (health === undefined) this.health.set(a.id, (health = new AccountHealth()));
      return { id: a.id, adapter: adapterFor(a.wire), pool, basePath: url.pathname.replace(/\/+$/, ""), apiKey: apiKeys[i], health };
    });
    for (const [id, pool] of this.pools) {
      if (!used.has(id)) {
        this.pools.delete(id);
        retire(pool);
      }
    }
    return new Gateway(plan, accounts);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }
}

/** Closes a pool once nothing is using or waiting for it. */
function retire(pool: ProviderPool): void {
  const timer = setInterval(() => {
    if (pool.active === 0 && pool.queued === 0) {
      clearInterval(timer);
      void pool.close();
    }
  }, 100);
  timer.unref();
}

export class Gateway {
  readonly router: Router;

  constructor(
    readonly plan: Plan,
    private readonly accounts: AccountRuntime[],
  ) {
    this.router = new Router(plan);
  }

  /** Accounts whose wire format this runtime cannot speak yet: they get no traffic. */
  unsupportedAccounts(): string[] {
    return this.accounts.filter((a) => a.adapter === undefined).map((a) => a.id);
  }

  models(): string[] {
    const names = new Set<string>();
    for (const r of this.plan.routes) {
      if (r.model !== "*") names.add(r.model);
      else for (const t of r.targets.slice(0, r.members)) if (t.model !== null) names.add(t.model);
    }
    return [...names];
  }

  /**
   * Serves one request: pick among healthy accounts, then walk the failover
   * order, each account at most once, until one answers. Everything before the
   * first byte to the caller may fail over; nothing after it does.
   */
  async proxy(req: InboundRequest, res: ServerResponse, requestId: string, signal: AbortSignal): Promise<void> {
    const model = req.json.model as string;
    const route = this.router.route(model);
    if (route === undefined) {
      throw new HttpError(404, "invalid_request_error", "model_not_found", `The model '${model}' is not served by this gateway. Served: ${this.models().join(", ") || "none"}.`, {}, "model");
    }
    const down = (a: number) => this.accounts[a].adapter === undefined || this.accounts[a].health.isDown();
    const first = this.router.pick(route, Math.random(), down);
    const failures: Failure[] = [];
    const tried = new Set<number>();
    const tryTarget = async (p: number): Promise<boolean> => {
      const account = route.targets[p].account;
      tried.add(account);
      const failure = await this.#attempt(route, p, model, req, res, requestId, signal);
      if (failure === undefined) return true;
      failures.push(failure);
      return false;
    };

    // Healthy accounts first: the weighted pick, then the failover order.
    if (first >= 0 && (await tryTarget(first))) return;
    if (route.fallback.enabled || first < 0) {
      for (const p of first >= 0 ? this.router.failover(route, first) : route.order) {
        if (tried.has(route.targets[p].account) || down(route.targets[p].account)) continue;
        if (await tryTarget(p)) return;
        if (!route.fallback.enabled || signal.aborted) break;
      }
      // Nothing healthy was left to try: try the rest anyway rather than refuse.
      if (failures.length === 0) {
        for (const p of route.order) {
          const account = route.targets[p].account;
          if (tried.has(account) || this.accounts[account].adapter === undefined) continue;
          if (await tryTarget(p)) return;
          if (!route.fallback.enabled || signal.aborted) break;
        }
      }
    }
    throw allFailed(model, failures);
  }

  /** One try at one account. Undefined when the caller has been answered. */
  async #attempt(
    route: PlanRoute,
    p: number,
    model: string,
    req: InboundRequest,
    res: ServerResponse,
    requestId: string,
    signal: AbortSignal,
  ): Promise<Failure | undefined> {
    const target = route.targets[p];
    const acct = this.accounts[target.account];
    const adapter = acct.adapter!;
    if (!adapter.supports(req.endpoint)) return { account: acct.id, reason: `its provider has no ${req.endpoint} endpoint` };
    const upstream = adapter.request(req, acct.basePath, target.model ?? model, acct.apiKey);
    try {
      const wait = acct.pool.acquire(signal);
      if (wait !== undefined) await wait;
    } catch (e) {
      if (e instanceof PoolBusyError) {
        if (e.terminal) throw new HttpError(503, "server_error", "pool_full", `Request dropped: ${e.message}.`);
        return { account: acct.id, reason: e.message };
      }
      throw e;
    }
    acct.health.attempt();
    const { fallback } = route;
    let committed = false;
    try {
      const r = await acct.pool.dispatcher.request({ method: "POST", path: upstream.path, headers: upstream.headers, body: upstream.body, signal });
      const status = r.statusCode;
      if (status === 401 || status === 403) {
        await r.body.dump();
        acct.health.failure();
        // The upstream's text may quote our key: never pass it on.
        return { account: acct.id, status, reason: `${status}: the provider rejected the gateway's credentials for this account` };
      }
      const retryable = fallback.enabled && fallback.statuses.includes(status);
      if (status >= 500 || status === 429) {
        const retryAfterMs = status === 429 ? parseRetryAfter(r.headers["retry-after"]) : undefined;
        acct.health.failure(retryAfterMs);
        if (retryable) {
          const text = await readLimited(r.body);
          return { account: acct.id, status, retryAfterMs, reason: `${status}: ${upstreamMessage(text)}` };
        }
      } else {
        // 2xx, and 4xx that are the caller's own (bad request, unknown model).
        acct.health.success();
      }
      if (!req.stream || status !== 200) {
        const body = Buffer.from(await r.body.arrayBuffer());
        committed = true;
        res.writeHead(status, {
          "content-type": String(r.headers["content-type"] ?? "application/json"),
          "x-request-id": requestId,
          "x-gwc-account": acct.id,
        });
        res.end(body);
        return undefined;
      }
      return await this.#stream(r.body, acct, res, requestId, () => (committed = true));
    } catch (e) {
      if (committed || signal.aborted) {
        if (!res.headersSent) res.destroy();
        return undefined;
      }
      acct.health.failure();
      const timeout = isTimeout(e);
      const reason = timeout
        ? `timed out after ${acct.pool.config.requestTimeoutMs} ms`
        : `connection failed (${(e as { code?: string }).code ?? (e as Error).message})`;
      const failure: Failure = { account: acct.id, timeout, reason };
      if ((timeout && !fallback.onTimeout) || (!timeout && !fallback.onConnectionError)) {
        throw allFailed(model, [failure]);
      }
      return failure;
    } finally {
      acct.pool.release();
    }
  }

  /**
   * Relays an SSE stream. The first event is read before anything is sent, so
   * an upstream that opens with an error still fails over; after that, a
   * broken or truncated stream ends with an error event, never `[DONE]`.
   */
  async #stream(
    body: AsyncIterable<Buffer> & { destroy(): void },
    acct: AccountRuntime,
    res: ServerResponse,
    requestId: string,
    commit: () => void,
  ): Promise<Failure | undefined> {
    const chunks = body[Symbol.asyncIterator]();
    let head = "";
    while (!head.includes("\n\n")) {
      const next = await chunks.next();
      if (next.done) break;
      head += next.value.toString("utf8");
    }
    const firstEvent = head.slice(0, head.indexOf("\n\n") >>> 0);
    const firstError = sseError(firstEvent);
    if (firstError !== undefined || head === "") {
      body.destroy();
      acct.health.failure();
      return { account: acct.id, status: 200, reason: firstError ?? "the stream ended before its first event" };
    }
    commit();
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-request-id": requestId,
      "x-gwc-account": acct.id,
    });
    let tail = head.slice(-32);
    let done = head.includes("data: [DONE]");
    const write = async (text: string) => {
      if (!res.write(text)) await new Promise<void>((ok) => res.once("drain", ok).once("close", ok));
    };
    await write(head);
    let failure: string | undefined;
    try {
      for (let next = await chunks.next(); !next.done && !res.destroyed; next = await chunks.next()) {
        const text = next.value.toString("utf8");
        done ||= (tail + text).includes("data: [DONE]");
        tail = text.length >= 32 ? text.slice(-32) : (tail + text).slice(-32);
        await write(text);
      }
      if (!done && !res.destroyed) failure = "the upstream ended the stream before it finished";
    } catch (e) {
      failure = isTimeout(e) ? `the upstream stalled for ${acct.pool.config.requestTimeoutMs} ms` : "the upstream connection broke mid-stream";
    }
    if (failure !== undefined) {
      acct.health.failure();
      const event = { error: { message: `${failure} (account ${acct.id}); the answer is incomplete.`, type: "upstream_error", code: "stream_interrupted", param: null } };
      res.end(`data: ${JSON.stringify(event)}\n\n`);
    } else {
      res.end();
    }
    return undefined;
  }
}

function allFailed(model: string, failures: Failure[]): HttpError {
  if (failures.length === 0) {
    return new HttpError(503, "server_error", "no_account_available", `No account can serve model '${model}' right now.`);
  }
  const tried = failures.map((f) => `${f.account} (${f.reason})`).join("; ");
  const message = `Every account tried for model '${model}' failed: ${tried}.`;
  if (failures.every((f) => f.status === 429)) {
    const wait = Math.min(...failures.map((f) => f.retryAfterMs ?? 1000));
    return new HttpError(429, "rate_limit_error", "all_accounts_rate_limited", message, { "retry-after": String(Math.max(1, Math.ceil(wait / 1000))) });
  }
  if (failures.every((f) => f.timeout)) return new HttpError(504, "server_error", "all_accounts_timed_out", message);
  return new HttpError(502, "server_error", "all_accounts_failed", message);
}

function isTimeout(e: unknown): boolean {
  return e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError;
}

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  let text = "";
  for await (const chunk of body) {
    text += chunk.toString("utf8");
    if (text.length > 4096) {
      body.destroy();
      break;
    }
  }
  return text;
}

/** The message of an OpenAI-shaped error body, shortened; the raw text otherwise. */
function upstreamMessage(text: string): string {
  let message = text;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof parsed.error === "object" ? parsed.error?.message : (parsed.error ?? parsed.message);
    if (typeof m === "string") message = m;
  } catch {
    // not JSON: keep the text
  }
  message = message.replace(/\s+/g, " ").trim();
  return message.length > ERROR_TEXT_LIMIT ? `${message.slice(0, ERROR_TEXT_LIMIT)}…` : message || "no message";
}

/** The error message carried by an SSE event, if it is an error event. */
function sseError(event: string): string | undefined {
  const data = event
    .split("\n")
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
  if (!data.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(data) as { error?: unknown };
    return parsed.error === undefined ? undefined : `the stream opened with an error: ${upstreamMessage(data)}`;
  } catch {
    return undefined;
  }
}
