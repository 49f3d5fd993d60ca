import { ServerResponse } from "node:http";
import type { AccountRuntime, Edge, Failure, RequestContext, ResponseSink } from "./attempt-types.ts";
import { nextStep, type AttemptEntry, type Candidate, type GiveUp, type Outcome, type Step } from "./attempt-policy.ts";
import { CallerSignal } from "./caller-signal.ts";
import { HttpError } from "./errors.ts";
import { BudgetExceeded, cost, estimate, Governance, type Reservation } from "./governance.ts";
import { AccountHealth, HealthBoard } from "./health.ts";
import type { Plan, PlanRoute } from "./plan.ts";
import { PoolBusyError, ProviderPool } from "./pool.ts";
import type { AccountContext, Adapter, ApiFormat, Endpoint, InboundRequest, UpstreamRequest, Usage } from "./providers/adapter.ts";
import { dialectOf } from "./surfaces/dialects.ts";
import { withDropped } from "./surfaces/carry.ts";
import { canServe, operationKey, servedAs } from "./surfaces/served-as.ts";
import { adapterFor } from "./providers/index.ts";
import { Router } from "./router.ts";
import { resolveSecrets } from "./secrets.ts";
import { errorTypeOfStatus, type ErrorType } from "./error-type.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { tracingConfigured } from "./observability.ts";
import type { AttemptRecord, RequestObserver, RequestRecord } from "./request-record.ts";
import type { Tracing } from "./tracing.ts";
import type { ApplyResult } from "./admin-api.ts";
import { LiveStats } from "./live-stats.ts";
import { MemoryStore, type StateStore } from "./state-store.ts";
import { withOutputLimit } from "./request-bound.ts";
import { RetryBudget } from "./retry-budget.ts";
import { endWithError, relayStream, SentText, translateStream, type Resume, type Streamed } from "./stream-relay.ts";
import { jsonObject, type UpstreamHeaders } from "./providers/classify.ts";
import { isObject } from "./json.ts";
import { isOpenAIAnswer } from "./providers/openai.ts";
import { scrubberFor } from "./scrub.ts";
import { decodedBody, fetchWhole, parseJson, readLimited, thrownType } from "./upstream.ts";
import { Watchdog } from "./watchdog.ts";

export type { AccountRuntime, Failure, RequestContext, ResponseSink } from "./attempt-types.ts";

export interface ConfigLoad {
  at: number;
  /** The first 12 hex digits of the config's sha256; null when a reload failed before its plan was read. */
  version: string | null;
  ok: boolean;
  message?: string;
}

/**
 * State that outlives a config reload: pools (by pool id), circuit breakers
 * (by account id, and by account and model where routes pin models), retry
 * budgets (by account id), the counter store and in-flight counts (by stable ids). A
 * reload builds a new Gateway over the same Runtime; requests in flight finish
 * on the Gateway they started with.
 */
