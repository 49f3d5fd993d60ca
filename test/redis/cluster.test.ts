// A governed gateway on a real three-node Redis Cluster (`state.redis.cluster`):
// its scripts run on the node that owns its prefix's slot (every key carries
// the prefix as a hash tag), budgets and rate limits hold, and the counters
// sit on exactly one node.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { buildGateway, chat, costOf, eventually, fleetConfig, KEYS, RESERVATION, startGateway, usageOf, stopAll, type GatewayProcess } from "./fleet.ts";
import { startRedisCluster, type RedisProcess } from "./redis-server.ts";

const BUDGET_USD = 0.05;

let nodes: RedisProcess[] = [];
let fast: MockUpstream;
let slow: MockUpstream;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  nodes = await startRedisCluster();
  fast = await startOpenAIUpstream({ name: "fast", fallback: { kind: "ok", delayMs: 10 } });
  slow = await startOpenAIUpstream({ name: "slow", fallback: { kind: "ok", delayMs: 200 } });
  const dir = tempDir();
  const state = { redis: { url: "${REDIS_URL}", prefix: "cl:", lease_ttl: "2s", cluster: true } };
  writeFileSync(join(dir, "config.json"), JSON.stringify(fleetConfig({ fast: fast.url, slow: slow.url, budgetUsd: BUDGET_USD, maxConcurrent: 4, state })));
  buildGateway(dir);
  // Two instances, each seeded with a different node: both find the one that owns the slot.
  gateways.push(await startGateway(dir, nodes[0].url), await startGateway(dir, nodes[2].url));
});

afterAll(() => stopAll(gateways, [fast, slow], nodes));

describe("a Redis Cluster", () => {
  it("holds one budget and one rate limit across two instances, with every counter on the node that owns the prefix's slot", async () => {
    const budget = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const res = await chat(gateways[i % 2].port, KEYS.K_BUDGET);
      return { status: res.status, body: (await res.json()) as { usage?: { prompt_tokens: number; completion_tokens: number } } };
    }));
    expect(budget.every((a) => a.status === 200 || a.status === 402)).toBe(true);
    const served = budget.filter((a) => a.status === 200);
    expect(served.length).toBeGreaterThanOrEqual(Math.floor((BUDGET_USD * 1e9) / RESERVATION));
    expect(served.length).toBeLessThan(40);
    const cost = served.reduce((n, a) => n + costOf(a.body.usage!), 0);
    const views = await eventually(() => Promise.all(gateways.map((g) => usageOf(g.port, "budget"))), (v) => v.every((u) => u.spent === cost && u.reserved === 0), 3000);
    expect(views.map((v) => v.spent)).toEqual([cost, cost]);
    expect(cost).toBeLessThanOrEqual(BUDGET_USD * 1e9);

    const rate = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await chat(gateways[i % 2].port, KEYS.K_RATE)).status));
    expect(rate.filter((s) => s === 200)).toHaveLength(30);

    const cluster = new Cluster([{ host: "127.0.0.1", port: nodes[1].port }]);
    try {
      await new Promise((ok) => cluster.once("ready", ok));
      const perNode = await Promise.all(cluster.nodes("master").map(async (n) => (await n.keys("{cl:}*")).length));
      expect(perNode.filter((n) => n > 0)).toHaveLength(1);
    } finally {
      cluster.disconnect();
    }
  });
});
