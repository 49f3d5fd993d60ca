// Traffic-level behaviour: the split a caller's requests really take, pool
// isolation under a slow provider, and reloads under load. Bounded loops on
// loopback only; timing assertions are generous (exact figures live in bench/).
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway } from "./harness.ts";

const agent = new Agent({ connections: 64 });
const body = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });

async function post(url: string, model = "gpt-4o"): Promise<{ status: number; account: string; ms: number }> {
  const start = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json" },
    body: model === "gpt-4o" ? body : JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
  await res.body.dump();
  return { status: res.statusCode, account: String(res.headers["x-gwc-account"]), ms: performance.now() - start };
}

/** Runs `total` requests with `concurrency` in flight. */
async function load<T>(total: number, concurrency: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(total);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        out[i] = await one(i);
      }
    }),
  );
  return out;
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];

let a: MockUpstream;
let b: MockUpstream;
beforeAll(async () => {
  a = await startOpenAIUpstream({ name: "a" });
  b = await startOpenAIUpstream({ name: "b" });
});
afterAll(async () => {
  await a.close();
  await b.close();
  await agent.close();
});

describe("the article's 70/30 split, served", () => {
  it("10,000 requests land within 4 standard deviations of 70/30", async () => {
    // The article's config, with base URLs pointing at the mocks.
    const gw = await startGateway({
      accounts: [account("openai-primary", a.url, 70), account("anthropic-secondary", b.url, 30)],
      fallback_config: { enabled: true, on_status_codes: [429, 500, 502, 503] },
    });
    try {
      const n = 10_000;
      const results = await load(n, 32, () => post(gw.url));
      expect(results.every((r) => r.status === 200)).toBe(true);
      const primary = results.filter((r) => r.account === "openai-primary").length;
      const sd = Math.sqrt(n * 0.7 * 0.3);
      // 4 standard deviations (183 requests): a fair split fails once in 16,000 runs (3 failed once in 370), 68/32 is 200 off.
      expect(Math.abs(primary - 0.7 * n)).toBeLessThanOrEqual(4 * sd);
    } finally {
      await gw.close();
    }
  });
});

describe("pool isolation", () => {
  it("a slow, saturated provider does not slow requests to another", async () => {
    const slow = await startOpenAIUpstream({ name: "slow", fallback: { kind: "ok", delayMs: 2000 } });
    const gw = await startGateway({
      accounts: [
        account("slow", slow.url, 1, { pool: { max_connections: 4, queue_size: 8, backpressure: "block", queue_timeout: "3s" } }),
        account("fast", a.url, 1),
      ],
      routes: [
        { model: "slow-model", targets: [{ account: "slow" }] },
        { model: "gpt-4o", targets: [{ account: "fast" }] },
      ],
      fallback_config: { enabled: false },
    });
    try {
      await load(100, 8, () => post(gw.url)); // warm up
      const healthy = (await load(400, 8, () => post(gw.url))).map((r) => r.ms);
      // Saturate the slow pool: 4 in flight, 8 queued, the rest blocked waiting for room.
      const saturation = load(24, 24, () => post(gw.url, "slow-model"));
      await new Promise((r) => setTimeout(r, 100));
      const loaded = (await load(400, 8, () => post(gw.url))).map((r) => r.ms);
      // The slow provider saw exactly its pool's connections, no more.
      expect(slow.requests.length).toBe(4);
      // Had they shared a queue, fast requests would wait behind 2 s answers. How close the p99s are
      // is the benchmark's to measure (bench/: pool isolation); a timed test on a busy machine is not.
      expect(p99(loaded)).toBeLessThan(Math.max(500, 2 * p99(healthy)));
      await slow.close(); // the queued requests now fail fast instead of waiting 2 s each
      const slowResults = await saturation;
      expect(slowResults.every((r) => r.status >= 500)).toBe(true);
    } finally {
      await gw.close();
      await slow.close();
    }
  });
});

describe("live reload", () => {
  it("loses no request while weights change under load, and the new split takes effect", async () => {
    const config = (wa: number, wb: number) => ({ accounts: [account("a", a.url, wa), account("b", b.url, wb)] });
    const gw = await startGateway(config(1, 0));
    try {
      let reloads = 0;
      const flipping = setInterval(() => {
        reloads++;
        gw.reload(reloads % 2 === 0 ? config(1, 0) : config(0, 1));
      }, 20);
      const results = await load(2000, 16, () => post(gw.url));
      clearInterval(flipping);
      expect(reloads).toBeGreaterThan(5);
      expect(results.filter((r) => r.status !== 200)).toEqual([]);
      expect(new Set(results.map((r) => r.account))).toEqual(new Set(["a", "b"]));
      gw.reload(config(0, 1));
      const after = await load(200, 8, () => post(gw.url));
      expect(after.every((r) => r.status === 200 && r.account === "b")).toBe(true);
    } finally {
      await gw.close();
    }
  });
});
