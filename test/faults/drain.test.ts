// SIGTERM drain in a real process: idle keep-alive connections close at once,
// every answer during the drain says `Connection: close`, the process exits
// when the last request ends (not at the timeout), and streams still running at
// the timeout end with a `shutting_down` error event and are settled into the
// final snapshot.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, until } from "../runtime/harness.ts";
import { buildGateway, chat, parseResponse, rawConnect, startGateway, type RawClient } from "./gateway-process.ts";

let fast: MockUpstream;
let slow: MockUpstream;
beforeAll(async () => {
  fast = await startOpenAIUpstream({ name: "fast" });
  // 100 chunks, 100 ms apart: a 10 s stream.
  slow = await startOpenAIUpstream({ name: "slow", stream: { chunks: 100, intervalMs: 100 } });
});
afterAll(async () => {
  await fast?.close();
  await slow?.close();
});

function post(c: RawClient, path: string, body: string, headers = ""): void {
  c.socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`);
}

describe("SIGTERM drain", () => {
  it("32 idle keep-alive clients: closed at once, and the process exits in well under the 30 s timeout", async () => {
    const gw = await startGateway(buildGateway({ accounts: [account("fast", fast.url, 1)] }));
    try {
      const clients = await Promise.all(Array.from({ length: 32 }, () => rawConnect(gw.port)));
      for (const c of clients) post(c, "/v1/chat/completions", chat());
      await until(() => clients.every((c) => parseResponse(c.received).body !== undefined), 10_000);
      expect(clients.every((c) => parseResponse(c.received).headers.includes("connection: keep-alive"))).toBe(true);
      const t = Date.now();
      process.kill(gw.child.pid!, "SIGTERM");
      await Promise.all(clients.map((c) => c.closed));
      expect(await gw.exited).toBe(0);
      expect(Date.now() - t).toBeLessThan(10_000);
    } finally {
      await gw.stop();
    }
  });

  it("an answer finished during the drain says Connection: close, and the process exits when it ends", async () => {
    const gw = await startGateway(buildGateway({ accounts: [account("fast", fast.url, 1)] }));
    try {
      fast.queue.push({ kind: "ok", delayMs: 1500 });
      const c = await rawConnect(gw.port);
      post(c, "/v1/chat/completions", chat());
      await until(() => fast.requests.length > 0 && fast.queue.length === 0, 5000);
      const t = Date.now();
      process.kill(gw.child.pid!, "SIGTERM");
      await c.closed;
      const r = parseResponse(c.received);
      expect(r.status).toBe(200);
      expect(r.headers).toContain("connection: close");
      expect(await gw.exited).toBe(0);
      expect(Date.now() - t).toBeLessThan(10_000);
    } finally {
      await gw.stop();
    }
  });

  it("streams still running at the timeout end with a shutting_down error event, and their spend is in the final snapshot", async () => {
    const config = {
      accounts: [account("slow", slow.url, 1)],
      routes: [{ model: "m", targets: [{ account: "slow" }] }],
      pricing: { m: { input_per_mtok_usd: 100, output_per_mtok_usd: 100 } },
      virtual_keys: [{ id: "k", key: "${K}", budget: { monthly_limit_usd: 1000 } }],
      server: { admin_key: "${ADMIN}", shutdown_timeout: "1s" },
      // Only the final snapshot (at exit) can carry the cut streams' spend.
      state: { dir: "state", snapshot_interval: "1h" },
    };
    const dir = buildGateway(config);
    const env = { K: "key-k", ADMIN: "key-admin" };
    let gw = await startGateway(dir, env);
    try {
      const openai = await rawConnect(gw.port);
      post(openai, "/v1/chat/completions", chat("m", { stream: true, max_tokens: 1000 }), "Authorization: Bearer key-k\r\n");
      const anthropic = await rawConnect(gw.port);
      post(anthropic, "/anthropic/v1/messages", JSON.stringify({ model: "m", max_tokens: 1000, stream: true, messages: [{ role: "user", content: "hi" }] }), "x-api-key: key-k\r\n");
      await until(() => openai.received.includes("data:") && anthropic.received.includes("content_block_delta"), 10_000);
      const t = Date.now();
      process.kill(gw.child.pid!, "SIGTERM");
      await Promise.all([openai.closed, anthropic.closed]);
      expect(openai.received).toContain('"code":"shutting_down"');
      expect(openai.received).not.toContain("[DONE]");
      expect(anthropic.received).toContain("event: error");
      expect(anthropic.received).toContain("shutting down");
      expect(anthropic.received).not.toContain("message_stop");
      expect(await gw.exited).toBe(0);
      expect(Date.now() - t).toBeLessThan(10_000);
      // A new process reads the final snapshot: both cut streams were settled into it.
      gw = await startGateway(dir, env);
      const usage = (await (await fetch(`${gw.url}/v1/usage`, { headers: { authorization: "Bearer key-admin" } })).json()) as { data: { budgets: { spent_usd: string }[] }[] };
      expect(Number(usage.data[0].budgets[0].spent_usd)).toBeGreaterThan(0);
    } finally {
      await gw.stop();
    }
  });
});
