// Three gateway processes (`node gateway.mjs`, as production runs it) on one
// real redis-server: one budget, one rate limit, one concurrency cap across
// them, leases that return when an instance is killed, and Redis going away
// and coming back.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { buildGateway, chat as chatOn, costOf, eventually, fleetConfig, KEYS, RESERVATION, scriptsRun, startGateway, usageOf, stopAll, type GatewayProcess } from "./fleet.ts";
import { startRedis, type RedisProcess } from "./redis-server.ts";

/** About 20 reservations. */
const BUDGET_USD = 0.18;
const chat = (g: { port: number }, key: string, model?: string, extra?: object) => chatOn(g.port, key, model, extra);
const usage = (g: { port: number }, id: string) => usageOf(g.port, id);

let redis: RedisProcess;
let fast: MockUpstream;
let slow: MockUpstream;
let dir: string;
const gateways: GatewayProcess[] = [];

const startInstance = () => startGateway(dir, redis.url);
const metricsOf = async (g: { port: number }) => (await fetch(`http://127.0.0.1:${g.port}/metrics`)).text();

/** Every instance's /readyz says it is connected to Redis again (reconnects back off up to 2 s). */
async function connected(): Promise<void> {
  const states = await eventually(
    () => Promise.all(gateways.map(async (g) => ((await (await fetch(`http://127.0.0.1:${g.port}/readyz`)).json()) as { state: { connected: boolean } }).state.connected)),
    (v) => v.every(Boolean),
    10_000,
  );
  expect(states).toEqual([true, true, true]);
}

beforeAll(async () => {
  redis = await startRedis();
  fast = await startOpenAIUpstream({ name: "fast", fallback: { kind: "ok", delayMs: 20 } });
  slow = await startOpenAIUpstream({ name: "slow", stream: { chunks: 400, intervalMs: 50 }, fallback: { kind: "ok", delayMs: 300 } });
  dir = tempDir();
  writeFileSync(join(dir, "config.json"), JSON.stringify(fleetConfig({ fast: fast.url, slow: slow.url, budgetUsd: BUDGET_USD, maxConcurrent: 4, state: { redis: { url: "${REDIS_URL}", prefix: "test:", lease_ttl: "2s" } } })));
  buildGateway(dir);
  for (let i = 0; i < 3; i++) gateways.push(await startInstance());
});

afterAll(() => stopAll(gateways, [fast, slow], [redis]));

