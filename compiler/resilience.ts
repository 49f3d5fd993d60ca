// The `resilience` policy: its defaults, how a route's own settings and the
// article's `fallback_config` fold into it, and the checks the schema cannot
// say. The result is the plan's PlanResilience, which the runtime's attempt
// policy reads and never re-derives.
//
//   failover_on, most specific first:
//     route resilience.failover_on ─► route fallback_config ─► top-level resilience.failover_on
//     ─► top-level fallback_config ─► RESILIENCE_DEFAULTS.failover_on
//   every other field: route resilience ─► top-level resilience ─► default
import { errorTypeOfStatus, type ErrorType } from "../runtime/error-type.ts";
import type { PlanResilience } from "../runtime/plan.ts";
import type { FallbackConfig, ResilienceConfig } from "./config-types.ts";
import type { DiagnosticBag } from "./diagnostics.ts";
import { parseDuration } from "./durations.ts";

export const RESILIENCE_DEFAULTS = {
  deadline: "10m",
  first_token_timeout: "10s",
  stall_timeout: "15s",
  retries: { max: 2, backoff: "250ms", max_backoff: "4s", max_retry_after: "10s", budget_ratio: 0.2 },
  failover_on: [
    "rate_limited",
    "server_error",
    "overloaded",
    "timeout",
    "connection_error",
    "auth",
    "context_length_exceeded",
    "stream_interrupted",
    "pool_full",
  ] as ErrorType[],
  mid_stream: "error",
} as const;

/** Errors that are the caller's own: another account would refuse them the same way. */
export const CALLER_ERRORS: ReadonlySet<string> = new Set<ErrorType>(["invalid_request", "content_filter"]);

/**
 * What the article's `fallback_config` means in the vocabulary: each listed
 * status becomes its error_type (429 rate_limited, 500/502 server_error, 503
 * overloaded (and so Anthropic's 529), 504 timeout), `on_timeout` and
 * `on_connection_error` their own types. A refusal of the gateway's own
 * credentials, a stream that opens with an error and a full pool always moved
 * a request on, so they still do; `enabled: false` moves nothing on.
 */
export function failoverOfFallback(f: FallbackConfig): ErrorType[] {
  if (f.enabled === false) return [];
  const types = new Set<ErrorType>((f.on_status_codes ?? [429, 500, 502, 503, 504]).map(errorTypeOfStatus).filter((t) => !CALLER_ERRORS.has(t)));
  if (f.on_timeout ?? true) types.add("timeout");
  if (f.on_connection_error ?? true) types.add("connection_error");
  for (const t of ["auth", "stream_interrupted", "pool_full"] as const) types.add(t);
  return [...types];
}

export function resolveResilience(
  top: ResilienceConfig | undefined,
  topFallback: FallbackConfig | undefined,
  route: ResilienceConfig | undefined,
  routeFallback: FallbackConfig | undefined,
): PlanResilience {
  const pick = <K extends keyof ResilienceConfig>(k: K) => route?.[k] ?? top?.[k];
  const retry = <K extends keyof typeof RESILIENCE_DEFAULTS.retries>(k: K) => route?.retries?.[k] ?? top?.retries?.[k] ?? RESILIENCE_DEFAULTS.retries[k];
  const failoverOn =
    route?.failover_on ??
    (routeFallback !== undefined ? failoverOfFallback(routeFallback) : undefined) ??
    top?.failover_on ??
    (topFallback !== undefined ? failoverOfFallback(topFallback) : undefined) ??
    RESILIENCE_DEFAULTS.failover_on;
  const deadlineMs = ms(pick("deadline") ?? RESILIENCE_DEFAULTS.deadline);
  const explicitFirstToken = pick("first_token_timeout");
  return {
    deadlineMs,
    firstTokenTimeoutMs: Math.min(deadlineMs, ms(explicitFirstToken ?? RESILIENCE_DEFAULTS.first_token_timeout)),
    headersTimeoutMs: explicitFirstToken === undefined ? deadlineMs : Math.min(deadlineMs, ms(explicitFirstToken)),
    stallTimeoutMs: ms(pick("stall_timeout") ?? RESILIENCE_DEFAULTS.stall_timeout),
    retries: retry("max"),
    backoffMs: ms(retry("backoff")),
    maxBackoffMs: ms(retry("max_backoff")),
    maxRetryAfterMs: ms(retry("max_retry_after")),
    budgetRatio: retry("budget_ratio"),
    // Sorted, caller errors dropped (check reports them): the same plan for the same meaning.
    failoverOn: [...new Set(failoverOn as ErrorType[])].filter((t) => !CALLER_ERRORS.has(t)).sort(),
    midStream: pick("mid_stream") ?? RESILIENCE_DEFAULTS.mid_stream,
  };
}

/** Durations that parse, caller errors kept out of failover_on, timeouts that fit the deadline. */
export function checkResilience(r: ResilienceConfig | undefined, at: string, bag: DiagnosticBag, top?: ResilienceConfig): void {
  if (r === undefined) return;
  const durations: [string, string | undefined][] = [
    ["deadline", r.deadline],
    ["first_token_timeout", r.first_token_timeout],
    ["stall_timeout", r.stall_timeout],
    ["retries/backoff", r.retries?.backoff],
    ["retries/max_backoff", r.retries?.max_backoff],
    ["retries/max_retry_after", r.retries?.max_retry_after],
  ];
  for (const [field, value] of durations) {
    if (value !== undefined && parseDuration(value) === undefined) {
      bag.error("GWC_E_DURATION", `${at}/${field}`, `'${value}' is not a duration; write a positive number with a unit, like "500ms", "30s", "5m", "1h", "1d" or "1h30m".`);
    }
  }
  r.failover_on?.forEach((t, i) => {
    if (CALLER_ERRORS.has(t)) {
      bag.error("GWC_E_FAILOVER_CALLER_ERROR", `${at}/failover_on/${i}`, `'${t}' is the caller's own error: every account would refuse the request the same way, so it is never failed over. Remove it.`);
    }
  });
  const deadline = parseDuration(r.deadline ?? top?.deadline ?? RESILIENCE_DEFAULTS.deadline);
  for (const field of ["first_token_timeout", "stall_timeout"] as const) {
    const value = r[field] === undefined ? undefined : parseDuration(r[field]);
    if (value !== undefined && deadline !== undefined && value > deadline) {
      bag.warning("GWC_W_TIMEOUT_PAST_DEADLINE", `${at}/${field}`, `${field} ${r[field]} is longer than the deadline (${r.deadline ?? top?.deadline ?? RESILIENCE_DEFAULTS.deadline}), so the deadline ends the request first. Lower it or raise \`deadline\`.`);
    }
  }
  const backoff = parseDuration(r.retries?.backoff ?? RESILIENCE_DEFAULTS.retries.backoff);
  const maxBackoff = r.retries?.max_backoff === undefined ? undefined : parseDuration(r.retries.max_backoff);
  if (backoff !== undefined && maxBackoff !== undefined && maxBackoff < backoff) {
    bag.error("GWC_E_BACKOFF_RANGE", `${at}/retries/max_backoff`, `max_backoff ${r.retries!.max_backoff} is below backoff ${r.retries?.backoff ?? RESILIENCE_DEFAULTS.retries.backoff}; raise it.`);
  }
}

function ms(duration: string): number {
  return parseDuration(duration)!;
}
