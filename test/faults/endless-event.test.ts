// Issue #11 item 10, as the operator measured it: a gateway process whose
// upstream sends one SSE event of 50 MB with no blank line grew to 825 MiB and
// burned 24 s of CPU (the buffer was rescanned on every read). Now the attempt
// stops at server.max_event_bytes (1 MiB) and fails over. The process's peak
// RSS and CPU time are read from /proc (Linux), with loose bounds.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";

const GWC = resolve("build/gwc.mjs");
const MiB = 1024 * 1024;

let bad: MockUpstream;
let good: MockUpstream;
let child: ChildProcess | undefined;
let dir: string;
let port: number;

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
    s.on("error", fail);
  });
}

async function ready(url: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} not ready within ${ms} ms`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Peak resident memory (VmHWM) and CPU seconds (user + system) of a process, from /proc. */
function usageOf(pid: number): { peakRss: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const peakRss = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
  // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 a second on Linux).
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { peakRss, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100 };
}

beforeAll(async () => {
  bad = await startOpenAIUpstream({ name: "bad", fallback: { kind: "endless-event", bytes: 50 * MiB } });
  good = await startOpenAIUpstream({ name: "good" });
  dir = await mkdtemp(join(tmpdir(), "gwc-endless-"));
  const config = {
    accounts: [
      { id: "bad", provider: "openai", base_url: bad.url, weight: 1, api_key: "${OPENAI_API_KEY}" },
      { id: "good", provider: "openai", base_url: good.url, weight: 0, api_key: "${OPENAI_API_KEY}" },
    ],
    state: { dir: join(dir, "state") },
  };
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  // The bundle itself, not `gwc serve` (which runs it as a child): /proc must read the gateway.
  const built = spawnSync(process.execPath, [GWC, "build", join(dir, "config.json"), "-o", dir], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(built.stderr);
  port = await freePort();
  child = spawn(process.execPath, [join(dir, "gateway.mjs")], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(port), OPENAI_API_KEY: "sk-test-endless" }, stdio: "ignore" });
  await ready(`http://127.0.0.1:${port}/healthz`);
});

afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null) {
    const exited = new Promise((ok) => child!.once("exit", ok));
    process.kill(child.pid, "SIGKILL");
    await exited;
  }
  await bad?.close();
  await good?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it("a 50 MB event with no line end fails over, and the gateway stays small and quick", async () => {
  const before = usageOf(child!.pid!);
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    expect(res.headers.get("x-gwc-account")).toBe("good");
    expect(await res.text()).toContain("data: [DONE]");
  }
  const after = usageOf(child!.pid!);
  // Before the fix: 825 MiB and 24 s of CPU for one such event. Bounds are loose: this machine is shared.
  expect(after.peakRss).toBeLessThan(256 * MiB);
  expect(after.cpuSeconds - before.cpuSeconds).toBeLessThan(8);
});
