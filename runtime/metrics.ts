// Prometheus metrics (prom-client), in the OpenTelemetry GenAI names plus
// `gwc_*` for what only a router knows.
//
//   per request (an observer of the RequestRecord, once the response is over):
//     gen_ai_server_request_duration_seconds, gen_ai_server_time_to_first_token_seconds,
//     gen_ai_client_token_usage, gwc_tokens_total, gwc_requests_total,
//     gwc_attempts_total, gwc_cost_usd_total, gwc_pool_rejected_total,
//     gwc_overhead_seconds
//   at scrape time (collect(), read from live state; the request path pays nothing):
//     gwc_budget_{spent,limit,reserved}_usd, gwc_ratelimit_remaining,
//     gwc_breaker_state, gwc_route_share, gwc_pool_in_flight, gwc_pool_queued
//   on (re)load: gwc_config_info, gwc_config_reloads_total
//
// Cardinality is bounded by the config: every label value is a configured id
// (account, route, team, key), a provider name, a configured model name, a
// status code or an error_type. A model the caller chose that the config does
// not name (a catch-all route) is recorded as the route's id.
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Gateway, Runtime } from "./gateway.ts";
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from "./metric-series.ts";
import type { Plan, PlanBudget, PlanRateLimit } from "./plan.ts";
import type { RequestRecord } from "./request-record.ts";

const NANO = 1e9;
const REQUEST_LABELS = ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name", "error_type"] as const;
const TOKEN_LABELS = ["gen_ai_token_type", "gen_ai_request_model", "gen_ai_provider_name"] as const;

/** The buckets the OpenTelemetry GenAI conventions advise for each histogram. */
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** What the gateway adds is microseconds to a few milliseconds. */
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/** Model names a plan configures (route models, target and account models): the only ones a label may carry. */
const configuredModels = new WeakMap<Plan, ReadonlySet<string>>();
function modelsOf(plan: Plan): ReadonlySet<string> {
  let models = configuredModels.get(plan);
  if (models === undefined) {
    const names = new Set<string>();
    for (const r of plan.routes) {
      if (r.model !== "*") names.add(r.model);
      for (const t of r.targets) if (t.model !== null) names.add(t.model);
    }
    for (const a of plan.accounts) if (a.model !== null) names.add(a.model);
    configuredModels.set(plan, (models = names));
  }
  return models;
}

export interface MetricsOptions {
  /** The gateway serving now (it changes on reload); scrape-time gauges read its plan and state. */
  current: () => Gateway;
  /** Export the budget and rate-limit gauges of every virtual key (`observability.per_key_metrics`). */
  perKey: boolean;
  /** Runs the observers of requests already finished (observability.ts batches them), so a scrape counts every one. */
  settle?: () => void;
}

