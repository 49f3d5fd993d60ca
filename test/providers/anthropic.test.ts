// The Anthropic adapter: OpenAI chat requests as Messages API requests, and
// Anthropic's JSON and SSE answers as OpenAI's. Unit tests of the mapping, a
// property over arbitrary byte splits of recorded streams, and the gateway end
// to end with the official `openai` client against a wire-faithful mock.
import Anthropic from "@anthropic-ai/sdk";
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AccountContext, InboundRequest, StreamTranslator, Translated, Usage } from "../../runtime/providers/adapter.ts";
import { anthropicAdapter, anthropicStream } from "../../runtime/providers/anthropic.ts";
import { errorBody, startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

const KEY = "sk-ant-test-key";
const ENV = { ANTHROPIC_API_KEY: KEY, OPENAI_API_KEY: "sk-test-openai" };
const account: AccountContext = { baseUrl: "https://api.anthropic.com", basePath: "", apiKey: KEY, options: {} };

function inbound(json: Record<string, unknown>, stream = json.stream === true): InboundRequest {
  return { endpoint: "chat", raw: Buffer.from(JSON.stringify(json)), json, stream };
}

/** The Messages API body the adapter sends for an OpenAI request. */
async function upstreamBody(json: Record<string, unknown>, model = "claude-sonnet-4-5"): Promise<any> {
  const r = await anthropicAdapter.request(inbound(json), account, model);
  return JSON.parse(r.body.toString());
}

/** Everything a translator made of `parts`, ended. */
function translate(parts: Uint8Array[], t: StreamTranslator = anthropicStream("claude-sonnet-4-5", 1_700_000_000_000)) {
  const chunks: any[] = [];
  let usage: Usage | undefined;
  let usageReports = 0;
  const errors: string[] = [];
  const take = (r: Translated) => {
    chunks.push(...r.chunks);
    if (r.usage) {
      usage = r.usage;
      usageReports++;
    }
    if (r.error !== undefined) errors.push(r.error);
  };
  for (const p of parts) take(t.push(Buffer.from(p)));
  const end = t.end();
  take(end);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  const args = new Map<number, string>();
  for (const c of chunks) for (const tc of c.choices[0]?.delta?.tool_calls ?? []) args.set(tc.index, (args.get(tc.index) ?? "") + (tc.function?.arguments ?? ""));
  return { chunks, usage, usageReports, errors, complete: end.complete, text, args };
}

/** SSE the way Anthropic's docs show it: `event:` and `data:` lines, a blank line after each event. */
const sse = (events: object[]) => events.map((e) => `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`).join("");

// A stream in the documented shape (streaming docs, "Streaming request with tool use"): text, a ping,
// then a tool_use whose input arrives as partial JSON, prompt-cache usage, cumulative final usage.
const TOOL_STREAM = [
  { type: "message_start", message: { id: "msg_014p7gG3wDgGV9EUtLvnow3U", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 472, cache_creation_input_tokens: 20, cache_read_input_tokens: 1000, output_tokens: 2, service_tier: "standard" } } },
  { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
  { type: "ping" },
  { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Okay, let's check the weather for San Francisco, CA:" } },
  { type: "content_block_stop", index: 0 },
  { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", input: {} } },
  { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "" } },
  { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"location":' } },
  { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: ' "San Francisc' } },
  { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: 'o, CA", "unit": "fahrenheit"}' } },
  { type: "content_block_stop", index: 1 },
  { type: "content_block_start", index: 2, content_block: { type: "tool_use", id: "toolu_02NoInput", name: "get_time", input: {} } },
  { type: "content_block_stop", index: 2 },
  { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 89 } },
  { type: "message_stop" },
];

// ---------------------------------------------------------------------------
// 1. Unit: the mapping
// ---------------------------------------------------------------------------

