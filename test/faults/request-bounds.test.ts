// Request bounds against a real gateway process, with raw sockets: an oversized
// body gets its 413 (not a broken pipe), slow headers and slow bodies get a JSON
// 408 and lose their connection, idle keep-alive connections are closed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account } from "../runtime/harness.ts";
import { buildGateway, chat, parseResponse, rawConnect, sleep, startGateway, type GatewayProcess } from "./gateway-process.ts";

let upstream: MockUpstream;
let gw: GatewayProcess;
let small: GatewayProcess;
beforeAll(async () => {
  upstream = await startOpenAIUpstream({ name: "up" });
  // Defaults (4 MiB body limit), and one with short read timeouts to keep the test quick.
  gw = await startGateway(buildGateway({ accounts: [account("up", upstream.url, 1)] }));
  small = await startGateway(
    buildGateway({ accounts: [account("up", upstream.url, 1)], server: { header_timeout: "1s", body_timeout: "1s", keep_alive_timeout: "1s", max_body_bytes: 65536 } }),
  );
});
afterAll(async () => {
  await gw?.stop();
  await small?.stop();
  await upstream?.close();
});

describe("an oversized body", () => {
  it("a 10 MB body, written whole by its client, reads a JSON 413 rather than a broken pipe (default 4 MiB limit)", async () => {
    const c = await rawConnect(gw.port);
    const body = Buffer.alloc(10 * 1024 * 1024, 0x20);
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    const wrote = await new Promise<string | undefined>((ok) => c.socket.write(body, (e) => ok((e as NodeJS.ErrnoException | undefined)?.code)));
    const error = await c.closed;
    expect(wrote).toBeUndefined();
    expect(error).toBeUndefined();
    const r = parseResponse(c.received);
    expect(r.status).toBe(413);
    expect(r.headers).toContain("connection: close");
    expect(r.body.error.code).toBe("request_too_large");
    expect(r.body.error.message).toContain("server.max_body_bytes");
    expect(gw.alive()).toBe(true);
  });

  it("the limit is the setting: 64 KiB + 1 byte, chunked, is refused; 64 KiB is served", async () => {
    const over = await fetch(`${small.url}/v1/chat/completions`, { method: "POST", body: chat("m", { pad: "x".repeat(65536) }) });
    expect(over.status).toBe(413);
    expect(((await over.json()) as any).error.message).toContain("65536 bytes");
    const padded = chat("m", { pad: "" });
    const ok = await fetch(`${small.url}/v1/chat/completions`, { method: "POST", body: chat("m", { pad: "x".repeat(65536 - padded.length) }) });
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  it("Expect: 100-continue with an oversized Content-Length gets its 413 before any body is sent", async () => {
    const c = await rawConnect(gw.port);
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n`);
    await c.closed;
    expect(parseResponse(c.received).status).toBe(413);
  });
});

describe("read timeouts (server.header_timeout, server.body_timeout: 1s)", () => {
  it("slowloris: a header line every 200 ms is answered 408 in JSON and the connection closed, within seconds", async () => {
    const c = await rawConnect(small.port);
    const started = Date.now();
    c.socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => c.socket.writable && c.socket.write(`X-Drip-${Date.now()}: 1\r\n`), 200);
    await c.closed;
    clearInterval(drip);
    const r = parseResponse(c.received);
    expect(r.status).toBe(408);
    expect(r.body.error.code).toBe("request_timeout");
    expect(r.body.error.message).toContain("server.header_timeout");
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it("a connection that sends nothing is closed after the header timeout", async () => {
    const c = await rawConnect(small.port);
    const started = Date.now();
    await c.closed;
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it("headers without their body: 408 in JSON, connection closed", async () => {
    const c = await rawConnect(small.port);
    const started = Date.now();
    c.socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"model\":");
    await c.closed;
    const r = parseResponse(c.received);
    expect(r.status).toBe(408);
    expect(r.headers).toContain("connection: close");
    expect(r.body.error.message).toContain("server.body_timeout");
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it("an idle keep-alive connection is closed after server.keep_alive_timeout", async () => {
    const c = await rawConnect(small.port);
    const body = chat();
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const started = Date.now();
    await c.closed;
    expect(parseResponse(c.received).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it("after all of that the gateway still serves", async () => {
    await sleep(10);
    const r = await fetch(`${small.url}/v1/chat/completions`, { method: "POST", body: chat() });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(small.alive() && gw.alive()).toBe(true);
  });
});

describe("answered before the body was read (a refused key)", () => {
  let keyed: GatewayProcess;
  beforeAll(async () => {
    keyed = await startGateway(
      buildGateway({ accounts: [account("up", upstream.url, 1)], virtual_keys: [{ id: "k", key: "${K}" }], server: { body_timeout: "1s" } }),
      { K: "key-k" },
    );
  });
  afterAll(async () => {
    await keyed?.stop();
  });

  it("a 10 MB body without a key reads its 401, not a reset", async () => {
    const c = await rawConnect(keyed.port);
    const body = Buffer.alloc(10 * 1024 * 1024, 0x20);
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.socket.write(body);
    expect(await c.closed).toBeUndefined();
    const r = parseResponse(c.received);
    expect(r.status).toBe(401);
    expect(r.headers).toContain("connection: close");
  });

  it("headers without their body and without a key: answered, and the connection closed after the body timeout", async () => {
    const c = await rawConnect(keyed.port);
    const started = Date.now();
    c.socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{");
    await c.closed;
    expect(parseResponse(c.received).status).toBe(401);
    expect(Date.now() - started).toBeLessThan(8000);
  });
});
