// The gateway as an OpenAI user meets it: the official `openai` client, with
// only its base URL changed, against mock upstreams speaking OpenAI's wire format.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, until, type RunningGateway } from "./harness.ts";

let primary: MockUpstream;
let secondary: MockUpstream;
let gw: RunningGateway;
let client: OpenAI;

beforeAll(async () => {
  primary = await startOpenAIUpstream({ name: "primary", stream: { chunks: 5 } });
  secondary = await startOpenAIUpstream({ name: "secondary", stream: { chunks: 5 } });
  gw = await startGateway({
    accounts: [account("primary", primary.url, 1), account("secondary", secondary.url, 0, { model: "gpt-4o-mini" })],
    routes: [
      { model: "gpt-4o", targets: [{ account: "primary" }, { account: "secondary", weight: 0 }] },
      { model: "text-embedding-3-small", targets: [{ account: "primary" }] },
      { model: "gpt-3.5-turbo-instruct", targets: [{ account: "primary" }] },
    ],
  });
  client = new OpenAI({ baseURL: gw.v1, apiKey: "caller-key", maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await primary.close();
  await secondary.close();
});

describe("through the official openai client", () => {
  it("answers a chat completion and says which account served", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] })
      .withResponse();
    expect(data.choices[0].message.content).toBe("[primary] you said: hello");
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get("x-gwc-account")).toBe("primary");
    expect(response.headers.get("x-request-id")).toMatch(/.+/);
    // A whole answer says its size (no chunked framing).
    expect(Number(response.headers.get("content-length"))).toBe(Buffer.byteLength(JSON.stringify(data)));
    expect(response.headers.get("transfer-encoding")).toBeNull();
    // The upstream saw the provider key, not the caller's.
    expect(primary.requests.at(-1)!.headers.authorization).toBe("Bearer sk-test-openai");
  });

  it("streams every chunk, usage included, and ends cleanly", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "stream please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("[primary] you said: stream please");
    expect(chunks).toBeGreaterThanOrEqual(7);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("forwards tools and returns the tool call", async () => {
    const res = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "weather?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } }],
    });
    expect(res.choices[0].finish_reason).toBe("tool_calls");
    const call = res.choices[0].message.tool_calls![0];
    expect(call.type === "function" && call.function.name).toBe("get_weather");
  });

  it("serves embeddings and legacy completions", async () => {
    const emb = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect(emb.data).toHaveLength(2);
    expect(emb.data[0].embedding.length).toBeGreaterThan(0);
    const completion = await client.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "say hi" });
    expect(completion.choices[0].text).toContain("primary");
  });

  it("replaces the model upstream when the account names one", async () => {
    primary.queue.push({ kind: "status", status: 503 });
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] });
    expect(res.choices[0].message.content).toBe("[secondary] you said: x");
    expect(secondary.requests.at(-1)!.body.model).toBe("gpt-4o-mini");
  });

  it("lists the routed models", async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toEqual(["gpt-4o", "text-embedding-3-small", "gpt-3.5-turbo-instruct"]);
  });

  it("answers an unknown model with OpenAI's 404 shape", async () => {
    const err = await client.chat.completions.create({ model: "gpt-9", messages: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("model_not_found");
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("gpt-9");
  });

  it("refuses malformed and oversized bodies with 400 and 413", async () => {
    const bad = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: "{nope" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    const noModel = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: "{}" });
    expect(noModel.status).toBe(400);
    const huge = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: "x".repeat(5 * 1024 * 1024) });
    expect(huge.status).toBe(413);
  });
});

describe("a caller who hangs up", () => {
  // 100 chunks 50 ms apart: the stream would run 5 s if nobody stopped it.
  let slow: MockUpstream;
  let g: RunningGateway;
  let c: OpenAI;
  beforeAll(async () => {
    slow = await startOpenAIUpstream({ name: "slow", stream: { chunks: 100, intervalMs: 50 } });
    g = await startGateway({ accounts: [account("slow", slow.url, 1)], routes: [{ model: "gpt-4o", targets: [{ account: "slow" }] }] });
    c = new OpenAI({ baseURL: g.v1, apiKey: "caller-key", maxRetries: 0 });
  });
  afterAll(async () => {
    await g.close();
    await slow.close();
  });
  const pool = () => g.runtime.pools.values().next().value!;

  it("mid-stream: the upstream request is cancelled and its connection slot freed at once", async () => {
    const stream = await c.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "a long story" }], stream: true });
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      expect(pool().active).toBe(1);
      break; // the client aborts its request
    }
    await until(() => pool().active === 0, 1000);
  });

  it("while the upstream has not answered: the same", async () => {
    slow.queue.push({ kind: "hang" });
    const gone = new AbortController();
    const pending = c.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello?" }] }, { signal: gone.signal });
    await until(() => pool().active === 1);
    gone.abort();
    await expect(pending).rejects.toThrow();
    await until(() => pool().active === 0, 1000);
  });
});