describe("request mapping", () => {
  it("posts to {basePath}/v1/messages with x-api-key and anthropic-version, never a bearer token", async () => {
    const r = await anthropicAdapter.request(inbound({ model: "x", messages: [{ role: "user", content: "hi" }] }), account, "claude-sonnet-4-5");
    expect(r.path).toBe("/v1/messages");
    expect(r.headers).toMatchObject({ "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" });
    expect(r.headers.authorization).toBeUndefined();
    const proxied = await anthropicAdapter.request(inbound({ model: "x", messages: [] }), { ...account, basePath: "/anthropic", apiKey: null }, "m");
    expect(proxied.path).toBe("/anthropic/v1/messages");
    expect(proxied.headers["x-api-key"]).toBeUndefined();
  });

  it("lifts system and developer messages into `system` and keeps the turns", async () => {
    const body = await upstreamBody({
      model: "gpt-4o",
      messages: [
        { role: "system", content: "You are terse." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Bonjour" },
        { role: "user", content: "How are you?" },
      ],
    });
    expect(body).toEqual({
      model: "claude-sonnet-4-5",
      max_tokens: 4096,
      system: "You are terse.\n\nAnswer in French.",
      messages: [
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Bonjour" },
        { role: "user", content: "How are you?" },
      ],
    });
  });

  it("maps sampling and limits: max_completion_tokens over max_tokens, stop → stop_sequences, user → metadata", async () => {
    const base = { model: "m", messages: [{ role: "user", content: "x" }] };
    expect(await upstreamBody({ ...base, max_tokens: 100, temperature: 0.2, top_p: 0.9, stop: "END", stream: true, user: "u-1" })).toMatchObject({
      max_tokens: 100,
      temperature: 0.2,
      top_p: 0.9,
      stop_sequences: ["END"],
      stream: true,
      metadata: { user_id: "u-1" },
    });
    const b = await upstreamBody({ ...base, max_tokens: 100, max_completion_tokens: 50, stop: ["a", "b"] });
    expect(b.max_tokens).toBe(50);
    expect(b.stop_sequences).toEqual(["a", "b"]);
    expect(b.stream).toBeUndefined();
    expect(b.temperature).toBeUndefined();
    expect(b).not.toHaveProperty("stream_options");
  });

  it("turns image parts into base64 or url image blocks", async () => {
    const body = await upstreamBody({
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "high" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          ],
        },
      ],
    });
    expect(body.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "What is in these?" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
        ],
      },
    ]);
  });

  it("maps tools, and tool_choice auto/none/required/named, with parallel_tool_calls", async () => {
    const tools = [
      { type: "function", function: { name: "get_weather", description: "Weather now", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
      { type: "function", function: { name: "noop" } },
    ];
    const base = { model: "m", messages: [{ role: "user", content: "x" }], tools };
    const body = await upstreamBody(base);
    expect(body.tools).toEqual([
      { name: "get_weather", description: "Weather now", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
      { name: "noop", input_schema: { type: "object", properties: {} } },
    ]);
    expect(body.tool_choice).toBeUndefined();
    const choice = async (tool_choice: unknown, extra = {}) => (await upstreamBody({ ...base, tool_choice, ...extra })).tool_choice;
    expect(await choice("auto")).toEqual({ type: "auto" });
    expect(await choice("none")).toEqual({ type: "none" });
    expect(await choice("required")).toEqual({ type: "any" });
    expect(await choice({ type: "function", function: { name: "get_weather" } })).toEqual({ type: "tool", name: "get_weather" });
    expect(await choice("required", { parallel_tool_calls: false })).toEqual({ type: "any", disable_parallel_tool_use: true });
    expect(await choice(undefined, { parallel_tool_calls: false })).toEqual({ type: "auto", disable_parallel_tool_use: true });
    // No tools, no tool_choice: Anthropic would refuse one without the other.
    expect((await upstreamBody({ model: "m", messages: [{ role: "user", content: "x" }], tool_choice: "auto" })).tool_choice).toBeUndefined();
  });

  it("turns assistant tool_calls into tool_use and tool messages into one user turn of tool_result blocks", async () => {
    const body = await upstreamBody({
      model: "m",
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "Checking.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "call_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
        { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "24C" }] },
        { role: "user", content: "Which is warmer?" },
      ],
    });
    expect(body.messages).toEqual([
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "call_2", name: "get_weather", input: { city: "Rome" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "call_1", content: "18C" },
          { type: "tool_result", tool_use_id: "call_2", content: "24C" },
          { type: "text", text: "Which is warmer?" },
        ],
      },
    ]);
  });

  it("sends an assistant turn of only tool calls without an empty text block", async () => {
    const body = await upstreamBody({
      model: "m",
      messages: [
        { role: "user", content: "time?" },
        { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "now", arguments: "" } }] },
        { role: "tool", tool_call_id: "c", content: "noon" },
      ],
    });
    expect(body.messages[1]).toEqual({ role: "assistant", content: [{ type: "tool_use", id: "c", name: "now", input: {} }] });
    expect(body.messages[2]).toEqual({ role: "user", content: [{ type: "tool_result", tool_use_id: "c", content: "noon" }] });
  });
});

