// The attempt policy as a pure function: a table of the cases a user meets,
// and the invariants of DESIGN.md as fast-check properties over whole request
// lives simulated with no sockets at all.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CALLER_ERRORS, maxAttempts, nextStep, type AttemptEntry, type Candidate, type Outcome, type PolicyInput, type Step } from "../../runtime/attempt-policy.ts";
import { ERROR_TYPES, type ErrorType } from "../../runtime/error-type.ts";
import type { PlanResilience } from "../../runtime/plan.ts";
import { RETRY_WINDOW_MS, RetryBudget } from "../../runtime/retry-budget.ts";
import { resolveResilience } from "../../compiler/resilience.ts";

const policy: PlanResilience = resolveResilience(undefined, undefined, undefined, undefined);
const cand = (position: number, ready = true, canResume = false): Candidate => ({ position, account: position, ready, canResume });
const input = (over: Partial<PolicyInput> & { last: Outcome }): PolicyInput => ({
  policy,
  now: 1000,
  deadline: 60_000,
  history: [{ account: 0, retry: false }],
  lastPosition: 0,
  candidates: [cand(1)],
  retryBudget: true,
  random: 0.5,
  ...over,
});
const failed = (errorType: ErrorType, extra: Partial<Outcome> = {}): Outcome => ({ errorType, sent: false, ...extra });

describe("attempt policy, case by case", () => {
  const cases: [string, PolicyInput, Step][] = [
    ["a 500 with another account ready: next account", input({ last: failed("server_error") }), { kind: "next", position: 1 }],
    ["a 429 with another account ready: next account, not a wait", input({ last: failed("rate_limited", { retryAfterMs: 1000 }) }), { kind: "next", position: 1 }],
    ["a 429 on the only account, Retry-After 1 s: wait it out on the same account", input({ last: failed("rate_limited", { retryAfterMs: 1000 }), candidates: [] }), { kind: "retry", position: 0, afterMs: 1000 }],
    ["a 429 whose Retry-After is past max_retry_after: 429 at once", input({ last: failed("rate_limited", { retryAfterMs: 30_000 }), candidates: [] }), { kind: "give_up", reason: "rate_limited" }],
    ["a 429 whose Retry-After is past the deadline: 429 at once", input({ last: failed("rate_limited", { retryAfterMs: 5000 }), candidates: [], deadline: 4000 }), { kind: "give_up", reason: "rate_limited" }],
    ["a 500 on the only account: retry after a jittered backoff", input({ last: failed("server_error"), candidates: [], random: 0.5 }), { kind: "retry", position: 0, afterMs: 125 }],
    ["a 500 with the retry budget spent: give up", input({ last: failed("server_error"), candidates: [], retryBudget: false }), { kind: "give_up", reason: "exhausted" }],
    ["a caller's bad request: relayed, never failed over", input({ last: failed("invalid_request") }), { kind: "give_up", reason: "relay" }],
    ["a content filter: relayed, never failed over", input({ last: failed("content_filter") }), { kind: "give_up", reason: "relay" }],
    ["a prompt too long for this model: next account", input({ last: failed("context_length_exceeded") }), { kind: "next", position: 1 }],
    ["a prompt too long and no other account: no retry on the same model", input({ last: failed("context_length_exceeded"), candidates: [] }), { kind: "give_up", reason: "exhausted" }],
    ["a failure failover_on leaves out: relayed", input({ policy: { ...policy, failoverOn: ["rate_limited"] }, last: failed("server_error") }), { kind: "give_up", reason: "relay" }],
    ["the deadline passed: timeout", input({ last: failed("server_error"), now: 60_000 }), { kind: "give_up", reason: "deadline" }],
    ["the caller left: cancelled", input({ last: failed("cancelled") }), { kind: "give_up", reason: "cancelled" }],
    ["a stream broke after bytes, mid_stream error: error event", input({ last: failed("stream_interrupted", { sent: true }), candidates: [cand(1, true, true)] }), { kind: "give_up", reason: "sent" }],
    ["a stream broke after bytes, mid_stream continue: continue on a resumable account", input({ policy: { ...policy, midStream: "continue" }, last: failed("stream_interrupted", { sent: true }), candidates: [cand(1), cand(2, true, true)] }), { kind: "continue", position: 2 }],
    ["a stream broke inside a tool call: error event", input({ policy: { ...policy, midStream: "continue" }, last: failed("stream_interrupted", { sent: true, toolCallOpen: true }), candidates: [cand(1, true, true)] }), { kind: "give_up", reason: "sent" }],
    ["nobody can resume: error event", input({ policy: { ...policy, midStream: "continue" }, last: failed("timeout", { sent: true }), candidates: [cand(1)] }), { kind: "give_up", reason: "sent" }],
    ["the next account is down: skipped for a retry here", input({ last: failed("overloaded"), candidates: [cand(1, false)], random: 0 }), { kind: "retry", position: 0, afterMs: 0 }],
  ];
  it.each(cases)("%s", (_, i, step) => expect(nextStep(i)).toEqual(step));
});

