// `gwc demo`: see gwc work before wiring a real provider. Two local stand-in
// providers (OpenAI and Anthropic wire formats, with latency, streaming, 429s,
// 5xx and a recurring outage), a gateway built from a 70/30 config with teams,
// keys and budgets, running as its own process exactly as production runs it,
// and a traffic generator. Ctrl-C stops everything it started.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildToDir } from "./compile.ts";
import { startDemoUpstream, type DemoUpstream } from "./demo-upstream.ts";

export interface DemoOptions {
  port: number;
  /** Stop by itself after this long; undefined runs until Ctrl-C. */
  durationMs?: number;
  /** Requests per second the traffic generator sends. */
  rate: number;
  print: (line: string) => void;
}

const KEYS = ["backend-service", "research-notebook", "alice-laptop"] as const;

export function demoConfig(openaiUrl: string, anthropicUrl: string): object {
  return {
    accounts: [
      { id: "openai-primary", provider: "openai", base_url: `${openaiUrl}/v1`, model: "gpt-4o", api_key: "${OPENAI_API_KEY}", weight: 70 },
      { id: "anthropic-secondary", provider: "anthropic", base_url: anthropicUrl, model: "claude-sonnet-4-6", api_key: "${ANTHROPIC_API_KEY}", weight: 30 },
    ],
    organization: { id: "acme", budget: { daily_limit_usd: 50, monthly_limit_usd: 1000 } },
    teams: [
      { id: "backend", budget: { daily_limit_usd: 20 } },
      { id: "research", budget: { daily_limit_usd: 5 } },
    ],
    virtual_keys: [
      { id: "backend-service", key: "${GWC_DEMO_KEY_BACKEND_SERVICE}", team: "backend", rate_limit: { request_max_limit: 600, request_reset_duration: "1m" } },
      { id: "research-notebook", key: "${GWC_DEMO_KEY_RESEARCH_NOTEBOOK}", team: "research", budget: { daily_limit_usd: 0.25 } },
      // Small on purpose: it runs out within minutes, so the dashboard shows a budget at its cap.
      { id: "alice-laptop", key: "${GWC_DEMO_KEY_ALICE_LAPTOP}", team: "research", budget: { daily_limit_usd: 0.03 } },
    ],
    server: { admin_key: "${GWC_ADMIN_KEY}" },
    state: { dir: ".gwc-state" },
  };
}

export async function demo(opts: DemoOptions): Promise<number> {
  const { print } = opts;
  const dir = mkdtempSync(join(tmpdir(), "gwc-demo-"));
  const upstreams: DemoUpstream[] = [];
  let gateway: ChildProcess | undefined;
  let traffic: NodeJS.Timeout | undefined;
  let stopping: Promise<number> | undefined;

  const stop = (code: number): Promise<number> =>
    (stopping ??= (async () => {
      clearInterval(traffic);
      if (gateway !== undefined && gateway.exitCode === null) {
        const exited = new Promise((ok) => gateway!.once("exit", ok));
        gateway.kill("SIGTERM");
        await exited;
      }
      await Promise.all(upstreams.map((u) => u.close()));
      rmSync(dir, { recursive: true, force: true });
      return code;
    })());

  const openai = await startDemoUpstream("openai", { rateLimited: 0.02, failing: 0.01, outageEveryMs: 90_000, outageMs: 0 });
  const anthropic = await startDemoUpstream("anthropic", { rateLimited: 0.01, failing: 0.02, outageEveryMs: 60_000, outageMs: 10_000 });
  upstreams.push(openai, anthropic);

  const configPath = join(dir, "gateway.config.json");
  writeFileSync(configPath, JSON.stringify(demoConfig(openai.url, anthropic.url), null, 2) + "\n");
  const { files, diagnostics } = await buildToDir(configPath, join(dir, "dist"));
  if (files === undefined) {
    for (const d of diagnostics) print(`gwc demo: ${d.message}`);
    return stop(1);
  }

  const secret = () => randomBytes(12).toString("base64url");
  const env: Record<string, string> = {
    OPENAI_API_KEY: "demo-openai-key",
    ANTHROPIC_API_KEY: "demo-anthropic-key",
    GWC_ADMIN_KEY: `admin-${secret()}`,
  };
  const keys = KEYS.map((id) => (env[`GWC_DEMO_KEY_${id.toUpperCase().replace(/-/g, "_")}`] = `gwc-${secret()}`));
  const log = join(dir, "gateway.log");
  const out = openSync(log, "a");
  gateway = spawn(process.execPath, [files.bundle], { cwd: dir, env: { ...process.env, ...env, PORT: String(opts.port), HOST: "127.0.0.1" }, stdio: ["ignore", out, out] });
  const base = `http://127.0.0.1:${opts.port}`;
  const exited = new Promise<number>((ok) => gateway!.once("exit", (c) => ok(c ?? 1)));
  if (!(await ready(`${base}/readyz`, exited))) {
    print(`gwc demo: the gateway did not start on port ${opts.port} (is the port free? try --port)`);
    return stop(1);
  }

  print(`gwc demo: a 70/30 split over two local stand-in providers, with teams, keys and budgets`);
  print(``);
  print(`  dashboard   ${base}/ui#admin_key=${env.GWC_ADMIN_KEY}`);
  print(`  try it      curl ${base}/v1/chat/completions -H 'authorization: Bearer ${keys[0]}' \\`);
  print(`                -H 'content-type: application/json' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'`);
  print(`  metrics     ${base}/metrics`);
  print(``);
  print(`  openai-primary (70%) answers 2% 429s and 1% 500s; anthropic-secondary (30%) has a 10 s outage every minute.`);
  print(`  Sending about ${opts.rate} requests a second; gateway pid ${gateway.pid}, log ${log}. Ctrl-C stops everything.`);

  traffic = startTraffic(base, keys, opts.rate);
  return new Promise<number>((done) => {
    const end = (code: number) => {
      clearTimeout(limit);
      void stop(code).then(done);
    };
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => end(0));
    const limit = opts.durationMs === undefined ? undefined : setTimeout(() => end(0), opts.durationMs);
    void exited.then((c) => {
      if (stopping !== undefined) return;
      print(`gwc demo: the gateway exited (${c}); see ${log}`);
      end(1);
    });
  });
}

async function ready(url: string, exited: Promise<number>): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 100 && !gone; i++) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return false;
}

/** A steady mix: three keys, a third of requests streamed, at most 32 in flight. */
function startTraffic(base: string, keys: string[], rate: number): NodeJS.Timeout {
  let inFlight = 0;
  let n = 0;
  const prompts = ["Summarise our incident review", "Draft a release note", "Explain weighted routing", "Translate this to French", "Write a haiku about failover"];
  return setInterval(() => {
    if (inFlight >= 32) return;
    inFlight++;
    n++;
    const stream = n % 3 === 0;
    void fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${keys[n % keys.length]}` },
      body: JSON.stringify({ model: "gpt-4o", max_tokens: 256, stream, messages: [{ role: "user", content: prompts[n % prompts.length] }] }),
    })
      .then((res) => res.arrayBuffer())
      .catch(() => undefined)
      .finally(() => inFlight--);
  }, 1000 / rate);
}