describe("three gateway processes on one Redis", () => {
  it("hold one budget: 300 concurrent requests spend at most the cap, exactly what the answers' usage adds up to, and every instance shows it", async () => {
    const answers = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const res = await chat(gateways[i % 3], KEYS.K_BUDGET);
        return { status: res.status, body: (await res.json()) as { usage?: { prompt_tokens: number; completion_tokens: number } } };
      }),
    );
    const served = answers.filter((a) => a.status === 200);
    expect(answers.every((a) => a.status === 200 || a.status === 402)).toBe(true);
    // Each settles below its reservation, so at least cap / reservation are served.
    expect(served.length).toBeGreaterThanOrEqual(Math.floor((BUDGET_USD * 1e9) / RESERVATION));
    const cost = served.reduce((n, a) => n + costOf(a.body.usage!), 0);
    const views = await eventually(
      () => Promise.all(gateways.map((g) => usage(g, "budget"))),
      (v) => v.every((u) => u.spent === v[0].spent && u.reserved === 0),
      3000,
    );
    for (const v of views) expect(v).toEqual({ ...views[0] });
    expect(views[0].spent).toBe(cost);
    expect(views[0].spent).toBeLessThanOrEqual(BUDGET_USD * 1e9);
    expect(views[0].reserved).toBe(0);
  });

  it("make a request with every kind of limit wait on one script: windows, concurrency slot, budgets and the account's count taken together", async () => {
    // Warm up: each instance has loaded its scripts (EVALSHA from now on).
    for (const g of gateways) expect((await chat(g, KEYS.K_ALL)).status).toBe(200);
    // Their settlements and slot releases (sent after the answers) land before counting starts.
    await eventually(() => usage(gateways[0], "all"), (v) => v.reserved === 0, 3000);
    await new Promise((r) => setTimeout(r, 300));
    const seen = await scriptsRun(redis.url);
    const N = 20;
    for (let i = 0; i < N; i++) {
      const res = await chat(gateways[i % 3], KEYS.K_ALL);
      expect(res.status).toBe(200);
      // The rate-limit headers are still there, from the one script's answer.
      expect(res.headers.get("x-ratelimit-limit-requests")).toBe("100000");
      await res.arrayBuffer();
    }
    // Settles and slot releases run after the answer: let the last ones land.
    await new Promise((r) => setTimeout(r, 300));
    seen.stop();
    // Before the caller's answer: one TAKE a request (not a COUNT, then an ACQUIRE, then a RESERVE, then a COUNT).
    expect(seen.get("TAKE")).toBe(N);
    expect(seen.get("COUNT") ?? 0).toBe(0);
    expect(seen.get("ACQUIRE") ?? 0).toBe(0);
    expect(seen.get("RESERVE") ?? 0).toBe(0);
    // After it: the settlement with the token counts, and the slot's release.
    expect(seen.get("SETTLE")).toBe(2 * N);
    const u = await eventually(() => usage(gateways[1], "all"), (v) => v.used === N + 3 && v.reserved === 0, 3000);
    expect(u).toMatchObject({ used: N + 3, reserved: 0 });
    // /metrics shows the store up and each script's duration, by operation.
    const text = await metricsOf(gateways[0]);
    expect(text).toContain('gwc_state_store_up{store="redis"} 1');
    expect(text).toContain("gwc_state_store_local_mode 0");
    expect(Number(/gwc_state_store_operation_seconds_count\{operation="take"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(N / 3);
  });

  it("hold one rate limit: of 60 requests across them, exactly 30 pass", async () => {
    const statuses = await Promise.all(Array.from({ length: 60 }, async (_, i) => (await chat(gateways[i % 3], KEYS.K_RATE)).status));
    expect(statuses.filter((s) => s === 200).length).toBe(30);
    expect(statuses.filter((s) => s === 429).length).toBe(30);
    const used = await eventually(() => Promise.all(gateways.map((g) => usage(g, "rate"))), (v) => v.every((u) => u.used === 30), 3000);
    expect(used.map((u) => u.used)).toEqual([30, 30, 30]);
  });

  it("hold one concurrency cap: never more than 4 at the upstream, and the slots come back", async () => {
    slow.peak = 0;
    const statuses = await Promise.all(Array.from({ length: 24 }, async (_, i) => (await chat(gateways[i % 3], KEYS.K_CONC, "slow")).status));
    expect(slow.peak).toBeLessThanOrEqual(4);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    // Every slot was released: four more at once all pass.
    const again = await Promise.all(Array.from({ length: 4 }, async (_, i) => (await chat(gateways[i % 3], KEYS.K_CONC, "slow")).status));
    expect(again).toEqual([200, 200, 200, 200]);
  });

  it("return a killed instance's reservations within the lease TTL", async () => {
    const victim = gateways[0];
    const res = await chat(victim, KEYS.K_STREAM, "slow", { stream: true });
    const reader = res.body!.getReader();
    await reader.read(); // the stream has started: its reservation is held
    const during = await eventually(() => usage(gateways[1], "stream"), (u) => u.reserved > 0, 2000);
    expect(during.reserved).toBeGreaterThan(0);
    victim.child.kill("SIGKILL");
    const killedAt = Date.now();
    await reader.cancel().catch(() => {});
    const after = await eventually(() => usage(gateways[1], "stream"), (u) => u.reserved === 0, 8000);
    expect(after.reserved).toBe(0);
    // TTL 2 s, renewals every third of it, the view refreshed every 250 ms: well inside 5 s on a loaded machine.
    expect(Date.now() - killedAt).toBeLessThan(5000);
    gateways[0] = await startInstance();
  });

  it("answer governed requests 503 within 2 s while Redis is stopped, keep serving ungoverned ones, and lose no counter", async () => {
    const before = await eventually(() => usage(gateways[1], "budget"), () => true, 0);
    // One request in flight when Redis goes: it is answered, and its spend reaches Redis once Redis is back.
    const inFlight = chat(gateways[1], KEYS.K_STREAM, "slow");
    await new Promise((r) => setTimeout(r, 100));
    const streamBefore = (await usage(gateways[1], "stream")).spent;
    await redis.stop();
    const t0 = Date.now();
    const refused = await chat(gateways[2], KEYS.K_BUDGET);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("state_unavailable");
    expect((await chat(gateways[2], KEYS.K_FREE)).status).toBe(200);
    for (const g of gateways) expect((await fetch(`http://127.0.0.1:${g.port}/healthz`)).status).toBe(200);
    const ready = (await (await fetch(`http://127.0.0.1:${gateways[2].port}/readyz`)).json()) as { state: { connected: boolean } };
    expect(ready.state).toMatchObject({ store: "redis", connected: false, whenDown: "reject" });
    const down = await metricsOf(gateways[2]);
    expect(down).toContain('gwc_state_store_up{store="redis"} 0');

    const answered = await inFlight;
    expect(answered.status).toBe(200);
    const { usage: u } = (await answered.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    // Its settlement waits for Redis, and /metrics says so.
    const waiting = await eventually(async () => Number(/gwc_state_store_pending (\d+)/.exec(await metricsOf(gateways[1]))?.[1]), (n) => n >= 1, 3000);
    expect(waiting).toBeGreaterThanOrEqual(1);

    await redis.start();
    await connected();
    const back = await eventually(async () => (await chat(gateways[2], KEYS.K_FREE)).status === 200 && (await chat(gateways[2], KEYS.K_STREAM, "m")).status, (s) => s === 200, 10_000);
    expect(back).toBe(200);
    const after = await eventually(() => usage(gateways[2], "budget"), (v) => v.spent === before.spent, 3000);
    expect(after.spent).toBe(before.spent);
    const cost = costOf(u);
    const stream = await eventually(() => usage(gateways[0], "stream"), (v) => v.spent >= streamBefore + cost, 5000);
    expect(stream.spent).toBeGreaterThanOrEqual(streamBefore + cost);
  });

  it("keep spend across a Redis crash (kill -9) once the AOF has synced", async () => {
    const before = await usage(gateways[1], "budget");
    expect(before.spent).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1500)); // appendfsync everysec
    await redis.kill();
    await redis.start();
    await connected();
    await new Promise((r) => setTimeout(r, 600)); // a refresh of the views from what Redis now has
    const after = await eventually(() => usage(gateways[1], "budget"), (v) => v.spent === before.spent && v.reserved === 0, 5000);
    expect(after.spent).toBe(before.spent);
    // And the cap still holds after the restart: the budget is nearly spent, so few more fit.
    const statuses = await Promise.all(Array.from({ length: 60 }, async (_, i) => (await chat(gateways[i % 3], KEYS.K_BUDGET)).status));
    const more = await eventually(() => usage(gateways[1], "budget"), (v) => v.reserved === 0, 3000);
    expect(more.spent).toBeLessThanOrEqual(BUDGET_USD * 1e9);
    expect(statuses).toContain(402);
  });
});
