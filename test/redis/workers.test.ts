// `gwc serve --workers 2`: two serving processes behind one port, sharing one
// set of limits: the primary's embedded store over IPC without Redis, Redis
// with it. A killed worker's reservations return and the worker is replaced.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account } from "../runtime/harness.ts";
import { freePort, startRedis, type RedisProcess } from "./redis-server.ts";

const GWC = resolve("build/gwc.mjs");
const KEYS = { K_BUDGET: "gwc-budget-0123456789", K_RATE: "gwc-rate-0123456789", K_CONC: "gwc-conc-0123456789", K_STREAM: "gwc-stream-0123456789", GWC_ADMIN: "gwc-admin-0123456789" };
const PRICE = { input_per_mtok_usd: 100, output_per_mtok_usd: 100 };
const NANO_PER_TOKEN = 100_000;
const BUDGET_USD = 0.03;

let fast: MockUpstream;
let slow: MockUpstream;
let redis: RedisProcess;
beforeAll(async () => {
  fast = await startOpenAIUpstream({ name: "fast", fallback: { kind: "ok", delayMs: 10 } });
  slow = await startOpenAIUpstream({ name: "slow", stream: { chunks: 400, intervalMs: 50 }, fallback: { kind: "ok", delayMs: 300 } });
  redis = await startRedis();
});
afterAll(async () => {
  await fast?.close();
  await slow?.close();
  await redis?.stop();
});

function config(withRedis: boolean) {
  return {
    accounts: [account("fast", fast.url, 1), account("slow", slow.url, 0)],
    routes: [
      { model: "m", targets: [{ account: "fast" }] },
      { model: "slow", targets: [{ account: "slow", weight: 1 }] },
    ],
    pricing: { m: PRICE, slow: PRICE },
    virtual_keys: [
      { id: "budget", key: "${K_BUDGET}", budget: { daily_limit_usd: BUDGET_USD } },
      { id: "rate", key: "${K_RATE}", rate_limit: { request_max_limit: 30, request_reset_duration: "1h" } },
      { id: "conc", key: "${K_CONC}", max_concurrent_requests: 3 },
      { id: "stream", key: "${K_STREAM}", budget: { daily_limit_usd: 100 } },
    ],
    server: { admin_key: "${GWC_ADMIN}" },
    state: withRedis ? { redis: { url: "${REDIS_URL}", prefix: "workers:", lease_ttl: "2s" } } : { dir: "state" },
  };
}

async function serve(withRedis: boolean): Promise<{ port: number; child: ChildProcess; log: () => string }> {
  const dir = tempDir();
  writeFileSync(join(dir, "config.json"), JSON.stringify(config(withRedis)));
  const port = await freePort();
  const child = spawn(process.execPath, [GWC, "serve", "config.json", "--workers", "2", "--port", String(port)], {
    cwd: dir,
    env: { PATH: process.env.PATH, OPENAI_API_KEY: "sk-x", REDIS_URL: redis.url, ...KEYS },
  });
  let log = "";
  await new Promise<void>((ok, fail) => {
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.includes("2 workers serving")) ok();
    });
    child.once("exit", (code) => fail(new Error(`gwc serve exited ${code}: ${log}`)));
  });
  return { port, child, log: () => log };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once("exit", ok));
  child.kill("SIGTERM");
  await exited;
}

/** The pids of a process's children (the primary's workers), from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/PID/stat, after the parenthesised command name.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

const chat = (port: number, key: string, model = "m", extra: object = {}) =>
  fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello there" }], max_tokens: 5, ...extra }),
  });

async function budgetOf(port: number, id: string): Promise<{ spent: number; reserved: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/usage`, { headers: { authorization: `Bearer ${KEYS.GWC_ADMIN}` } });
  const k = ((await res.json()) as { data: { key: string; budgets: { spent_usd: string; reserved_usd: string }[] }[] }).data.find((d) => d.key === id)!;
  return { spent: Math.round(Number(k.budgets[0].spent_usd) * 1e9), reserved: Math.round(Number(k.budgets[0].reserved_usd) * 1e9) };
}

async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    // A kept-alive connection to a worker that was just killed fails once: ask again.
    const v = await read().catch((e: unknown) => (Date.now() > deadline ? Promise.reject(e) : undefined));
    if ((v !== undefined && ok(v)) || Date.now() > deadline) return v as T;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each([
  { name: "the primary's embedded store", withRedis: false },
  { name: "Redis", withRedis: true },
])("gwc serve --workers 2 over $name", ({ withRedis }) => {
  let gw: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    gw = await serve(withRedis);
  });
  afterAll(async () => {
    if (gw) await stop(gw.child);
  });

  it("grants exactly one rate limit, one budget and one concurrency cap across both workers", async () => {
    const statuses = await Promise.all(Array.from({ length: 60 }, async () => (await chat(gw.port, KEYS.K_RATE)).status));
    expect(statuses.filter((s) => s === 200).length).toBe(30);

    const answers = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await chat(gw.port, KEYS.K_BUDGET);
        return { status: res.status, body: (await res.json()) as { usage?: { prompt_tokens: number; completion_tokens: number } } };
      }),
    );
    const served = answers.filter((a) => a.status === 200);
    expect(served.length).toBeGreaterThan(0);
    const cost = served.reduce((n, a) => n + (a.body.usage!.prompt_tokens + a.body.usage!.completion_tokens) * NANO_PER_TOKEN, 0);
    const view = await eventually(() => budgetOf(gw.port, "budget"), (v) => v.spent === cost && v.reserved === 0, 3000);
    expect(view).toEqual({ spent: cost, reserved: 0 });
    expect(view.spent).toBeLessThanOrEqual(BUDGET_USD * 1e9);

    slow.peak = 0;
    const conc = await Promise.all(Array.from({ length: 12 }, async () => (await chat(gw.port, KEYS.K_CONC, "slow")).status));
    expect(slow.peak).toBeLessThanOrEqual(3);
    expect(conc.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
  });

  it("returns a killed worker's reservation and replaces the worker", async () => {
    // gwc serve's children: the primary (`node gateway.mjs`), and esbuild's service.
    const primary = childrenOf(gw.child.pid!).find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("gateway.mjs"))!;
    const workers = childrenOf(primary);
    expect(workers).toHaveLength(2);
    // Hold a reservation on each worker (connections spread round-robin), then kill one worker.
    const streams = await Promise.all([0, 1].map(() => chat(gw.port, KEYS.K_STREAM, "slow", { stream: true })));
    const readers = streams.map((s) => s.body!.getReader());
    await Promise.all(readers.map((r) => r.read()));
    const held = await eventually(() => budgetOf(gw.port, "stream"), (v) => v.reserved > 0, 2000);
    expect(held.reserved).toBeGreaterThan(0);
    process.kill(workers[0], "SIGKILL");
    await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
    const after = await eventually(() => budgetOf(gw.port, "stream"), (v) => v.reserved === 0, 8000);
    expect(after.reserved).toBe(0);
    const replaced = await eventually(async () => childrenOf(primary), (w) => w.length === 2 && !w.includes(workers[0]), 8000);
    expect(replaced).toHaveLength(2);
    expect((await chat(gw.port, KEYS.K_STREAM)).status).toBe(200);
  });
});