describe("response mapping", () => {
  const message = {
    id: "msg_01XFDUDYJgAACzvnptvVoYEL",
    type: "message",
    role: "assistant",
    model: "claude-sonnet-4-5-20250929",
    content: [
      { type: "text", text: "Hello" },
      { type: "text", text: ", world" },
    ],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 12, cache_creation_input_tokens: 3, cache_read_input_tokens: 100, output_tokens: 6, service_tier: "standard" },
  };

  it("joins text blocks and maps id, model, created and usage (cache tokens count as prompt tokens)", () => {
    const before = Math.floor(Date.now() / 1000);
    const out = anthropicAdapter.response!(message, inbound({ model: "gpt-4o", messages: [] }), "claude-sonnet-4-5") as any;
    expect(out).toMatchObject({
      id: "msg_01XFDUDYJgAACzvnptvVoYEL",
      object: "chat.completion",
      model: "claude-sonnet-4-5-20250929",
      choices: [{ index: 0, message: { role: "assistant", content: "Hello, world" }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 115, completion_tokens: 6, total_tokens: 121, prompt_tokens_details: { cached_tokens: 100 } },
    });
    expect(out.created).toBeGreaterThanOrEqual(before);
    expect(out.created).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(out.choices[0].message.tool_calls).toBeUndefined();
    expect(anthropicAdapter.usage(message)).toEqual({ input: 115, output: 6, cached: 100, cacheWrite: 3 });
  });

  it("turns tool_use blocks into tool_calls with JSON arguments", () => {
    const out = anthropicAdapter.response!(
      { ...message, content: [{ type: "tool_use", id: "toolu_01A", name: "get_weather", input: { city: "Paris", days: 2 } }], stop_reason: "tool_use" },
      inbound({ model: "m", messages: [] }),
      "m",
    ) as any;
    expect(out.choices[0].finish_reason).toBe("tool_calls");
    expect(out.choices[0].message.content).toBeNull();
    expect(out.choices[0].message.tool_calls).toEqual([{ id: "toolu_01A", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","days":2}' } }]);
  });

  it.each([
    ["end_turn", "stop"],
    ["stop_sequence", "stop"],
    ["max_tokens", "length"],
    ["tool_use", "tool_calls"],
    ["refusal", "content_filter"],
  ])("stop_reason %s → finish_reason %s", (stop, finish) => {
    const out = anthropicAdapter.response!({ ...message, stop_reason: stop }, inbound({ model: "m", messages: [] }), "m") as any;
    expect(out.choices[0].finish_reason).toBe(finish);
  });

  it("reads usage only from a whole message, and Anthropic's error message from its error body", () => {
    expect(anthropicAdapter.usage({ type: "error", error: { type: "api_error", message: "x" } })).toBeUndefined();
    expect(anthropicAdapter.usage(undefined)).toBeUndefined();
    expect(anthropicAdapter.usage({ usage: { input_tokens: 5, output_tokens: 2 } })).toEqual({ input: 5, output: 2, cached: 0, cacheWrite: 0 });
    const body = JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" }, request_id: "req_1" });
    expect(anthropicAdapter.classify(400, {}, body).message).toBe("max_tokens: Field required");
    expect(anthropicAdapter.classify(502, {}, "<html>Bad gateway</html>").message).toBe("<html>Bad gateway</html>");
  });

  it("serves chat only, and treats 529 (overloaded) as try-elsewhere", () => {
    expect(anthropicAdapter.supports("chat")).toBe(true);
    expect(anthropicAdapter.supports("embeddings")).toBe(false);
    expect(anthropicAdapter.supports("completions")).toBe(false);
    expect(anthropicAdapter.classify(529, {}, "").errorType).toBe("overloaded");
  });
});

describe("stream translation", () => {
  it("sends the role first, then text, tool calls (id and name, then arguments) and the finish reason", () => {
    const r = translate([Buffer.from(sse(TOOL_STREAM))]);
    expect(r.complete).toBe(true);
    expect(r.errors).toEqual([]);
    const deltas = r.chunks.map((c) => c.choices[0].delta);
    expect(deltas[0]).toEqual({ role: "assistant", content: "", refusal: null });
    expect(r.text).toBe("Okay, let's check the weather for San Francisco, CA:");
    expect(deltas).toContainEqual({ tool_calls: [{ index: 0, id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", type: "function", function: { name: "get_weather", arguments: "" } }] });
    expect(deltas).toContainEqual({ tool_calls: [{ index: 1, id: "toolu_02NoInput", type: "function", function: { name: "get_time", arguments: "" } }] });
    expect(JSON.parse(r.args.get(0)!)).toEqual({ location: "San Francisco, CA", unit: "fahrenheit" });
    // A tool without input still gets arguments that parse.
    expect(r.args.get(1)).toBe("{}");
    const last = r.chunks.at(-1);
    expect(last.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "tool_calls" });
    for (const c of r.chunks) {
      expect(c).toMatchObject({ id: "msg_014p7gG3wDgGV9EUtLvnow3U", object: "chat.completion.chunk", created: 1_700_000_000, model: "claude-sonnet-4-5-20250929" });
    }
    expect(r.usage).toEqual({ input: 1492, output: 89, cached: 1000, cacheWrite: 20 });
  });

  it("reports input usage at message_start and output usage at message_delta", () => {
    const t = anthropicStream("m", 0);
    const text = sse(TOOL_STREAM);
    const cut = text.indexOf("event: content_block_start");
    expect(t.push(Buffer.from(text.slice(0, cut))).usage).toEqual({ input: 1492, output: 2, cached: 1000, cacheWrite: 20 });
    const rest = t.push(Buffer.from(text.slice(cut)));
    expect(rest.usage).toEqual({ input: 1492, output: 89, cached: 1000, cacheWrite: 20 });
  });

  it("reports an error event that opens the stream, with nothing to send", () => {
    const r = translate([Buffer.from(sse([{ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }]))]);
    expect(r.chunks).toEqual([]);
    expect(r.errors).toEqual(["Overloaded"]);
    expect(r.complete).toBe(false);
    const t = anthropicStream("m", 0);
    expect(t.push(Buffer.from(sse([{ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }]))).errorType).toBe("overloaded");
  });

  it("holds the role chunk back until content, so an error right after message_start can still fail over", () => {
    const t = anthropicStream("m", 0);
    const first = t.push(Buffer.from(sse([TOOL_STREAM[0], TOOL_STREAM[1], { type: "ping" }])));
    expect(first.chunks).toEqual([]);
    const second = t.push(Buffer.from(sse([{ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }])));
    expect(second.error).toContain("Overloaded");
  });

  it("is incomplete without message_stop, and reads CRLF line endings", () => {
    const cut = translate([Buffer.from(sse(TOOL_STREAM.slice(0, 5)))]);
    expect(cut.complete).toBe(false);
    expect(cut.text).toBe("Okay, let's check the weather for San Francisco, CA:");
    const crlf = translate([Buffer.from(sse(TOOL_STREAM).replace(/\n/g, "\r\n"))]);
    expect(crlf.complete).toBe(true);
    expect(crlf.text).toBe("Okay, let's check the weather for San Francisco, CA:");
  });
});

// ---------------------------------------------------------------------------
// 2. Property: any split of a recorded stream translates the same
// ---------------------------------------------------------------------------

describe("stream translation under arbitrary splits", () => {
  let upstream: MockAnthropicUpstream;
  /** Raw bytes of streams recorded from the mock over HTTP. */
  let textStream: Buffer;
  let toolStream: Buffer;
  const PROMPT = "Grüße aus Zürich — 東京タワー 🎉🚀 naïve façade, ünïcödé ✓";

  const record = async (body: object): Promise<Buffer> => {
    const res = await fetch(`${upstream.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    return Buffer.from(await res.arrayBuffer());
  };

  /** The usage the stream itself reports: message_start's input, message_delta's cumulative counts. */
  const reported = (raw: Buffer): Usage => {
    const events = raw
      .toString("utf8")
      .split("\n\n")
      .map((e) => e.split("\n").find((l) => l.startsWith("data: ")))
      .filter((d): d is string => d !== undefined)
      .map((d) => JSON.parse(d.slice(6)));
    const start = events.find((e) => e.type === "message_start").message.usage;
    const delta = events.find((e) => e.type === "message_delta").usage;
    const cacheRead = delta.cache_read_input_tokens ?? start.cache_read_input_tokens ?? 0;
    const cacheWrite = delta.cache_creation_input_tokens ?? start.cache_creation_input_tokens ?? 0;
    const input = (delta.input_tokens ?? start.input_tokens) + cacheRead + cacheWrite;
    return { input, output: delta.output_tokens, cached: cacheRead, cacheWrite };
  };

  /** Split points anywhere in `raw` (inside events, lines and UTF-8 sequences). */
  const splits = (raw: Buffer) =>
    fc.uniqueArray(fc.integer({ min: 1, max: raw.length - 1 }), { maxLength: 40 }).map((points) => {
      const sorted = [...points].sort((a, b) => a - b);
      const parts: Uint8Array[] = [];
      let at = 0;
      for (const p of [...sorted, raw.length]) {
        parts.push(raw.subarray(at, p));
        at = p;
      }
      return parts;
    });

  beforeAll(async () => {
    upstream = await startAnthropicUpstream({ name: "rec", apiKey: KEY, stream: { chunks: 9 }, cache: { read: 64, creation: 8 } });
    textStream = await record({ model: "claude-sonnet-4-5", max_tokens: 1024, stream: true, messages: [{ role: "user", content: PROMPT }] });
    toolStream = await record({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      stream: true,
      messages: [{ role: "user", content: PROMPT }],
      tools: [{ name: "lookup", input_schema: { type: "object", properties: { query: { type: "string" }, limit: { type: "integer" } } } }],
    });
  });

  afterAll(async () => {
    await upstream.close();
  });

  it("the recordings hold multi-byte characters, pings and the documented events", () => {
    const text = textStream.toString("utf8");
    expect(textStream.length).toBeGreaterThan(text.length);
    for (const e of ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]) {
      expect(text).toContain(`event: ${e}\ndata: {"type":"${e}"`);
    }
  });

  it("text and final usage equal the unsplit translation and the provider's reported usage", () => {
    const whole = translate([textStream]);
    expect(whole.text).toBe(`[rec] you said: ${PROMPT}`);
    expect(whole.usage).toEqual(reported(textStream));
    expect(whole.usage!.cached).toBe(64);
    fc.assert(
      fc.property(splits(textStream), (parts) => {
        const r = translate(parts);
        expect(r.text).toBe(whole.text);
        expect(r.usage).toEqual(whole.usage);
        expect(r.chunks).toEqual(whole.chunks);
        expect(r.complete).toBe(true);
        expect(r.errors).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("tool call arguments and usage survive any split", () => {
    const whole = translate([toolStream]);
    expect(JSON.parse(whole.args.get(0)!)).toEqual({ query: PROMPT, limit: 1 });
    expect(whole.usage).toEqual(reported(toolStream));
    fc.assert(
      fc.property(splits(toolStream), (parts) => {
        const r = translate(parts);
        expect(r.chunks).toEqual(whole.chunks);
        expect(r.usage).toEqual(whole.usage);
        expect(r.complete).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("one byte at a time (every UTF-8 sequence split) translates the same", () => {
    const whole = translate([textStream]);
    const bytes = [...textStream].map((b) => Uint8Array.of(b));
    const r = translate(bytes);
    expect(r.chunks).toEqual(whole.chunks);
    expect(r.usage).toEqual(whole.usage);
  });

  it("the official Anthropic SDK reads the recorded wire format to the same text and usage", async () => {
    const client = new Anthropic({ baseURL: upstream.url, apiKey: KEY, maxRetries: 0 });
    // (claude-sonnet-4-6: SDK 1.x warns on claude-sonnet-4-5, deprecated.)
    const model = "claude-sonnet-4-6";
    const stream = client.messages.stream({ model, max_tokens: 1024, messages: [{ role: "user", content: PROMPT }] });
    const final = await stream.finalMessage();
    expect(final.content).toEqual([expect.objectContaining({ type: "text", text: `[rec] you said: ${PROMPT}` })]);
    expect(final.usage.output_tokens).toBe(reported(textStream).output);
    const json = await client.messages.create({ model, max_tokens: 1024, messages: [{ role: "user", content: PROMPT }] });
    expect(anthropicAdapter.usage(json)).toEqual(reported(textStream));
    const err = await client.messages.create({ model, max_tokens: 0, messages: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
  });
});

// ---------------------------------------------------------------------------
// 3. Through the gateway, with the official openai client
// ---------------------------------------------------------------------------

describe("through the gateway", () => {
  let claude: MockAnthropicUpstream;
  let gpt: MockUpstream;
  let gw: RunningGateway;
  let client: OpenAI;

  beforeAll(async () => {
    claude = await startAnthropicUpstream({ name: "claude", apiKey: KEY, stream: { chunks: 5 } });
    gpt = await startOpenAIUpstream({ name: "gpt" });
    gw = await startGateway(
      {
        accounts: [
          { id: "claude", provider: "anthropic", base_url: claude.url, model: "claude-sonnet-4-5" },
          { id: "gpt", provider: "openai", base_url: gpt.url },
        ],
        routes: [
          { model: "claude-sonnet-4-5", targets: [{ account: "claude" }] },
          { model: "gpt-4o-mini", targets: [{ account: "gpt" }] },
        ],
      },
      ENV,
    );
    client = new OpenAI({ baseURL: gw.v1, apiKey: "x", maxRetries: 0 });
  });

  afterEach(() => {
    claude.queue.length = 0;
  });

  afterAll(async () => {
    await gw.close();
    await claude.close();
    await gpt.close();
  });

  const tools: OpenAI.ChatCompletionTool[] = [
    { type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
  ];

  it("answers a plain chat completion", async () => {
    const { data, response } = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hello" }] }).withResponse();
    expect(data.choices[0].message.content).toBe("[claude] you said: hello");
    expect(data.choices[0].finish_reason).toBe("stop");
    expect(data.model).toBe("claude-sonnet-4-5");
    expect(data.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    expect(response.headers.get("x-gwc-account")).toBe("claude");
    const seen = claude.requests.at(-1)!;
    expect(seen.path).toBe("/v1/messages");
    expect(seen.headers["x-api-key"]).toBe(KEY);
    expect(seen.headers["anthropic-version"]).toBe("2023-06-01");
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.body).toEqual({ model: "claude-sonnet-4-5", max_tokens: 4096, messages: [{ role: "user", content: "hello" }] });
  });

  it("sends a multi-turn conversation with its system prompt as `system`", async () => {
    const data = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      max_tokens: 200,
      temperature: 0.3,
      messages: [
        { role: "system", content: "You are a pirate." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Ahoy!" },
        { role: "user", content: "Where is the treasure?" },
      ],
    });
    expect(data.choices[0].message.content).toBe("[claude] you said: Where is the treasure?");
    const body = claude.requests.at(-1)!.body;
    expect(body.system).toBe("You are a pirate.");
    expect(body.messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(body).toMatchObject({ max_tokens: 200, temperature: 0.3 });
  });

  it("round-trips a tool call: tool_calls out, the tool result back in, then text", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Paris" }];
    const first = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages, tools });
    expect(first.choices[0].finish_reason).toBe("tool_calls");
    const call = first.choices[0].message.tool_calls![0];
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Paris" });
    expect(call.id).toMatch(/^toolu_/);

    messages.push(first.choices[0].message as OpenAI.ChatCompletionMessageParam, { role: "tool", tool_call_id: call.id, content: "18°C and sunny" });
    const second = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages, tools });
    expect(second.choices[0].finish_reason).toBe("stop");
    expect(second.choices[0].message.content).toBe("[claude] tool said: 18°C and sunny");
    const body = claude.requests.at(-1)!.body;
    expect(body.messages[1]).toEqual({ role: "assistant", content: [{ type: "tool_use", id: call.id, name: "get_weather", input: { city: "Paris" } }] });
    expect(body.messages[2]).toEqual({ role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "18°C and sunny" }] });
  });

  it("streams text and usage; the last chunk before [DONE] carries the usage", async () => {
    const stream = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [{ role: "user", content: "stream, s'il vous plaît ✨" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(text).toBe("[claude] you said: stream, s'il vous plaît ✨");
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe("stop");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    expect(claude.requests.at(-1)!.body.stream).toBe(true);

    // On the wire: usage-only event, then [DONE].
    const res = await fetch(`${gw.v1}/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "raw" }], stream: true, stream_options: { include_usage: true } }),
    });
    const events = (await res.text()).trim().split("\n\n");
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(JSON.parse(events.at(-2)!.slice("data: ".length)).usage.total_tokens).toBeGreaterThan(0);
  });

  it("streams a tool call as OpenAI tool call deltas", async () => {
    const stream = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Rome" }], tools, stream: true });
    let args = "";
    let name = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        name += tc.function?.name ?? "";
        args += tc.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(name).toBe("get_weather");
    expect(JSON.parse(args)).toEqual({ city: "Rome" });
    expect(finish).toBe("tool_calls");
  });

  it("passes a 400 through as BadRequestError with Anthropic's message", async () => {
    claude.queue.push({ kind: "status", status: 400, body: errorBody("invalid_request_error", "messages.0.content: prompt is too long: 250000 tokens > 200000 maximum", "req_x") });
    const err = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("prompt is too long: 250000 tokens > 200000 maximum");
  });

  it("ends a stream broken by an in-stream error with an error, not [DONE]", async () => {
    claude.queue.push({ kind: "stream-error-after", chunks: 2 });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hello there" }], stream: true }) });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain("[DONE]");
    const last = JSON.parse(text.trim().split("\n\n").at(-1)!.slice("data: ".length));
    expect(last.error.code).toBe("stream_interrupted");
    expect(last.error.message).toContain("Overloaded");
  });

  it("answers with exactly the top-level keys and types an OpenAI account answers with", async () => {
    const shape = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === null ? "null" : Array.isArray(v) ? "array" : typeof v]));
    const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: "user", content: "shape" }] });
    const [fromClaude, fromGpt] = await Promise.all([ask("claude-sonnet-4-5"), ask("gpt-4o-mini")]);
    expect(fromGpt.choices[0].message.content).toBe("[gpt] you said: shape");
    expect(Object.keys(fromClaude).sort()).toEqual(Object.keys(fromGpt).sort());
    expect(shape(fromClaude)).toEqual(shape(fromGpt));
    expect(shape(fromClaude.choices[0])).toEqual(shape(fromGpt.choices[0]));
    expect(shape(fromClaude.choices[0].message)).toEqual(shape(fromGpt.choices[0].message));
    expect(shape(fromClaude.usage!)).toEqual(shape(fromGpt.usage!));
  });
});