export class Runtime {
  readonly pools = new Map<string, ProviderPool>();
  readonly health = new Map<string, AccountHealth>();
  readonly board = new HealthBoard();
  readonly retryBudgets = new Map<string, RetryBudget>();
  readonly inflight = new Map<string, number>();
  /** Called once per request, when its response is over, with its record. */
  readonly observers: RequestObserver[] = [];
  /** Prometheus metrics, when `observability.metrics` is on (see observability.ts). */
  metrics: GatewayMetrics | undefined;
  /** OTLP tracing, when its environment variables are set (see observability.ts). */
  tracing: Tracing | undefined;
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
      if (health === undefined) this.health.set(a.id, (health = new AccountHealth(Date.now, this.board, a.id)));
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
    const breaker = (account: number, model: string | null): AccountHealth => {
      // A route that pins a model has a breaker of its own per account and model: one model's trouble leaves the others alone.
      if (model === null || model === plan.accounts[account].model) return accounts[account].health;
      const key = `${plan.accounts[account].id}\u0000${model}`;
      let health = this.health.get(key);
      if (health === undefined) this.health.set(key, (health = new AccountHealth(Date.now, this.board)));
      return health;
    };
    const budgets = accounts.map((a) => {
      let budget = this.retryBudgets.get(a.id);
      if (budget === undefined) this.retryBudgets.set(a.id, (budget = new RetryBudget()));
      return budget;
    });
    if (plan.server.adminKeyEnv !== null && !this.observers.includes(this.stats.observe)) this.observers.push(this.stats.observe);
    this.noteLoad({ at: Date.now(), version: plan.configSha256.slice(0, 12), ok: true });
    const gateway = new Gateway(plan, accounts, governance, this.board, configSource, breaker, budgets);
    // Metrics, the access log and traces report tokens for every request, not only metered ones.
    gateway.readUsage = plan.observability.metrics || plan.server.accessLog || tracingConfigured(env);
    return gateway;
  }

  /** An account's worst breaker state (0 closed, 1 half-open, 2 open), its per-model breakers included. */
  breakerState(account: string): number {
    let worst = this.health.get(account)?.state ?? 0;
    const prefix = `${account}\u0000`;
    for (const [key, h] of this.health) if (key.startsWith(prefix)) worst = Math.max(worst, h.state);
    return worst;
  }

  /** A config load or a failed reload, for the dashboard's reload history. */
  noteLoad(load: ConfigLoad): void {
    this.loads.push(load);
    if (this.loads.length > 50) this.loads.shift();
  }

  async close(): Promise<void> {
    // Spans still buffered go out before the process ends; a collector that is down must not hold up the drain.
    await this.tracing?.shutdown().catch(() => {});
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
  /** Each route's breakers, by target position. */
  readonly #breakers = new Map<PlanRoute, AccountHealth[]>();
  /** Read every answer's usage (and ask streams for it), metered or not: something observes it. */
  readUsage = false;
  readonly #supports = new Map<PlanRoute, Map<string, { any: boolean; all: boolean }>>();
  readonly #affineRoutes = new Map<string, PlanRoute>();

  constructor(
    readonly plan: Plan,
    private readonly accounts: AccountRuntime[],
    readonly governance: Governance,
    private readonly board: HealthBoard,
    /** The config text this plan was built from, for the dashboard's config page; null when not known. */
    readonly configSource: string | null = null,
    private readonly breaker: (account: number, model: string | null) => AccountHealth = (a) => accounts[a].health,
    private readonly budgets: RetryBudget[] = accounts.map(() => new RetryBudget()),
  ) {
    this.router = new Router(plan);
    plan.virtualKeys.forEach((k, i) => {
      const to = k.onBudgetExceeded;
      if (to.kind === "route") this.#reroutes.set(i, plan.routes[to.route]);
      if (to.kind === "account") this.#reroutes.set(i, soleRoute(plan, to.account, plan.accounts[to.account].model));
    });
    for (const route of [...plan.routes, ...this.#reroutes.values()]) {
      const members = route.targets.slice(0, route.members);
      if (members.every((t) => accounts[t.account].adapter !== undefined && plan.accounts[t.account].rateLimit === null)) this.#plain.add(route);
      this.#breakers.set(route, route.targets.map((t) => breaker(t.account, t.model)));
    }
  }

  /**
   * Which of the route's accounts serve a request's operation (its API, endpoint, and
   * whether it has a chat form for other formats), worked out once per route and
   * operation: `any` (a fallback included), `all` (every member).
   */
  #support(route: PlanRoute, req: InboundRequest): { any: boolean; all: boolean } {
    let byOperation = this.#supports.get(route);
    if (byOperation === undefined) this.#supports.set(route, (byOperation = new Map()));
    const key = operationKey(req);
    let s = byOperation.get(key);
    if (s === undefined) {
      const serves = (t: { account: number }) => canServe(req, this.accounts[t.account].adapter);
      s = { any: route.targets.some(serves), all: route.targets.slice(0, route.members).every(serves) };
      byOperation.set(key, s);
    }
    return s;
  }

  /** An operation no account of the route can perform is the caller's to fix (400), not an upstream failure to retry. */
  #refuseUnsupported(route: PlanRoute, req: InboundRequest, model: string): void {
    const endpoint = req.endpoint;
    if (this.#support(route, req).any) return;
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

  /** The breaker a route uses for one of its accounts. */
  breakerOf(route: PlanRoute, account: number): AccountHealth | undefined {
    const p = route.targets.findIndex((t) => t.account === account);
    return p < 0 ? undefined : this.#breakers.get(route)?.[p];
  }

  /** The one-account route of a request bound to an account (it holds state the request refers to). */
  #affine(to: { account: string; model: string | null }): PlanRoute | undefined {
    const key = `${to.account}\n${to.model ?? ""}`;
    let route = this.#affineRoutes.get(key);
    const account = this.router.accountIndex(to.account);
    if (route === undefined && account !== undefined) {
      this.#affineRoutes.set(key, (route = soleRoute(this.plan, account, to.model)));
      this.#breakers.set(route, [this.breaker(account, to.model)]);
    }
    return route;
  }

  /** The formats of the accounts that can serve `model` (its route's members and fallbacks), for surfaces that must know before routing. */
  routeFormats(model: string): (ApiFormat | null)[] {
    const route = this.router.route(model);
    return route === undefined ? [] : route.targets.map((t) => this.accounts[t.account].adapter?.format ?? null);
  }

  /** The catch-all route's accounts that pass the caller's model through: they serve whatever their upstream lists. */
  passthroughAccounts(): AccountRuntime[] {
    const route = this.plan.routes[this.plan.catchAllRoute];
    if (route === undefined) return [];
    return route.targets.slice(0, route.members).filter((t) => t.model === null).map((t) => this.accounts[t.account]);
  }

  /**
   * Serves one request: admission (model allowed, rate limits, concurrency),
   * then the route, then — if the key's own budget is spent and it says so —
   * its reroute.
   */
  async proxy(req: InboundRequest, res: ResponseSink, record: RequestRecord, signal: CallerSignal, vk: number, direct: ResponseSink = res, deadlineMs?: number): Promise<void> {
    const model = req.model ?? (req.json.model as string);
    const route = req.affinity !== undefined ? this.#affine(req.affinity) : this.router.route(model);
    record.route = route?.id ?? null;
    if (route === undefined) {
      throw new HttpError(404, "invalid_request_error", "model_not_found", `The model '${model}' is not served by this gateway. Served: ${this.models().join(", ") || "none"}.`, {}, "model");
    }
    this.#refuseUnsupported(route, req, model);
    const admitted = this.governance.admit(vk, model, route, Date.now());
    const admission = admitted instanceof Promise ? await admitted : admitted;
    const ctx: RequestContext = { req, model, vk, res, direct, requestId: record.id, record, signal, headers: admission.headers, admission, rerouted: false, deadlineMs };
    try {
      await this.#serve(route, ctx);
    } catch (e) {
      const reroute = this.#reroutes.get(vk);
      if (!(e instanceof BudgetExceeded && e.own && reroute !== undefined && this.#support(reroute, req).any)) throw e;
      record.route = reroute.id;
      await this.#serve(reroute, { ...ctx, rerouted: true });
    } finally {
      admission.release();
    }
  }

  /**
   * One request's life on a route: a weighted pick among the accounts that
   * can take it now, then whatever the attempt policy says after each failure
   * (retry, next account, continue the stream, give up), all inside one
   * deadline. This loop only carries the steps out.
   */
  async #serve(route: PlanRoute, ctx: RequestContext): Promise<void> {
    const policy = route.resilience;
    const breakers = this.#breakers.get(route)!;
    const now = Date.now();
    const down = (a: number, p: number) => !canServe(ctx.req, this.accounts[a].adapter) || breakers[p].isDown() || this.governance.accountOverLimit(a, Date.now());
    // Every breaker closed, every member serves this operation, and nothing else could take one out: the route's own table.
    const allUp = this.board.unsettled === 0 && this.#plain.has(route) && this.#support(route, ctx.req).all;
    const deadline = ctx.record.start + Math.min(policy.deadlineMs, ctx.deadlineMs ?? Infinity);
    const pick = () => {
      const p = this.router.pick(route, Math.random(), allUp ? undefined : down);
      // No member with weight is up: the failover order's first account that is (weight 0 members and fallback routes).
      return p >= 0 ? p : (route.order.find((q) => !down(route.targets[q].account, q)) ?? -1);
    };
    let first = pick();
    if (first < 0) {
      // Every account is out. Held out only by rate limits that end soon enough: wait for the first, then pick again.
      const limited = this.#limitedUntil(route, breakers);
      const wait = limited - Date.now();
      if (limited > 0 && wait <= policy.maxRetryAfterMs && Date.now() + wait < deadline) {
        await this.#wait(wait, ctx, { expired: false, current: undefined, wake: undefined });
        first = pick();
      }
    }
    if (first < 0) throw this.#unavailable(route, ctx.model, breakers);

    const run: Run = { expired: false, current: undefined, wake: undefined };
    const timer = setTimeout(() => {
      run.expired = true;
      run.current?.abort();
      run.wake?.();
    }, deadline - now);
    const history: AttemptEntry[] = [];
    const failures: Failure[] = [];
    const sent = policy.midStream === "continue" && ctx.req.stream && ctx.req.endpoint === "chat" ? new SentText() : undefined;
    let step: Step = { kind: "next", position: first };
    try {
      for (;;) {
        if (step.kind === "give_up") {
          this.#giveUp(step.reason, ctx, failures, run);
          return;
        }
        const p = step.position;
        const account = route.targets[p].account;
        const retry = step.kind === "retry";
        if (step.kind === "retry") {
          await this.#wait(step.afterMs, ctx, run);
          if (run.expired || ctx.signal.aborted) {
            step = { kind: "give_up", reason: ctx.signal.aborted ? "cancelled" : "deadline" };
            continue;
          }
          this.budgets[account].retry(Date.now());
        } else if (step.kind === "next") {
          this.budgets[account].first(Date.now());
        }
        history.push({ account, retry });
        const resume: Resume | undefined = step.kind === "continue" && sent?.id !== undefined ? { id: sent.id } : undefined;
        const decide = (outcome: Outcome): Step => {
          const t = Date.now();
          const tried = new Set(history.map((h) => h.account));
          const candidates: Candidate[] = [];
          for (const q of route.order) {
            const a = route.targets[q].account;
            if (tried.has(a)) continue;
            candidates.push({ position: q, account: a, ready: !down(a, q), canResume: this.plan.accounts[a].resume !== null });
          }
          return nextStep({
            policy,
            now: t,
            deadline,
            history,
            lastPosition: p,
            last: run.expired && !outcome.sent ? { ...outcome, errorType: "timeout" } : outcome,
            candidates,
            retryBudget: this.budgets[account].allows(t, policy.budgetRatio),
            random: Math.random(),
          });
        };
        const result = await this.#attempt(route, p, ctx, { run, breaker: breakers[p], decide, sent, resume, deadline });
        if (result === undefined) return;
        failures.push(result.failure);
        step = result.step;
        if (result.failure.refusal !== undefined) {
          // The account's format cannot carry what the caller sent: no upstream was asked, and another account's format may.
          const tried = new Set(history.map((h) => h.account));
          const q = route.order.find((q) => !tried.has(route.targets[q].account) && !down(route.targets[q].account, q));
          step = q === undefined ? { kind: "give_up", reason: "exhausted" } : { kind: "next", position: q };
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits out a backoff or Retry-After; the deadline or the caller leaving ends the wait early. */
  #wait(ms: number, ctx: RequestContext, run: Run): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((ok) => {
      const done = () => {
        clearTimeout(t);
        ctx.signal.removeListener("abort", done);
        run.wake = undefined;
        ok();
      };
      const t = setTimeout(done, ms);
      ctx.signal.once("abort", done);
      run.wake = done;
    });
  }

  /** Ends a request the policy gave up on. Throws the error the caller gets, or ends the stream already under way. */
  #giveUp(reason: GiveUp, ctx: RequestContext, failures: Failure[], run: Run): void {
    const last = failures.at(-1);
    if (reason === "cancelled") {
      ctx.record.errorType = "cancelled";
      if (!ctx.res.headersSent) ctx.res.destroy();
      return;
    }
    if (reason === "sent" || ctx.res.headersSent || ctx.direct.headersSent) {
      const why = run.expired ? "the request's deadline passed" : (last?.reason ?? "the upstream failed");
      ctx.record.errorType = run.expired ? "timeout" : (last?.errorType ?? "stream_interrupted");
      if (ctx.interrupt !== undefined) ctx.interrupt(`${why}; the answer is incomplete.`, run.expired ? "timeout" : "stream_interrupted");
      else endWithError(ctx.res, `${why}; the answer is incomplete.`, run.expired ? "timeout" : "stream_interrupted");
      return;
    }
    if (reason === "deadline") {
      const tried = failures.map((f) => `${f.account} (${f.reason})`).join("; ");
      throw new HttpError(504, "server_error", "timeout", `The request's deadline passed before any account answered${tried === "" ? "" : `: ${tried}`}.`, {}, null, "timeout");
    }
    if (reason === "rate_limited") throw rateLimited(ctx.model, failures);
    throw allFailed(ctx.model, failures);
  }

  /** When the first account of the route is back, if only rate limits hold them all out; 0 otherwise. */
  #limitedUntil(route: PlanRoute, breakers: AccountHealth[]): number {
    const now = Date.now();
    let soonest = Infinity;
    for (const p of route.order) {
      const b = breakers[p];
      if (this.accounts[route.targets[p].account].adapter === undefined) continue;
      if (b.limitedUntil <= now || b.openUntil > now) return 0;
      soonest = Math.min(soonest, b.limitedUntil);
    }
    return Number.isFinite(soonest) ? soonest : 0;
  }

  /**
   * Every account of the route is out: 429 with the soonest retry-after when rate limits hold them
   * all out (past what this request can wait for), else 503 at once, retry-after the soonest probe.
   */
  #unavailable(route: PlanRoute, model: string, breakers: AccountHealth[]): HttpError {
    const now = Date.now();
    const limited = this.#limitedUntil(route, breakers);
    if (limited > now) {
      const message = `Every account that serves model '${model}' is rate-limited for longer than this request can wait.`;
      return new HttpError(429, "rate_limit_error", "all_accounts_rate_limited", message, { "retry-after": String(Math.max(1, Math.ceil((limited - now) / 1000))) }, null, "rate_limited");
    }
    let soonest = Infinity;
    for (const p of route.order) if (this.accounts[route.targets[p].account].adapter !== undefined) soonest = Math.min(soonest, breakers[p].downUntil);
    const headers: Record<string, string> = Number.isFinite(soonest) && soonest > now ? { "retry-after": String(Math.max(1, Math.ceil((soonest - now) / 1000))) } : {};
    return new HttpError(503, "server_error", "all_accounts_unavailable", `Every account that serves model '${model}' is out right now (failing or rate-limited); only their recovery probes go upstream. Retry after the retry-after header.`, headers, null, "overloaded");
  }

  /**
   * One try at one account. Undefined when the caller has been answered. It
   * enters the record once it is about to take a connection: a request the
   * gateway refused itself (a budget, an adapter refusing a field) tried no account.
   */
  async #attempt(route: PlanRoute, p: number, ctx: RequestContext, a: AttemptArgs): Promise<{ failure: Failure; step: Step } | undefined> {
    const acct = this.accounts[route.targets[p].account];
    const attempt: AttemptRecord = { account: acct.id, provider: acct.provider, model: route.targets[p].model ?? ctx.model, status: null, errorType: null, ms: 0 };
    let started = -1;
    const begin = () => {
      ctx.record.attempts.push(attempt);
      started = performance.now();
    };
    try {
      const result = await this.#try(route, p, ctx, attempt, a, begin);
      if (result !== undefined) {
        attempt.status ??= result.failure.status ?? null;
        attempt.errorType ??= result.failure.errorType;
      }
      return result;
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

  async #try(route: PlanRoute, p: number, ctx: RequestContext, attempt: AttemptRecord, a: AttemptArgs, begin: () => void): Promise<{ failure: Failure; step: Step } | undefined> {
    const { model, requestId } = ctx;
    const target = route.targets[p];
    const acct = this.accounts[target.account];
    const adapter = acct.adapter!;
    const health = a.breaker;
    const policy = route.resilience;
    const fail = (failure: Failure, sent = false, toolCallOpen = false) => ({ failure, step: a.decide({ errorType: failure.errorType, retryAfterMs: failure.retryAfterMs, sent, toolCallOpen }) });
    // Same format as the caller's: relayed as it came. Another: the surface's chat form, translated.
    const sentAs = servedAs(ctx.req, adapter, route.dropUnsupportedParams === true);
    if (sentAs instanceof HttpError) return fail({ account: acct.id, status: 400, errorType: "invalid_request", reason: sentAs.message, refusal: sentAs });
    const { relayed } = sentAs;
    const req = a.resume !== undefined && a.sent !== undefined ? continuation(sentAs.req, a.sent.text, this.plan.accounts[target.account].resume!) : sentAs.req;
    if (!adapter.supports(req.endpoint)) return fail({ account: acct.id, errorType: "invalid_request", reason: `its provider has no ${req.endpoint} endpoint` });
    const res = relayed ? ctx.direct : ctx.res;
    const dialect = dialectOf(req.format ?? "openai", req.endpoint, req.method);
    // An account's pinned model is a chat model: on the catch-all route, an embeddings request keeps the one it named.
    const upstreamModel = req.endpoint === "embeddings" && route.model === "*" ? model : (target.model ?? model);

    // Budgets: reserve the most this request can cost before any upstream work, with what admission left pending and the account's request count (one store call).
    const gov = this.governance;
    const now = Date.now();
    let reservation: Reservation | undefined;
    const budgets = gov.budgetsFor(ctx.vk, acct.provider, ctx.rerouted);
    const price = gov.price(upstreamModel);
    if (budgets.length > 0 && price === undefined) {
      throw new HttpError(400, "invalid_request_error", "model_not_priced", `Model '${upstreamModel}' has no price, so budgets cannot be enforced for it. Add it under \`pricing\`.`, {}, "model");
    }
    try {
      const taken = gov.take(ctx.admission, budgets, budgets.length > 0 ? estimate(price!, req, this.plan.accounts[target.account].wire) : 0, target.account, now);
      reservation = taken instanceof Promise ? await taken : taken;
    } catch (e) {
      // A key's provider budget only takes that provider out of this request.
      if (e instanceof BudgetExceeded && e.meta.budget.level === "provider") return fail({ account: acct.id, errorType: "budget_exceeded", reason: e.message }, a.resume !== undefined);
      throw e;
    }
    const metered = reservation !== undefined || this.readUsage || gov.metered(ctx.vk, target.account);
    // Under a budget, a request with no output limit is sent with the one it was reserved for.
    const bounded = reservation !== undefined ? withOutputLimit(req, acct.provider) : req;
    const chatLike = (req.endpoint === "chat" || req.endpoint === "completions") && (req.format ?? "openai") === "openai";
    const inbound = metered && chatLike && req.stream && (req.json.stream_options as { include_usage?: unknown } | undefined)?.include_usage !== true ? { ...bounded, injectUsage: true } : bounded;
    let upstream: UpstreamRequest;
    try {
      const built = relayed && adapter.relay !== undefined ? adapter.relay(inbound, acct.context, upstreamModel) : adapter.request(inbound, acct.context, upstreamModel);
      upstream = built instanceof Promise ? await built : built;
      // Tracing on: the upstream's spans join the caller's trace under this attempt's span.
      const traceparent = ctx.record.trace?.traceparent(attempt);
      if (traceparent !== undefined) upstream = { ...upstream, headers: { ...upstream.headers, traceparent } };
    } catch (e) {
      // The adapter refused the request (e.g. something its provider cannot express).
      if (reservation !== undefined) await gov.cancel(reservation);
      // A field this account's format cannot carry: another account may take it.
      if (e instanceof HttpError && e.code === "unsupported_parameter") return fail({ account: acct.id, status: 400, errorType: "invalid_request", reason: e.message, refusal: e });
      throw e;
    }
    const headers = withDropped(ctx.headers, upstream.dropped);
    // The attempt's own signal: the caller leaving, the deadline or a timeout ends it, and nothing else.
    const signal = new CallerSignal();
    const onCaller = () => signal.abort();
    ctx.signal.once("abort", onCaller);
    a.run.current = signal;
    if (a.run.expired) signal.abort();
    // A JSON answer's only limit is often the deadline itself, whose timer is already set: no second timer then.
    const firstMs = req.stream ? policy.firstTokenTimeoutMs : policy.headersTimeoutMs;
    const watchdog = new Watchdog(signal, firstMs < a.deadline - Date.now() ? firstMs : Infinity, policy.stallTimeoutMs);
    const aborted = (): Failure => {
      const errorType: ErrorType = ctx.signal.aborted ? "cancelled" : "timeout";
      const reason = a.run.expired ? "the request's deadline passed" : watchdog.fired === "first_token" ? `no ${req.stream ? "first token" : "response"} within the first-token timeout` : watchdog.fired === "stall" ? "the stream stalled" : "the caller went away";
      return { account: acct.id, errorType, reason };
    };
    let usage: Usage | undefined;
    let served = false;
    begin();
    try {
      const wait = acct.pool.acquire(signal);
      if (wait !== undefined) await wait;
    } catch (e) {
      watchdog.stop();
      ctx.signal.removeListener("abort", onCaller);
      if (reservation !== undefined) await gov.cancel(reservation);
      if (e instanceof PoolBusyError) {
        if (signal.aborted) return fail(aborted(), a.resume !== undefined);
        if (e.terminal) throw new HttpError(503, "server_error", "pool_full", `Request dropped: ${e.message}.`, {}, null, "pool_full");
        return fail({ account: acct.id, errorType: "pool_full", reason: e.message }, a.resume !== undefined);
      }
      throw e;
    }
    health.attempt();
    let committed = a.resume !== undefined;
    let broken: Streamed["broken"];
    try {
      const method = upstream.method ?? "POST";
      const { edge } = acct;
      const limit = edge.maxUpstreamBodyBytes;
      const exchange = { method, path: upstream.path, headers: upstream.headers, body: method === "POST" ? upstream.body : undefined };
      const unreadable = (status: number, encoding: unknown) => {
        health.failure();
        return fail({ account: acct.id, status, errorType: "server_error", reason: `${status}: the answer came in an encoding the gateway cannot read (${edge.scrub.say(String(encoding))})` });
      };
      const tooLarge = (status: number) => {
        health.failure();
        return fail({ account: acct.id, status, errorType: "server_error", reason: `${status}: the answer is larger than ${limit} bytes (server.max_upstream_body_bytes)` });
      };
      // A failure status, classified: relayed as it came when nothing can do better, else the policy's next step.
      const refused = (status: number, answerHeaders: UpstreamHeaders, bytes: Buffer) => {
        const c = adapter.classify(status, answerHeaders, bytes.toString());
        // The upstream's text may quote our key: an auth failure's text is never passed on.
        const message = edge.scrub.say(c.message);
        const classified = { ...c, reason: c.errorType === "auth" ? `${status}: the provider rejected the gateway's credentials for this account` : `${status}: ${message}` };
        if (classified.errorType === "rate_limited") health.rateLimited(classified.retryAfterMs);
        else if (classified.errorType === "auth" || classified.errorType === "server_error" || classified.errorType === "overloaded" || classified.errorType === "timeout") health.failure();
        else health.success();
        const failure: Failure = { account: acct.id, errorType: classified.errorType, status, retryAfterMs: classified.retryAfterMs, reason: classified.reason };
        const step = a.decide({ errorType: failure.errorType, retryAfterMs: failure.retryAfterMs, sent: committed });
        // Given up on a failure nothing else can fix (the caller's own, or one failover_on leaves out): the caller gets it as it came.
        const relay = step.kind === "give_up" && (step.reason === "relay" || (step.reason === "exhausted" && ANSWERABLE.has(classified.errorType)));
        if (relay && classified.errorType !== "auth" && !committed) {
          committed = true;
          attempt.errorType = classified.errorType;
          ctx.record.errorType = classified.errorType;
          // In the caller's own format (relayed, or OpenAI's from an OpenAI-format upstream) the answer goes as it came.
          const asIs = relayed || adapter.response === undefined;
          const out = asIs ? edge.scrub.bytes(bytes) : JSON.stringify({ error: { message, type: openaiErrorType(status), code: classified.errorType, param: null } });
          res.writeHead(status, withLength(res, out, { "content-type": asIs ? String(answerHeaders["content-type"] ?? "application/json") : "application/json", "x-request-id": requestId, "x-gwc-account": acct.id, ...headers }));
          res.end(out);
          return undefined;
        }
        return { failure, step };
      };
      if (!req.stream) {
        // Not streamed: read whole, without a body stream (fetchWhole). Its first-token clock stops once the headers are in.
        const answer = await fetchWhole(acct.pool.dispatcher, exchange, signal, limit, () => watchdog.stop());
        const { status, bytes } = answer;
        attempt.status = status;
        if (answer.unreadable === true) return unreadable(status, answer.headers["content-encoding"]);
        if (bytes === undefined) return tooLarge(status);
        if (status >= 400) return refused(status, answer.headers, bytes);
        // A 2xx is an answer only if it reads as one: HTML, broken JSON or another shape is this account failing.
        const json = parseJson(bytes);
        let out: Buffer | undefined;
        if (relayed || adapter.response === undefined) out = isAnswer(json, req) ? bytes : undefined;
        else if (json !== undefined) {
          try {
            // Another wire format: the caller gets OpenAI's shape either way.
            const translated = adapter.response(json, req, upstreamModel);
            if (translated !== undefined) out = Buffer.from(JSON.stringify(translated));
          } catch {
            out = undefined;
          }
        }
        if (out === undefined) {
          // An error object under a 200 says what it is; anything else is the upstream failing.
          const text = bytes.toString();
          const c = adapter.classify(status, answer.headers, text);
          const said = jsonObject(text)?.error != null;
          health.failure();
          return fail({ account: acct.id, status, errorType: c.errorType, retryAfterMs: c.retryAfterMs, reason: `${status}: ${said ? edge.scrub.say(c.message) : `the answer is not a ${acct.provider} response`}` });
        }
        health.success();
        served = true;
        committed = true;
        res.writeHead(status, withLength(res, out, { "content-type": "application/json", "x-request-id": requestId, "x-gwc-account": acct.id, ...headers }));
        res.end(out);
        if (ctx.record.requestBody !== null) ctx.record.responseBody = out.toString();
        // The one parse of the answer, read again for its usage (in the caller's API when relayed).
        if (metered) usage = relayed || adapter.response === undefined ? dialect.usage(json) : adapter.usage(json);
        return undefined;
      }
      const r = await acct.pool.dispatcher.request({ ...exchange, signal });
      const status = r.statusCode;
      attempt.status = status;
      const body = decodedBody(r.body, r.headers);
      if (body === undefined) {
        await r.body.dump();
        return unreadable(status, r.headers["content-encoding"]);
      }
      if (status !== 200) {
        const bytes = await readLimited(body, limit);
        return bytes === undefined ? tooLarge(status) : refused(status, r.headers, bytes);
      }
      const opts = {
        watchdog,
        sent: a.sent,
        resume: a.resume,
        commit: () => {
          committed = true;
          ctx.record.ttftMs ??= performance.now() - ctx.record.startMono;
        },
      };
      const sctx = res === ctx.res && req === ctx.req && headers === ctx.headers ? ctx : { ...ctx, req, res, headers };
      const streamed =
        adapter.stream !== undefined && !relayed
          ? await translateStream(body, acct, sctx, upstreamModel, opts)
          : await relayStream(body, acct, sctx, inbound.injectUsage === true, opts, dialect);
      // A relayed stream the caller is reading ends, if it must, in its own API's error event.
      // (OpenAI's own chat and completions keep their codes: timeout, stream_interrupted.)
      if (relayed && committed && !chatLike) ctx.interrupt = (message) => void (res.destroyed ? undefined : res.end(dialect.interrupted(message)));
      usage = streamed.usage;
      if (streamed.failure !== undefined) {
        if (signal.aborted) return fail(aborted());
        if (streamed.failure.errorType !== "timeout") health.failure();
        return fail(streamed.failure);
      }
      // What the caller was sent is paid for, broken or not.
      served = true;
      if (streamed.broken !== undefined) {
        broken = streamed.broken;
        if (ctx.signal.aborted) return fail({ ...aborted(), errorType: "cancelled" }, true);
        health.failure();
        const reason = a.run.expired ? "the request's deadline passed" : broken.reason;
        return fail({ account: acct.id, errorType: a.run.expired ? "timeout" : broken.errorType, reason }, true, broken.toolCallOpen);
      }
      health.success();
      return undefined;
    } catch (e) {
      if (signal.aborted) return fail(aborted(), committed);
      if (committed) {
        if (!res.headersSent) res.destroy();
        return undefined;
      }
      health.failure();
      const kind = thrownType(e);
      // The pool's request_timeout (undici's headers and body timeouts) still bounds every attempt.
      if (kind === "timeout") return fail({ account: acct.id, errorType: "timeout", reason: `timed out after ${acct.pool.config.requestTimeoutMs} ms (the pool's request_timeout)` });
      if (kind === "server_error") return fail({ account: acct.id, errorType: "server_error", reason: `the answer could not be read (${acct.edge.scrub.say((e as Error).message)})` });
      return fail({ account: acct.id, errorType: "connection_error", reason: `connection failed (${(e as { code?: string }).code ?? acct.edge.scrub.say((e as Error).message)})` });
    } finally {
      watchdog.stop();
      ctx.signal.removeListener("abort", onCaller);
      if (a.run.current === signal) a.run.current = undefined;
      acct.pool.release();
      // What the answer cost, once: the record's cost and the budget's settlement.
      const spent = usage !== undefined && price !== undefined ? cost(price, usage) : undefined;
      if (served) {
        const { record } = ctx;
        record.account = acct.id;
        record.provider = acct.provider;
        record.responseModel = upstreamModel;
        if (usage !== undefined) {
          // A continued stream is paid for twice: both attempts' usage counts.
          const u = record.usage;
          record.usage = {
            inputTokens: (u?.inputTokens ?? 0) + usage.input,
            outputTokens: (u?.outputTokens ?? 0) + usage.output,
            cacheReadTokens: (u?.cacheReadTokens ?? 0) + usage.cached,
            cacheWriteTokens: (u?.cacheWriteTokens ?? 0) + (usage.cacheWrite ?? 0),
          };
          if (spent !== undefined) record.costNanoUsd = (record.costNanoUsd ?? 0) + spent;
        }
      }
      // Served: settle to the reported usage (the reservation stands when none came). Not served: release it. Tokens count either way.
      const done = gov.finish(reservation, served, usage, spent, ctx.vk, target.account, now);
      if (done instanceof Promise) await done;
    }
  }
}

