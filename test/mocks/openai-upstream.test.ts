import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "./openai-upstream.ts";

let mocks: MockUpstream[] = [];

async function start(opts?: Parameters<typeof startOpenAIUpstream>[0]) {
  const mock = await startOpenAIUpstream(opts);
  mocks.push(mock);
  return { mock, client: new OpenAI({ baseURL: mock.url, apiKey: "test", maxRetries: 0 }) };
}

afterEach(async () => {
  await Promise.all(mocks.map((m) => m.close()));
  mocks = [];
});

describe("openai-upstream mock", () => {
  it("answers a plain chat completion and records the request", async () => {
    const { mock, client } = await start({ name: "alpha" });
    const res = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello" },
      ],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.model).toBe("gpt-4o-mini");
    expect(res.choices[0].message).toEqual({
      role: "assistant",
      content: "[alpha] you said: hello",
      refusal: null,
      annotations: [],
    });
    expect(res.choices[0].finish_reason).toBe("stop");
    // "be brief" + "hello" = 13 chars -> ceil(13/4) = 4; 4 content chunks by default.
    expect(res.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    expect(mock.requests).toHaveLength(1);
    expect(mock.requests[0]).toMatchObject({ method: "POST", path: "/v1/chat/completions" });
    expect(mock.requests[0].headers.authorization).toBe("Bearer test");
    expect(mock.requests[0].body.messages[1].content).toBe("hello");
  });

  it("streams chat chunks with include_usage", async () => {
    const { client } = await start({ name: "beta", stream: { chunks: 3, intervalMs: 1 } });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);

    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta).toMatchObject({ role: "assistant", content: "" });
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("[beta] you said: stream please");
    // role chunk + 3 content chunks + finish chunk + usage chunk
    expect(chunks).toHaveLength(6);
    expect(chunks[4].choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });

    // Non-stream answer carries the same text.
    const plain = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream please" }],
    });
    expect(plain.choices[0].message.content).toBe(text);
  });

  it("answers with a tool call, then normally after a tool result", async () => {
    const { client } = await start({ name: "gamma" });
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } },
      { type: "function", function: { name: "other" } },
    ];
    const first = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "weather?" }],
      tools,
    });
    const choice = first.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0];
    expect(call).toMatchObject({ type: "function", function: { name: "get_weather", arguments: "{}" } });
    expect(call.id).toMatch(/^call_/);

    const second = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: "sunny" },
      ],
      tools,
    });
    expect(second.choices[0].finish_reason).toBe("stop");
    expect(second.choices[0].message.content).toBe("[gamma] you said: weather?");
  });

  it("returns embeddings for string and array input (float and base64)", async () => {
    const { client } = await start();
    // The SDK asks for base64 by default and decodes it to floats.
    const one = await client.embeddings.create({ model: "text-embedding-3-small", input: "hello world" });
    expect(one.object).toBe("list");
    expect(one.data).toHaveLength(1);
    expect(one.data[0]).toMatchObject({ object: "embedding", index: 0 });
    expect(one.data[0].embedding).toHaveLength(8);
    expect(one.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });

    const many = await client.embeddings.create({
      model: "text-embedding-3-small",
      input: ["hello world", "bye"],
      encoding_format: "float",
    });
    expect(many.data.map((d) => d.index)).toEqual([0, 1]);
    expect(many.data[0].embedding).toEqual(one.data[0].embedding);
    expect(many.data[1].embedding).not.toEqual(one.data[0].embedding);
  });

  it("serves legacy completions, streamed and not", async () => {
    const { client } = await start({ name: "delta", stream: { chunks: 2 } });
    const res = await client.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "hi" });
    expect(res.object).toBe("text_completion");
    expect(res.choices[0]).toEqual({ text: "[delta] you said: hi", index: 0, logprobs: null, finish_reason: "stop" });
    const stream = await client.completions.create({
      model: "gpt-3.5-turbo-instruct",
      prompt: "hi",
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.Completions.CompletionUsage | null | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? "";
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(res.choices[0].text);
    expect(usage).toEqual(res.usage);
  });

  it("surfaces a queued 429 as RateLimitError, then falls back to ok", async () => {
    const { mock, client } = await start();
    mock.queue.push({ kind: "status", status: 429, retryAfterSeconds: 7 });
    const err = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const rl = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rl.status).toBe(429);
    expect(rl.code).toBe("rate_limit_exceeded");
    expect(rl.type).toBe("requests");
    expect(rl.headers.get("retry-after")).toBe("7");

    const ok = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
    expect(ok.choices[0].message.content).toBe("[mock] you said: x");
    expect(mock.requests).toHaveLength(2);
  });

  it("turns a reset into a connection error", async () => {
    const { mock, client } = await start({ fallback: { kind: "reset" } });
    const err = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(mock.requests).toHaveLength(1);
  });

  it("breaks streams: fail-after and error-first", async () => {
    const { mock, client } = await start({ stream: { chunks: 4 } });
    mock.queue.push({ kind: "stream-fail-after", chunks: 2 }, { kind: "stream-error-first" });

    const got: string[] = [];
    const broken = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "abcdefgh" }],
      stream: true,
    });
    await expect(
      (async () => {
        for await (const c of broken) got.push(c.choices[0]?.delta.content ?? "");
      })(),
    ).rejects.toThrow();
    expect(got.filter((s) => s !== "")).toHaveLength(2);

    const errFirst = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const err = await (async () => {
      for await (const _ of errFirst) {
        /* nothing arrives */
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe("server_error");
  });

  it("hangs until the client times out, and close() ends the hanging socket", async () => {
    const { mock, client } = await start({ fallback: { kind: "hang" } });
    const err = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }, { timeout: 200 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    const raw = fetch(`${mock.url}/models`, { headers: { authorization: "Bearer t" } }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await mock.close();
    expect(await raw).toBeInstanceOf(Error);
  });

  it("rejects missing auth with 401 and unknown routes with 404", async () => {
    const { mock } = await start();
    const noAuth = await fetch(`${mock.url}/chat/completions`, { method: "POST", body: "{}" });
    expect(noAuth.status).toBe(401);
    expect((await noAuth.json()).error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
    const missing = await fetch(`${mock.url}/nope`, { headers: { authorization: "Bearer t" } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { message: "Invalid URL (GET /v1/nope)", type: "invalid_request_error", param: null, code: null },
    });
    const models = await fetch(`${mock.url}/models`, { headers: { authorization: "Bearer t" } });
    expect((await models.json()).object).toBe("list");
  });

  it("bills every choice and every prompt: n, best_of, prompt arrays; writesToLimit bills each to its max_tokens and CJK at a token a character", async () => {
    const { client } = await start({ name: "n" });
    const chat = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], n: 3 });
    expect(chat.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(chat.usage!.completion_tokens).toBe(3 * 4);
    const { client: limit } = await start({ name: "limit", writesToLimit: true });
    const full = await limit.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "日本語です" }], n: 2, max_tokens: 50 });
    expect(full.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 100 });
    const completions = await limit.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: ["a", "b", "c"], n: 2, best_of: 3, max_tokens: 7 });
    expect(completions.choices).toHaveLength(6);
    expect(completions.usage!.completion_tokens).toBe(3 * 3 * 7);
  });
});
