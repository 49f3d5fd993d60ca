// Cohere's Chat API v2 behind the gateway: the adapter's mapping both ways,
// its stream translator under any chunking, and the whole path through the
// real gateway with the official `openai` client against a Cohere-speaking mock.
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AccountContext, InboundRequest, Translated } from "../../runtime/providers/adapter.ts";
import { chatRequest, chatResponse, cohereAdapter, cohereUsage, CohereStream } from "../../runtime/providers/cohere.ts";
import { adapterFor } from "../../runtime/providers/index.ts";
import { RECORDED_TEXT_STREAM, RECORDED_TOOL_STREAM, startCohereUpstream, type Behavior, type CohereMock } from "../mocks/cohere-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

const account: AccountContext = { baseUrl: "https://api.cohere.com", basePath: "", apiKey: "co-key", options: {} };

function inbound(json: Record<string, unknown>, endpoint: InboundRequest["endpoint"] = "chat"): InboundRequest {
  const raw = Buffer.from(JSON.stringify(json));
  return { endpoint, raw, json, stream: json.stream === true };
}

const weatherTool = {
  type: "function" as const,
  function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"] } },
};

describe("the Cohere adapter: requests", () => {
  it("is the adapter registered for the cohere wire", () => {
    expect(adapterFor("cohere")).toBe(cohereAdapter);
  });

  it("serves chat and embeddings, not legacy completions", () => {
    expect(cohereAdapter.supports("chat")).toBe(true);
    expect(cohereAdapter.supports("embeddings")).toBe(true);
    expect(cohereAdapter.supports("completions")).toBe(false);
  });

  it("posts to /v2/chat under the base path with the key as a bearer token", async () => {
    const up = await cohereAdapter.request(inbound({ model: "command-a", messages: [{ role: "user", content: "hi" }] }), { ...account, basePath: "/proxy" }, "command-a-03-2025");
    expect(up.path).toBe("/proxy/v2/chat");
    expect(up.headers.authorization).toBe("Bearer co-key");
    expect(up.headers["content-type"]).toBe("application/json");
    const body = JSON.parse(String(up.body));
    expect(body).toEqual({ model: "command-a-03-2025", messages: [{ role: "user", content: "hi" }] });
  });

  it("asks for a stream as SSE", async () => {
    const up = await cohereAdapter.request(inbound({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }), account, "m");
    expect(up.headers.accept).toBe("text/event-stream");
    const body = JSON.parse(String(up.body));
    expect(body.stream).toBe(true);
    expect(body).not.toHaveProperty("stream_options");
  });

  it("maps roles, tool calls, tool results and sampling parameters", () => {
    const body = chatRequest(
      {
        model: "x",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "developer", content: [{ type: "text", text: "Use metric units." }] },
          { role: "user", content: [{ type: "text", text: "Weather in " }, { type: "text", text: "Madrid?" }] },
          { role: "assistant", content: "I will look it up.", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"query":"Madrid"}' } }] },
          { role: "tool", tool_call_id: "call_1", content: '{"temp":31}' },
          { role: "assistant", content: "31 degrees." },
          { role: "user", content: [{ type: "text", text: "And this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } }] },
        ],
        tools: [weatherTool],
        max_tokens: 100,
        temperature: 0.2,
        top_p: 0.9,
        stop: "END",
        seed: 7,
        frequency_penalty: 0.1,
        presence_penalty: 0.3,
        response_format: { type: "json_schema", json_schema: { name: "w", schema: { type: "object" } } },
        n: 1,
        user: "someone",
      },
      "command-a-03-2025",
      false,
    );
    expect(body).toEqual({
      model: "command-a-03-2025",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "system", content: "Use metric units." },
        { role: "user", content: "Weather in Madrid?" },
        { role: "assistant", tool_plan: "I will look it up.", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"query":"Madrid"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: '{"temp":31}' },
        { role: "assistant", content: "31 degrees." },
        { role: "user", content: [{ type: "text", text: "And this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } }] },
      ],
      tools: [weatherTool],
      max_tokens: 100,
      temperature: 0.2,
      p: 0.9,
      stop_sequences: ["END"],
      seed: 7,
      frequency_penalty: 0.1,
      presence_penalty: 0.3,
      response_format: { type: "json_object", json_schema: { type: "object" } },
    });
  });

  it("maps tool_choice: required, none, and a named function (offered alone, required)", () => {
    const other = { type: "function" as const, function: { name: "get_time", parameters: { type: "object", properties: {} } } };
    const base = { model: "x", messages: [{ role: "user", content: "q" }], tools: [weatherTool, other] };
    expect(chatRequest({ ...base, tool_choice: "required" }, "m", false).tool_choice).toBe("REQUIRED");
    expect(chatRequest({ ...base, tool_choice: "none" }, "m", false).tool_choice).toBe("NONE");
    expect(chatRequest({ ...base, tool_choice: "auto" }, "m", false)).not.toHaveProperty("tool_choice");
    const named = chatRequest({ ...base, tool_choice: { type: "function", function: { name: "get_time" } } }, "m", false);
    expect(named.tool_choice).toBe("REQUIRED");
    expect(named.tools).toEqual([{ type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } }]);
    expect(chatRequest({ ...base, max_completion_tokens: 9, max_tokens: 99 }, "m", false).max_tokens).toBe(9);
    expect(chatRequest({ ...base, stop: ["a", "b"] }, "m", false).stop_sequences).toEqual(["a", "b"]);
  });

  it("turns an embeddings request into /v2/embed with float embeddings", async () => {
    const up = await cohereAdapter.request(inbound({ model: "embed-v4.0", input: ["a", "b"], dimensions: 256, encoding_format: "base64" }, "embeddings"), account, "embed-v4.0");
    expect(up.path).toBe("/v2/embed");
    expect(JSON.parse(String(up.body))).toEqual({ model: "embed-v4.0", texts: ["a", "b"], input_type: "search_document", embedding_types: ["float"], output_dimension: 256 });
    const typed = await cohereAdapter.request(inbound({ model: "e", input: "q", input_type: "search_query" }, "embeddings"), account, "e");
    expect(JSON.parse(String(typed.body))).toMatchObject({ texts: ["q"], input_type: "search_query" });
  });
});

describe("the Cohere adapter: responses", () => {
  it("turns a text answer into a chat.completion with billed usage", () => {
    const out = chatResponse(
      {
        id: "c0ffee",
        finish_reason: "COMPLETE",
        message: { role: "assistant", content: [{ type: "thinking", thinking: "hmm" }, { type: "text", text: "Hello" }, { type: "text", text: " there" }] },
        usage: { billed_units: { input_tokens: 5, output_tokens: 2 }, tokens: { input_tokens: 70, output_tokens: 2 }, cached_tokens: 3 },
      },
      "command-a-03-2025",
      1700000000,
    );
    expect(out).toEqual({
      id: "c0ffee",
      object: "chat.completion",
      created: 1700000000,
      model: "command-a-03-2025",
      choices: [{ index: 0, message: { role: "assistant", content: "Hello there", refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 3 } },
    });
  });

  it("turns tool calls into OpenAI tool_calls, with the tool plan as the content", () => {
    const out = chatResponse(
      {
        id: "t1",
        finish_reason: "TOOL_CALL",
        message: { role: "assistant", tool_plan: "I will check.", tool_calls: [{ id: "get_weather_1", type: "function", function: { name: "get_weather", arguments: '{"query":"Oslo"}' } }] },
      },
      "m",
      0,
    ) as any;
    expect(out.choices[0].finish_reason).toBe("tool_calls");
    expect(out.choices[0].message.content).toBe("I will check.");
    expect(out.choices[0].message.tool_calls).toEqual([{ id: "get_weather_1", type: "function", function: { name: "get_weather", arguments: '{"query":"Oslo"}' } }]);
    expect(out).not.toHaveProperty("usage");
    const bare = chatResponse({ id: "t2", finish_reason: "TOOL_CALL", message: { role: "assistant", tool_calls: [{ id: "x", type: "function", function: { name: "f", arguments: "{}" } }] } }, "m", 0) as any;
    expect(bare.choices[0].message.content).toBeNull();
  });

  it.each([
    ["COMPLETE", "stop"],
    ["STOP_SEQUENCE", "stop"],
    ["MAX_TOKENS", "length"],
    ["TOOL_CALL", "tool_calls"],
    ["max_tokens", "length"],
    ["ERROR", "stop"],
  ])("maps finish_reason %s to %s", (cohere, openai) => {
    const out = chatResponse({ id: "x", finish_reason: cohere, message: { role: "assistant", content: [{ type: "text", text: "t" }] } }, "m", 0) as any;
    expect(out.choices[0].finish_reason).toBe(openai);
  });

  it("reads usage: billed units first, raw tokens when nothing is billed, embed meta", () => {
    expect(cohereUsage({ billed_units: { input_tokens: 9, output_tokens: 3 }, tokens: { input_tokens: 60, output_tokens: 3 } })).toEqual({ input: 9, output: 3, cached: 0 });
    expect(cohereUsage({ tokens: { input_tokens: 60, output_tokens: 4 } })).toEqual({ input: 60, output: 4, cached: 0 });
    expect(cohereUsage({})).toBeUndefined();
    expect(cohereAdapter.usage({ id: "x", usage: { billed_units: { input_tokens: 1, output_tokens: 2 }, cached_tokens: 1 } })).toEqual({ input: 1, output: 2, cached: 1 });
    expect(cohereAdapter.usage({ id: "e", embeddings: { float: [[0]] }, meta: { billed_units: { input_tokens: 4 } } })).toEqual({ input: 4, output: 0, cached: 0 });
    expect(cohereAdapter.usage(undefined)).toBeUndefined();
  });

  it("turns an embed answer into an embeddings list, float or base64", () => {
    const json = { id: "e", embeddings: { float: [[0.5, -0.25], [1, 0]] }, texts: ["a", "b"], meta: { billed_units: { input_tokens: 2 } }, response_type: "embeddings_by_type" };
    const floats = cohereAdapter.response!(json, inbound({ model: "e", input: ["a", "b"] }, "embeddings"), "embed-v4.0") as any;
    expect(floats).toEqual({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: [0.5, -0.25] },
        { object: "embedding", index: 1, embedding: [1, 0] },
      ],
      model: "embed-v4.0",
      usage: { prompt_tokens: 2, total_tokens: 2 },
    });
    const b64 = cohereAdapter.response!(json, inbound({ model: "e", input: ["a", "b"], encoding_format: "base64" }, "embeddings"), "e") as any;
    const buf = Buffer.from(b64.data[0].embedding, "base64");
    const decoded = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    expect(Array.from(decoded)).toEqual([0.5, -0.25]);
  });

  it("finds the message in Cohere error bodies", () => {
    const message = (body: string) => cohereAdapter.classify(400, {}, body).message;
    expect(message('{"id":"1","message":"invalid request: bad"}')).toBe("invalid request: bad");
    expect(message("upstream connect error")).toBe("upstream connect error");
    expect(message('{"error":{"message":"nested"}}')).toBe("nested");
  });
});

