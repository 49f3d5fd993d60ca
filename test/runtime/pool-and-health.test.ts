// The two pieces of runtime state with policies of their own, with the clock
// and the queue under the test's control.
import { afterEach, describe, expect, it } from "vitest";
import { CallerSignal } from "../../runtime/caller-signal.ts";
import { AccountHealth, BASE_COOLDOWN_MS, CONSECUTIVE_FAILURES, RAMP_MS } from "../../runtime/health.ts";
import type { PlanPool } from "../../runtime/plan.ts";
import { PoolBusyError, ProviderPool } from "../../runtime/pool.ts";

const pools: ProviderPool[] = [];
const pool = (backpressure: PlanPool["backpressure"], queueTimeoutMs = 50) => {
  const p = new ProviderPool(
    { id: "p", provider: "openai", maxConnections: 1, queueSize: 1, backpressure, queueTimeoutMs, requestTimeoutMs: 1000 },
    "http://127.0.0.1:9",
  );
  pools.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
const signal = new CallerSignal();

describe("provider pool backpressure", () => {
  it("admits up to its connections, queues up to its queue size, in order", async () => {
    const p = pool("error");
    expect(p.acquire(signal)).toBeUndefined();
    const queued = p.acquire(signal)!;
    expect(p.queued).toBe(1);
    p.release();
    await queued;
    expect(p.active).toBe(1);
    p.release();
    expect(p.active).toBe(0);
  });

  it("error: fails the attempt at once so failover can move on", () => {
    const p = pool("error");
    p.acquire(signal);
    void p.acquire(signal);
    const e = (() => {
      try {
        p.acquire(signal);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(PoolBusyError);
    expect((e as PoolBusyError).terminal).toBe(false);
  });

  it("drop: refuses the request outright", () => {
    const p = pool("drop");
    p.acquire(signal);
    void p.acquire(signal);
    expect(() => p.acquire(signal)).toThrow(expect.objectContaining({ terminal: true }));
  });

  it("block: waits up to queue_timeout for room, then fails the attempt", async () => {
    const p = pool("block", 60);
    p.acquire(signal);
    void p.acquire(signal);
    const start = performance.now();
    await expect(p.acquire(signal)).rejects.toMatchObject({ terminal: false });
    expect(performance.now() - start).toBeGreaterThanOrEqual(50);
  });

  it("block: gets in when a connection frees before the timeout", async () => {
    const p = pool("block", 1000);
    p.acquire(signal);
    const second = p.acquire(signal)!;
    const third = p.acquire(signal)!;
    p.release();
    await second;
    p.release();
    await third;
    expect(p.active).toBe(1);
  });

  it("a caller that goes away leaves the queue", async () => {
    const p = pool("error");
    p.acquire(signal);
    const gone = new CallerSignal();
    const waiting = p.acquire(gone)!;
    gone.abort();
    await expect(waiting).rejects.toBeInstanceOf(PoolBusyError);
    p.release();
    expect(p.active).toBe(0);
  });
});

describe("circuit breaker", () => {
  const clock = () => {
    let now = 1_000_000;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it("opens after consecutive failures, probes once when half-open, and ramps back", () => {
    const c = clock();
    const h = new AccountHealth(c.now);
    for (let i = 0; i < CONSECUTIVE_FAILURES - 1; i++) h.failure();
    expect(h.isDown()).toBe(false);
    h.failure();
    expect(h.isDown()).toBe(true);
    c.advance(BASE_COOLDOWN_MS);
    expect(h.isDown()).toBe(false); // half-open: one probe may go
    h.attempt();
    expect(h.isDown()).toBe(true); // and only one
    h.success();
    // Ramping: a quarter of the way back, it takes part in about a quarter of picks.
    c.advance(RAMP_MS / 4);
    expect(h.isDown(0.2)).toBe(false);
    expect(h.isDown(0.3)).toBe(true);
    c.advance(RAMP_MS);
    expect(h.isDown(0.999)).toBe(false);
  });

  it("a failed probe reopens it for twice as long", () => {
    const c = clock();
    const h = new AccountHealth(c.now);
    for (let i = 0; i < CONSECUTIVE_FAILURES; i++) h.failure();
    c.advance(BASE_COOLDOWN_MS);
    h.isDown();
    h.attempt();
    h.failure();
    c.advance(BASE_COOLDOWN_MS * 2 - 1);
    expect(h.isDown()).toBe(true);
    c.advance(1);
    expect(h.isDown()).toBe(false);
  });

  it("opens on a high failure rate even without a streak", () => {
    const h = new AccountHealth(clock().now);
    for (let i = 0; i <= 10; i++) (i % 2 === 0 ? h.failure() : h.success()); // 6 of 11 failed, never 2 in a row
    expect(h.isDown()).toBe(true);
  });

  it("keeps the account out for exactly an upstream's Retry-After", () => {
    const c = clock();
    const h = new AccountHealth(c.now);
    h.failure(12_000);
    c.advance(11_999);
    expect(h.isDown()).toBe(true);
    c.advance(1);
    expect(h.isDown()).toBe(false);
  });
});
