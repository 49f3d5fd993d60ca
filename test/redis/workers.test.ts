// `gwc serve --workers 2`: two serving processes behind one port, sharing one
// set of limits: the primary's embedded store over IPC without Redis, Redis
// with it. A killed worker's reservations return and the worker is replaced.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { chat, costOf, eventually, fleetConfig, KEYS, usageOf } from "./fleet.ts";
import { freePort, startRedis, type RedisProcess } from "./redis-server.ts";

const GWC = resolve("build/gwc.mjs");
const BUDGET_USD = 0.1;

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

async function serve(withRedis: boolean): Promise<{ port: number; child: ChildProcess; log: () => string }> {
  const dir = tempDir();
  const config = fleetConfig({ fast: fast.url, slow: slow.url, budgetUsd: BUDGET_USD, maxConcurrent: 3, state: withRedis ? { redis: { url: "${REDIS_URL}", prefix: "workers:", lease_ttl: "2s" } } : { dir: "state" } });
  // The dashboard may apply drafts (server.ui_apply).
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, server: { ...config.server, ui_apply: true } }));
  const port = await freePort();
  const child = spawn(process.execPath, [GWC, "serve", "config.json", "--workers", "2", "--port", String(port)], {
    cwd: dir,
    env: { PATH: process.env.PATH, OPENAI_API_KEY: "sk-x", REDIS_URL: redis.url, ...KEYS },
  });
  let log = "";
  await new Promise<void>((ok, fail) => {
    // The log is JSON lines on stdout; why a process could not start, on stderr.
    const read = (d: Buffer) => {
      log += d.toString();
      if (log.includes("2 workers serving")) ok();
    };
    child.stdout!.on("data", read);
    child.stderr!.on("data", read);
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

/** GET /v1/models on a connection of its own, as the model ids. */
function modelsOnNewConnection(port: number): Promise<string[]> {
  return new Promise((ok, fail) => {
    const req = get({ host: "127.0.0.1", port, path: "/v1/models", agent: false, headers: { authorization: `Bearer ${KEYS.K_FREE}` } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => ok((JSON.parse(body) as { data: { id: string }[] }).data.map((m) => m.id)));
    });
    req.on("error", fail);
  });
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
    const cost = served.reduce((n, a) => n + costOf(a.body.usage!), 0);
    const view = await eventually(() => usageOf(gw.port, "budget"), (v) => v.spent === cost && v.reserved === 0, 3000);
    expect({ spent: view.spent, reserved: view.reserved }).toEqual({ spent: cost, reserved: 0 });
    expect(view.spent).toBeLessThanOrEqual(BUDGET_USD * 1e9);

    slow.peak = 0;
    const conc = await Promise.all(Array.from({ length: 12 }, async () => (await chat(gw.port, KEYS.K_CONC, "slow")).status));
    expect(slow.peak).toBeLessThanOrEqual(3);
    expect(conc.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
  });

  it("applies a dashboard draft: gwc serve compiles it and every worker serves it", async () => {
    const admin = { authorization: `Bearer ${KEYS.GWC_ADMIN}` };
    const current = (await (await fetch(`http://127.0.0.1:${gw.port}/admin/api/config`, { headers: admin })).json()) as { source: string; apply: string };
    expect(current.apply).toBe("enabled");
    const draft = JSON.parse(current.source);
    draft.routes.push({ model: "m2", targets: [{ account: "fast" }] });
    draft.pricing.m2 = draft.pricing.m;
    const applied = await fetch(`http://127.0.0.1:${gw.port}/admin/api/config`, { method: "POST", headers: admin, body: JSON.stringify(draft) });
    expect(applied.status, await applied.clone().text()).toBe(200);
    // Each request on a new connection: node:cluster hands connections to the workers in turn, so both are asked.
    const models = await eventually(
      () => Promise.all(Array.from({ length: 6 }, () => modelsOnNewConnection(gw.port))),
      (lists) => lists.every((l) => l.includes("m2")),
      10_000,
    );
    for (const list of models) expect(list).toContain("m2");
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
    const held = await eventually(() => usageOf(gw.port, "stream"), (v) => v.reserved > 0, 2000);
    expect(held.reserved).toBeGreaterThan(0);
    process.kill(workers[0], "SIGKILL");
    await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
    const after = await eventually(() => usageOf(gw.port, "stream"), (v) => v.reserved === 0, 8000);
    expect(after.reserved).toBe(0);
    const replaced = await eventually(async () => childrenOf(primary), (w) => w.length === 2 && !w.includes(workers[0]), 8000);
    expect(replaced).toHaveLength(2);
    // A connection the primary handed to the worker as it was killed is lost with it (node:cluster):
    // a caller's retry, bounded here, reaches a live worker.
    const served = await eventually(async () => (await chat(gw.port, KEYS.K_STREAM, "m", {}, AbortSignal.timeout(3000))).status, (s) => s === 200, 20_000);
    expect(served).toBe(200);
  });
});
