// Budget leasing (state.redis.budget_leasing) with three gateway processes on
// one real redis-server: the cap still holds (nothing crashes here, so the
// overspend bound is zero), every instance ends up showing the same spend,
// and a request's budgets stop costing a Redis round trip each.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { buildGateway, chat, costOf, eventually, fleetConfig, KEYS, RESERVATION, scriptsRun, startGateway, usageOf, stopAll, type GatewayProcess } from "./fleet.ts";
import { startRedis, type RedisProcess } from "./redis-server.ts";

/** About 36 reservations. */
const BUDGET_USD = 0.18;
/** Slices of at most ~10 reservations. */
const MAX_SLICE_USD = 0.05;

let redis: RedisProcess;
let fast: MockUpstream;
let slow: MockUpstream;
let dir: string;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  fast = await startOpenAIUpstream({ name: "fast", fallback: { kind: "ok", delayMs: 20 } });
  slow = await startOpenAIUpstream({ name: "slow", stream: { chunks: 400, intervalMs: 50 }, fallback: { kind: "ok", delayMs: 300 } });
  dir = tempDir();
  const state = { redis: { url: "${REDIS_URL}", prefix: "lease:", lease_ttl: "2s", budget_leasing: { max_slice_usd: MAX_SLICE_USD, report_interval: "300ms" } } };
  const config = fleetConfig({ fast: fast.url, slow: slow.url, budgetUsd: BUDGET_USD, maxConcurrent: 4, state });
  // No request limit on the account: its count would take a script a request, which leasing (of budgets) does not save.
  delete (config.accounts[0] as { rate_limit?: object }).rate_limit;
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  buildGateway(dir);
  for (let i = 0; i < 3; i++) gateways.push(await startGateway(dir, redis.url));
});

afterAll(() => stopAll(gateways, [fast, slow], [redis]));

describe("budget leasing across three gateway processes", () => {
  it("holds the cap: 300 concurrent requests spend at most it, exactly what the answers' usage adds up to, and every instance shows it", async () => {
    const answers = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const res = await chat(gateways[i % 3].port, KEYS.K_BUDGET);
        return { status: res.status, body: (await res.json()) as { usage?: { prompt_tokens: number; completion_tokens: number } } };
      }),
    );
    expect(answers.every((a) => a.status === 200 || a.status === 402)).toBe(true);
    const served = answers.filter((a) => a.status === 200);
    // Slices strand a little headroom near the cap, but most of the budget is served.
    expect(served.length).toBeGreaterThanOrEqual(Math.floor((0.5 * BUDGET_USD * 1e9) / RESERVATION));
    const cost = served.reduce((n, a) => n + costOf(a.body.usage!), 0);
    // Spend reaches Redis with the next reports (every 300 ms), then every view reads it back.
    const views = await eventually(
      () => Promise.all(gateways.map((g) => usageOf(g.port, "budget"))),
      (v) => v.every((u) => u.spent === cost),
      5000,
    );
    expect(views.map((v) => v.spent)).toEqual([cost, cost, cost]);
    expect(cost).toBeLessThanOrEqual(BUDGET_USD * 1e9);
  });

  it("costs a fraction of a Redis script per request for its budgets, where the per-request store costs two", async () => {
    // Warm: each instance has its slice of the roomy budget.
    for (const g of gateways) expect((await chat(g.port, KEYS.K_STREAM)).status).toBe(200);
    const seen = await scriptsRun(redis.url);
    const N = 90;
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const res = await chat(gateways[i % 3].port, KEYS.K_STREAM);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    seen.stop();
    const budgetScripts = ["GRANT", "REPORT", "RESERVE", "SETTLE", "TAKE"].reduce((n, s) => n + (seen.get(s) ?? 0), 0);
    expect(seen.get("RESERVE") ?? 0).toBe(0);
    expect(seen.get("TAKE") ?? 0).toBe(0);
    expect(budgetScripts / N).toBeLessThan(0.5);
  });

  it("returns a killed instance's slices once its lease lapses", async () => {
    const victim = gateways[0];
    // A stream keeps a reservation from the victim's slice in flight.
    const res = await chat(victim.port, KEYS.K_STREAM, "slow", { stream: true });
    const reader = res.body!.getReader();
    await reader.read();
    const direct = new Redis(redis.url);
    try {
      const slicesOf = async (id: string) => {
        const entries = Object.entries(await direct.hgetall(`{lease:}h:${id}`)).filter(([f]) => f.startsWith("s:"));
        return entries.map(([f, e]) => ({ line: f.slice(2), amount: Number(JSON.parse(e)[1]) }));
      };
      const ids = await direct.zrange("{lease:}instances", "0", "-1");
      expect(ids).toHaveLength(3);
      victim.child.kill("SIGKILL");
      await reader.cancel().catch(() => {});
      const held = new Map(await Promise.all(ids.map(async (id) => [id, await slicesOf(id)] as const)));
      // Its lease is 2 s: another instance's next script reaps it (renewals run every third of that).
      const left = await eventually(() => direct.zrange("{lease:}instances", "0", "-1"), (l) => l.length === 2, 8000);
      expect(left).toHaveLength(2);
      const dead = ids.find((id) => !left.includes(id))!;
      const slices = held.get(dead)!;
      // It held a slice of the stream key's budget (the one its stream was taken from); it is back in the budget.
      expect(slices.length).toBeGreaterThan(0);
      expect(await direct.exists(`{lease:}h:${dead}`)).toBe(0);
      for (const s of slices) {
        const reserved = Number(await direct.hget(s.line, "r"));
        const others = (await Promise.all(left.map(slicesOf))).flat().filter((o) => o.line === s.line).reduce((n, o) => n + o.amount, 0);
        // What is still reserved is the live instances' slices: nothing of the dead one's.
        expect(reserved).toBe(others);
      }
    } finally {
      direct.disconnect();
    }
    gateways[0] = await startGateway(dir, redis.url);
  });
});