// ---------------------------------------------------------------------------
// Whole request lives: the loop's job done by hand, the policy's answers checked.

const errorType = fc.constantFrom(...ERROR_TYPES);
const policyArb: fc.Arbitrary<PlanResilience> = fc.record({
  deadlineMs: fc.integer({ min: 1, max: 20_000 }),
  firstTokenTimeoutMs: fc.integer({ min: 1, max: 20_000 }),
  headersTimeoutMs: fc.integer({ min: 1, max: 20_000 }),
  stallTimeoutMs: fc.integer({ min: 1, max: 20_000 }),
  retries: fc.integer({ min: 0, max: 5 }),
  backoffMs: fc.integer({ min: 1, max: 1000 }),
  maxBackoffMs: fc.integer({ min: 1000, max: 8000 }),
  maxRetryAfterMs: fc.integer({ min: 0, max: 15_000 }),
  budgetRatio: fc.double({ min: 0, max: 1, noNaN: true }),
  failoverOn: fc.subarray(ERROR_TYPES.filter((t) => !CALLER_ERRORS.has(t))),
  midStream: fc.constantFrom("error" as const, "continue" as const),
});
const attemptArb = fc.record({
  errorType,
  retryAfterMs: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
  sentNow: fc.boolean(),
  toolCallOpen: fc.boolean(),
  tookMs: fc.integer({ min: 0, max: 5000 }),
});
const lifeArb = fc.record({
  policy: policyArb,
  accounts: fc.integer({ min: 1, max: 5 }),
  ready: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
  resumable: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
  attempts: fc.array(attemptArb, { minLength: 1, maxLength: 20 }),
  budgetOk: fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
  random: fc.double({ min: 0, max: 0.999, noNaN: true }),
});

interface Life {
  steps: { step: Step; at: number; last: Outcome; sentBefore: boolean }[];
  attempts: number;
  retries: number;
  deadline: number;
}

/** Runs one request life: each attempt fails as the arbitrary says, the clock moves on by its time and each wait. */
type LifeInput = typeof lifeArb extends fc.Arbitrary<infer T> ? T : never;

