import type { CallerSignal } from "./caller-signal.ts";
import type { ErrorType } from "./error-type.ts";
import { HttpError } from "./errors.ts";
import { BudgetExceeded, cost, estimate, Governance, type Reservation } from "./governance.ts";
import { AccountHealth, HealthBoard } from "./health.ts";
import type { Plan, PlanRoute } from "./plan.ts";
import { PoolBusyError, ProviderPool } from "./pool.ts";
import type { AccountContext, Adapter, Endpoint, InboundRequest, UpstreamRequest, Usage } from "./providers/adapter.ts";
import { adapterFor } from "./providers/index.ts";
import { jsonObject } from "./providers/classify.ts";
import { isOpenAIAnswer } from "./providers/openai.ts";
import { Router } from "./router.ts";
import { scrubberFor, type Scrubber } from "./scrub.ts";
import { resolveSecrets } from "./secrets.ts";
import type { AttemptRecord, RequestObserver, RequestRecord } from "./request-record.ts";
import type { ApplyResult } from "./admin-api.ts";
import { LiveStats } from "./live-stats.ts";
import { MemoryStore, type StateStore } from "./state-store.ts";
import { withOutputLimit } from "./request-bound.ts";
import { relayStream, translateStream } from "./stream-relay.ts";
import { decodedBody, parseJson, readLimited, thrownType } from "./upstream.ts";

export interface AccountRuntime {
  id: string;
  provider: string;
  adapter: Adapter | undefined;
  pool: ProviderPool;
  context: AccountContext;
  health: AccountHealth;
  edge: Edge;
}

/** How the gateway reads upstream answers, from the plan: one per load, shared by its accounts. */
export interface Edge {
  /** Applied to every upstream text before a caller, a log line or a metric sees it. */
  scrub: Scrubber;
  maxEventBytes: number;
  maxUpstreamBodyBytes: number;
}

export interface ConfigLoad {
  at: number;
  /** The first 12 hex digits of the config's sha256; null when a reload failed before its plan was read. */
  version: string | null;
  ok: boolean;
  message?: string;
}

/** What one try at one account came to, when it did not answer the caller. */
export interface Failure {
  account: string;
  status?: number;
  /** What went wrong, classified once at the adapter's edge. */
  errorType: ErrorType;
  retryAfterMs?: number;
  /** In words, scrubbed of secrets. */
  reason: string;
}


/** Where an answer is written: a ServerResponse, or a sink that translates it (the Anthropic endpoint). */
export interface ResponseSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string): boolean;
  end(chunk?: string | Buffer): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
  destroy(): void;
}

/** What one request carries through its attempts. */
export interface RequestContext {
  req: InboundRequest;
  model: string;
  vk: number;
  res: ResponseSink;
  requestId: string;
  /** What this request did, for metrics, logs, traces and the dashboard. */
  record: RequestRecord;
  signal: CallerSignal;
  /** Rate-limit headers for the caller. */
  headers: Record<string, string>;
  /** After a budget reroute: the key's own budget no longer applies. */
  rerouted: boolean;
}

/**
 * State that outlives a config reload: pools (by pool id), circuit breakers
 * (by account id), the counter store and in-flight counts (by stable ids). A
 * reload builds a new Gateway over the same Runtime; requests in flight finish
 * on the Gateway they started with.
 */
export class Runtime {
  readonly pools = new Map<string, ProviderPool>();
  readonly health = new Map<string, AccountHealth>();
  readonly board = new HealthBoard();
  readonly inflight = new Map<string, number>();
  /** Called once per request, when its response is over, with its record. */
  readonly observers: RequestObserver[] = [];
  /** The last minutes of requests, for the dashboard; observing only once a config sets an admin key. */
  readonly stats = new LiveStats();
  /** Config loads and reload failures, newest last (the last 50). */
  readonly loads: ConfigLoad[] = [];
  /** Compiles a config draft, writes it over the config file and reloads; set only under `gwc serve <config>`. */
  applyConfig: ((source: string) => Promise<ApplyResult>) | undefined;
  #store: StateStore | undefined;