/** Runs bytes through a translator in the given pieces; collects what came out. */
function translate(bytes: Buffer, cuts: number[] = []) {
  const t = cohereAdapter.stream!(inbound({ model: "m", messages: [], stream: true }), "command-a-03-2025");
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const results: Translated[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    results.push(t.push(bytes.subarray(at, p)));
    at = p;
  }
  const end = t.end();
  results.push(end);
  const chunks = results.flatMap((r) => r.chunks) as any[];
  const usage = results.map((r) => r.usage).filter((u) => u !== undefined).at(-1);
  const error = results.map((r) => r.error).find((e) => e !== undefined);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  const args = chunks.map((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? "").join("");
  const finish = chunks.map((c) => c.choices[0]?.finish_reason).filter((f) => f != null);
  return { chunks, usage, error, text, args, finish, complete: end.complete };
}

describe("the Cohere stream translator", () => {
  it("turns a text stream into chunks: role first, text, then the finish", () => {
    const r = translate(Buffer.from(RECORDED_TEXT_STREAM));
    expect(r.chunks[0]).toMatchObject({ id: "5c1f0a8e-7d0b-4c8e-9f3e-3b1f2c9d4e11", object: "chat.completion.chunk", model: "command-a-03-2025", choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
    expect(r.chunks.every((c) => c.id === r.chunks[0].id && typeof c.created === "number")).toBe(true);
    expect(r.text).toBe("Hola Juan, ¿qué tal? 👋");
    expect(r.finish).toEqual(["stop"]);
    expect(r.chunks.at(-1).choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
    expect(r.usage).toEqual({ input: 5, output: 7, cached: 2 });
    expect(r.error).toBeUndefined();
    expect(r.complete).toBe(true);
  });

  it("turns a tool-call stream into tool_calls deltas, with the plan as content", () => {
    const r = translate(Buffer.from(RECORDED_TOOL_STREAM));
    const calls = r.chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    expect(calls[0]).toEqual({ index: 0, id: "get_weather_3v76fs3zjrgq", type: "function", function: { name: "get_weather", arguments: "" } });
    expect(calls.slice(1).every((c: any) => c.index === 0 && c.id === undefined)).toBe(true);
    expect(JSON.parse(r.args)).toEqual({ location: "Madrid" });
    expect(r.text).toBe("I will look up the weather.");
    expect(r.finish).toEqual(["tool_calls"]);
    expect(r.usage).toEqual({ input: 50, output: 26, cached: 0 });
    expect(r.complete).toBe(true);
  });

  it("keeps parallel tool calls apart by index", () => {
    const start = (i: number, id: string, name: string) =>
      `event: tool-call-start\ndata: ${JSON.stringify({ type: "tool-call-start", index: i, delta: { message: { tool_calls: { id, type: "function", function: { name, arguments: "" } } } } })}\n\n`;
    const delta = (i: number, a: string) => `event: tool-call-delta\ndata: ${JSON.stringify({ type: "tool-call-delta", index: i, delta: { message: { tool_calls: { function: { arguments: a } } } } })}\n\n`;
    const text =
      `event: message-start\ndata: {"id":"p","type":"message-start","delta":{"message":{"role":"assistant"}}}\n\n` +
      start(1, "a", "f") +
      delta(1, '{"x":') +
      start(2, "b", "g") +
      delta(2, "{}") +
      delta(1, "1}") +
      `event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":"TOOL_CALL"}}\n\n`;
    const r = translate(Buffer.from(text));
    const calls = r.chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    const argsOf = (i: number) => calls.filter((c: any) => c.index === i).map((c: any) => c.function.arguments).join("");
    expect(calls.filter((c: any) => c.id !== undefined).map((c: any) => [c.index, c.id, c.function.name])).toEqual([
      [0, "a", "f"],
      [1, "b", "g"],
    ]);
    expect(argsOf(0)).toBe('{"x":1}');
    expect(argsOf(1)).toBe("{}");
  });

  it("is incomplete when the stream ends before message-end", () => {
    const text = RECORDED_TEXT_STREAM.slice(0, RECORDED_TEXT_STREAM.indexOf("event: message-end"));
    const r = translate(Buffer.from(text));
    expect(r.text).toBe("Hola Juan, ¿qué tal? 👋");
    expect(r.complete).toBe(false);
    expect(r.finish).toEqual([]);
    expect(r.usage).toBeUndefined();
  });

  it("reports an error that message-end carries", () => {
    const r = translate(Buffer.from(`event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":"ERROR","error":"internal error"}}\n\ndata: [DONE]\n\n`));
    expect(r.error).toBe("internal error");
    expect(r.chunks).toEqual([]);
  });

  it("reads CRLF line ends, a last event without its blank line, and newline-delimited JSON", () => {
    const crlf = translate(Buffer.from(RECORDED_TEXT_STREAM.replace(/\n/g, "\r\n").replace(/\r\n\r\ndata: \[DONE\]\r\n\r\n$/, "")));
    expect(crlf.text).toBe("Hola Juan, ¿qué tal? 👋");
    expect(crlf.complete).toBe(true);
    const ndjson = RECORDED_TEXT_STREAM.split("\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => l.slice(6))
      .join("\n");
    const nd = translate(Buffer.from(ndjson));
    expect(nd.text).toBe("Hola Juan, ¿qué tal? 👋");
    expect(nd.usage).toEqual({ input: 5, output: 7, cached: 2 });
  });

  it("gives the same text, calls and usage however the bytes are split (property)", () => {
    for (const recorded of [RECORDED_TEXT_STREAM, RECORDED_TOOL_STREAM]) {
      const bytes = Buffer.from(recorded);
      const whole = translate(bytes);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
          const split = translate(bytes, cuts);
          expect(split.text).toBe(whole.text);
          expect(split.args).toBe(whole.args);
          expect(split.finish).toEqual(whole.finish);
          expect(split.usage).toEqual(whole.usage);
          expect(split.complete).toBe(true);
          expect(split.chunks.map((c) => c.choices[0].delta)).toEqual(whole.chunks.map((c) => c.choices[0].delta));
        }),
        { numRuns: 300 },
      );
      // …and equal to what the provider reported in message-end.
      const reported = JSON.parse(/data: (\{"type":"message-end".*)\n/.exec(recorded)![1]).delta.usage;
      expect(whole.usage).toEqual({ input: reported.billed_units.input_tokens, output: reported.billed_units.output_tokens, cached: reported.cached_tokens ?? 0 });
    }
  });

  it("splits one byte at a time, through multi-byte characters", () => {
    const bytes = Buffer.from(RECORDED_TEXT_STREAM);
    const r = translate(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1));
    expect(r.text).toBe("Hola Juan, ¿qué tal? 👋");
    expect(r.complete).toBe(true);
  });

  it("is a fresh translator per stream", () => {
    const a = cohereAdapter.stream!(inbound({ model: "m", messages: [] }), "m") as CohereStream;
    const b = cohereAdapter.stream!(inbound({ model: "m", messages: [] }), "m");
    a.push(Buffer.from(RECORDED_TEXT_STREAM.slice(0, 40)));
    expect(b.end().complete).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Through the real gateway
// ---------------------------------------------------------------------------

const ENV = { CO_API_KEY: "co-test-key", CO_BACKUP_KEY: "co-backup-key" };
let co: CohereMock;
let backup: CohereMock;

function config() {
  return {
    accounts: [
      { id: "co", provider: "cohere", base_url: co.url, model: "command-a-03-2025" },
      { id: "co-backup", provider: "cohere", base_url: backup.url, model: "command-r-08-2024", api_key: "${CO_BACKUP_KEY}", weight: 0 },
    ],
    routes: [
      { model: "command-a", targets: [{ account: "co" }, { account: "co-backup", weight: 0 }] },
      { model: "embed", targets: [{ account: "co", model: "embed-v4.0" }] },
    ],
  };
}

beforeAll(async () => {
  co = await startCohereUpstream({ name: "co", stream: { chunks: 5 } });
  backup = await startCohereUpstream({ name: "co-backup", stream: { chunks: 3 } });
});

afterAll(async () => {
  await co.close();
  await backup.close();
});

describe("through the gateway with the official openai client", () => {
  let gw: RunningGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "caller-key", maxRetries: 0 });
  });

  afterAll(async () => {
    await gw.close();
  });

  it("answers a chat in OpenAI's shape, with Cohere's billed usage", async () => {
    const { data, response } = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "hello" }] }).withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.model).toBe("command-a-03-2025");
    expect(data.choices[0].message).toMatchObject({ role: "assistant", content: "[co] you said: hello" });
    expect(data.choices[0].finish_reason).toBe("stop");
    expect(data.usage).toEqual({ prompt_tokens: 2, completion_tokens: 5, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } });
    expect(response.headers.get("x-gwc-account")).toBe("co");
    const seen = co.requests.at(-1)!;
    expect(seen.path).toBe("/v2/chat");
    expect(seen.headers.authorization).toBe("Bearer co-test-key");
    expect(seen.body).toEqual({ model: "command-a-03-2025", messages: [{ role: "user", content: "hello" }] });
  });

  it("carries a multi-turn conversation with a system prompt", async () => {
    const res = await client.chat.completions.create({
      model: "command-a",
      max_tokens: 50,
      temperature: 0.1,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "My name is Ada." },
        { role: "assistant", content: "Hello Ada." },
        { role: "user", content: "What is my name?" },
      ],
    });
    expect(res.choices[0].message.content).toBe("[co] you said: What is my name?");
    const body = co.requests.at(-1)!.body;
    expect(body.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Hello Ada." },
      { role: "user", content: "What is my name?" },
    ]);
    expect(body).toMatchObject({ max_tokens: 50, temperature: 0.1 });
  });

  it("makes a tool call round trip", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Lima?" }];
    const first = await client.chat.completions.create({ model: "command-a", messages, tools: [weatherTool] });
    const choice = first.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    const call = choice.message.tool_calls![0];
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ query: "Weather in Lima?" });
    expect(choice.message.content).toBe("I will use get_weather to answer.");
    expect(co.requests.at(-1)!.body.tools).toEqual([weatherTool]);

    messages.push(choice.message, { role: "tool", tool_call_id: call.id, content: '{"temp_c":19}' });
    const second = await client.chat.completions.create({ model: "command-a", messages, tools: [weatherTool] });
    expect(second.choices[0].message.content).toBe('[co] the tool said: {"temp_c":19}');
    expect(second.choices[0].finish_reason).toBe("stop");
    expect(co.requests.at(-1)!.body.messages.slice(1)).toEqual([
      { role: "assistant", tool_plan: "I will use get_weather to answer.", tool_calls: [{ id: call.id, type: "function", function: { name: "get_weather", arguments: call.function.arguments } }] },
      { role: "tool", tool_call_id: call.id, content: '{"temp_c":19}' },
    ]);
  });

  it("streams with include_usage: every piece, then the usage Cohere reported, then [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: "command-a",
      messages: [{ role: "user", content: "stream please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("[co] you said: stream please");
    expect(finish).toBe("stop");
    expect(chunks).toBe(1 + 5 + 1 + 1);
    expect(usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 5, total_tokens: 9, prompt_tokens_details: { cached_tokens: 0 } });
    expect(co.requests.at(-1)!.body.stream).toBe(true);
  });

  it("streams a tool call", async () => {
    const stream = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "Weather in Quito?" }], tools: [weatherTool], stream: true });
    let args = "";
    let name = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const tc = chunk.choices[0]?.delta?.tool_calls?.[0];
      if (tc?.function?.name) name = tc.function.name;
      args += tc?.function?.arguments ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(name).toBe("get_weather");
    expect(JSON.parse(args)).toEqual({ query: "Weather in Quito?" });
    expect(finish).toBe("tool_calls");
  });

  it("serves embeddings through /v2/embed (the SDK's default base64 decoded)", async () => {
    const emb = await client.embeddings.create({ model: "embed", input: ["alpha", "beta"] });
    expect(emb.data).toHaveLength(2);
    expect(emb.data[0].embedding).toHaveLength(8);
    expect(emb.usage.prompt_tokens).toBe(3);
    const seen = co.requests.at(-1)!;
    expect(seen.path).toBe("/v2/embed");
    expect(seen.body).toMatchObject({ model: "embed-v4.0", texts: ["alpha", "beta"], input_type: "search_document" });
  });

  it("passes a 400 through as BadRequestError with Cohere's message", async () => {
    co.queue.push({ kind: "status", status: 400, body: { id: "x", message: "invalid request: max_tokens must be positive" } });
    const before = backup.requests.length;
    const err = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("invalid request: max_tokens must be positive");
    expect(backup.requests.length).toBe(before);
  });

  it("serves legacy completions as one chat turn: Cohere's v2 API has no completions endpoint", async () => {
    const res = await fetch(`${gw.v1}/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "command-a", prompt: "hi" }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; choices: { text: string }[] };
    expect(body.object).toBe("text_completion");
    expect(body.choices[0].text).toContain("you said: hi");
  });
});

describe("failover away from Cohere errors", () => {
  let gw: RunningGateway;
  let client: OpenAI;

  beforeAll(() => {
    co.queue.length = 0;
  });

  afterEach(async () => {
    await gw?.close();
    co.queue.length = 0;
    backup.queue.length = 0;
  });

  const cases: [string, Behavior][] = [
    ["429", { kind: "status", status: 429 }],
    ["503", { kind: "status", status: 503 }],
    ["a reset connection", { kind: "reset" }],
  ];
  it.each(cases)("%s fails over to the second account", async (_, behavior) => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    co.queue.push(behavior);
    const { data, response } = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "hi" }] }).withResponse();
    expect(data.choices[0].message.content).toBe("[co-backup] you said: hi");
    expect(response.headers.get("x-gwc-account")).toBe("co-backup");
    const seen = backup.requests.at(-1)!;
    expect(seen.headers.authorization).toBe("Bearer co-backup-key");
    expect(seen.body.model).toBe("command-r-08-2024");
  });

  it("fails over when the stream opens with an error", async () => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    co.queue.push({ kind: "stream-error-first" });
    const stream = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "hi" }], stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toBe("[co-backup] you said: hi");
  });

  it("ends a stream that breaks mid-way with an error, never a clean finish", async () => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    co.queue.push({ kind: "stream-fail-after", chunks: 2 });
    const stream = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "hi there" }], stream: true });
    let text = "";
    const err = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toContain("incomplete");
    expect(text.length).toBeGreaterThan(0);
    expect("[co] you said: hi there".startsWith(text)).toBe(true);
  });

  it("answers 429 when every account is rate limited", async () => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    co.queue.push({ kind: "status", status: 429 });
    // The backup is the last account left: its two same-account retries meet the limit too.
    for (let i = 0; i < 3; i++) backup.queue.push({ kind: "status", status: 429 });
    const err = await client.chat.completions.create({ model: "command-a", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as Error).message).toContain("Trial key");
  });
});