function live(l: LifeInput): Life {
  const start = 0;
  const deadline = start + l.policy.deadlineMs;
  let now = start;
  const history: AttemptEntry[] = [{ account: 0, retry: false }];
  let position = 0;
  let sent = false;
  const steps: Life["steps"] = [];
  for (let i = 0; i < l.attempts.length; i++) {
    const a = l.attempts[i];
    now = Math.min(now + a.tookMs, deadline);
    const sentBefore = sent;
    sent ||= a.sentNow;
    const last: Outcome = { errorType: a.errorType, retryAfterMs: a.retryAfterMs, sent, toolCallOpen: a.toolCallOpen };
    const tried = new Set(history.map((h) => h.account));
    const candidates: Candidate[] = [];
    for (let q = 0; q < l.accounts; q++) if (!tried.has(q)) candidates.push({ position: q, account: q, ready: l.ready[q], canResume: l.resumable[q] });
    const step = nextStep({ policy: l.policy, now, deadline, history, lastPosition: position, last, candidates, retryBudget: l.budgetOk[i], random: l.random });
    steps.push({ step, at: now, last, sentBefore });
    if (step.kind === "give_up") break;
    if (step.kind === "retry") now += step.afterMs;
    history.push({ account: step.kind === "retry" ? position : step.position, retry: step.kind === "retry" });
    position = step.position;
  }
  return { steps, attempts: history.length, retries: history.filter((h) => h.retry).length, deadline };
}

describe("attempt policy invariants", () => {
  it("never starts an attempt past the deadline, and a retry's wait ends before it", () => {
    fc.assert(
      fc.property(lifeArb, (l) => {
        for (const { step, at } of live(l).steps) {
          if (step.kind !== "give_up") expect(at).toBeLessThan(l.policy.deadlineMs);
          if (step.kind === "retry") expect(at + step.afterMs).toBeLessThan(l.policy.deadlineMs);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("never more attempts than the accounts plus the retries allowed", () => {
    fc.assert(
      fc.property(lifeArb, (l) => {
        const life = live(l);
        expect(life.attempts).toBeLessThanOrEqual(maxAttempts(l.policy, l.accounts));
        expect(life.retries).toBeLessThanOrEqual(l.policy.retries);
      }),
      { numRuns: 2000 },
    );
  });

  it("after bytes reached the caller, only a continuation on a resumable account, never with a half-sent tool call", () => {
    fc.assert(
      fc.property(lifeArb, (l) => {
        for (const { step, last } of live(l).steps) {
          if (!last.sent) continue;
          expect(["continue", "give_up"]).toContain(step.kind);
          if (step.kind === "continue") {
            expect(l.policy.midStream).toBe("continue");
            expect(last.toolCallOpen).toBe(false);
            expect(l.resumable[step.position]).toBe(true);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("never retries or fails over a caller error, nor anything failover_on leaves out", () => {
    fc.assert(
      fc.property(lifeArb, (l) => {
        for (const { step, last } of live(l).steps) {
          if (last.sent) continue;
          if (CALLER_ERRORS.has(last.errorType) || !l.policy.failoverOn.includes(last.errorType)) expect(step.kind).toBe("give_up");
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("prefers another ready account to waiting", () => {
    fc.assert(
      fc.property(lifeArb, (l) => {
        // A retry only when no untried account was ready.
        const life = live(l);
        const seen = new Set<number>([0]);
        for (const { step } of life.steps) {
          if (step.kind === "retry") for (let q = 0; q < l.accounts; q++) if (!seen.has(q)) expect(l.ready[q]).toBe(false);
          if (step.kind !== "give_up") seen.add(step.position);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("retry budget", () => {
  it("grants retries only within budget_ratio of first attempts over the window, plus one", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 3000 }), first: fc.boolean() }), { maxLength: 300 }),
        (ratio, events) => {
          const budget = new RetryBudget();
          let now = 1_000_000;
          for (const e of events) {
            now += e.gapMs;
            if (e.first) budget.first(now);
            else if (budget.allows(now, ratio)) {
              budget.retry(now);
              const { firsts, retries } = budget.counts(now);
              expect(retries).toBeLessThanOrEqual(ratio * firsts + 1);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("forgets what is older than the window", () => {
    const budget = new RetryBudget();
    for (let i = 0; i < 100; i++) budget.first(0);
    expect(budget.counts(RETRY_WINDOW_MS - 1).firsts).toBe(100);
    expect(budget.counts(RETRY_WINDOW_MS + 1000).firsts).toBe(0);
  });
});