  /** `store` defaults to the embedded store, snapshotted to the first plan's state dir. */
  constructor(store?: StateStore) {
    this.#store = store;
  }

  get store(): StateStore | undefined {
    return this.#store;
  }

  /** Builds a gateway for a plan; throws StartupError when a secret is missing. */
  load(plan: Plan, env: NodeJS.ProcessEnv = process.env, configSource: string | null = null): Gateway {
    const secrets = resolveSecrets(plan, env);
    this.#store ??= new MemoryStore(plan.state.dir, plan.state.snapshotIntervalMs);
    const governance = new Governance(plan, this.#store, this.inflight, env);
    const used = new Set<string>();
    const edge: Edge = { scrub: scrubberFor(plan, env), maxEventBytes: plan.server.maxEventBytes, maxUpstreamBodyBytes: plan.server.maxUpstreamBodyBytes };
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
      if (health === undefined) this.health.set(a.id, (health = new AccountHealth(Date.now, this.board)));
      const context: AccountContext = {
        baseUrl: a.baseUrl,
        basePath: url.pathname.replace(/\/+$/, ""),
        apiKey: secrets[i].apiKey,
        options: Object.freeze({ ...Object.fromEntries(a.options), ...secrets[i].options }),
      };
      return { id: a.id, provider: a.provider, adapter: adapterFor(a.wire), pool, context, health, edge };
    });
    for (const [id, pool] of this.pools) {
      if (!used.has(id)) {
        this.pools.delete(id);
        retire(pool);
      }
    }
    if (plan.server.adminKeyEnv !== null && !this.observers.includes(this.stats.observe)) this.observers.push(this.stats.observe);
    this.noteLoad({ at: Date.now(), version: plan.configSha256.slice(0, 12), ok: true });
    return new Gateway(plan, accounts, governance, this.board, configSource);
  }

  /** A config load or a failed reload, for the dashboard's reload history. */
  noteLoad(load: ConfigLoad): void {
    this.loads.push(load);
    if (this.loads.length > 50) this.loads.shift();
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    await this.#store?.close();
  }
}

/** Closes a pool once nothing is using or waiting for it. */
function retire(pool: ProviderPool): void {
  const timer = setInterval(() => {
    if (pool.active === 0 && pool.queued === 0) {
      clearInterval(timer);
      // A pool that fails to close is gone anyway; its rejection must not end the process.
      pool.close().catch(() => undefined);
    }
  }, 100);
  timer.unref();
}

export class Gateway {
  readonly router: Router;
  /** Where each key's budget reroute goes, built once: its route, or a one-account route. */
  readonly #reroutes = new Map<number, PlanRoute>();
  /** Routes none of whose members can be down for any reason but health (no account limit, a known wire). */
  readonly #plain = new WeakSet<PlanRoute>();
  readonly #supports = new Map<PlanRoute, Map<Endpoint, { any: boolean; all: boolean }>>();

