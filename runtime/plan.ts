// The plan: the only thing that crosses from compiler to runtime.
//
// It is plain data (numbers, strings, arrays, typed arrays), versioned, and
// fully resolved: every default applied, every reference turned into an index,
// every table built. The runtime trusts it and never re-derives any of it.
// Maps keyed by user strings travel as arrays of entries (a user string such as
// `__proto__` must never become an object key in emitted code).

import type { ErrorType } from "./error-type.ts";

export const PLAN_VERSION = 2;

/**
 * Vose alias table over integer weights, exact by construction.
 *
 *   column c (of n), each `total` units tall:
 *   ┌──────────────┬───────────┐
 *   │ prob[c] units│ the rest  │
 *   │ → target[c]  │ → alias[c]│
 *   └──────────────┴───────────┘
 *
 * P(target t) = Σ_c [target[c]=t]·prob[c] + [alias[c]=t]·(total−prob[c])  /  (n·total)
 * which equals weight[t] / Σweight exactly: no floats anywhere in the table.
 * `target` and `alias` hold positions in the route's `targets`.
 */
export interface AliasTable {
  n: number;
  total: number;
  prob: Uint32Array;
  target: Uint32Array;
  alias: Uint32Array;
}

export type Wire = "openai" | "anthropic" | "gemini" | "vertex" | "azure" | "bedrock" | "cohere";
export type Backpressure = "drop" | "block" | "error";

export interface PlanPool {
  /** Stable id: provider plus origin. */
  id: string;
  provider: string;
  maxConnections: number;
  queueSize: number;
  backpressure: Backpressure;
  queueTimeoutMs: number;
  requestTimeoutMs: number;
}

export interface PlanWindowLimit {
  limit: number;
  windowMs: number;
}

export interface PlanRateLimit {
  /** Stable id the counters are keyed by, e.g. `vk:team-backend`. */
  key: string;
  requests: PlanWindowLimit | null;
  tokens: PlanWindowLimit | null;
}

export interface PlanAccount {
  id: string;
  provider: string;
  wire: Wire;
  baseUrl: string;
  /** Environment variable holding the API key; resolved at start-up, never stored. */
  apiKeyEnv: string | null;
  /** Provider settings as [name, value] entries: `region`, `project`, `api_version`. */
  options: [string, string][];
  /** Secrets other than the API key, as [option name, environment variable, required]. */
  secretOptions: [string, string, boolean][];
  /**
   * How this account's provider can resume a partial answer (mid-stream continuation):
   * `prefill` (a trailing assistant message is continued: Anthropic Messages), `prefix`
   * (`prefix: true` on the last assistant message: Mistral, DeepSeek), or null.
   */
  resume: "prefill" | "prefix" | null;
  /** The account's own `model`, sent upstream when a request reaches it directly (a budget reroute). */
  model: string | null;
  pool: number;
  rateLimit: PlanRateLimit | null;
}

export interface PlanTarget {
  account: number;
  /** Model sent upstream; null passes the caller's model through. */
  model: string | null;
  weight: number;
}

/**
 * A route's attempt policy, every default applied (`resilience` in the config,
 * with a route's own `resilience` and `fallback_config` folded in by the
 * compiler). The attempt policy (runtime/attempt-policy.ts) reads nothing else.
 */
export interface PlanResilience {
  /** One deadline for the whole request: attempts, backoffs and waits. */
  deadlineMs: number;
  /** Streams: to the first content or tool-call delta. */
  firstTokenTimeoutMs: number;
  /** JSON: to the response headers (the config's `first_token_timeout` when set, else the deadline). */
  headersTimeoutMs: number;
  /** Streams: the longest gap between chunks once the first has come. */
  stallTimeoutMs: number;
  /** Same-account retries per request. */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** A Retry-After up to this is waited out when no other account can take the request. */
  maxRetryAfterMs: number;
  /** Retries may be at most this share of an account's first attempts over RETRY_WINDOW_MS. */
  budgetRatio: number;
  /** What moves a request on to the next account. */
  failoverOn: ErrorType[];
  midStream: "error" | "continue";
}

/**
 * A route: the weighted split over its first `members` targets, then the
 * targets of its fallback routes (flattened, each account once).
 *
 *   targets: [ m0 m1 m2 | f0 f1 ]      members = 3
 *   order:   [ m1 m0 m2 f0 f1 ]        weight desc, then config order, then fallbacks
 *   chain after m0 fails: order without m0 → m1 m2 f0 f1
 *
 * Tables, by what is down:
 *   subsets[mask]  every healthy-set mask over members, for members ≤ SUBSET_MAX_MEMBERS
 *   without[p]     member p down, for routes up to WITHOUT_MAX_MEMBERS
 * A larger route with members down, or two or more down, falls back to an exact
 * cumulative-weight scan; the runtime never builds a table.
 */
