// What the multi-process tests share: the config (one key per limit under
// test), how they ask, and how they read /v1/usage.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { expect } from "vitest";
import * as SCRIPTS from "../../runtime/redis-scripts.ts";
import { freePort } from "../helpers.ts";
import { account } from "../runtime/harness.ts";

export const KEYS = {
  K_BUDGET: "gwc-budget-0123456789",
  K_RATE: "gwc-rate-0123456789",
  K_CONC: "gwc-conc-0123456789",
  K_STREAM: "gwc-stream-0123456789",
  K_FREE: "gwc-free-0123456789",
  K_ALL: "gwc-all-0123456789",
  GWC_ADMIN: "gwc-admin-0123456789",
};
/** $100 per million tokens, in nano-USD a token. */
export const NANO_PER_TOKEN = 100_000;
const PRICE = { input_per_mtok_usd: 100, output_per_mtok_usd: 100 };
const BODY = { messages: [{ role: "user", content: "hello there" }], max_tokens: 5 };
/** What one request of `chat` reserves: its body's bytes as input tokens (the most a provider can bill), plus max_tokens. */
export const RESERVATION = (JSON.stringify({ model: "m", ...BODY }).length + BODY.max_tokens) * NANO_PER_TOKEN;

/** Model `m` on a fast upstream, `slow` on a slow one; keys with a budget, a rate limit of 30, a concurrency cap, a large budget, none, and all of them far from reached. */
export function fleetConfig(o: { fast: string; slow: string; budgetUsd: number; maxConcurrent: number; state: object }) {
  return {
    // The fast account has a request limit of its own (far from reached): each request counts into it too.
    accounts: [account("fast", o.fast, 1, { rate_limit: { request_max_limit: 1_000_000, request_reset_duration: "1h" } }), account("slow", o.slow, 0)],
    routes: [
      { model: "m", targets: [{ account: "fast" }] },
      { model: "slow", targets: [{ account: "slow", weight: 1 }] },
    ],
    pricing: { m: PRICE, slow: PRICE },
    virtual_keys: [
      { id: "budget", key: "${K_BUDGET}", budget: { daily_limit_usd: o.budgetUsd } },
      { id: "rate", key: "${K_RATE}", rate_limit: { request_max_limit: 30, request_reset_duration: "1h" } },
      { id: "conc", key: "${K_CONC}", max_concurrent_requests: o.maxConcurrent },
      { id: "stream", key: "${K_STREAM}", budget: { daily_limit_usd: 100 } },
      { id: "free", key: "${K_FREE}" },
      // Every kind of limit at once, none of them reached: what one request costs in Redis round trips.
      {
        id: "all",
        key: "${K_ALL}",
        budget: { daily_limit_usd: 1000 },
        rate_limit: { request_max_limit: 100_000, request_reset_duration: "1h", token_max_limit: 100_000_000, token_reset_duration: "1h" },
        max_concurrent_requests: 50,
      },
    ],
    server: { admin_key: "${GWC_ADMIN}" },
    state: o.state,
  };
}

export const chat = (port: number, key: string, model = "m", extra: object = {}, signal?: AbortSignal) =>
  fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    signal,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, ...BODY, ...extra }),
  });

/** The cost of an answer's reported usage. */
export const costOf = (u: { prompt_tokens: number; completion_tokens: number }) => (u.prompt_tokens + u.completion_tokens) * NANO_PER_TOKEN;

/** One key's first budget and first request limit as /v1/usage shows them to the admin, in nano-USD. */
export async function usageOf(port: number, id: string): Promise<{ spent: number; reserved: number; used?: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/usage`, { headers: { authorization: `Bearer ${KEYS.GWC_ADMIN}` }, signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { data: { key: string; budgets: { spent_usd: string; reserved_usd: string }[]; rate_limits: { requests?: { used: number } }[] }[] };
  const k = body.data.find((d) => d.key === id)!;
  return {
    spent: Math.round(Number(k.budgets[0]?.spent_usd ?? 0) * 1e9),
    reserved: Math.round(Number(k.budgets[0]?.reserved_usd ?? 0) * 1e9),
    used: k.rate_limits[0]?.requests?.used,
  };
}

/** Reads until `ok` holds or `ms` pass, then returns the last value. A read that fails (a connection to a process just killed) is retried. */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read().catch((e: unknown) => (Date.now() > deadline ? Promise.reject(e) : undefined));
    if ((v !== undefined && ok(v)) || Date.now() > deadline) return v as T;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `gwc build` of `dir/config.json` into `dir`, as CI would. */
export function buildGateway(dir: string): void {
  const built = spawnSync(process.execPath, [resolve("build/gwc.mjs"), "build", join(dir, "config.json"), "-o", dir], { encoding: "utf8" });
  expect(built.status, built.stderr).toBe(0);
}

export interface GatewayProcess {
  port: number;
  child: ChildProcess;
  log: string;
}

/** `node gateway.mjs` from `dir`, as production runs it, on a free port; resolves once it listens. */
export async function startGateway(dir: string, redisUrl: string): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(port), OPENAI_API_KEY: "sk-x", REDIS_URL: redisUrl, ...KEYS } });
  const g = { port, child, log: "" };
  await new Promise<void>((ok, fail) => {
    // The gateway's log is JSON lines on stdout (`listening`); why it could not start, on stderr.
    const read = (d: Buffer) => {
      g.log += d.toString();
      if (g.log.includes("listening on")) ok();
    };
    child.stdout!.on("data", read);
    child.stderr!.on("data", read);
    child.once("exit", (code) => fail(new Error(`gateway exited ${code}: ${g.log}`)));
  });
  return g;
}

/**
 * Counts the scripts Redis runs from now on, by name (TAKE, SETTLE, …), from
 * MONITOR on a plain socket (its lines: `+<time> [0 <addr>] "evalsha" "<sha>" …`); `stop()` ends it.
 */
export async function scriptsRun(url: string): Promise<Map<string, number> & { stop(): void }> {
  const names = new Map(Object.entries(SCRIPTS).map(([name, lua]) => [createHash("sha1").update(lua).digest("hex"), name]));
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const seen = new Map<string, number>() as Map<string, number> & { stop(): void };
  let rest = "";
  socket.on("data", (d: Buffer) => {
    const lines = (rest + d.toString()).split("\r\n");
    rest = lines.pop()!;
    for (const line of lines) {
      const m = /^\+\d+\.\d+ \[[^\]]*\] "(\w+)"(?: "([0-9a-f]{40})")?/.exec(line);
      if (m === null) continue;
      const name = m[1].toLowerCase() === "evalsha" ? (names.get(m[2]) ?? "?") : m[1].toLowerCase();
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
  });
  socket.on("error", () => {});
  await new Promise<void>((ok) => {
    socket.once("connect", () => socket.write("MONITOR\r\n"));
    // MONITOR answers +OK before it streams.
    const ready = (d: Buffer) => {
      if (!d.toString().startsWith("+OK")) return;
      socket.off("data", ready);
      ok();
    };
    socket.on("data", ready);
  });
  seen.stop = () => socket.destroy();
  return seen;
}

/** Ends a test's processes: gateways by SIGKILL (those still running), then the mocks and the Redis servers. */
export async function stopAll(gateways: GatewayProcess[], mocks: ({ close(): Promise<unknown> } | undefined)[], redis: ({ stop(): Promise<void> } | undefined)[]): Promise<void> {
  for (const g of gateways) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill("SIGKILL");
  for (const m of mocks) await m?.close();
  for (const r of redis) await r?.stop();
}
