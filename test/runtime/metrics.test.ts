// GET /metrics on a real gateway: every name the issue lists, counts equal to
// what was sent, token sums equal to what the upstream reported, spend equal
// to /v1/usage, and labels that only ever hold configured ids.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_TYPES } from "../../runtime/error-type.ts";
import { installObservability } from "../../runtime/observability.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { parseMetrics, sum, type Sample } from "./metrics-text.ts";
import { startGateway, until, type RunningGateway } from "./harness.ts";

const ENV = { OPENAI_API_KEY: "sk-provider-secret-1", KEY_ALICE: "vk-alice-secret-2", KEY_POOR: "vk-poor-secret-3", KEY_SLOW: "vk-slow-secret-4", ADMIN_KEY: "admin-secret-5" };

let a: MockUpstream;
let b: MockUpstream;
let gw: RunningGateway;

function config(aUrl: string, bUrl: string, observability: object = {}): object {
  return {
    observability,
    accounts: [
      { id: "a", provider: "openai", base_url: aUrl, api_key: "${OPENAI_API_KEY}" },
      { id: "b", provider: "openai", base_url: bUrl, api_key: "${OPENAI_API_KEY}" },
    ],
    routes: [
      { model: "gpt-4o", targets: [{ account: "a", weight: 3 }, { account: "b", weight: 1 }] },
      { id: "primary", model: "gpt-4o-mini", targets: [{ account: "a", weight: 1 }, { account: "b", weight: 0 }] },
      { id: "anything", model: "*", targets: [{ account: "b", weight: 1 }] },
    ],
    fallback_config: { enabled: true, on_status_codes: [429, 500, 502, 503] },
    teams: [{ id: "backend", budget: { daily_limit_usd: 100 }, rate_limit: { request_max_limit: 1000, request_reset_duration: "1h" } }],
    virtual_keys: [
      { id: "alice", key: "${KEY_ALICE}", team: "backend", budget: { daily_limit_usd: 50 } },
      { id: "poor", key: "${KEY_POOR}", team: "backend", budget: { daily_limit_usd: 0.000001 } },
      { id: "slow", key: "${KEY_SLOW}", rate_limit: { request_max_limit: 1, request_reset_duration: "1h" } },
    ],
    server: { admin_key: "${ADMIN_KEY}" },
  };
}

beforeAll(async () => {
  a = await startOpenAIUpstream({ name: "a" });
  b = await startOpenAIUpstream({ name: "b" });
  gw = await startGateway(config(a.url, b.url), ENV);
  await installObservability(gw.runtime, { current: () => gw.server.gateway, env: {} });
});

afterAll(async () => {
  await gw?.close();
  await a?.close();
  await b?.close();
});

const client = (key: string) => new OpenAI({ baseURL: gw.v1, apiKey: key, maxRetries: 0 });
const scrape = async (): Promise<Sample[]> => {
  const res = await fetch(`${gw.url}/metrics`);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return parseMetrics(await res.text());
};

