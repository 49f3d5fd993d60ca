// The embedded store's state dir as an operator meets it: one gateway per dir
// (a second refuses to start and says which process holds it), a lock left by
// a crash is taken over, and a snapshot that cannot be written (the dir
// replaced by a file, a full disk) is logged once, retried, shown on /readyz,
// and never ends the process.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StartupError } from "../../runtime/secrets.ts";
import { MemoryStore } from "../../runtime/state-store.ts";
import { buildBundle, tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, until } from "./harness.ts";

const GWC = resolve("build/gwc.mjs");
let upstream: MockUpstream;
beforeAll(async () => {
  upstream = await startOpenAIUpstream({ name: "a" });
});
afterAll(async () => {
  await upstream.close();
});

// Below Linux's ephemeral range (32768-60999), where ports other tests bind to port 0 and client sockets land.
const port = () => 21000 + Math.floor(Math.random() * 11000);

const build = buildBundle;

/** A gateway process; `stderr` grows as it writes (its log events, JSON lines on stdout, included). */
function run(dir: string, p: number): { child: ChildProcess; stderr: () => string; started: Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(p), OPENAI_API_KEY: "sk-x" } });
  let err = "";
  const exited = new Promise<number | null>((ok) => child.on("exit", ok));
  const started = new Promise<void>((ok, fail) => {
    const take = (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening on")) ok();
    };
    child.stderr!.on("data", take);
    child.stdout!.on("data", take);
    void exited.then((code) => fail(new Error(`exited ${code}: ${err}`)));
  });
  started.catch(() => {});
  return { child, stderr: () => err, started, exited };
}

