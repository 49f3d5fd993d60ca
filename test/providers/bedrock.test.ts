// The Bedrock Converse adapter: request and response mapping, the event-stream
// translator (split anywhere), and the whole path through the real gateway
// with the official openai client against a mock that verifies SigV4.
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../../runtime/errors.ts";
import type { AccountContext, InboundRequest, Usage } from "../../runtime/providers/adapter.ts";
import { bedrockAdapter, ConverseStreamTranslator, fromConverse, toConverse } from "../../runtime/providers/bedrock.ts";
import { encodeEvent, encodeException, startBedrockUpstream, verifySignature, type BedrockMock } from "../mocks/bedrock-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

const MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const KEY_ID = "AKIDEXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TEMP_KEY_ID = "ASIATEMPEXAMPLE";
const TEMP_SECRET = "tempSecretAccessKeyForTheMockOnly000000";
const TEMP_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN//////////wEaCXVzLXdlc3QtMiJHMEUCIQ==";
const PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

function inbound(json: Record<string, unknown>, stream = false): InboundRequest {
  const raw = Buffer.from(JSON.stringify(json));
  return { endpoint: "chat", raw, json, stream };
}

function context(baseUrl: string, options: Record<string, string> = {}, apiKey: string = SECRET): AccountContext {
  const url = new URL(baseUrl);
  return { baseUrl, basePath: url.pathname.replace(/\/+$/, ""), apiKey, options: { region: "us-west-2", aws_access_key_id: KEY_ID, ...options } };
}

function badRequestOf(f: () => unknown): HttpError {
  try {
    f();
  } catch (e) {
    if (e instanceof HttpError) return e;
    throw e;
  }
  throw new Error("expected an HttpError");
}

// ---------------------------------------------------------------------------
// Request mapping
// ---------------------------------------------------------------------------