describe("GET /metrics", () => {
  it("counts what was sent, sums what upstreams reported, and prices it as /v1/usage does", async () => {
    const alice = client(ENV.KEY_ALICE);
    const reported = { input: 0, output: 0 };
    const add = (u: { prompt_tokens: number; completion_tokens: number } | null | undefined) => {
      reported.input += u!.prompt_tokens;
      reported.output += u!.completion_tokens;
    };
    let sent = 0;
    const records: number[] = [];
    gw.runtime.observers.push(() => records.push(1));

    // Successes on a split route.
    for (let i = 0; i < 6; i++, sent++) add((await alice.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: `hello ${i}` }] })).usage);
    // Streams: the caller asks for usage, and one that does not (the gateway asks upstream for it and counts it anyway).
    for (let i = 0; i < 3; i++, sent++) {
      const s = await alice.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: `stream ${i}` }], stream: true, stream_options: { include_usage: true } });
      for await (const c of s) if (c.usage) add(c.usage);
    }
    const quiet = await alice.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "no usage asked" }], stream: true });
    for await (const c of quiet) expect(c.usage ?? null).toBeNull();
    sent++;
    // The primary route sends it to a, asking for the usage the caller did not.
    expect(a.requests.at(-1)!.body).toMatchObject({ messages: [{ content: "no usage asked" }], stream_options: { include_usage: true } });
    // Failovers: a answers 503, then 429; b serves both.
    a.queue.push({ kind: "status", status: 503 }, { kind: "status", status: 429 });
    for (let i = 0; i < 2; i++, sent++) {
      const res = await alice.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `failover ${i}` }] }).withResponse();
      expect(res.response.headers.get("x-gwc-account")).toBe("b");
      add(res.data.usage);
    }
    // 401: no key, and a wrong key.
    for (const key of ["", "vk-wrong"]) {
      const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", headers: key ? { authorization: `Bearer ${key}` } : {}, body: JSON.stringify({ model: "gpt-4o", messages: [] }) });
      expect(res.status).toBe(401);
      sent++;
    }
    // 402: a budget too small for any request.
    await expect(client(ENV.KEY_POOR).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({ status: 402 });
    sent++;
    // A caller-chosen model on the catch-all route, then 429 from the key's rate limit.
    const slow = client(ENV.KEY_SLOW);
    add((await slow.chat.completions.create({ model: "my-own-model-x", messages: [{ role: "user", content: "free text" }] })).usage);
    sent++;
    await expect(slow.chat.completions.create({ model: "my-own-model-x", messages: [{ role: "user", content: "again" }] })).rejects.toMatchObject({ status: 429 });
    sent++;
    await until(() => records.length === sent);

    const m = await scrape();
    for (const name of [
      "gen_ai_server_request_duration_seconds_bucket",
      "gen_ai_server_time_to_first_token_seconds_bucket",
      "gen_ai_client_token_usage_bucket",
      "gwc_tokens_total",
      "gwc_requests_total",
      "gwc_attempts_total",
      "gwc_cost_usd_total",
      "gwc_budget_spent_usd",
      "gwc_budget_limit_usd",
      "gwc_budget_reserved_usd",
      "gwc_ratelimit_remaining",
      "gwc_breaker_state",
      "gwc_route_share",
      "gwc_pool_in_flight",
      "gwc_pool_queued",
      "gwc_overhead_seconds_bucket",
      "gwc_config_info",
      "process_cpu_seconds_total",
      "nodejs_eventloop_lag_seconds",
    ]) {
      expect(m.some((s) => s.name === name), name).toBe(true);
    }
    // gwc_pool_rejected_total and gwc_config_reloads_total are declared even before their first count.
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toContain("# TYPE gwc_pool_rejected_total counter");
    expect(text).toContain("# TYPE gwc_config_reloads_total counter");

    // Counts equal what was sent.
    expect(sum(m, "gwc_requests_total")).toBe(sent);
    expect(sum(m, "gen_ai_server_request_duration_seconds_count")).toBe(sent);
    expect(sum(m, "gwc_overhead_seconds_count")).toBe(sent);
    expect(sum(m, "gwc_requests_total", { status_code: "200", error_type: "" })).toBe(13);
    expect(sum(m, "gwc_requests_total", { status_code: "401", error_type: "auth" })).toBe(2);
    expect(sum(m, "gwc_requests_total", { status_code: "402", error_type: "budget_exceeded" })).toBe(1);
    expect(sum(m, "gwc_requests_total", { status_code: "429", error_type: "rate_limited" })).toBe(1);
    expect(sum(m, "gen_ai_server_time_to_first_token_seconds_count")).toBe(4);
    expect(sum(m, "gwc_attempts_total", { account: "a", outcome: "overloaded" })).toBe(1);
    expect(sum(m, "gwc_attempts_total", { account: "a", outcome: "rate_limited" })).toBe(1);
    expect(sum(m, "gwc_attempts_total", { outcome: "ok" })).toBe(13);

    // Tokens equal what the upstreams reported; the quiet stream's, which its caller never saw, asked of the (deterministic) mock itself.
    const direct = new OpenAI({ baseURL: a.url, apiKey: "k", maxRetries: 0 });
    const again = await direct.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "no usage asked" }], stream: true, stream_options: { include_usage: true } });
    for await (const c of again) if (c.usage) add(c.usage);
    expect(sum(m, "gwc_tokens_total", { type: "input" })).toBe(reported.input);
    expect(sum(m, "gwc_tokens_total", { type: "output" })).toBe(reported.output);
    expect(sum(m, "gen_ai_client_token_usage_sum", { gen_ai_token_type: "input" })).toBe(sum(m, "gwc_tokens_total", { type: "input" }));
    expect(sum(m, "gen_ai_client_token_usage_sum", { gen_ai_token_type: "output" })).toBe(sum(m, "gwc_tokens_total", { type: "output" }));
    expect(sum(m, "gen_ai_client_token_usage_count", { gen_ai_token_type: "input" })).toBe(13);

    // Spend equals /v1/usage: alice paid for everything that was priced.
    const usage = (await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${ENV.KEY_ALICE}` } })).json()) as { budgets: { level: string; id: string; period: string; spent_usd: string }[] };
    const aliceSpent = Number(usage.budgets.find((x) => x.level === "virtual_key")!.spent_usd);
    expect(aliceSpent).toBeGreaterThan(0);
    // /v1/usage prints six decimals; the counters hold nano-USD sums.
    expect(sum(m, "gwc_cost_usd_total")).toBeCloseTo(aliceSpent, 6);
    expect(sum(m, "gwc_budget_spent_usd", { level: "team", id: "backend", period: "daily" })).toBeCloseTo(sum(m, "gwc_cost_usd_total"), 12);
    expect(sum(m, "gwc_budget_limit_usd", { level: "team", id: "backend", period: "daily" })).toBe(100);
    expect(sum(m, "gwc_budget_reserved_usd", { level: "team", id: "backend" })).toBe(0);

    // Admission counted alice's twelve requests and poor's one against the team's window.
    expect(sum(m, "gwc_ratelimit_remaining", { level: "team", id: "backend", kind: "requests" })).toBe(1000 - 13);
    // Per-key series are opt-in: none here.
    expect(m.filter((s) => s.labels.level === "virtual_key")).toEqual([]);

    // The caller's own model name on the catch-all route is recorded as the route.
    expect(text).not.toContain("my-own-model-x");
    expect(sum(m, "gen_ai_server_request_duration_seconds_count", { gen_ai_request_model: "anything" })).toBe(2);

    // The live split, breakers closed.
    expect(sum(m, "gwc_route_share", { route: "gpt-4o", account: "a" })).toBe(0.75);
    expect(sum(m, "gwc_route_share", { route: "gpt-4o", account: "b" })).toBe(0.25);
    expect(sum(m, "gwc_breaker_state")).toBe(0);
    expect(m.find((s) => s.name === "gwc_config_info")!.labels.version).toBe(gw.plan.configSha256.slice(0, 12));

    // Every error_type label is in the one vocabulary; no secret anywhere.
    for (const s of m) if (s.labels.error_type) expect(ERROR_TYPES).toContain(s.labels.error_type);
    for (const secret of Object.values(ENV)) expect(text).not.toContain(secret);
  });

  it("shows an open breaker and moves its share to the others", async () => {
    a.fallback = { kind: "status", status: 500 };
    try {
      const alice = client(ENV.KEY_ALICE);
      // Five consecutive failures open a's circuit; each request fails over to b.
      for (let i = 0; i < 5; i++) await alice.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
      const m = await scrape();
      expect(sum(m, "gwc_breaker_state", { account: "a" })).toBe(2);
      // Its breaker is per account and model: the failing route takes a out (b has weight 0 there and
      // serves as failover), the other route keeps its split.
      expect(sum(m, "gwc_route_share", { route: "primary", account: "a" })).toBe(0);
      expect(sum(m, "gwc_route_share", { route: "gpt-4o", account: "a" })).toBe(0.75);
    } finally {
      a.fallback = { kind: "ok" };
    }
  });

  it("exports every key's budgets and rate limits only under per_key_metrics", async () => {
    const perKey = await startGateway(config(a.url, b.url, { per_key_metrics: true }), ENV);
    try {
      await installObservability(perKey.runtime, { current: () => perKey.server.gateway, env: {} });
      const slow = new OpenAI({ baseURL: perKey.v1, apiKey: ENV.KEY_SLOW, maxRetries: 0 });
      await slow.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] });
      const m = parseMetrics(await (await fetch(`${perKey.url}/metrics`)).text());
      expect(sum(m, "gwc_budget_limit_usd", { level: "virtual_key", id: "alice", period: "daily" })).toBe(50);
      expect(sum(m, "gwc_ratelimit_remaining", { level: "virtual_key", id: "slow", kind: "requests" })).toBe(0);
    } finally {
      await perKey.close();
    }
  });

  it("is not served when observability.metrics is false", async () => {
    const off = await startGateway(config(a.url, b.url, { metrics: false }), ENV);
    try {
      await installObservability(off.runtime, { current: () => off.server.gateway, env: {} });
      expect((await fetch(`${off.url}/metrics`)).status).toBe(404);
    } finally {
      await off.close();
    }
  });

  it("counts attempts a full pool refused", async () => {
    const slowUp = await startOpenAIUpstream({ name: "slow", fallback: { kind: "ok", delayMs: 300 } });
    const full = await startGateway(
      { accounts: [{ id: "s", provider: "openai", base_url: slowUp.url, pool: { max_connections: 1, queue_size: 0, backpressure: "error" } }] },
      { OPENAI_API_KEY: "k" },
    );
    try {
      await installObservability(full.runtime, { current: () => full.server.gateway, env: {} });
      const ask = () => fetch(`${full.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }) }).then((r) => r.status);
      const statuses = await Promise.all([ask(), ask()]);
      expect(statuses.sort()).toEqual([200, 502]);
      const m = parseMetrics(await (await fetch(`${full.url}/metrics`)).text());
      expect(sum(m, "gwc_pool_rejected_total", { provider: "openai" })).toBe(1);
      expect(sum(m, "gwc_attempts_total", { account: "s", outcome: "pool_full" })).toBe(1);
    } finally {
      await full.close();
      await slowUp.close();
    }
  });
});
