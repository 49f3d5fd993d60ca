// Failover as a caller notices it: a failing upstream never reaches the caller
// while another account is healthy; a stream that breaks after its first byte
// ends with an error event, never a clean finish.
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type Behavior, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, type RunningGateway } from "./harness.ts";

let bad: MockUpstream;
let good: MockUpstream;
let gw: RunningGateway;
let client: OpenAI;
const ask = () => client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).withResponse();

beforeAll(async () => {
  bad = await startOpenAIUpstream({ name: "bad" });
  good = await startOpenAIUpstream({ name: "good" });
});

afterEach(async () => {
  await gw?.close();
  bad.queue.length = 0;
  good.queue.length = 0;
  bad.fallback = { kind: "ok" };
  good.fallback = { kind: "ok" };
});

afterAll(async () => {
  await bad.close();
  await good.close();
});

/** `bad` is always picked first (all the weight); `good` is its only failover. */
async function gateway(extra: object = {}): Promise<void> {
  gw = await startGateway({
    accounts: [account("bad", bad.url, 1, { pool: { request_timeout: "300ms" } }), account("good", good.url, 0)],
    ...extra,
  });
  client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
}

describe("failover before the first byte", () => {
  const failures: [string, Behavior][] = [
    ["429", { kind: "status", status: 429, retryAfterSeconds: 1 }],
    ["500", { kind: "status", status: 500 }],
    ["502", { kind: "status", status: 502 }],
    ["503", { kind: "status", status: 503 }],
    ["a reset connection", { kind: "reset" }],
    ["a hang past the timeout", { kind: "hang" }],
    ["a stream that opens with an error", { kind: "stream-error-first" }],
  ];
  it.each(failures)("%s never reaches the caller", async (_, behavior) => {
    await gateway();
    bad.queue.push(behavior);
    const stream = behavior.kind === "stream-error-first";
    if (stream) {
      const s = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
      let text = "";
      for await (const c of s) text += c.choices[0]?.delta?.content ?? "";
      expect(text).toBe("[good] you said: hi");
    } else {
      const { data, response } = await ask();
      expect(data.choices[0].message.content).toBe("[good] you said: hi");
      expect(response.headers.get("x-gwc-account")).toBe("good");
    }
    expect(bad.requests).not.toHaveLength(0);
  });

  it("passes a caller's own mistake (400) through without failing over", async () => {
    await gateway();
    const before = good.requests.length;
    bad.queue.push({ kind: "status", status: 400 });
    const err = await ask().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(good.requests.length).toBe(before);
  });

  it("does not fail over on a status the config leaves out", async () => {
    await gateway({ fallback_config: { on_status_codes: [429] } });
    bad.queue.push({ kind: "status", status: 500 });
    const err = await ask().catch((e: unknown) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(500);
  });

  it("says what every account answered when all fail, 429 with retry-after when all were rate-limited beyond max_retry_after", async () => {
    await gateway();
    bad.queue.push({ kind: "status", status: 429, retryAfterSeconds: 70 });
    good.queue.push({ kind: "status", status: 429, retryAfterSeconds: 30 });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "gpt-4o", messages: [] }) });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("30");
    const body = (await res.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe("all_accounts_rate_limited");
    expect(body.error.message).toMatch(/bad \(429: .+\); good \(429: .+\)/);
  });

  it("answers 502 naming each account's failure when mixed", async () => {
    await gateway({ resilience: { retries: { max: 0 } } });
    bad.queue.push({ kind: "status", status: 503 });
    good.queue.push({ kind: "reset" });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "gpt-4o", messages: [] }) });
    expect(res.status).toBe(502);
    const { error } = (await res.json()) as { error: { message: string } };
    expect(error.message).toContain("bad (503");
    expect(error.message).toContain("good (connection failed");
  });

  it("never passes on an upstream's credential error, which may quote the key", async () => {
    await gateway({ resilience: { retries: { max: 0 } } });
    bad.queue.push({ kind: "status", status: 401, body: { error: { message: "Incorrect API key provided: sk-test-op****enai", type: "invalid_request_error", code: "invalid_api_key", param: null } } });
    good.queue.push({ kind: "status", status: 503 });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "gpt-4o", messages: [] }) });
    const text = await res.text();
    expect(res.status).toBe(502);
    expect(text).toContain("rejected the gateway's credentials");
    expect(text).not.toContain("sk-test");
  });
});

describe("after the first byte", () => {
  it("a mid-stream failure ends the stream with an error event, not [DONE]", async () => {
    await gateway();
    const goodBefore = good.requests.length;
    bad.queue.push({ kind: "stream-fail-after", chunks: 2 });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-gwc-account")).toBe("bad");
    const text = await res.text();
    expect(text).not.toContain("[DONE]");
    const last = text.trim().split("\n\n").at(-1)!;
    expect(JSON.parse(last.slice("data: ".length)).error.code).toBe("stream_interrupted");
    // The openai client surfaces it as an error, not a truncated success.
    bad.queue.push({ kind: "stream-fail-after", chunks: 2 });
    const stream = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
    await expect(async () => {
      for await (const _ of stream) void _;
    }).rejects.toThrow(/incomplete/);
    // Never failed over once bytes had gone out.
    expect(good.requests.length).toBe(goodBefore);
  });
});

describe("circuit breaker", () => {
  it("moves a failing account's share to the others, and Retry-After keeps it out", async () => {
    gw = await startGateway({ accounts: [account("bad", bad.url, 1), account("good", good.url, 1)] });
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    bad.fallback = { kind: "status", status: 429, retryAfterSeconds: 30 };
    for (let i = 0; i < 10; i++) await ask();
    const seen = bad.requests.length;
    expect(seen).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 40; i++) {
      const { response } = await ask();
      expect(response.headers.get("x-gwc-account")).toBe("good");
    }
    // Out for the whole Retry-After: not one more request reached it.
    expect(bad.requests.length).toBe(seen);
  });
});
