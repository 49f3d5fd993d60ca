// Upstreams that lie (issue #11 items 9 and 10), as a caller meets them: a
// compressed answer though the gateway asked for identity, a 200 that is an
// HTML page, broken JSON or another shape, a stream that turns to garbage, an
// event that never ends, an answer larger than the bound. Before the first byte
// the caller never sees them (failover); after it, the stream ends with an
// error event; and the caller pays only what the provider reported.
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type Behavior, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, type RunningGateway } from "./harness.ts";

let bad: MockUpstream;
let good: MockUpstream;
let gw: RunningGateway;

const KEY = "gwc-lying-key-0123456789";

beforeAll(async () => {
  bad = await startOpenAIUpstream({ name: "bad", stream: { chunks: 4 } });
  good = await startOpenAIUpstream({ name: "good" });
});

afterEach(async () => {
  await gw?.close();
  bad.queue.length = 0;
  good.queue.length = 0;
});

afterAll(async () => {
  await bad.close();
  await good.close();
});

/** `bad` is always picked first; `good` is its failover unless `alone`. */
async function gateway(server: object = {}, alone = false): Promise<void> {
  gw = await startGateway(
    {
      accounts: alone ? [account("bad", bad.url, 1)] : [account("bad", bad.url, 1), account("good", good.url, 0)],
      pricing: { "gpt-4o": { input_per_mtok_usd: 1000, output_per_mtok_usd: 1000 } },
      virtual_keys: [{ id: "k", key: "${GWC_LYING_KEY}", budget: { daily_limit_usd: 100 } }],
      server,
      // Alone, the account is not retried: what a lie costs and says is the point here, not retries.
      ...(alone ? { resilience: { retries: { max: 0 } } } : {}),
    },
    { OPENAI_API_KEY: "sk-test-openai", GWC_LYING_KEY: KEY },
  );
}

async function post(stream: boolean): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${gw.v1}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream, max_tokens: 10 }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function spent(): Promise<number> {
  const own = (await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { budgets: { spent_usd: string }[] };
  return Number(own.budgets[0].spent_usd);
}

/** The content text of an OpenAI SSE body, and how it ended. */
function readStream(text: string): { content: string; done: boolean; error?: { code: string; message: string } } {
  let content = "";
  let done = false;
  let error: { code: string; message: string } | undefined;
  for (const event of text.split("\n\n")) {
    const data = event.split("\n").find((l) => l.startsWith("data: "))?.slice(6);
    if (data === undefined) continue;
    if (data === "[DONE]") done = true;
    else {
      const json = JSON.parse(data);
      if (json.error) error = json.error;
      else content += json.choices?.[0]?.delta?.content ?? "";
    }
  }
  return { content, done, error };
}

/** A stream `bad` began and could not finish: some of its text, then the error event, never [DONE]. */
function interrupted(res: { headers: Headers; text: string }): ReturnType<typeof readStream> {
  expect(res.headers.get("x-gwc-account")).toBe("bad");
  const read = readStream(res.text);
  expect(read.content).not.toBe("");
  expect("[bad] you said: hi".startsWith(read.content)).toBe(true);
  expect(read.done).toBe(false);
  expect(read.error?.code).toBe("stream_interrupted");
  return read;
}

describe("content-encoding", () => {
  it.each(["gzip", "br", "deflate"] as const)("a %s answer sent against accept-encoding: identity reaches the caller decoded, JSON and SSE", async (encoding) => {
    await gateway();
    bad.queue.push({ kind: "ok", encoding }, { kind: "ok", encoding });
    const json = await post(false);
    expect(json.status).toBe(200);
    expect(json.headers.get("content-encoding")).toBeNull();
    expect(json.headers.get("x-gwc-account")).toBe("bad");
    expect(JSON.parse(json.text).choices[0].message.content).toBe("[bad] you said: hi");
    const sse = await post(true);
    expect(sse.headers.get("content-encoding")).toBeNull();
    expect(readStream(sse.text)).toEqual({ content: "[bad] you said: hi", done: true, error: undefined });
    // Every upstream request asks for identity.
    expect(bad.requests.at(-1)!.headers["accept-encoding"]).toBe("identity");
    expect(await spent()).toBeGreaterThan(0);
  });

  it.each<[string, Behavior]>([
    ["an encoding the gateway cannot read", { kind: "ok", encoding: "zstd" }],
    ["a gzip header on bytes that are not gzip", { kind: "lie", contentType: "application/json", headers: { "content-encoding": "gzip" }, body: '{"choices":[]}' }],
  ])("%s is the account failing: the caller gets the next account's answer", async (_, behavior) => {
    await gateway();
    bad.queue.push(behavior, behavior);
    const res = await post(false);
    expect(res.headers.get("x-gwc-account")).toBe("good");
    expect(JSON.parse(res.text).choices[0].message.content).toBe("[good] you said: hi");
    const sse = await post(true);
    expect(sse.headers.get("x-gwc-account")).toBe("good");
    expect(readStream(sse.text)).toEqual({ content: "[good] you said: hi", done: true, error: undefined });
  });
});

describe("a 2xx that is not the protocol fails over before the first byte", () => {
  const lies: [string, Behavior][] = [
    ["an HTML page", { kind: "lie", body: "<html><body><h1>502 Bad Gateway</h1></body></html>" }],
    ["broken JSON", { kind: "lie", contentType: "application/json", body: '{"id":"chatcmpl-1","choices":[{"index":0,"message":{"content":"cut' }],
    ["JSON of another shape", { kind: "lie", contentType: "application/json", body: '{"hello":"world"}' }],
    ["an error object under a 200", { kind: "stream-error-first" }],
  ];
  it.each(lies)("%s (JSON request)", async (_, lie) => {
    await gateway();
    bad.queue.push(lie);
    const res = await post(false);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-gwc-account")).toBe("good");
    expect(JSON.parse(res.text).choices[0].message.content).toBe("[good] you said: hi");
  });

  it.each(lies)("%s (stream request)", async (_, lie) => {
    await gateway();
    bad.queue.push(lie);
    const res = await post(true);
    expect(res.headers.get("x-gwc-account")).toBe("good");
    expect(readStream(res.text)).toEqual({ content: "[good] you said: hi", done: true, error: undefined });
  });

  it("bills nothing for a lie when no account answers, and says what each did", async () => {
    await gateway({}, true);
    bad.queue.push({ kind: "lie", body: "<html>oops</html>" });
    const res = await post(false);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.message).toContain("the answer is not a openai response");
    expect(await spent()).toBe(0);
  });
});