const readyz = async (p: number) => {
  const res = await fetch(`http://127.0.0.1:${p}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; state?: { ok: boolean; path: string; error?: string } } };
};

describe("one gateway per state dir", () => {
  it("a second gateway on the same state dir refuses to start, naming the lock file and the pid holding it; after a crash the lock is taken over", async () => {
    const dir = build({ accounts: [account("a", upstream.url, 1)], state: { dir: "state", snapshot_interval: "100ms" } });
    const first = run(dir, port());
    try {
      await first.started;
      const second = spawnSync(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH, PORT: String(port()), OPENAI_API_KEY: "sk-x" } });
      expect(second.status).toBe(1);
      expect(second.stderr).toContain(`the state dir state is in use by process ${first.child.pid} (lock file ${join("state", "gwc.lock")})`);
      expect(second.stderr).not.toMatch(/^\s+at /m);
      // Killed outright, the first leaves its lock behind; its pid is gone, so the next gateway takes over.
      first.child.kill("SIGKILL");
      await first.exited;
      const third = run(dir, port());
      try {
        await third.started;
        expect(JSON.parse(readFileSync(join(dir, "state", "gwc.lock"), "utf8")).pid).toBe(third.child.pid);
      } finally {
        third.child.kill("SIGTERM");
        await third.exited;
      }
      // A clean stop releases the lock.
      expect(() => readFileSync(join(dir, "state", "gwc.lock"))).toThrow(/ENOENT/);
    } finally {
      first.child.kill("SIGKILL");
    }
  });

  it("takes over a lock whose process is gone, or one from another host untouched for a minute; refuses a fresh one from another host", () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    const dir = tempDir();
    const lock = join(dir, "gwc.lock");
    writeFileSync(lock, JSON.stringify({ pid: dead, host: hostname() }));
    new MemoryStore(dir, 60_000).close();

    writeFileSync(lock, JSON.stringify({ pid: 1, host: "elsewhere" }));
    expect(() => new MemoryStore(dir, 60_000)).toThrow(new RegExp(`in use by process 1 on elsewhere \\(lock file ${lock.replace(/[.]/g, "\\.")}\\)`));
    const old = new Date(Date.now() - 61_000);
    utimesSync(lock, old, old);
    const store = new MemoryStore(dir, 60_000);
    // And within one process a second store on the dir is refused as well.
    expect(() => new MemoryStore(dir, 60_000)).toThrow(StartupError);
    store.close();
  });
});

describe("a snapshot that cannot be written", () => {
  it("with the state dir replaced by a file: the process stays up, says so once, /readyz shows it, and it recovers", async () => {
    const dir = build({ accounts: [account("a", upstream.url, 1)], state: { dir: "state", snapshot_interval: "50ms" } });
    const p = port();
    const gw = run(dir, p);
    try {
      await gw.started;
      expect((await readyz(p)).status).toBe(200);
      const state = join(dir, "state");
      // The gateway's next snapshot may recreate the dir, or drop a temporary file in it mid-removal
      // (ENOTEMPTY, seen once past rmSync's own retries): repeat until the file stands.
      for (let i = 0; ; i++) {
        try {
          rmSync(state, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
          writeFileSync(state, "not a directory");
          break;
        } catch (e) {
          if (i > 20) throw e;
        }
      }
      await until(() => gw.stderr().includes("cannot write the state snapshot"), 5000);
      const degraded = await readyz(p);
      expect(degraded.status).toBe(503);
      expect(degraded.body.status).toBe("degraded");
      expect(degraded.body.state).toMatchObject({ ok: false, path: join("state", "state.json") });
      expect(degraded.body.state!.error).toMatch(/^E[A-Z]+: /);
      // Still serving, and the failure was logged once, not once a tick.
      await new Promise((r) => setTimeout(r, 500));
      const res = await fetch(`http://127.0.0.1:${p}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) });
      expect(res.status).toBe(200);
      expect(gw.stderr().split("cannot write the state snapshot").length - 1).toBe(1);
      // The dir back: the next retry writes, and readiness returns.
      rmSync(state);
      mkdirSync(state);
      await until(() => gw.stderr().includes("is written again"), 40_000);
      expect((await readyz(p)).status).toBe(200);
      expect(JSON.parse(readFileSync(join(state, "gwc.lock"), "utf8")).pid).toBe(gw.child.pid);
    } finally {
      gw.child.kill("SIGTERM");
      await gw.exited;
    }
  }, 60_000);

  it("with no descriptors left (EMFILE at ulimit -n 64 and 100 open connections): the process stays up and recovers when they close", async () => {
    // The idle connections hold the descriptors: a header timeout longer than the test keeps the server from closing them while a loaded machine is slow.
    const dir = build({ accounts: [account("a", upstream.url, 1)], state: { dir: "state", snapshot_interval: "50ms" }, server: { header_timeout: "90s" } });
    const p = port();
    const child = spawn("sh", ["-c", `ulimit -n 64 && exec "${process.execPath}" gateway.mjs`], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(p), OPENAI_API_KEY: "sk-x" } });
    let stderr = "";
    // Log events (listening, snapshot failures) are JSON lines on stdout; start-up failures on stderr.
    for (const stream of [child.stderr, child.stdout]) stream.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((ok) => child.on("exit", ok));
    const sockets: Socket[] = [];
    try {
      await until(() => stderr.includes("listening on"), 10_000);
      for (let i = 0; i < 100; i++) {
        const s = connect(p, "127.0.0.1");
        s.on("error", () => {});
        sockets.push(s);
      }
      await until(() => stderr.includes("cannot write the state snapshot") && stderr.includes("EMFILE"), 20_000);
      for (const s of sockets) s.destroy();
      await until(() => stderr.includes("is written again"), 40_000);
      expect((await readyz(p)).status).toBe(200);
      expect(child.exitCode).toBe(null);
    } finally {
      for (const s of sockets) s.destroy();
      child.kill("SIGTERM");
      await exited;
    }
  }, 90_000);

  it("on a full disk (ENOSPC) the timer never throws: one log line, health shows the cause, the next good write clears it", async () => {
    const dir = tempDir();
    const lines: string[] = [];
    const store = new MemoryStore(dir, 10, Date.now, (l) => lines.push(l));
    try {
      store.reserve([{ key: "vk:k|daily|0", cap: 100, expiresAt: Date.now() + 86_400_000 }], 5);
      // The store writes through its temporary file: point that at /dev/full.
      symlinkSync("/dev/full", join(dir, `state.json.${process.pid}.tmp`));
      await until(() => store.health().ok === false);
      await new Promise((r) => setTimeout(r, 200));
      expect(store.health()).toMatchObject({ ok: false, path: join(dir, "state.json"), error: expect.stringMatching(/^ENOSPC: /) });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`cannot write the state snapshot ${join(dir, "state.json")}: ENOSPC`);
      rmSync(join(dir, `state.json.${process.pid}.tmp`));
      await until(() => store.health().ok, 5000);
      expect(lines.at(-1)).toContain("is written again");
    } finally {
      store.close();
    }
  });
});
