/**
 * Real clients against a real gateway process: `gwc build` writes the bundle,
 * `node gateway.mjs` serves it, in front of the wire-format mocks. CLIs run as
 * child processes with HOME and their config dirs in a temp dir, bounded in
 * time and killed by PID (their process group) when over.
 *
 *   client (CLI or SDK) ──► node gateway.mjs ──► mock upstream (anthropic | openai | gemini)
 *        virtual key "gwc-client-key"        upstream key (never the caller's)
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { freePort, tempDir } from "../helpers.ts";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startGeminiUpstream, type GeminiMock } from "../mocks/gemini-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";

const GWC = resolve("build/gwc.mjs");

/** The key clients present; the gateway swaps it for each account's own. */
export const CLIENT_KEY = "gwc-client-key";
export const UPSTREAM_KEYS = { anthropic: "sk-ant-upstream", openai: "sk-openai-upstream", gemini: "gk-gemini-upstream" } as const;
export type Format = keyof typeof UPSTREAM_KEYS;

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  /** What the gateway wrote to stderr so far (start-up lines, warnings). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * One gateway process whose only account speaks `format` at `upstreamUrl`, as
 * the catch-all route: whatever model a client asks for goes there as asked.
 * One virtual key, so callers must authenticate and never reach the upstream
 * with their own key.
 */
export async function startGatewayFor(format: Format, upstreamUrl: string, extra: object = {}): Promise<GatewayProcess> {
  const env = { ANTHROPIC_API_KEY: UPSTREAM_KEYS.anthropic, OPENAI_API_KEY: UPSTREAM_KEYS.openai, GEMINI_API_KEY: UPSTREAM_KEYS.gemini, GWC_CLIENT_KEY: CLIENT_KEY };
  const config = {
    accounts: [{ id: `${format}-upstream`, provider: format, base_url: upstreamUrl }],
    virtual_keys: [{ id: "client", key: "${GWC_CLIENT_KEY}" }],
    state: { dir: "state" },
    ...extra,
  };
  const dir = tempDir("gwc-clients-");
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const built = spawnSync(process.execPath, [GWC, "build", join(dir, "config.json"), "-o", dir], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(`gwc build failed: ${built.stderr}${built.stdout}`);
  const port = await freePort();
  const child = spawn(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(port), ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  await new Promise<void>((ok, fail) => {
    // The gateway's log (JSON lines, `listening` among them) is on stdout; why it could not start, on stderr.
    const take = (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening on")) ok();
    };
    child.stderr!.on("data", take);
    child.stdout!.on("data", take);
    child.once("exit", (code) => fail(new Error(`gateway exited ${code}: ${err}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    log: () => err,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a CLI to completion with a clean environment (PATH plus `env` only),
 * stdin closed, in its own process group; over `timeoutMs` the whole group is
 * killed by PID and `timedOut` is set.
 */
export function runCli(command: string, args: string[], opts: { env: Record<string, string>; cwd: string; timeoutMs?: number }): Promise<CliRun> {
  const child = spawn(command, args, { cwd: opts.cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...opts.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  const kill = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs ?? 30_000);
  return new Promise((ok) => {
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      kill(); // anything the CLI left running in its group
      ok({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** A fresh HOME (and project dir inside it) for one CLI run. */
export function isolatedHome(prefix: string): { home: string; project: string } {
  const home = tempDir(`gwc-${prefix}-`);
  const project = join(home, "project");
  mkdirSync(project);
  return { home, project };
}

/** Paths of the CLIs' entry points, run without their install scripts. */
export const CLI = {
  // The wrapper package's bin/claude.exe is a placeholder its postinstall would replace; run the platform binary.
  claude: resolve("node_modules/@anthropic-ai/claude-code-linux-x64/claude"),
  codex: resolve("node_modules/@openai/codex/bin/codex.js"),
  gemini: resolve("node_modules/@google/gemini-cli/bundle/gemini.js"),
};

/** Headers a client sent that an upstream should see unchanged (transport and auth aside). */
export function clientHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const skip = /^(host|connection|content-length|transfer-encoding|accept-encoding|keep-alive|x-api-key|authorization|x-goog-api-key)$/i;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!skip.test(k) && typeof v === "string") out[k.toLowerCase()] = v;
  return out;
}

export interface Fleet {
  anthropic: MockAnthropicUpstream;
  openai: MockUpstream;
  gemini: GeminiMock;
  /** One gateway process per upstream format. */
  gw: Record<Format, GatewayProcess>;
  stop(): Promise<void>;
}

/** A mock upstream of each wire format, each behind its own gateway process. */
export async function startFleet(): Promise<Fleet> {
  const anthropic = await startAnthropicUpstream({ name: "claude", apiKey: UPSTREAM_KEYS.anthropic, stream: { chunks: 3 } });
  const openai = await startOpenAIUpstream({ name: "openai", stream: { chunks: 3 } });
  const gemini = await startGeminiUpstream({ name: "gemini", apiKey: UPSTREAM_KEYS.gemini, stream: { chunks: 3 } });
  const [a, o, g] = await Promise.all([startGatewayFor("anthropic", anthropic.url), startGatewayFor("openai", openai.url), startGatewayFor("gemini", gemini.url)]);
  return {
    anthropic,
    openai,
    gemini,
    gw: { anthropic: a, openai: o, gemini: g },
    stop: async () => {
      await Promise.all([a.stop(), o.stop(), g.stop()]);
      await Promise.all([anthropic.close(), openai.close(), gemini.close()]);
    },
  };
}

/** A fleet for the whole file: filled in before its tests, stopped after them. */
export function fleetForSuite(): Fleet {
  const fleet = {} as Fleet;
  beforeAll(async () => {
    Object.assign(fleet, await startFleet());
  });
  afterAll(async () => {
    await fleet.stop?.();
  });
  return fleet;
}