describe("failover from Anthropic", () => {
  let claude: MockAnthropicUpstream;
  let backup: MockUpstream;
  let gw: RunningGateway;
  let client: OpenAI;

  beforeAll(async () => {
    claude = await startAnthropicUpstream({ name: "claude", apiKey: KEY });
    backup = await startOpenAIUpstream({ name: "backup" });
  });

  afterEach(async () => {
    await gw?.close();
    claude.queue.length = 0;
  });

  afterAll(async () => {
    await claude.close();
    await backup.close();
  });

  /** All the weight on Anthropic; the OpenAI-compatible account is its failover. */
  async function gateway(extra: object = {}): Promise<void> {
    gw = await startGateway(
      {
        accounts: [
          { id: "claude", provider: "anthropic", base_url: claude.url, model: "claude-sonnet-4-5", weight: 1 },
          { id: "backup", provider: "openai", base_url: backup.url, weight: 0 },
        ],
        ...extra,
      },
      ENV,
    );
    client = new OpenAI({ baseURL: gw.v1, apiKey: "x", maxRetries: 0 });
  }

  it("fails over on 529 overloaded, though the config's status list leaves 529 out", async () => {
    await gateway();
    claude.queue.push({ kind: "overloaded" });
    const before = claude.requests.length;
    const { data, response } = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).withResponse();
    expect(claude.requests.length).toBe(before + 1);
    expect(response.headers.get("x-gwc-account")).toBe("backup");
    expect(data.choices[0].message.content).toBe("[backup] you said: hi");
  });

  it("fails over when the stream opens with an error event", async () => {
    await gateway();
    claude.queue.push({ kind: "stream-error-first" });
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toBe("[backup] you said: hi");
  });

  it("passes a 529 through, with Anthropic's message, when failover is off", async () => {
    await gateway({ fallback_config: { enabled: false } });
    claude.queue.push({ kind: "overloaded" });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }) });
    const body = (await res.json()) as { error: { message: string } };
    expect(res.status).toBe(529);
    expect(body.error.message).toBe("Overloaded");
  });
});