  constructor(
    readonly plan: Plan,
    private readonly accounts: AccountRuntime[],
    readonly governance: Governance,
    private readonly board: HealthBoard,
    /** The config text this plan was built from, for the dashboard's config page; null when not known. */
    readonly configSource: string | null = null,
  ) {
    this.router = new Router(plan);
    plan.virtualKeys.forEach((k, i) => {
      const to = k.onBudgetExceeded;
      if (to.kind === "route") this.#reroutes.set(i, plan.routes[to.route]);
      if (to.kind === "account") {
        this.#reroutes.set(i, {
          id: `account:${plan.accounts[to.account].id}`,
          model: "*",
          members: 1,
          targets: [{ account: to.account, model: plan.accounts[to.account].model, weight: 1 }],
          order: [0],
          table: { n: 1, total: 1, prob: Uint32Array.of(1), target: Uint32Array.of(0), alias: Uint32Array.of(0) },
          subsets: null,
          without: null,
          fallback: { enabled: false, statuses: [], onTimeout: false, onConnectionError: false },
        });
      }
    });
    for (const route of [...plan.routes, ...this.#reroutes.values()]) {
      const members = route.targets.slice(0, route.members);
      if (members.every((t) => accounts[t.account].adapter !== undefined && plan.accounts[t.account].rateLimit === null)) this.#plain.add(route);
    }
  }

  /**
   * Which of the route's accounts serve an endpoint, worked out once per route
   * and endpoint: `any` (a fallback included), `all` (every member).
   */
  #support(route: PlanRoute, endpoint: Endpoint): { any: boolean; all: boolean } {
    let byEndpoint = this.#supports.get(route);
    if (byEndpoint === undefined) this.#supports.set(route, (byEndpoint = new Map()));
    let s = byEndpoint.get(endpoint);
    if (s === undefined) {
      const serves = (t: { account: number }) => this.accounts[t.account].adapter?.supports(endpoint) === true;
      s = { any: route.targets.some(serves), all: route.targets.slice(0, route.members).every(serves) };
      byEndpoint.set(endpoint, s);
    }
    return s;
  }

  /** An operation no account of the route can perform is the caller's to fix (400), not an upstream failure to retry. */
  #refuseUnsupported(route: PlanRoute, endpoint: Endpoint, model: string): void {
    if (this.#support(route, endpoint).any) return;
    const providers = [...new Set(route.targets.map((t) => this.plan.accounts[t.account].provider))].join(", ");
    throw new HttpError(
      400,
      "invalid_request_error",
      "unsupported_operation",
      `Model '${model}' (route '${route.id}') cannot serve ${endpoint}: none of its accounts' providers (${providers}) offers it. Send ${endpoint} requests to a model routed to a provider that has one.`,
      {},
      "model",
    );
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
   * Serves one request: admission (model allowed, rate limits, concurrency),
   * then the route, then — if the key's own budget is spent and it says so —
   * its reroute.
   */
  async proxy(req: InboundRequest, res: ResponseSink, record: RequestRecord, signal: CallerSignal, vk: number): Promise<void> {
    const model = req.json.model as string;
    const route = this.router.route(model);
    record.route = route?.id ?? null;
    if (route === undefined) {
      throw new HttpError(404, "invalid_request_error", "model_not_found", `The model '${model}' is not served by this gateway. Served: ${this.models().join(", ") || "none"}.`, {}, "model");
    }
    this.#refuseUnsupported(route, req.endpoint, model);
    const admitted = this.governance.admit(vk, model, route, Date.now());
    const admission = admitted instanceof Promise ? await admitted : admitted;
    const ctx: RequestContext = { req, model, vk, res, requestId: record.id, record, signal, headers: admission.headers, rerouted: false };
    try {
      await this.#serve(route, ctx);
    } catch (e) {
      const reroute = this.#reroutes.get(vk);
      if (!(e instanceof BudgetExceeded && e.own && reroute !== undefined && this.#support(reroute, req.endpoint).any)) throw e;
      record.route = reroute.id;
      await this.#serve(reroute, { ...ctx, rerouted: true });
    } finally {
      admission.release();
    }
  }

  /**
   * Pick among healthy accounts, then walk the failover order, each account at
   * most once, until one answers. Everything before the first byte to the
   * caller may fail over; nothing after it does.
   */
  async #serve(route: PlanRoute, ctx: RequestContext): Promise<void> {
    const now = Date.now();
    const endpoint = ctx.req.endpoint;
    const down = (a: number) =>
      this.accounts[a].adapter?.supports(endpoint) !== true || this.accounts[a].health.isDown() || this.governance.accountOverLimit(a, now);
    // Every breaker closed, every member serves this endpoint, and nothing else could take one out: the route's own table.
    const allUp = this.board.unsettled === 0 && this.#plain.has(route) && this.#support(route, endpoint).all;
    const first = this.router.pick(route, Math.random(), allUp ? undefined : down);
    const failures: Failure[] = [];
    const tried = new Set<number>();
    const tryTarget = async (p: number): Promise<boolean> => {
      tried.add(route.targets[p].account);
      const failure = await this.#attempt(route, p, ctx);
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
        if (!route.fallback.enabled || ctx.signal.aborted) break;
      }
      // Nothing healthy was left to try: try the rest anyway rather than refuse.
      if (failures.length === 0) {
        for (const p of route.order) {
          const account = route.targets[p].account;
          if (tried.has(account) || this.accounts[account].adapter === undefined) continue;
          if (await tryTarget(p)) return;
          if (!route.fallback.enabled || ctx.signal.aborted) break;
        }
      }
    }
    throw allFailed(ctx.model, failures);
  }

  /**
   * One try at one account. Undefined when the caller has been answered. It
   * enters the record once it is about to take a connection: a request the
   * gateway refused itself (a budget, an adapter refusing a field) tried no account.
   */
  async #attempt(route: PlanRoute, p: number, ctx: RequestContext): Promise<Failure | undefined> {
    const acct = this.accounts[route.targets[p].account];
    const attempt: AttemptRecord = { account: acct.id, provider: acct.provider, model: route.targets[p].model ?? ctx.model, status: null, errorType: null, ms: 0 };
    let started = -1;
    const begin = () => {
      ctx.record.attempts.push(attempt);
      started = performance.now();
    };
    try {
      const failure = await this.#try(route, p, ctx, attempt, begin);
      if (failure !== undefined) {
        attempt.status ??= failure.status ?? null;
        attempt.errorType ??= failure.errorType;
      }
      return failure;
    } catch (e) {
      attempt.errorType ??= e instanceof HttpError ? e.errorType : "server_error";
      throw e;
    } finally {
      if (started >= 0) {
        attempt.ms = performance.now() - started;
        ctx.record.upstreamMs += attempt.ms;
      }
    }
  }

  async #try(route: PlanRoute, p: number, ctx: RequestContext, attempt: AttemptRecord, begin: () => void): Promise<Failure | undefined> {
    const { req, model, res, requestId, signal } = ctx;
    const target = route.targets[p];
    const acct = this.accounts[target.account];
    const adapter = acct.adapter!;
    if (!adapter.supports(req.endpoint)) return { account: acct.id, errorType: "invalid_request", reason: `its provider has no ${req.endpoint} endpoint` };
    const upstreamModel = target.model ?? model;

    // Budgets: reserve the most this request can cost before any upstream work.
    const gov = this.governance;
    const now = Date.now();
    let reservation: Reservation | undefined;
    const budgets = gov.budgetsFor(ctx.vk, acct.provider, ctx.rerouted);
    if (budgets.length > 0) {
      const price = gov.price(upstreamModel);
      if (price === undefined) {
        throw new HttpError(400, "invalid_request_error", "model_not_priced", `Model '${upstreamModel}' has no price, so budgets cannot be enforced for it. Add it under \`pricing\`.`, {}, "model");
      }
      try {
        const reserved = gov.reserve(budgets, estimate(price, req, this.plan.accounts[target.account].wire), price, now);
        reservation = reserved instanceof Promise ? await reserved : reserved;
      } catch (e) {
        // A key's provider budget only takes that provider out of this request.
        if (e instanceof BudgetExceeded && e.meta.budget.level === "provider") return { account: acct.id, errorType: "budget_exceeded", reason: e.message };
        throw e;
      }
    }
    const metered = reservation !== undefined || gov.metered(ctx.vk, target.account);
    // Under a budget, a request with no output limit is sent with the one it was reserved for.
    const bounded = reservation !== undefined ? withOutputLimit(req, acct.provider) : req;
    const inbound = metered && req.stream && (req.json.stream_options as { include_usage?: unknown } | undefined)?.include_usage !== true ? { ...bounded, injectUsage: true } : bounded;
    let upstream: UpstreamRequest;
    try {
      const built = adapter.request(inbound, acct.context, upstreamModel);
      upstream = built instanceof Promise ? await built : built;
    } catch (e) {
      // The adapter refused the request (e.g. something its provider cannot express).
      if (reservation !== undefined) await gov.cancel(reservation);
      throw e;
    }
    let usage: Usage | undefined;
    let served = false;
    begin();
    try {
      const wait = acct.pool.acquire(signal);
      if (wait !== undefined) await wait;
    } catch (e) {
      if (reservation !== undefined) await gov.cancel(reservation);
      if (e instanceof PoolBusyError) {
        if (e.terminal) throw new HttpError(503, "server_error", "pool_full", `Request dropped: ${e.message}.`, {}, null, "pool_full");
        return { account: acct.id, errorType: "pool_full", reason: e.message };
      }
      throw e;
    }
    acct.health.attempt();
    const counted = gov.countAccountRequest(target.account, now);
    if (counted instanceof Promise) await counted;
    const { fallback } = route;
    let committed = false;
    try {
      const r = await acct.pool.dispatcher.request({ method: "POST", path: upstream.path, headers: upstream.headers, body: upstream.body, signal });
      const status = r.statusCode;
      attempt.status = status;
      const { edge } = acct;
      const body = decodedBody(r.body, r.headers);
      if (body === undefined) {
        await r.body.dump();
        acct.health.failure();
        return { account: acct.id, status, errorType: "server_error", reason: `${status}: the answer came in an encoding the gateway cannot read (${edge.scrub.say(String(r.headers["content-encoding"]))})` };
      }
      if (status >= 300 || !req.stream) {
        const bytes = await readLimited(body, edge.maxUpstreamBodyBytes);
        if (bytes === undefined) {
          acct.health.failure();
          return { account: acct.id, status, errorType: "server_error", reason: `${status}: the answer is larger than ${edge.maxUpstreamBodyBytes} bytes (server.max_upstream_body_bytes)` };
        }
        if (status >= 300) {
          const c = adapter.classify(status, r.headers, bytes.toString());
          if (c.errorType === "auth") {
            acct.health.failure();
            // The upstream's text may quote our key: never pass it on.
            return { account: acct.id, status, errorType: "auth", reason: `${status}: the provider rejected the gateway's credentials for this account` };
          }
          if (ACCOUNT_FAILURES.has(c.errorType)) acct.health.failure(c.retryAfterMs);
          else acct.health.success();
          const message = edge.scrub.say(c.message);
          const failure: Failure = { account: acct.id, status, errorType: c.errorType, retryAfterMs: c.retryAfterMs, reason: `${status}: ${message}` };
          // The config's statuses, read through the classification (Anthropic's 529 is an overload, as a 503 is).
          if (fallback.enabled && (fallback.statuses.includes(status) || fallback.statuses.includes(STATUS_OF[c.errorType] ?? status))) return failure;
          // Not failed over (the caller's own mistake, or a status the config passes on): the caller gets the answer.
          committed = true;
          attempt.errorType = ctx.record.errorType = c.errorType;
          const relayed = adapter.response === undefined;
          res.writeHead(status, { "content-type": relayed ? String(r.headers["content-type"] ?? "application/json") : "application/json", "x-request-id": requestId, "x-gwc-account": acct.id, ...ctx.headers });
          res.end(relayed ? edge.scrub.bytes(bytes) : JSON.stringify({ error: { message, type: errorType(status), code: c.errorType, param: null } }));
          return undefined;
        }
        // A 2xx is an answer only if it reads as one: HTML, broken JSON or another shape is this account failing.
        const json = parseJson(bytes);
        let out: Buffer | undefined;
        if (adapter.response === undefined) out = isOpenAIAnswer(json, req.endpoint) ? bytes : undefined;
        else if (json !== undefined) {
          try {
            const translated = adapter.response(json, req, upstreamModel);
            if (translated !== undefined) out = Buffer.from(JSON.stringify(translated));
          } catch {
            out = undefined;
          }
        }
        if (out === undefined) {
          // An error object under a 200 says what it is; anything else is the upstream failing.
          const text = bytes.toString();
          const c = adapter.classify(status, r.headers, text);
          const said = jsonObject(text)?.error != null;
          acct.health.failure(c.retryAfterMs);
          return { account: acct.id, status, errorType: c.errorType, retryAfterMs: c.retryAfterMs, reason: `${status}: ${said ? edge.scrub.say(c.message) : `the answer is not a ${acct.provider} response`}` };
        }
        acct.health.success();
        served = true;
        committed = true;
        res.writeHead(status, { "content-type": "application/json", "x-request-id": requestId, "x-gwc-account": acct.id, ...ctx.headers });
        res.end(out);
        // The one parse of the answer, read again for its usage.
        if (metered) usage = adapter.usage(json);
        return undefined;
      }
      acct.health.success();
      const commit = () => {
        committed = true;
        ctx.record.ttftMs = performance.now() - ctx.record.startMono;
      };
      const streamed =
        adapter.stream !== undefined
          ? await translateStream(body, acct, ctx, upstreamModel, commit)
          : await relayStream(body, acct, ctx, inbound.injectUsage === true, commit);
      if (streamed.failure !== undefined) return streamed.failure;
      served = true;
      usage = streamed.usage;
      if (streamed.interrupted) attempt.errorType = ctx.record.errorType = "stream_interrupted";
      return undefined;
    } catch (e) {
      if (committed || signal.aborted) {
        if (!res.headersSent) res.destroy();
        return undefined;
      }
      acct.health.failure();
      const kind = thrownType(e);
      const reason =
        kind === "timeout" ? `timed out after ${acct.pool.config.requestTimeoutMs} ms`
        : kind === "server_error" ? `the answer could not be read (${acct.edge.scrub.say((e as Error).message)})`
        : `connection failed (${(e as { code?: string }).code ?? acct.edge.scrub.say((e as Error).message)})`;
      const failure: Failure = { account: acct.id, errorType: kind, reason };
      if ((kind === "timeout" && !fallback.onTimeout) || (kind === "connection_error" && !fallback.onConnectionError)) {
        throw allFailed(model, [failure]);
      }
      return failure;
    } finally {
      acct.pool.release();
      if (served) {
        const { record } = ctx;
        record.account = acct.id;
        record.provider = acct.provider;
        record.responseModel = upstreamModel;
        if (usage !== undefined) {
          const price = gov.price(upstreamModel);
          record.usage = { inputTokens: usage.input, outputTokens: usage.output, cacheReadTokens: usage.cached, cacheWriteTokens: usage.cacheWrite ?? 0 };
          record.costNanoUsd = price === undefined ? null : cost(price, usage);
        }
      }
      if (reservation !== undefined) {
        // Served: settle to the reported usage (the reservation stands when none came). Not served: release it.
        const done = served ? gov.settle(reservation, usage) : gov.cancel(reservation);
        if (done instanceof Promise) await done;
      }
      const tokens = usage === undefined ? undefined : gov.countTokens(ctx.vk, target.account, usage, now);
      if (tokens instanceof Promise) await tokens;
    }
  }
}

