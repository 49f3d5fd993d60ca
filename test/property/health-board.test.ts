// The router skips asking each member whether it is down while the health
// board counts no unsettled breaker. That is only sound if "0 unsettled"
// really means no breaker can answer "down": checked here over random
// histories of failures, 429s, trips, probes, successes and time passing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AccountHealth, BASE_COOLDOWN_MS, CONSECUTIVE_FAILURES, DEFAULT_RATE_LIMIT_MS, HealthBoard, RAMP_MS, RATE_LIMIT_STREAK } from "../../runtime/health.ts";

// Two breakers, steps that include a whole trip (a streak of failures) and a
// whole successful probe, and waits that often span a cooldown or a ramp, so
// histories go round open → half-open → ramping → closed again and again.
const who = fc.nat(1);
const op = fc.oneof(
  fc.record({ kind: fc.constant("failure" as const), who, retryAfterMs: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined, freq: 2 }) }),
  fc.record({ kind: fc.constant("trip" as const), who }),
  fc.record({ kind: fc.constant("rateLimited" as const), who, retryAfterMs: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }) }),
  fc.record({ kind: fc.constant("probe" as const), who }),
  fc.record({ kind: fc.constant("success" as const), who }),
  fc.record({ kind: fc.constant("isDown" as const), who, random: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.constantFrom(BASE_COOLDOWN_MS, RAMP_MS, 2 * RAMP_MS)) }),
);

describe("health board", () => {
  it("counts exactly the breakers that could take an account out; at 0 none is down", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 120, size: "max" }), (ops) => {
        let now = 1_000_000;
        const board = new HealthBoard();
        const breakers = [0, 1].map(() => new AccountHealth(() => now, board));
        for (const o of ops) {
          if (o.kind === "wait") now += o.ms;
          else if (o.kind === "failure") breakers[o.who].failure(o.retryAfterMs);
          else if (o.kind === "trip") for (let i = 0; i < CONSECUTIVE_FAILURES; i++) breakers[o.who].failure();
          else if (o.kind === "success") breakers[o.who].success();
          else if (o.kind === "rateLimited") breakers[o.who].rateLimited(o.retryAfterMs);
          else if (o.kind === "isDown") breakers[o.who].isDown(o.random);
          else if (!breakers[o.who].isDown()) {
            // A probe: let through, and it answers.
            breakers[o.who].attempt();
            breakers[o.who].success();
          }
          expect(board.unsettled).toBe(breakers.filter((b) => !b.settled).length);
          if (board.unsettled === 0) {
            // Even the unluckiest draw finds every account up.
            for (const b of breakers) expect(b.isDown(1)).toBe(false);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("a rate limit is not a health failure", () => {
  it("429s never open the breaker, and once the last Retry-After is over the account is fully back: no ramp", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant("limited" as const), retryAfterMs: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }) }),
            fc.record({ kind: fc.constant("success" as const) }),
            fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 5_000 }) }),
          ),
          { maxLength: 60 },
        ),
        (ops) => {
          let now = 1_000_000;
          const h = new AccountHealth(() => now, new HealthBoard());
          let streak = 0;
          let until = 0;
          for (const o of ops) {
            if (o.kind === "wait") now += o.ms;
            else if (o.kind === "success") {
              h.success();
              streak = 0;
            } else {
              h.rateLimited(o.retryAfterMs);
              // A lone 429 takes nothing out; a streak holds the account out until its latest Retry-After.
              if (++streak >= RATE_LIMIT_STREAK) until = Math.max(until, now + (o.retryAfterMs ?? DEFAULT_RATE_LIMIT_MS));
            }
            expect(h.openUntil).toBe(0);
            expect(h.isDown(1)).toBe(now < until);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
