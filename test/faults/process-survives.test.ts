// The process stays up: abusive clients and exhausted descriptors degrade what
// the gateway can take on, never whether it runs. Real processes, raw sockets.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "node:net";
import { connect } from "node:net";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, until } from "../runtime/harness.ts";
import { buildGateway, chat, parseResponse, rawConnect, sleep, startGateway } from "./gateway-process.ts";

let upstream: MockUpstream;
beforeAll(async () => {
  upstream = await startOpenAIUpstream({ name: "up", stream: { chunks: 20, intervalMs: 20 } });
});
afterAll(async () => {
  await upstream?.close();
});

const ask = async (url: string) => {
  const r = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: chat() });
  await r.arrayBuffer();
  return r.status;
};

describe("descriptor exhaustion (ulimit -n 256)", () => {
  it("refuses what it cannot accept, stays up, keeps serving open connections, and serves new ones once descriptors free", async () => {
    // Snapshots every 200 ms: under exhaustion they fail too (EMFILE), which must not end the process either.
    const config = { accounts: [account("up", upstream.url, 1)], state: { snapshot_interval: "200ms" } };
    const gw = await startGateway(buildGateway(config), {}, { ulimit: 256 });
    const sockets: Socket[] = [];
    let refused = 0;
    try {
      // A keep-alive connection opened before the flood keeps being served during it.
      const probe = await rawConnect(gw.port);
      probe.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      await until(() => parseResponse(probe.received).body !== undefined, 5000);
      const before = probe.received.length;
      // 400 connections against 256 descriptors.
      await Promise.all(
        Array.from({ length: 400 }, () => new Promise<void>((ok) => {
          const s = connect(gw.port, "127.0.0.1");
          s.on("error", () => undefined);
          s.on("connect", () => ok());
          s.on("close", () => {
            refused++;
            ok();
          });
          sockets.push(s);
        })),
      );
      await until(() => refused > 100, 10_000);
      expect(gw.alive()).toBe(true);
      // Alive, and saying it is not ready: the snapshots cannot be written (EMFILE) either.
      await until(() => gw.stderr.includes("cannot write the state snapshot"), 5000);
      expect(gw.stderr).toContain("EMFILE");
      probe.socket.write("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
      await until(() => parseResponse(probe.received.slice(before)).body !== undefined, 5000);
      const readyz = parseResponse(probe.received.slice(before));
      expect(readyz.status).toBe(503);
      expect(readyz.body.status).toBe("degraded");
      // Descriptors free: new connections are served again.
      for (const s of sockets) s.destroy();
      probe.socket.destroy();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = await ask(gw.url).catch(() => 0);
        if (status !== 200) await sleep(100);
      }
      expect(status).toBe(200);
      // The snapshots that failed meanwhile are retried with backoff; readiness returns with the first that works.
      let ready = 0;
      for (let i = 0; i < 400 && ready !== 200; i++) {
        ready = (await fetch(`${gw.url}/readyz`)).status;
        if (ready !== 200) await sleep(100);
      }
      expect(ready).toBe(200);
      expect(gw.alive()).toBe(true);
    } finally {
      for (const s of sockets) s.destroy();
      await gw.stop();
    }
  });
});

describe("abusive clients", () => {
  it("garbage, oversized headers, resets mid-body and mid-stream, half-closed sockets: the process stays up and serves", async () => {
    const gw = await startGateway(buildGateway({ accounts: [account("up", upstream.url, 1)] }));
    try {
      // Not HTTP at all.
      const garbage = await rawConnect(gw.port);
      garbage.socket.write("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n");
      await garbage.closed;
      expect(parseResponse(garbage.received).status).toBe(400);
      expect(parseResponse(garbage.received).body.error.code).toBe("malformed_request");
      // Headers past node's limit.
      const big = await rawConnect(gw.port);
      big.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
      await big.closed;
      expect(parseResponse(big.received).status).toBe(431);
      // Reset in the middle of a body.
      const midBody = await rawConnect(gw.port);
      midBody.socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"model\":\"m\"");
      await sleep(50);
      midBody.socket.resetAndDestroy();
      // Reset in the middle of a stream, and a half-closed socket mid-stream.
      for (const how of ["reset", "half-close"] as const) {
        const s = await rawConnect(gw.port);
        const body = chat("m", { stream: true });
        s.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        await until(() => s.received.includes("data:"), 5000);
        if (how === "reset") s.socket.resetAndDestroy();
        else s.socket.end();
      }
      // Many connections that open and vanish at once.
      await Promise.all(Array.from({ length: 100 }, async () => (await rawConnect(gw.port)).socket.resetAndDestroy()));
      await sleep(300);
      expect(gw.alive()).toBe(true);
      expect(await ask(gw.url)).toBe(200);
      expect(gw.stderr).not.toMatch(/^\s+at /m);
    } finally {
      await gw.stop();
    }
  });
});