function allFailed(model: string, failures: Failure[]): HttpError {
  if (failures.length === 0) {
    return new HttpError(503, "server_error", "no_account_available", `No account can serve model '${model}' right now.`);
  }
  const tried = failures.map((f) => `${f.account} (${f.reason})`).join("; ");
  const message = `Every account tried for model '${model}' failed: ${tried}.`;
  if (failures.every((f) => f.errorType === "rate_limited")) {
    const wait = Math.min(...failures.map((f) => f.retryAfterMs ?? 1000));
    return new HttpError(429, "rate_limit_error", "all_accounts_rate_limited", message, { "retry-after": String(Math.max(1, Math.ceil(wait / 1000))) });
  }
  if (failures.every((f) => f.errorType === "timeout")) return new HttpError(504, "server_error", "all_accounts_timed_out", message);
  return new HttpError(502, "server_error", "all_accounts_failed", message);
}



/** Failures that count against the account's breaker; the others are the request's own. */
const ACCOUNT_FAILURES: ReadonlySet<ErrorType> = new Set<ErrorType>(["rate_limited", "server_error", "overloaded", "timeout"]);

/** The status a classified failure stands for, so `on_status_codes` reads it whatever the provider sent (529, a 200 error event). */
const STATUS_OF: Partial<Record<ErrorType, number>> = { rate_limited: 429, server_error: 500, overloaded: 503, timeout: 504 };

function errorType(status: number): string {
  if (status === 429) return "rate_limit_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}
