// The gateway as production runs it: `node dist/gateway.mjs` (and `gwc serve`)
// in its own process, with signals.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { buildBundle, tempDir } from "../helpers.ts";
import { account } from "./harness.ts";

const GWC = resolve("build/gwc.mjs");
let a: MockUpstream;
let b: MockUpstream;
beforeAll(async () => {
  a = await startOpenAIUpstream({ name: "a" });
  b = await startOpenAIUpstream({ name: "b", fallback: { kind: "ok", delayMs: 0 } });
});
afterAll(async () => {
  await a.close();
  await b.close();
});

// Below Linux's ephemeral range (32768-60999), where ports other tests bind to port 0 and client sockets land.
const port = () => 21000 + Math.floor(Math.random() * 11000);

/** Resolves with stdout so far once the gateway logs its `listening` event (stdout holds JSON lines only). */
function started(child: ChildProcess): Promise<string> {
  return new Promise((ok, fail) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"event":"listening"')) ok(out);
    });
    child.on("exit", (code) => fail(new Error(`exited ${code}: ${err}${out}`)));
  });
}

const ask = async (p: number) => {
  const res = await fetch(`http://127.0.0.1:${p}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) });
  await res.arrayBuffer();
  return { status: res.status, account: res.headers.get("x-gwc-account") };
};

const build = buildBundle;

describe("node gateway.mjs", () => {
  it("refuses to start without a secret, naming the variable and the account", () => {
    const dir = build({ accounts: [account("main", a.url, 1, { api_key: "${MY_OPENAI_KEY}" })] });
    const r = spawnSync(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH, PORT: String(port()) } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("MY_OPENAI_KEY (the API key of account 'main')");
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it("refuses to start over an unreadable state snapshot rather than reset every budget, naming the file", () => {
    const dir = build({ accounts: [account("main", a.url, 1)], state: { dir: "state" } });
    mkdirSync(join(dir, "state"));
    writeFileSync(join(dir, "state", "state.json"), '{"version":1,"money":[]}00],["vk:k|req|1",3,2]]}');
    const r = spawnSync(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH, PORT: String(port()), OPENAI_API_KEY: "sk-x" } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the state snapshot ${join("state", "state.json")} is not valid JSON`);
    expect(r.stderr).toContain("move it aside");
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it("reloads its bundle on SIGHUP and drains in-flight requests on SIGTERM", async () => {
    const dir = build({ accounts: [account("a", a.url, 1), account("b", b.url, 0)] });
    const p = port();
    const child = spawn(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(p), OPENAI_API_KEY: "sk-x" } });
    try {
      await started(child);
      expect((await ask(p)).account).toBe("a");
      // Rebuild into the same place with the weights swapped, then SIGHUP.
      writeFileSync(join(dir, "config.json"), JSON.stringify({ accounts: [account("a", a.url, 0), account("b", b.url, 1)] }));
      expect(spawnSync(process.execPath, [GWC, "build", join(dir, "config.json"), "-o", dir]).status).toBe(0);
      child.kill("SIGHUP");
      await new Promise((r) => setTimeout(r, 300));
      expect((await ask(p)).account).toBe("b");
      // A slow request in flight when SIGTERM arrives still completes.
      b.queue.push({ kind: "ok", delayMs: 400 });
      const inFlight = ask(p);
      await new Promise((r) => setTimeout(r, 100));
      child.kill("SIGTERM");
      expect(await inFlight).toEqual({ status: 200, account: "b" });
      const code = await new Promise((ok) => child.on("exit", ok));
      expect(code).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("spend survives a crash", () => {
  it("after SIGKILL mid-load, a restart has spend within one snapshot interval of what upstream served", async () => {
    const dir = build({
      accounts: [account("main", a.url, 1)],
      routes: [{ model: "m", targets: [{ account: "main" }] }],
      pricing: { m: { input_per_mtok_usd: 100, output_per_mtok_usd: 100 } },
      virtual_keys: [{ id: "k", key: "${K}", budget: { monthly_limit_usd: 1000 } }],
      server: { admin_key: "${ADMIN}" },
      state: { dir: "state", snapshot_interval: "200ms" },
    });
    const env = { PATH: process.env.PATH, OPENAI_API_KEY: "sk-x", K: "key-k", ADMIN: "key-admin" };
    const p = port();
    const run = () => spawn(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, env: { ...env, PORT: String(p) } });
    const spent = async () => {
      const usage = (await (await fetch(`http://127.0.0.1:${p}/v1/usage`, { headers: { authorization: "Bearer key-admin" } })).json()) as {
        data: { budgets: { spent_usd: string }[] }[];
      };
      return Math.round(Number(usage.data[0].budgets[0].spent_usd) * 1e9);
    };
    const call = () =>
      fetch(`http://127.0.0.1:${p}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer key-k" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 5 }),
      }).then((r) => r.arrayBuffer());

    let child = run();
    const base = a.requests.length;
    try {
      await started(child);
      await call();
      const perRequest = await spent(); // every request is the same, so each costs this much
      expect(perRequest).toBeGreaterThan(0);
      // Load for a while, noting how many requests upstream had served when.
      const seen: [number, number][] = [];
      let loading = true;
      const loop = (async () => {
        while (loading) {
          await call().catch(() => undefined);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const sampler = setInterval(() => seen.push([performance.now(), a.requests.length - base]), 5);
      await new Promise((r) => setTimeout(r, 1000));
      child.kill("SIGKILL");
      const killedAt = performance.now();
      await new Promise((ok) => child.on("exit", ok));
      loading = false;
      clearInterval(sampler);
      await loop;
      const served = a.requests.length - base;
      // One interval, plus slack for timers delayed on a busy 2-core machine.
      const servedBeforeLastSnapshot = seen.filter(([t]) => t <= killedAt - 200 - 150).at(-1)?.[1] ?? 0;
      child = run();
      await started(child);
      const after = await spent();
      expect(after).toBeLessThanOrEqual(served * perRequest);
      expect(after).toBeGreaterThanOrEqual((servedBeforeLastSnapshot - 1) * perRequest);
      expect(served - servedBeforeLastSnapshot).toBeGreaterThan(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("gwc serve --watch", () => {
  it("applies a config edit live, and keeps serving when an edit does not compile", async () => {
    const dir = tempDir();
    const config = join(dir, "gateway.config.json");
    writeFileSync(config, JSON.stringify({ accounts: [account("a", a.url, 1), account("b", b.url, 0)] }));
    const p = port();
    const child = spawn(process.execPath, [GWC, "serve", config, "--watch", "--port", String(p)], { cwd: dir, env: { ...process.env, OPENAI_API_KEY: "sk-x" } });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      await started(child);
      expect((await ask(p)).account).toBe("a");
      writeFileSync(config, '{ "accounts": [ { "id": "a", "provider": "opneai" } ] }');
      await new Promise((r) => setTimeout(r, 1000));
      expect(stderr).toContain("GWC_E_UNKNOWN_PROVIDER");
      expect(stderr).toContain("still serving the previous config");
      expect((await ask(p)).account).toBe("a");
      writeFileSync(config, JSON.stringify({ accounts: [account("a", a.url, 0), account("b", b.url, 1)] }));
      // A rebuild and reload, however long the bundle takes to build on a loaded machine.
      let served: string | null = "a";
      for (let i = 0; i < 150 && served !== "b"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        served = (await ask(p)).account;
      }
      expect(served).toBe("b");
    } finally {
      child.kill("SIGTERM");
      await new Promise((ok) => child.on("exit", ok));
    }
  });
});
