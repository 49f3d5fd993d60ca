// The attempt policy: what a request does after an attempt failed. A pure
// function of the route's policy, the attempts so far, the clock and the last
// outcome; the gateway's loop only carries the step out. No I/O, no clock
// reads, no randomness of its own (jitter comes in as `random`).
//
//   last outcome ─┬─ bytes reached the caller ─► continue on a resumable account, or give up (error event)
//                 ├─ cancelled / caller error ─► give up (the caller gets the answer once)
//                 ├─ deadline passed ─────────► give up: timeout
//                 ├─ not in failover_on ──────► give up: relay it
//                 ├─ another account ready ───► next account (preferred to waiting)
//                 ├─ retryable, budget left,  ─► retry the same account after backoff or Retry-After
//                 │  wait fits max_retry_after and the deadline
//                 └─ otherwise ───────────────► give up: rate_limited (soonest retry-after) or exhausted
import type { ErrorType } from "./error-type.ts";
import type { PlanResilience } from "./plan.ts";

/** Never failed over or retried: every account would refuse the request the same way. */
export const CALLER_ERRORS: ReadonlySet<ErrorType> = new Set<ErrorType>(["invalid_request", "content_filter"]);

/** Failures the same account may get right on a second try. */
export const RETRYABLE: ReadonlySet<ErrorType> = new Set<ErrorType>(["rate_limited", "server_error", "overloaded", "timeout", "connection_error", "stream_interrupted"]);

export interface AttemptEntry {
  account: number;
  /** A same-account retry (not a first attempt at this account). */
  retry: boolean;
}

export interface Outcome {
  errorType: ErrorType;
  /** How long the upstream asked to wait (Retry-After and its kin), when it said. */
  retryAfterMs?: number;
  /** Bytes of the answer reached the caller. */
  sent: boolean;
  /** A tool call was half-sent: no provider can resume it. */
  toolCallOpen?: boolean;
}

/** An account of the route this request has not tried yet, in failover order. */
export interface Candidate {
  position: number;
  account: number;
  /** It can take the request now: breaker closed (or its probe), not rate-limited, not over its own limit. */
  ready: boolean;
  /** Its provider can resume a partial answer (plan `resume`). */
  canResume: boolean;
}

export interface PolicyInput {
  policy: PlanResilience;
  now: number;
  deadline: number;
  /** Every attempt of this request, the last one included. */
  history: readonly AttemptEntry[];
  /** The route position of the last attempt. */
  lastPosition: number;
  last: Outcome;
  candidates: readonly Candidate[];
  /** The last account's retry budget has room for one more retry. */
  retryBudget: boolean;
  /** Uniform in [0, 1): the jitter draw. */
  random: number;
}

export type GiveUp =
  /** The caller's own error or a failure failover_on leaves out: relay it as it came. */
  | "relay"
  /** Bytes already reached the caller and nothing can continue: end the stream with an error event. */
  | "sent"
  | "cancelled"
  | "deadline"
  /** Rate-limited with nothing to wait for within max_retry_after and the deadline: 429 with the soonest retry-after. */
  | "rate_limited"
  /** Every account (and retry) allowed was tried. */
  | "exhausted";

export type Step =
  | { kind: "retry"; position: number; afterMs: number }
  | { kind: "next"; position: number }
  | { kind: "continue"; position: number }
  | { kind: "give_up"; reason: GiveUp };

/** Most attempts one request can make on a route with `accounts` accounts. */
export function maxAttempts(policy: PlanResilience, accounts: number): number {
  return accounts + policy.retries;
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base·2^n)). */
export function backoffMs(policy: PlanResilience, retriesSoFar: number, random: number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.min(retriesSoFar, 30));
  return Math.floor(random * ceiling);
}

export function nextStep(input: PolicyInput): Step {
  const { policy, now, deadline, history, last, candidates } = input;
  const accounts = new Set(history.map((h) => h.account)).size + candidates.length;
  const attemptsLeft = maxAttempts(policy, accounts) - history.length;
  if (last.errorType === "cancelled") return giveUp("cancelled");

  if (last.sent) {
    // Only a continuation may follow bytes the caller already has.
    if (policy.midStream !== "continue" || last.toolCallOpen === true || CALLER_ERRORS.has(last.errorType)) return giveUp("sent");
    if (now >= deadline || attemptsLeft <= 0) return giveUp("sent");
    const resumable = candidates.find((c) => c.ready && c.canResume);
    return resumable === undefined ? giveUp("sent") : { kind: "continue", position: resumable.position };
  }

  if (CALLER_ERRORS.has(last.errorType)) return giveUp("relay");
  if (now >= deadline) return giveUp("deadline");
  if (!policy.failoverOn.includes(last.errorType)) return giveUp("relay");
  if (attemptsLeft <= 0) return giveUp("exhausted");

  // Another healthy account is preferred to waiting.
  const ready = candidates.find((c) => c.ready);
  if (ready !== undefined) return { kind: "next", position: ready.position };

  const rateLimited = last.errorType === "rate_limited";
  const retries = history.reduce((n, h) => n + (h.retry ? 1 : 0), 0);
  if (!RETRYABLE.has(last.errorType) || retries >= policy.retries || !input.retryBudget) {
    return giveUp(rateLimited ? "rate_limited" : "exhausted");
  }
  const asked = last.retryAfterMs;
  if (asked !== undefined && asked > policy.maxRetryAfterMs) return giveUp(rateLimited ? "rate_limited" : "exhausted");
  const wait = asked ?? backoffMs(policy, retries, input.random);
  // The retry must be able to start before the deadline, with time for an answer.
  if (now + wait >= deadline) return giveUp(rateLimited ? "rate_limited" : "exhausted");
  return { kind: "retry", position: input.lastPosition, afterMs: wait };
}

function giveUp(reason: GiveUp): Step {
  return { kind: "give_up", reason };
}