describe("after the first byte, a stream that breaks its protocol ends with an error event", () => {
  it("garbage mid-stream: the text so far, then stream_interrupted, no [DONE]; billed only what was reported (nothing)", async () => {
    await gateway({}, true);
    bad.queue.push({ kind: "stream-then", chunks: 2, text: "data: <html>oops</html>\n\n" });
    const read = interrupted(await post(true));
    expect(read.error?.message).toContain("not a JSON object");
    // The reservation is released, not kept: the provider reported no usage.
    expect(await spent()).toBe(0);
  });
});

describe("bounded events and bodies", () => {
  it("an event that never ends (50 MB, no blank line) before the first byte fails over, the gateway reading only its bound", async () => {
    await gateway();
    const before = process.memoryUsage().rss;
    bad.queue.push({ kind: "endless-event", bytes: 50 * 1024 * 1024 });
    const res = await post(true);
    expect(res.headers.get("x-gwc-account")).toBe("good");
    expect(readStream(res.text)).toEqual({ content: "[good] you said: hi", done: true, error: undefined });
    // The gateway stopped at 1 MiB (server.max_event_bytes); before, it buffered all 50 MB and grew by hundreds of MiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it("an event that never ends after the first byte ends the stream with stream_interrupted, at the configured bound", async () => {
    await gateway({ max_event_bytes: 65536 });
    bad.queue.push({ kind: "endless-event", afterEvents: 3, bytes: 4 * 1024 * 1024 });
    const read = interrupted(await post(true));
    expect(read.error?.message).toContain("larger than 65536 bytes");
  });

  it("a JSON answer larger than server.max_upstream_body_bytes is the account failing", async () => {
    await gateway({ max_upstream_body_bytes: 4096 }, true);
    bad.queue.push({ kind: "lie", contentType: "application/json", body: JSON.stringify({ choices: [{ message: { content: "x".repeat(10_000) } }] }) });
    const res = await post(false);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.message).toContain("larger than 4096 bytes");
    expect(await spent()).toBe(0);
  });

  it("a compressed JSON answer that decodes past the bound (a gzip bomb) is the account failing, decoded no further", async () => {
    await gateway({ max_upstream_body_bytes: 4096 }, true);
    const huge = JSON.stringify({ choices: [{ message: { content: "x".repeat(1_000_000) } }] });
    const bomb = gzipSync(huge);
    expect(bomb.length).toBeLessThan(4096);
    bad.queue.push({ kind: "lie", contentType: "application/json", headers: { "content-encoding": "gzip" }, body: bomb });
    const res = await post(false);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.message).toContain("larger than 4096 bytes");
    expect(await spent()).toBe(0);
  });
});