export interface PlanRoute {
  id: string;
  model: string;
  members: number;
  targets: PlanTarget[];
  order: number[];
  table: AliasTable | null;
  subsets: (AliasTable | null)[] | null;
  without: (AliasTable | null)[] | null;
  resilience: PlanResilience;
  /** A field a target's format cannot carry is dropped (and named in a header) instead of refused with a 400. */
  dropUnsupportedParams?: boolean;
}

export const SUBSET_MAX_MEMBERS = 6;
export const WITHOUT_MAX_MEMBERS = 64;

export type BudgetLevel = "organization" | "team" | "virtual_key" | "provider";

export interface PlanBudget {
  /** Stable id the counters are keyed by, e.g. `team:backend` or `vk:alice/openai`. */
  key: string;
  level: BudgetLevel;
  owner: string;
  /** Caps in nano-USD; -1 where the period has no cap. */
  dailyNano: number;
  weeklyNano: number;
  monthlyNano: number;
}

export type BudgetExceeded =
  | { kind: "reject" }
  | { kind: "route"; route: number }
  | { kind: "account"; account: number };

export interface PlanVirtualKey {
  id: string;
  keyEnv: string | null;
  keySha256: string | null;
  team: number;
  /** Model names or route ids this key may use; null means all. */
  models: string[] | null;
  /** Budget indices that apply to every request of this key, root first. */
  budgets: number[];
  /** Per-provider budget index, as [provider, budget] entries. */
  providerBudgets: [string, number][];
  rateLimits: PlanRateLimit[];
  maxConcurrent: number;
  onBudgetExceeded: BudgetExceeded;
}

export interface PlanTeam {
  id: string;
  budget: number;
  rateLimit: PlanRateLimit | null;
}

/** Prices in nano-USD per million tokens: integer, so cost math never drifts. */
export interface PlanPrice {
  inputNano: number;
  outputNano: number;
  cachedInputNano: number;
  /** Input written to a prompt cache. Plans from before it existed lack it: the input price then. */
  cacheWriteNano: number;
}

/** Counters shared through Redis by every instance (see runtime/state-store-redis.ts). */
export interface PlanRedis {
  /** Environment variable holding the redis:// URL (it may carry a password): resolved at start-up. */
  urlEnv: string;
  /** Starts every key, inside a hash tag: `{gwc:}m:…`, so one gateway's keys share one Cluster slot. */
  prefix: string;
  leaseTtlMs: number;
  whenDown: "reject" | "local";
  /** `url` is a node of a Redis Cluster; absent when not. */
  cluster?: true;
  /** Budget leasing (runtime/budget-leases.ts); absent when off. */
  budgetLeasing?: { maxSliceNano: number; reportMs: number };
}

export interface Plan {
  version: typeof PLAN_VERSION;
  gwcVersion: string;
  configSha256: string;
  accounts: PlanAccount[];
  pools: PlanPool[];
  routes: PlanRoute[];
  /** The top-level policy, for a budget reroute straight to an account. */
  resilience: PlanResilience;
  /** [requested model, route index] entries; `*` is not among them. */
  routeByModel: [string, number][];
  catchAllRoute: number;
  organization: { id: string; budget: number; rateLimit: PlanRateLimit | null };
  teams: PlanTeam[];
  budgets: PlanBudget[];
  virtualKeys: PlanVirtualKey[];
  prices: [string, PlanPrice][];
  /** `redis` is absent when counters live in the embedded store. */
  state: { dir: string; snapshotIntervalMs: number; redis?: PlanRedis };
  server: {
    maxBodyBytes: number;
    shutdownTimeoutMs: number;
    adminKeyEnv: string | null;
    uiApply: boolean;
    /** From a connection's first byte to its request's last header. */
    headerTimeoutMs: number;
    /** From the last header to the body's last byte. */
    bodyTimeoutMs: number;
    /** How long an idle keep-alive connection stays open. */
    keepAliveTimeoutMs: number;
    /** Largest upstream stream event (SSE event, Bedrock frame); past it the stream fails. */
    maxEventBytes: number;
    /** Largest upstream JSON answer (or error body) read; past it the account fails. */
    maxUpstreamBodyBytes: number;
    logLevel: LogLevel;
    accessLog: boolean;
  };
  observability: { metrics: boolean; perKeyMetrics: boolean; logBodies: boolean };
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
