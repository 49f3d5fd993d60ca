// `gwc demo` as a newcomer runs it: the built CLI, traffic flowing, the
// dashboard showing it in a real browser, and Ctrl-C leaving nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let demo: ChildProcess | undefined;

afterAll(() => {
  if (demo?.exitCode === null) demo.kill("SIGKILL");
});

function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("gwc demo", () => {
  it("serves traffic through the dashboard, and Ctrl-C stops every process it started", async () => {
    const port = await freePort();
    // --duration bounds the run even if this test dies before its Ctrl-C.
    demo = spawn(process.execPath, ["build/gwc.mjs", "demo", "--port", String(port), "--duration", "90s"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    demo.stdout!.on("data", (c: Buffer) => (out += c));
    demo.stderr!.on("data", (c: Buffer) => (out += c));
    await expect.poll(() => out, { timeout: 30_000, interval: 100 }).toContain("Ctrl-C stops everything");
    const url = /dashboard\s+(\S+)/.exec(out)![1];
    const adminKey = /#admin_key=(\S+)/.exec(url)![1];
    const gatewayPid = Number(/gateway pid (\d+)/.exec(out)![1]);
    expect(alive(gatewayPid)).toBe(true);

    // Traffic arrives on its own; the curl line the demo prints works as written.
    const snapshot = async () => (await fetch(`http://127.0.0.1:${port}/admin/api/snapshot`, { headers: { authorization: `Bearer ${adminKey}` } })).json();
    await expect.poll(async () => (await snapshot()).requests.length, { timeout: 20_000, interval: 250 }).toBeGreaterThanOrEqual(10);
    // The same traffic on /metrics: requests counted by route, status and error_type.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const counted = [...metrics.matchAll(/^gwc_requests_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBeGreaterThanOrEqual(10);
    const key = /Bearer (\S+)'/.exec(out)![1];
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    });
    expect([200, 429, 502, 503]).toContain(res.status);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"] });
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForSelector('[data-share="openai-primary"]');
      expect(await page.locator('[data-share="openai-primary"]').textContent()).toMatch(/^70% configured/);
      expect(Number(await page.locator('[data-kpi="requests (15 min)"]').textContent())).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }

    const exited = new Promise<number | null>((ok) => demo!.once("exit", (code) => ok(code)));
    demo.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(alive(gatewayPid)).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