/**
 * The gateway's metrics. `registry` is a plain prom-client Registry: the
 * Prometheus endpoint renders it, and in-process readers (the admin API, the
 * dashboard) call `registry.getMetricsAsJSON()` or `values()` for the same numbers.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #requestDuration: HistogramFamily;
  readonly #ttft: HistogramFamily;
  readonly #tokenUsage: HistogramFamily;
  readonly #tokens: Record<"input" | "output" | "cache_read" | "cache_write", CounterSeries>;
  readonly #requests: CounterFamily;
  readonly #attempts: CounterFamily;
  readonly #cost: CounterFamily;
  readonly #poolRejected: CounterFamily;
  readonly #overhead: HistogramSeries;
  readonly #configInfo: Gauge<"version">;
  /** Each seen combination of a request's label values → its series (see `observe`). */
  readonly #slots = new Map<string, RequestSlot>();
  readonly #reloads: Counter<"result">;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: MetricsOptions,
  ) {
    const registry = this.registry;
    const registers = [registry];
    collectDefaultMetrics({ register: registry });
    this.#requestDuration = new HistogramFamily("gen_ai_server_request_duration_seconds", "Time from a request's arrival to the end of its response (GenAI server request duration).", REQUEST_LABELS, DURATION_BUCKETS, registry);
    this.#ttft = new HistogramFamily("gen_ai_server_time_to_first_token_seconds", "Streams: time from a request's arrival to the first byte of the answer sent to the caller.", REQUEST_LABELS, TTFT_BUCKETS, registry);
    this.#tokenUsage = new HistogramFamily("gen_ai_client_token_usage", "Tokens per request as the provider reported them (input includes cached input).", TOKEN_LABELS, TOKEN_BUCKETS, registry);
    const tokens = new CounterFamily("gwc_tokens_total", "Tokens as providers reported them: input (cached input included), output, cache_read, cache_write.", ["type"], registry);
    const token = (type: string) => tokens.series(type, () => ({ type }));
    this.#tokens = { input: token("input"), output: token("output"), cache_read: token("cache_read"), cache_write: token("cache_write") };
    this.#requests = new CounterFamily("gwc_requests_total", "Requests to the model endpoints, by route, the status the caller got and its error_type (empty on success).", ["route", "status_code", "error_type"], registry);
    this.#attempts = new CounterFamily("gwc_attempts_total", "Tries at one account; outcome is ok or the attempt's error_type.", ["account", "provider", "outcome"], registry);
    this.#cost = new CounterFamily("gwc_cost_usd_total", "What answers cost in USD (priced models only), by the account that served and the model it was sent.", ["account", "model"], registry, NANO);
    this.#poolRejected = new CounterFamily("gwc_pool_rejected_total", "Attempts a provider pool refused because its connections and queue were full.", ["provider"], registry);
    this.#overhead = new HistogramFamily("gwc_overhead_seconds", "Time the gateway itself added to a request: its duration minus the time spent waiting on upstreams.", [], OVERHEAD_BUCKETS, registry).series("", () => ({}));
    this.#configInfo = new Gauge({ name: "gwc_config_info", help: "1, labelled with the running config's version (the first 12 hex digits of its SHA-256).", labelNames: ["version"], registers });
    this.#reloads = new Counter({ name: "gwc_config_reloads_total", help: "Config reloads, by result (success or failure).", labelNames: ["result"], registers });
    this.#liveGauges(registers);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    this.options.settle?.();
    return this.registry.metrics();
  }

  /** name → [labels, value] rows, for in-process readers (the admin API, the dashboard). */
  async values(): Promise<Map<string, { labels: Record<string, string | number>; value: number; metricName?: string }[]>> {
    const out = new Map<string, { labels: Record<string, string | number>; value: number; metricName?: string }[]>();
    this.options.settle?.();
    for (const m of await this.registry.getMetricsAsJSON()) out.set(m.name, m.values as never);
    return out;
  }

  /** A plan is serving now (at start and after each reload). */
  configLoaded(plan: Plan): void {
    this.#configInfo.reset();
    this.#configInfo.set({ version: plan.configSha256.slice(0, 12) }, 1);
  }

  reload(result: "success" | "failure"): void {
    this.#reloads.inc({ result });
  }

  /**
   * The per-request observer. A request's series are found together: one Map
   * lookup by all its label values (configured ids, bounded by the config)
   * gives a slot holding each family's series for them, resolved the first
   * time a family is used, so most requests cost two lookups (the slot and
   * their attempt) and a few adds. Label objects are built once per series.
   */
  readonly observe = (r: RequestRecord): void => {
    // Only the model endpoints are GenAI traffic; health checks and scrapes are not counted.
    if (r.operation === "other") return;
    const models = modelsOf(this.options.current().plan);
    const route = r.route ?? "";
    const model = r.model !== null && models.has(r.model) ? r.model : route;
    const last = r.attempts.length > 0 ? r.attempts[r.attempts.length - 1] : undefined;
    const provider = r.provider ?? last?.provider ?? "";
    const errorType = r.errorType ?? "";
    const account = r.account ?? "";
    const sent = r.responseModel !== null && models.has(r.responseModel) ? r.responseModel : model;
    const key = `${r.operation}\0${model}\0${provider}\0${errorType}\0${route}\0${r.status}\0${account}\0${sent}`;
    let slot = this.#slots.get(key);
    if (slot === undefined) this.#slots.set(key, (slot = new RequestSlot(r.operation, model, provider, errorType, String(r.status))));
    (slot.duration ??= this.#requestDuration.series(slot.genAiKey, slot.genAiLabels)).observe(r.durationMs / 1000);
    if (r.ttftMs !== null) (slot.ttft ??= this.#ttft.series(slot.genAiKey, slot.genAiLabels)).observe(r.ttftMs / 1000);
    this.#overhead.observe(Math.max(0, r.durationMs - r.upstreamMs) / 1000);
    (slot.requests ??= this.#requests.series(`${route}\0${slot.status}\0${errorType}`, () => ({ route, status_code: slot.status, error_type: errorType }))).value++;
    for (const a of r.attempts) {
      const outcome = a.errorType ?? "ok";
      this.#attempts.series(`${a.account}\0${a.provider}\0${outcome}`, () => ({ account: a.account, provider: a.provider, outcome })).value++;
      if (a.errorType === "pool_full") this.#poolRejected.series(a.provider, () => ({ provider: a.provider })).value++;
    }
    const u = r.usage;
    if (u !== null) {
      const at = `${model}\0${provider}`;
      (slot.inputTokens ??= this.#tokenUsage.series(`input\0${at}`, () => ({ gen_ai_token_type: "input", gen_ai_request_model: model, gen_ai_provider_name: provider }))).observe(u.inputTokens);
      (slot.outputTokens ??= this.#tokenUsage.series(`output\0${at}`, () => ({ gen_ai_token_type: "output", gen_ai_request_model: model, gen_ai_provider_name: provider }))).observe(u.outputTokens);
      const t = this.#tokens;
      t.input.value += u.inputTokens;
      t.output.value += u.outputTokens;
      t.cache_read.value += u.cacheReadTokens;
      t.cache_write.value += u.cacheWriteTokens;
    }
    if (r.costNanoUsd !== null && r.costNanoUsd > 0 && r.account !== null) {
      // Summed in nano-USD (integers, exact), shown in USD.
      (slot.cost ??= this.#cost.series(`${account}\0${sent}`, () => ({ account, model: sent }))).value += r.costNanoUsd;
    }
  };

  /** Gauges computed from live state when Prometheus scrapes, never on the request path. */
  #liveGauges(registers: Registry[]): void {
    const { runtime, options } = this;
    const perKey = options.perKey;
    type Period = { limitNano: number; spentNano: number; reservedNano: number };
    const budgets = (gauge: Gauge<"level" | "id" | "period">, pick: (p: Period) => number) => {
      gauge.reset();
      const gw = options.current();
      const now = Date.now();
      gw.plan.budgets.forEach((b, i) => {
        if (!perKey && isPerKey(b)) return;
        for (const p of gw.governance.budgetState(i, now)) gauge.set({ level: b.level, id: b.owner, period: p.period }, pick(p) / NANO);
      });
    };
    const budgetGauge = (name: string, help: string, pick: (p: Period) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["level", "id", "period"],
        registers,
        collect() {
          budgets(this, pick);
        },
      });
    budgetGauge("gwc_budget_spent_usd", "Spend in the budget's current period, USD.", (p) => p.spentNano);
    budgetGauge("gwc_budget_limit_usd", "The budget's cap for the period, USD.", (p) => p.limitNano);
    budgetGauge("gwc_budget_reserved_usd", "Held by requests in flight (settled to their real cost when they end), USD.", (p) => p.reservedNano);

    new Gauge({
      name: "gwc_ratelimit_remaining",
      help: "Requests or tokens left in the rate limit's current window.",
      labelNames: ["level", "id", "kind"],
      registers,
      collect() {
        this.reset();
        const gw = options.current();
        const now = Date.now();
        for (const { level, id, rl } of rateLimitsOf(gw.plan, perKey)) {
          for (const w of gw.governance.limitState(rl, now)) this.set({ level, id, kind: w.kind }, Math.max(0, w.limit - w.used));
        }
      },
    });

    new Gauge({
      name: "gwc_breaker_state",
      help: "Each account's circuit breaker: 0 closed, 1 half-open, 2 open.",
      labelNames: ["account"],
      registers,
      collect() {
        this.reset();
        for (const a of options.current().plan.accounts) this.set({ account: a.id }, runtime.breakerState(a.id));
      },
    });

    new Gauge({
      name: "gwc_route_share",
      help: "The live effective split: the fraction of a route's new requests each account gets now, with open breakers and accounts over their limits taken out.",
      labelNames: ["route", "account"],
      registers,
      collect() {
        this.reset();
        const gw = options.current();
        const now = Date.now();
        const unsupported = new Set(gw.unsupportedAccounts());
        for (const route of gw.plan.routes) {
          // The route's own breakers: one model's trouble on an account leaves its other routes alone.
          const down = (a: number) => unsupported.has(gw.plan.accounts[a].id) || (gw.breakerOf(route, a)?.state ?? 0) !== 0 || gw.governance.accountOverLimit(a, now);
          const { counts, denominator } = gw.router.distributionCounts(route, down);
          for (let p = 0; p < route.members; p++) this.set({ route: route.id, account: gw.plan.accounts[route.targets[p].account].id }, counts[p] / denominator);
        }
      },
    });

    const pools = (pick: "active" | "queued") =>
      function (this: Gauge<"provider">) {
        this.reset();
        const byProvider = new Map<string, number>();
        for (const pool of runtime.pools.values()) byProvider.set(pool.config.provider, (byProvider.get(pool.config.provider) ?? 0) + pool[pick]);
        for (const [provider, n] of byProvider) this.set({ provider }, n);
      };
    new Gauge({ name: "gwc_pool_in_flight", help: "Requests a provider's pools are sending now.", labelNames: ["provider"], registers, collect: pools("active") });
    new Gauge({ name: "gwc_pool_queued", help: "Requests waiting in a provider's pools for a connection.", labelNames: ["provider"], registers, collect: pools("queued") });
  }
}

/** One combination of a request's label values and the series they select, each resolved when first used. */
class RequestSlot {
  readonly genAiKey: string;
  readonly genAiLabels: () => Record<string, string>;
  duration: HistogramSeries | undefined;
  ttft: HistogramSeries | undefined;
  requests: CounterSeries | undefined;
  inputTokens: HistogramSeries | undefined;
  outputTokens: HistogramSeries | undefined;
  cost: CounterSeries | undefined;

  constructor(op: string, model: string, provider: string, errorType: string, readonly status: string) {
    this.genAiKey = `${op}\0${model}\0${provider}\0${errorType}`;
    this.genAiLabels = () => ({ gen_ai_operation_name: op, gen_ai_request_model: model, gen_ai_provider_name: provider, error_type: errorType });
  }
}

/** A virtual key's own budget or its per-provider budget: one series set per key, so opt-in. */
function isPerKey(b: PlanBudget): boolean {
  return b.level === "virtual_key" || b.level === "provider";
}

/** Every distinct rate limit of a plan with its level and owner; keys' own only when `perKey`. */
function rateLimitsOf(plan: Plan, perKey: boolean): { level: string; id: string; rl: PlanRateLimit }[] {
  const out: { level: string; id: string; rl: PlanRateLimit }[] = [];
  const seen = new Set<string>();
  const add = (level: string, id: string, rl: PlanRateLimit | null) => {
    if (rl === null || seen.has(rl.key)) return;
    seen.add(rl.key);
    out.push({ level, id, rl });
  };
  add("organization", plan.organization.id, plan.organization.rateLimit);
  for (const t of plan.teams) add("team", t.id, t.rateLimit);
  for (const a of plan.accounts) add("account", a.id, a.rateLimit);
  if (perKey) for (const k of plan.virtualKeys) for (const rl of k.rateLimits) add("virtual_key", k.id, rl);
  return out;
}