/**
 * A whole answer's headers with its content-length, when they go to Node's own
 * response: no chunked framing, and the caller knows the size. A sink that
 * rewrites the body (another API's shape) frames it itself.
 */
function withLength(res: ResponseSink, body: Buffer | string, head: Record<string, string>): Record<string, string> {
  if (res instanceof ServerResponse) head["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.length);
  return head;
}

/** Failures whose upstream answer tells the caller what to change, relayed when no account could do better. */
const ANSWERABLE: ReadonlySet<ErrorType> = new Set<ErrorType>(["context_length_exceeded", "not_found"]);

/** The request's shared state while it runs: the deadline's flag, the attempt it would abort, the wait it would end. */
interface Run {
  expired: boolean;
  current: CallerSignal | undefined;
  wake: (() => void) | undefined;
}

interface AttemptArgs {
  run: Run;
  breaker: AccountHealth;
  decide: (outcome: Outcome) => Step;
  sent: SentText | undefined;
  resume: Resume | undefined;
  deadline: number;
}

/**
 * The conversation plus the partial answer, for an account that resumes it:
 * a trailing assistant message (Anthropic continues it as prefill) or one
 * marked `prefix: true` (Mistral, DeepSeek).
 */
function continuation(req: InboundRequest, partial: string, how: "prefill" | "prefix"): InboundRequest {
  const messages = Array.isArray(req.json.messages) ? req.json.messages : [];
  const assistant: Record<string, unknown> = { role: "assistant", content: partial };
  if (how === "prefix") assistant.prefix = true;
  const json = { ...req.json, messages: [...messages, assistant] };
  return { ...req, json, raw: Buffer.from(JSON.stringify(json)) };
}

function allFailed(model: string, failures: Failure[]): HttpError {
  if (failures.length === 0) {
    return new HttpError(503, "server_error", "no_account_available", `No account can serve model '${model}' right now.`);
  }
  // Refused by every account it reached (a field no format there can carry): the caller's 400, as is.
  if (failures.every((f) => f.refusal !== undefined)) return failures[0].refusal!;
  if (failures.every((f) => f.errorType === "rate_limited")) return rateLimited(model, failures);
  const message = `Every account tried for model '${model}' failed: ${triedText(failures)}.`;
  if (failures.every((f) => f.errorType === "timeout")) return new HttpError(504, "server_error", "all_accounts_timed_out", message, {}, null, "timeout");
  return new HttpError(502, "server_error", "all_accounts_failed", message, {}, null, failures.at(-1)!.errorType);
}

/** 429 with the soonest retry-after any rate-limited account asked for. */
function rateLimited(model: string, failures: Failure[]): HttpError {
  const waits = failures.filter((f) => f.errorType === "rate_limited").map((f) => f.retryAfterMs ?? 1000);
  const wait = waits.length === 0 ? 1000 : Math.min(...waits);
  const message = `Every account tried for model '${model}' is rate-limited beyond what this request can wait for: ${triedText(failures)}.`;
  return new HttpError(429, "rate_limit_error", "all_accounts_rate_limited", message, { "retry-after": String(Math.max(1, Math.ceil(wait / 1000))) }, null, "rate_limited");
}

function triedText(failures: Failure[]): string {
  return failures.map((f) => `${f.account} (${f.reason})`).join("; ");
}

function openaiErrorType(status: number): string {
  if (status === 429) return "rate_limit_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

/** A route of one account, no failover: budget reroutes to an account, and requests bound to the account holding their state. */
function soleRoute(plan: Plan, account: number, model: string | null): PlanRoute {
  return {
    id: `account:${plan.accounts[account].id}`,
    model: "*",
    members: 1,
    targets: [{ account, model, weight: 1 }],
    order: [0],
    table: { n: 1, total: 1, prob: Uint32Array.of(1), target: Uint32Array.of(0), alias: Uint32Array.of(0) },
    subsets: null,
    without: null,
    resilience: plan.resilience,
  };
}

/** A 2xx that reads as an answer: OpenAI's shape for its chat, completions and embeddings; any JSON object for the other APIs relayed as they came. */
function isAnswer(json: unknown, req: InboundRequest): boolean {
  const openai = (req.format ?? "openai") === "openai" && (req.endpoint === "chat" || req.endpoint === "completions" || req.endpoint === "embeddings");
  if (openai) return isOpenAIAnswer(json, req.endpoint);
  return isObject(json) && json.error == null;
}