describe("OpenAI request → Converse", () => {
  it("puts system and developer messages in system, and alternates user and assistant turns", () => {
    const out = toConverse({
      model: "claude",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: [{ type: "text", text: "Use metric units." }] },
        { role: "user", content: "hi" },
        { role: "user", content: [{ type: "text", text: "again" }] },
        { role: "assistant", content: "hello" },
        { role: "user", content: "bye" },
      ],
      max_tokens: 100,
      max_completion_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop: "END",
    });
    expect(out).toEqual({
      system: [{ text: "Be brief." }, { text: "Use metric units." }],
      messages: [
        { role: "user", content: [{ text: "hi" }, { text: "again" }] },
        { role: "assistant", content: [{ text: "hello" }] },
        { role: "user", content: [{ text: "bye" }] },
      ],
      inferenceConfig: { maxTokens: 50, temperature: 0.2, topP: 0.9, stopSequences: ["END"] },
    });
  });

  it("sends data: URL images as bytes with their format, and refuses remote ones", () => {
    const out = toConverse({
      messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1PX}` } }] }],
    });
    expect((out.messages as any)[0].content).toEqual([{ text: "what is this?" }, { image: { format: "png", source: { bytes: PNG_1PX } } }]);
    const err = badRequestOf(() => toConverse({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] }));
    expect(err.status).toBe(400);
    expect(err.param).toBe("messages[0].content[0]");
  });

  it("turns tool calls into toolUse and tool messages into toolResult blocks of one user turn", () => {
    const out = toConverse({
      messages: [
        { role: "user", content: "weather in Paris and Rome?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "call_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
        { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "24C" }] },
        { role: "user", content: "thanks" },
      ],
      tools: [{ type: "function", function: { name: "get_weather", description: "Weather now", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
      tool_choice: "required",
    });
    expect(out.messages).toEqual([
      { role: "user", content: [{ text: "weather in Paris and Rome?" }] },
      {
        role: "assistant",
        content: [
          { toolUse: { toolUseId: "call_1", name: "get_weather", input: { city: "Paris" } } },
          { toolUse: { toolUseId: "call_2", name: "get_weather", input: { city: "Rome" } } },
        ],
      },
      {
        role: "user",
        content: [{ toolResult: { toolUseId: "call_1", content: [{ text: "18C" }] } }, { toolResult: { toolUseId: "call_2", content: [{ text: "24C" }] } }, { text: "thanks" }],
      },
    ]);
    expect(out.toolConfig).toEqual({
      tools: [{ toolSpec: { name: "get_weather", description: "Weather now", inputSchema: { json: { type: "object", properties: { city: { type: "string" } } } } } }],
      toolChoice: { any: {} },
    });
  });

  it("maps tool_choice auto, a named function, and none (tools dropped unless the history needs them)", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const messages = [{ role: "user", content: "x" }];
    expect((toConverse({ messages, tools, tool_choice: "auto" }).toolConfig as any).toolChoice).toEqual({ auto: {} });
    expect((toConverse({ messages, tools, tool_choice: { type: "function", function: { name: "f" } } }).toolConfig as any).toolChoice).toEqual({ tool: { name: "f" } });
    expect(toConverse({ messages, tools }).toolConfig).toEqual({ tools: [{ toolSpec: { name: "f", inputSchema: { json: { type: "object" } } } }] });
    expect(toConverse({ messages, tools, tool_choice: "none" }).toolConfig).toBeUndefined();
    const history = [
      ...messages,
      { role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "c", content: "ok" },
    ];
    expect(toConverse({ messages: history, tools, tool_choice: "none" }).toolConfig).toEqual({ tools: [{ toolSpec: { name: "f", inputSchema: { json: { type: "object" } } } }] });
  });

  it("refuses what Converse cannot carry: n > 1, unknown roles, arguments that are not JSON", () => {
    expect(badRequestOf(() => toConverse({ messages: [{ role: "user", content: "x" }], n: 2 })).param).toBe("n");
    expect(badRequestOf(() => toConverse({ messages: [{ role: "function", content: "x" }] })).param).toBe("messages[0].role");
    const bad = [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{nope" } }] }];
    expect(badRequestOf(() => toConverse({ messages: bad })).param).toBe("messages[0].tool_calls[0].function.arguments");
  });

  it("signs the request: path with the model id encoded, SigV4 headers a verifier accepts", async () => {
    const ctx = context("https://bedrock-runtime.us-west-2.amazonaws.com");
    const req = inbound({ model: "claude", messages: [{ role: "user", content: "hi" }] });
    const up = await bedrockAdapter.request(req, ctx, MODEL);
    expect(up.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    expect(JSON.parse(String(up.body))).toEqual({ messages: [{ role: "user", content: [{ text: "hi" }] }] });
    expect(up.headers.host).toBe("bedrock-runtime.us-west-2.amazonaws.com");
    expect(up.headers["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/);
    expect(up.headers["x-amz-content-sha256"]).toMatch(/^[0-9a-f]{64}$/);
    expect(up.headers.authorization).toMatch(
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${KEY_ID}/\\d{8}/us-west-2/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$`),
    );
    const signed = { method: "POST", path: up.path, headers: up.headers, body: Buffer.from(up.body) };
    expect(await verifySignature(signed, [{ accessKeyId: KEY_ID, secretAccessKey: SECRET }], "us-west-2")).toBeUndefined();
    // Anything changed after signing is caught: the body, the secret, the region.
    expect((await verifySignature({ ...signed, body: Buffer.from(String(up.body).replace("hi", "ho")) }, [{ accessKeyId: KEY_ID, secretAccessKey: SECRET }], "us-west-2"))?.status).toBe(403);
    expect((await verifySignature(signed, [{ accessKeyId: KEY_ID, secretAccessKey: "other" }], "us-west-2"))?.type).toBe("InvalidSignatureException");
    expect((await verifySignature(signed, [{ accessKeyId: KEY_ID, secretAccessKey: SECRET }], "eu-west-1"))?.status).toBe(403);
  });

  it("streams to converse-stream, encodes ARNs whole, and sends the session token", async () => {
    const ctx = context("http://127.0.0.1:4010", { aws_session_token: TEMP_TOKEN });
    const arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
    const up = await bedrockAdapter.request(inbound({ messages: [{ role: "user", content: "hi" }], stream: true }, true), ctx, arn);
    expect(up.path).toBe("/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
    expect(up.headers.host).toBe("127.0.0.1:4010");
    expect(up.headers.accept).toBe("application/vnd.amazon.eventstream");
    expect(up.headers["x-amz-security-token"]).toBe(TEMP_TOKEN);
    expect(up.headers.authorization).toContain("x-amz-security-token");
    const creds = [{ accessKeyId: KEY_ID, secretAccessKey: SECRET, sessionToken: TEMP_TOKEN }];
    expect(await verifySignature({ method: "POST", path: up.path, headers: up.headers, body: Buffer.from(up.body) }, creds, "us-west-2")).toBeUndefined();
  });

  it("serves chat only", () => {
    expect(bedrockAdapter.supports("chat")).toBe(true);
    expect(bedrockAdapter.supports("completions")).toBe(false);
    expect(bedrockAdapter.supports("embeddings")).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Response mapping
// ---------------------------------------------------------------------------

describe("Converse response → OpenAI", () => {
  it("maps text, usage (cache reads and writes are input tokens too) and the stop reason", () => {
    const converse = {
      output: { message: { role: "assistant", content: [{ text: "Hello" }, { text: " there" }] } },
      stopReason: "end_turn",
      usage: { inputTokens: 10, outputTokens: 4, totalTokens: 44, cacheReadInputTokens: 20, cacheWriteInputTokens: 10 },
      metrics: { latencyMs: 100 },
    };
    const out = fromConverse(converse, MODEL) as any;
    expect(out).toMatchObject({
      object: "chat.completion",
      model: MODEL,
      choices: [{ index: 0, message: { role: "assistant", content: "Hello there" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 40, completion_tokens: 4, total_tokens: 44, prompt_tokens_details: { cached_tokens: 20 } },
    });
    expect(out.id).toMatch(/^chatcmpl-/);
    expect(typeof out.created).toBe("number");
    expect(out.choices[0].message.tool_calls).toBeUndefined();
    expect(bedrockAdapter.usage(converse)).toEqual({ input: 40, output: 4, cached: 20, cacheWrite: 10 });
    expect(bedrockAdapter.usage({ usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5 } })).toEqual({ input: 3, output: 2, cached: 0, cacheWrite: 0 });
    expect(bedrockAdapter.usage({})).toBeUndefined();
  });

  it("maps toolUse blocks to tool_calls with JSON arguments", () => {
    const out = fromConverse(
      {
        output: { message: { role: "assistant", content: [{ text: "Let me check." }, { toolUse: { toolUseId: "tooluse_1", name: "get_weather", input: { city: "Paris", days: 2 } } }] } },
        stopReason: "tool_use",
        usage: { inputTokens: 5, outputTokens: 7, totalTokens: 12 },
      },
      MODEL,
    ) as any;
    expect(out.choices[0].finish_reason).toBe("tool_calls");
    expect(out.choices[0].message.content).toBe("Let me check.");
    expect(out.choices[0].message.tool_calls).toEqual([{ id: "tooluse_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","days":2}' } }]);
    const only = fromConverse({ output: { message: { role: "assistant", content: [{ toolUse: { toolUseId: "t", name: "f", input: {} } }] } }, stopReason: "tool_use" }, MODEL) as any;
    expect(only.choices[0].message.content).toBeNull();
  });

  it.each([
    ["end_turn", "stop"],
    ["stop_sequence", "stop"],
    ["max_tokens", "length"],
    ["model_context_window_exceeded", "length"],
    ["tool_use", "tool_calls"],
    ["content_filtered", "content_filter"],
    ["guardrail_intervened", "content_filter"],
  ])("stopReason %s → finish_reason %s", (stopReason, finish) => {
    const out = fromConverse({ output: { message: { role: "assistant", content: [{ text: "x" }] } }, stopReason }, MODEL) as any;
    expect(out.choices[0].finish_reason).toBe(finish);
  });

  it("reads Bedrock's error bodies", () => {
    const bedrockErrorMessage = (body: string) => bedrockAdapter.classify(400, {}, body).message;
    expect(bedrockErrorMessage('{"message":"Too many requests, please wait before trying again."}')).toBe("Too many requests, please wait before trying again.");
    expect(bedrockErrorMessage('{"Message":"User: arn:aws:iam::1:user/x is not authorized"}')).toBe("User: arn:aws:iam::1:user/x is not authorized");
    expect(bedrockErrorMessage("<html>Bad Gateway</html>")).toBe("<html>Bad Gateway</html>");
    expect(bedrockErrorMessage('{"other":1}')).toBe('{"other":1}');
  });
});

// ---------------------------------------------------------------------------
// Stream translation
// ---------------------------------------------------------------------------

interface Collected {
  text: string;
  tools: { id?: string; name?: string; arguments: string }[];
  finish: string | null;
  roles: number;
  usage?: Usage;
  error?: string;
  complete: boolean;
}

function collect(parts: Buffer[]): Collected {
  const t = new ConverseStreamTranslator(MODEL);
  const out: Collected = { text: "", tools: [], finish: null, roles: 0, complete: false };
  const take = (r: { chunks: object[]; usage?: Usage; error?: string }) => {
    if (r.usage) out.usage = r.usage;
    if (r.error !== undefined) out.error ??= r.error;
    for (const c of r.chunks as any[]) {
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.model).toBe(MODEL);
      const choice = c.choices[0];
      if (choice.delta.role === "assistant") out.roles++;
      if (typeof choice.delta.content === "string") out.text += choice.delta.content;
      for (const tc of choice.delta.tool_calls ?? []) {
        const slot = (out.tools[tc.index] ??= { arguments: "" });
        if (tc.id) slot.id = tc.id;
        if (tc.function?.name) slot.name = tc.function.name;
        slot.arguments += tc.function?.arguments ?? "";
      }
      if (choice.finish_reason) out.finish = choice.finish_reason;
    }
  };
  for (const p of parts) take(t.push(p));
  const end = t.end();
  take(end);
  out.complete = end.complete;
  return out;
}

function textStream(pieces: string[], usage: Record<string, number>, stopReason = "end_turn"): Buffer[] {
  return [
    encodeEvent("messageStart", { role: "assistant" }),
    ...pieces.map((text) => encodeEvent("contentBlockDelta", { delta: { text }, contentBlockIndex: 0 })),
    encodeEvent("contentBlockStop", { contentBlockIndex: 0 }),
    encodeEvent("messageStop", { stopReason }),
    encodeEvent("metadata", { usage, metrics: { latencyMs: 12 } }),
  ];
}

/** Cuts a buffer at the given offsets (any bytes: mid-prelude, mid-header, mid-UTF-8). */
function cut(all: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (all.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    parts.push(all.subarray(at, p));
    at = p;
  }
  parts.push(all.subarray(at));
  return parts;
}

describe("ConverseStream → OpenAI chunks", () => {
  it("translates text, a tool call, the stop reason and the metadata usage", () => {
    const frames = [
      encodeEvent("messageStart", { role: "assistant" }),
      encodeEvent("contentBlockDelta", { delta: { text: "Checking" }, contentBlockIndex: 0 }),
      encodeEvent("contentBlockStop", { contentBlockIndex: 0 }),
      encodeEvent("contentBlockStart", { start: { toolUse: { toolUseId: "tooluse_A", name: "get_weather" } }, contentBlockIndex: 1 }),
      encodeEvent("contentBlockDelta", { delta: { toolUse: { input: '{"city":' } }, contentBlockIndex: 1 }),
      encodeEvent("contentBlockDelta", { delta: { toolUse: { input: '"Paris"}' } }, contentBlockIndex: 1 }),
      encodeEvent("contentBlockStop", { contentBlockIndex: 1 }),
      encodeEvent("messageStop", { stopReason: "tool_use" }),
      encodeEvent("metadata", { usage: { inputTokens: 30, outputTokens: 9, totalTokens: 39, cacheReadInputTokens: 0 }, metrics: { latencyMs: 5 } }),
    ];
    const out = collect(frames);
    expect(out).toEqual({
      text: "Checking",
      tools: [{ id: "tooluse_A", name: "get_weather", arguments: '{"city":"Paris"}' }],
      finish: "tool_calls",
      roles: 1,
      usage: { input: 30, output: 9, cached: 0, cacheWrite: 0 },
      complete: true,
    });
  });

  it("reports an exception event as an error, first or mid-stream", () => {
    const first = collect([encodeException("throttlingException", "Too many requests, please wait before trying again.")]);
    expect(first.error).toBe("throttlingException: Too many requests, please wait before trying again.");
    expect(first.complete).toBe(false);
    // messageStart alone sends nothing, so an exception right after it still counts as "first".
    const t = new ConverseStreamTranslator(MODEL);
    expect(t.push(encodeEvent("messageStart", { role: "assistant" }))).toEqual({ chunks: [] });
    expect(t.push(encodeException("throttlingException", "slow down")).error).toBe("throttlingException: slow down");
    const frames = textStream(["a", "b"], { inputTokens: 1, outputTokens: 2, totalTokens: 3 });
    const mid = collect([...frames.slice(0, 2), encodeException("modelStreamErrorException", "The model stream failed.")]);
    expect(mid.text).toBe("a");
    expect(mid.error).toBe("modelStreamErrorException: The model stream failed.");
    expect(mid.complete).toBe(false);
  });

  it("is incomplete without messageStop or metadata, or with a partial frame left", () => {
    const frames = textStream(["x"], { inputTokens: 1, outputTokens: 1, totalTokens: 2 });
    expect(collect(frames).complete).toBe(true);
    expect(collect(frames.slice(0, -2)).complete).toBe(false);
    expect(collect(frames.slice(0, -1)).complete).toBe(false);
    const all = Buffer.concat(frames);
    expect(collect([all.subarray(0, all.length - 3)]).complete).toBe(false);
  });

  it("refuses a corrupted frame", () => {
    const frame = Buffer.from(encodeEvent("contentBlockDelta", { delta: { text: "hello" }, contentBlockIndex: 0 }));
    frame[frame.length - 10] ^= 0xff;
    const out = collect([encodeEvent("messageStart", { role: "assistant" }), frame]);
    expect(out.error).toMatch(/malformed event stream/);
    expect(out.complete).toBe(false);
  });

  it("property: any chunking of the stream gives the unsplit result and the metadata usage", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 8 }),
        fc.option(fc.record({ name: fc.stringMatching(/^[a-z_]{1,10}$/), args: fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), fc.string({ unit: "grapheme", maxLength: 6 }))) })),
        fc.record({ inputTokens: fc.nat(100_000), outputTokens: fc.nat(10_000), cacheReadInputTokens: fc.nat(50_000) }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (pieces, tool, u, offsets) => {
          const usage = { ...u, totalTokens: u.inputTokens + u.outputTokens + u.cacheReadInputTokens };
          const frames = textStream(pieces, usage, tool ? "tool_use" : "end_turn");
          if (tool !== null) {
            const json = JSON.stringify(tool.args);
            frames.splice(
              -2,
              0,
              encodeEvent("contentBlockStart", { start: { toolUse: { toolUseId: "tooluse_p", name: tool.name } }, contentBlockIndex: 1 }),
              encodeEvent("contentBlockDelta", { delta: { toolUse: { input: json.slice(0, 3) } }, contentBlockIndex: 1 }),
              encodeEvent("contentBlockDelta", { delta: { toolUse: { input: json.slice(3) } }, contentBlockIndex: 1 }),
              encodeEvent("contentBlockStop", { contentBlockIndex: 1 }),
            );
          }
          const all = Buffer.concat(frames);
          const whole = collect([all]);
          const split = collect(cut(all, offsets));
          expect(split).toEqual(whole);
          expect(whole.text).toBe(pieces.join(""));
          expect(whole.usage).toEqual({ input: u.inputTokens + u.cacheReadInputTokens, output: u.outputTokens, cached: u.cacheReadInputTokens, cacheWrite: 0 });
          expect(whole.complete).toBe(true);
          expect(whole.roles).toBe(1);
          if (tool !== null) expect(JSON.parse(whole.tools[0].arguments)).toEqual(tool.args);
          // One byte at a time, too.
          if (all.length < 4000) expect(collect([...all].map((b) => Buffer.of(b)))).toEqual(whole);
        },
      ),
      { numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------
// Through the gateway, with the official openai client
// ---------------------------------------------------------------------------

describe("through the gateway with the openai client", () => {
  let bedrock: BedrockMock;
  let openai: MockUpstream;
  let gw: RunningGateway;
  let client: OpenAI;
  const account = (id: string, extra: object = {}) => ({ id, provider: "bedrock", base_url: bedrock.url, region: "us-west-2", model: MODEL, ...extra });

  beforeAll(async () => {
    bedrock = await startBedrockUpstream({
      name: "bedrock",
      region: "us-west-2",
      credentials: [
        { accessKeyId: KEY_ID, secretAccessKey: SECRET },
        { accessKeyId: TEMP_KEY_ID, secretAccessKey: TEMP_SECRET, sessionToken: TEMP_TOKEN },
      ],
      chunks: 5,
      cacheReadInputTokens: 3,
    });
    openai = await startOpenAIUpstream({ name: "openai" });
    gw = await startGateway(
      {
        accounts: [
          account("bedrock"),
          account("bedrock-throttled"),
          account("bedrock-wrong-secret", { api_key: "${WRONG_AWS_SECRET}" }),
          account("bedrock-temp", { aws_access_key_id: "${TEMP_KEY_ID}", aws_session_token: "${TEMP_SESSION_TOKEN}", api_key: "${TEMP_SECRET}" }),
          { id: "openai-backup", provider: "openai", base_url: openai.url, model: "gpt-4o-mini" },
        ],
        routes: [
          { model: "claude", targets: [{ account: "bedrock" }] },
          { model: "claude-failover", targets: [{ account: "bedrock-throttled", weight: 1 }, { account: "openai-backup", weight: 0 }] },
          { model: "claude-wrong-key", targets: [{ account: "bedrock-wrong-secret", weight: 1 }, { account: "openai-backup", weight: 0 }] },
          { model: "claude-wrong-key-alone", targets: [{ account: "bedrock-wrong-secret" }] },
          { model: "claude-temp", targets: [{ account: "bedrock-temp" }] },
        ],
      },
      {
        AWS_ACCESS_KEY_ID: KEY_ID,
        AWS_SECRET_ACCESS_KEY: SECRET,
        WRONG_AWS_SECRET: "not-the-secret",
        TEMP_KEY_ID,
        TEMP_SECRET,
        TEMP_SESSION_TOKEN: TEMP_TOKEN,
        OPENAI_API_KEY: "x",
      },
    );
    client = new OpenAI({ baseURL: gw.v1, apiKey: "caller-key", maxRetries: 0 });
  });

  afterAll(async () => {
    await gw?.close();
    await bedrock?.close();
    await openai?.close();
  });

  it("answers a plain chat through a signed Converse call", async () => {
    const { data, response } = await client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "hello" }] }).withResponse();
    expect(data.choices[0].message.content).toBe("[bedrock] you said: hello");
    expect(data.choices[0].finish_reason).toBe("stop");
    expect(data.model).toBe(MODEL);
    expect(data.usage).toMatchObject({ prompt_tokens: 2 + 3, completion_tokens: 5, total_tokens: 10, prompt_tokens_details: { cached_tokens: 3 } });
    expect(response.headers.get("x-gwc-account")).toBe("bedrock");
    const seen = bedrock.requests.at(-1)!;
    expect(seen.signature).toBe("valid");
    expect(seen.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    expect(seen.modelId).toBe(MODEL);
    expect(seen.headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${KEY_ID}/\\d{8}/us-west-2/bedrock/aws4_request, `));
    expect(seen.body).toEqual({ messages: [{ role: "user", content: [{ text: "hello" }] }] });
  });

  it("carries a multi-turn conversation with a system prompt", async () => {
    const res = await client.chat.completions.create({
      model: "claude",
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "how are you?" },
      ],
      max_tokens: 64,
      temperature: 0.5,
    });
    expect(res.choices[0].message.content).toBe("[bedrock] (system: You are terse.) you said: how are you?");
    expect(bedrock.requests.at(-1)!.body).toEqual({
      system: [{ text: "You are terse." }],
      messages: [
        { role: "user", content: [{ text: "hi" }] },
        { role: "assistant", content: [{ text: "hello" }] },
        { role: "user", content: [{ text: "how are you?" }] },
      ],
      inferenceConfig: { maxTokens: 64, temperature: 0.5 },
    });
  });

  it("reports max_tokens as finish_reason length", async () => {
    const res = await client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "a long answer please" }], max_completion_tokens: 2 });
    expect(res.choices[0].finish_reason).toBe("length");
    expect(res.usage?.completion_tokens).toBe(2);
  });

  it("round-trips a tool call", async () => {
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      { type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
    ];
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: "user", content: "Paris" }];
    const first = await client.chat.completions.create({ model: "claude", messages, tools });
    expect(first.choices[0].finish_reason).toBe("tool_calls");
    const call = first.choices[0].message.tool_calls![0];
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Paris" });
    expect(first.choices[0].message.content).toBe("[bedrock] calling get_weather");

    messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "18C and sunny" });
    const second = await client.chat.completions.create({ model: "claude", messages, tools });
    expect(second.choices[0].message.content).toBe(`[bedrock] tool results: ${call.id}=18C and sunny`);
    expect(second.choices[0].finish_reason).toBe("stop");
    const body = bedrock.requests.at(-1)!.body;
    expect(body.messages[1]).toEqual({ role: "assistant", content: [{ text: "[bedrock] calling get_weather" }, { toolUse: { toolUseId: call.id, name: "get_weather", input: { city: "Paris" } } }] });
    expect(body.messages[2]).toEqual({ role: "user", content: [{ toolResult: { toolUseId: call.id, content: [{ text: "18C and sunny" }] } }] });
  });

  it("streams text with include_usage, frames split at odd byte boundaries", async () => {
    bedrock.queue.push({ kind: "ok", splitBytes: 7 });
    const stream = await client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "stream please" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("[bedrock] you said: stream please");
    expect(finish).toBe("stop");
    expect(chunks).toBe(1 + 5 + 1 + 1);
    expect(usage).toMatchObject({ prompt_tokens: 4 + 3, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 3 } });
    expect(bedrock.requests.at(-1)!.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
  });

  it("streams a tool call the openai client can assemble", async () => {
    const stream = client.chat.completions.stream({
      model: "claude",
      messages: [{ role: "user", content: "Rome" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0].message.tool_calls![0];
    expect(final.choices[0].finish_reason).toBe("tool_calls");
    expect(call.type === "function" && call.function.name).toBe("get_weather");
    expect(call.type === "function" && JSON.parse(call.function.arguments)).toEqual({ city: "Rome" });
    expect(final.choices[0].message.content).toBe("[bedrock] calling get_weather");
  });

  it("passes Bedrock's 400 on as a BadRequestError with its message", async () => {
    const err = await client.chat.completions.create({ model: "claude", messages: [{ role: "assistant", content: "I start" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toContain("A conversation must start with a user message.");
    bedrock.queue.push({ kind: "status", status: 400, message: "The provided model identifier is invalid." });
    const queued = await client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(queued).toBeInstanceOf(OpenAI.BadRequestError);
    expect((queued as Error).message).toContain("The provided model identifier is invalid.");
  });

  it("fails over on a 429 ThrottlingException", async () => {
    bedrock.queue.push({ kind: "status", status: 429 });
    const { data, response } = await client.chat.completions.create({ model: "claude-failover", messages: [{ role: "user", content: "x" }] }).withResponse();
    expect(response.headers.get("x-gwc-account")).toBe("openai-backup");
    expect(data.choices[0].message.content).toBe("[openai] you said: x");
    expect(openai.requests.at(-1)!.body.model).toBe("gpt-4o-mini");
  });

  it("fails over when the stream opens with a throttlingException event", async () => {
    bedrock.queue.push({ kind: "stream-exception", after: 0, exceptionType: "throttlingException" });
    const { data: stream, response } = await client.chat.completions.create({ model: "claude-failover", messages: [{ role: "user", content: "y" }], stream: true }).withResponse();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(response.headers.get("x-gwc-account")).toBe("openai-backup");
    expect(text).toBe("[openai] you said: y");
  });

  it("fails over when the exception comes right after messageStart (nothing was sent yet)", async () => {
    bedrock.queue.push({ kind: "stream-exception", after: 1, exceptionType: "serviceUnavailableException" });
    const { data: stream, response } = await client.chat.completions.create({ model: "claude-failover", messages: [{ role: "user", content: "w" }], stream: true }).withResponse();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(response.headers.get("x-gwc-account")).toBe("openai-backup");
    expect(text).toBe("[openai] you said: w");
  });

  it("ends a stream cut mid-way with an error, not [DONE]", async () => {
    bedrock.queue.push({ kind: "stream-fail-after", events: 3 });
    const stream = await client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "cut me" }], stream: true });
    let text = "";
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toMatch(/incomplete/);
    expect(text.length).toBeGreaterThan(0);
  });

  it("a wrong secret gets the mock's 403: the gateway fails over, or says the credentials were rejected", async () => {
    const before = bedrock.requests.length;
    const { data, response } = await client.chat.completions.create({ model: "claude-wrong-key", messages: [{ role: "user", content: "z" }] }).withResponse();
    expect(response.headers.get("x-gwc-account")).toBe("openai-backup");
    expect(data.choices[0].message.content).toBe("[openai] you said: z");
    expect(bedrock.requests[before].signature).toMatch(/^InvalidSignatureException: The request signature we calculated does not match/);

    const err = await client.chat.completions.create({ model: "claude-wrong-key-alone", messages: [{ role: "user", content: "z" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((err as Error).message).toContain("rejected the gateway's credentials");
    expect((err as Error).message).not.toContain("not-the-secret");
  });

  it("signs with temporary credentials (session token)", async () => {
    const res = await client.chat.completions.create({ model: "claude-temp", messages: [{ role: "user", content: "temp" }] });
    expect(res.choices[0].message.content).toBe("[bedrock] you said: temp");
    const seen = bedrock.requests.at(-1)!;
    expect(seen.signature).toBe("valid");
    expect(seen.headers["x-amz-security-token"]).toBe(TEMP_TOKEN);
    expect(seen.headers.authorization).toContain(`Credential=${TEMP_KEY_ID}/`);
  });

  it("refuses legacy completions and embeddings for a Bedrock-only route", async () => {
    const err = await client.embeddings.create({ model: "claude", input: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("unsupported_operation");
    expect((err as Error).message).toContain("cannot serve embeddings");
  });
});
