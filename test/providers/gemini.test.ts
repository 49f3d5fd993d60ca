// Google Gemini API and Vertex AI adapters: the request and response mapping
// as units, stream translation under any chunking (property), and the whole
// path through the real gateway with the official `openai` client against a
// mock speaking Google's wire format.
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../../runtime/errors.ts";
import type { AccountContext, InboundRequest, Translated, Usage } from "../../runtime/providers/adapter.ts";
import * as gemini from "../../runtime/providers/gemini.ts";
import { geminiAdapter, GeminiStreamTranslator, SKIP_THOUGHT_SIGNATURE, usageOf } from "../../runtime/providers/gemini.ts";
import { vertexAdapter } from "../../runtime/providers/vertex.ts";
import { embeddingFor, googleError, startGeminiUpstream, type GeminiMock } from "../mocks/gemini-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

type Json = Record<string, any>;

const toGenerateContent = (body: Json): Json => gemini.toGenerateContent(body);
const fromGenerateContent = (json: unknown, model: string): Json => gemini.fromGenerateContent(json, model);

function inbound(json: Json, stream = false, endpoint: InboundRequest["endpoint"] = "chat"): InboundRequest {
  return { endpoint, raw: Buffer.from(JSON.stringify(json)), json, stream };
}

const geminiAccount: AccountContext = { baseUrl: "https://generativelanguage.googleapis.com", basePath: "", apiKey: "gm-key", options: {} };
const vertexAccount: AccountContext = {
  baseUrl: "https://europe-west4-aiplatform.googleapis.com",
  basePath: "",
  apiKey: "ya29.token",
  options: { project: "my-proj", region: "europe-west4" },
};

async function upstream(adapter: typeof geminiAdapter, req: InboundRequest, account: AccountContext, model: string) {
  const r = await adapter.request(req, account, model);
  return { ...r, json: JSON.parse(String(r.body)) as Json };
}

// ---------------------------------------------------------------------------
// Request mapping
// ---------------------------------------------------------------------------

describe("request mapping", () => {
  it("builds the Gemini API URL and key header, for JSON and for SSE", async () => {
    const body = { model: "x", messages: [{ role: "user", content: "hi" }] };
    const plain = await upstream(geminiAdapter, inbound(body), geminiAccount, "gemini-2.5-flash");
    expect(plain.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(plain.headers["x-goog-api-key"]).toBe("gm-key");
    expect(plain.headers.authorization).toBeUndefined();
    expect(plain.json).toEqual({ contents: [{ role: "user", parts: [{ text: "hi" }] }] });

    const streamed = await upstream(geminiAdapter, inbound({ ...body, stream: true }, true), geminiAccount, "gemini-2.5-flash");
    expect(streamed.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    expect(streamed.headers.accept).toBe("text/event-stream");

    // A base URL that names the API version, a tuned model, and a model name that needs escaping.
    const versioned = await upstream(geminiAdapter, inbound(body), { ...geminiAccount, basePath: "/v1beta" }, "models/gemini-2.5-pro");
    expect(versioned.path).toBe("/v1beta/models/gemini-2.5-pro:generateContent");
    expect((await geminiAdapter.request(inbound(body), geminiAccount, "tunedModels/my-tune")).path).toBe("/v1beta/tunedModels/my-tune:generateContent");
    expect((await geminiAdapter.request(inbound(body), geminiAccount, "a?b#c")).path).toBe("/v1beta/models/a%3Fb%23c:generateContent");
  });

  it("builds the Vertex AI URL from project and region, with a bearer token", async () => {
    const body = { model: "x", messages: [{ role: "user", content: "hi" }] };
    const r = await upstream(vertexAdapter, inbound(body), vertexAccount, "gemini-2.5-pro");
    expect(r.path).toBe("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent");
    expect(r.headers.authorization).toBe("Bearer ya29.token");
    expect(r.headers["x-goog-api-key"]).toBeUndefined();
    expect(r.json).toEqual({ contents: [{ role: "user", parts: [{ text: "hi" }] }] });
    const s = await vertexAdapter.request(inbound(body, true), vertexAccount, "gemini-2.5-pro");
    expect(s.path).toBe("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
    // Tuned-model endpoints and full resource names.
    expect((await vertexAdapter.request(inbound(body), vertexAccount, "endpoints/123")).path).toBe("/v1/projects/my-proj/locations/europe-west4/endpoints/123:generateContent");
    expect((await vertexAdapter.request(inbound(body), vertexAccount, "projects/p/locations/l/endpoints/9")).path).toBe("/v1/projects/p/locations/l/endpoints/9:generateContent");
  });

  it("maps system and developer messages to systemInstruction and turns to user/model", () => {
    const out = toGenerateContent({
      messages: [
        { role: "system", content: "Be terse." },
        { role: "user", content: "What is 2+2?" },
        { role: "assistant", content: "4" },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: [{ type: "text", text: "And 3+3?" }] },
      ],
    });
    expect(out.systemInstruction).toEqual({ parts: [{ text: "Be terse." }, { text: "Answer in French." }] });
    expect(out.contents).toEqual([
      { role: "user", parts: [{ text: "What is 2+2?" }] },
      { role: "model", parts: [{ text: "4" }] },
      { role: "user", parts: [{ text: "And 3+3?" }] },
    ]);
  });

  it("sends images as inlineData (data: URLs) or fileData (other URLs), and audio inline", () => {
    const out = toGenerateContent({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg", detail: "high" } },
            { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
            { type: "file", file: { file_data: "data:application/pdf;base64,JVBERi0=", filename: "a.pdf" } },
          ],
        },
      ],
    });
    expect(out.contents[0].parts).toEqual([
      { text: "What is this?" },
      { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
      { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/cat.jpg" } },
      { inlineData: { mimeType: "audio/wav", data: "UklGRg==" } },
      { inlineData: { mimeType: "application/pdf", data: "JVBERi0=" } },
    ]);
  });

  it("maps tools to functionDeclarations and tool_choice to functionCallingConfig", () => {
    const parameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false };
    const tools = [
      { type: "function", function: { name: "get_weather", description: "Weather now", parameters } },
      { type: "function", function: { name: "get_time" } },
    ];
    const messages = [{ role: "user", content: "hi" }];
    const out = toGenerateContent({ messages, tools });
    expect(out.tools).toEqual([
      { functionDeclarations: [{ name: "get_weather", description: "Weather now", parametersJsonSchema: parameters }, { name: "get_time" }] },
    ]);
    expect(out.toolConfig).toBeUndefined();
    const config = (tool_choice: unknown) => toGenerateContent({ messages, tools, tool_choice }).toolConfig;
    expect(config("auto")).toEqual({ functionCallingConfig: { mode: "AUTO" } });
    expect(config("none")).toEqual({ functionCallingConfig: { mode: "NONE" } });
    expect(config("required")).toEqual({ functionCallingConfig: { mode: "ANY" } });
    expect(config({ type: "function", function: { name: "get_time" } })).toEqual({ functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_time"] } });
    const allowed = { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [{ type: "function", function: { name: "get_time" } }] } };
    const restricted = toGenerateContent({ messages, tools, tool_choice: allowed });
    expect(restricted.tools[0].functionDeclarations.map((d: Json) => d.name)).toEqual(["get_time"]);
    expect(() => toGenerateContent({ messages, tools: [{ type: "custom", custom: { name: "x" } }] })).toThrow(HttpError);
  });

  it("maps assistant tool calls to functionCall parts and tool results to functionResponse parts", () => {
    const out = toGenerateContent({
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' }, extra_content: { google: { thought_signature: "c2lnLTE=" } } },
            { id: "call_b", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_a", content: '{"temp":21}' },
        { role: "tool", tool_call_id: "call_b", content: "sunny, 25C" },
        { role: "user", content: "Thanks" },
      ],
    });
    expect(out.contents).toEqual([
      { role: "user", parts: [{ text: "Weather in Paris and Rome?" }] },
      {
        role: "model",
        parts: [
          { functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "c2lnLTE=" },
          { functionCall: { name: "get_weather", args: { city: "Rome" } } },
        ],
      },
      // Both answers in one turn; names from the calls' ids; text wrapped as an object.
      {
        role: "user",
        parts: [
          { functionResponse: { name: "get_weather", response: { temp: 21 } } },
          { functionResponse: { name: "get_weather", response: { content: "sunny, 25C" } } },
        ],
      },
      { role: "user", parts: [{ text: "Thanks" }] },
    ]);
  });

  it("stands in for a thought signature the caller did not keep, and refuses answers to unknown calls", () => {
    const out = toGenerateContent({
      messages: [
        { role: "user", content: "x" },
        { role: "assistant", content: "Let me check.", tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "not json" } }] },
        { role: "tool", tool_call_id: "c1", content: [{ type: "text", text: "[1,2]" }] },
      ],
    });
    expect(out.contents[1].parts).toEqual([{ text: "Let me check." }, { functionCall: { name: "f", args: { arguments: "not json" } }, thoughtSignature: SKIP_THOUGHT_SIGNATURE }]);
    expect(out.contents[2].parts).toEqual([{ functionResponse: { name: "f", response: { content: "[1,2]" } } }]);

    const err = (() => {
      try {
        toGenerateContent({ messages: [{ role: "tool", tool_call_id: "nope", content: "x" }] });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(400);
    expect((err as HttpError).message).toContain("nope");
  });

  it("maps sampling and output settings to generationConfig", () => {
    const out = toGenerateContent({
      messages: [{ role: "user", content: "x" }],
      max_tokens: 100,
      max_completion_tokens: 200,
      temperature: 0.2,
      top_p: 0.9,
      n: 2,
      stop: ["END", "STOP"],
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      seed: 7,
      response_format: { type: "json_schema", json_schema: { name: "r", schema: { type: "object" } } },
      user: "ignored",
      parallel_tool_calls: true,
    });
    expect(out.generationConfig).toEqual({
      maxOutputTokens: 200,
      temperature: 0.2,
      topP: 0.9,
      candidateCount: 2,
      stopSequences: ["END", "STOP"],
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
      seed: 7,
      responseMimeType: "application/json",
      responseJsonSchema: { type: "object" },
    });
    expect(Object.keys(out).sort()).toEqual(["contents", "generationConfig"]);
    expect(toGenerateContent({ messages: [{ role: "user", content: "x" }], stop: "\n", response_format: { type: "json_object" } }).generationConfig).toEqual({
      stopSequences: ["\n"],
      responseMimeType: "application/json",
    });
  });

  it("maps embeddings to batchEmbedContents (Gemini) and predict (Vertex)", async () => {
    const req = inbound({ model: "text-embedding-004", input: ["a", "b"], dimensions: 4 }, false, "embeddings");
    const g = await upstream(geminiAdapter, req, geminiAccount, "text-embedding-004");
    expect(g.path).toBe("/v1beta/models/text-embedding-004:batchEmbedContents");
    expect(g.json).toEqual({
      requests: [
        { model: "models/text-embedding-004", content: { parts: [{ text: "a" }] }, outputDimensionality: 4 },
        { model: "models/text-embedding-004", content: { parts: [{ text: "b" }] }, outputDimensionality: 4 },
      ],
    });
    const v = await upstream(vertexAdapter, req, vertexAccount, "text-embedding-005");
    expect(v.path).toBe("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/text-embedding-005:predict");
    expect(v.json).toEqual({ instances: [{ content: "a" }, { content: "b" }], parameters: { outputDimensionality: 4 } });
    expect(geminiAdapter.supports("completions")).toBe(false);
    expect(geminiAdapter.supports("embeddings") && vertexAdapter.supports("chat")).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Response mapping
// ---------------------------------------------------------------------------

describe("response mapping", () => {
  it("joins text parts, leaves thought summaries out and reports usage with cached and thinking tokens", () => {
    const out = fromGenerateContent(
      {
        candidates: [
          {
            content: { role: "model", parts: [{ text: "Thinking about it", thought: true }, { text: "Hello, " }, { text: "world." }] },
            finishReason: "STOP",
            index: 0,
          },
        ],
        usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 4, thoughtsTokenCount: 30, cachedContentTokenCount: 8, totalTokenCount: 46 },
        modelVersion: "gemini-2.5-flash",
        responseId: "abc123",
      },
      "gemini-2.5-flash",
    );
    expect(out).toMatchObject({
      id: "chatcmpl-abc123",
      object: "chat.completion",
      model: "gemini-2.5-flash",
      choices: [{ index: 0, message: { role: "assistant", content: "Hello, world." }, finish_reason: "stop" }],
      usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46, prompt_tokens_details: { cached_tokens: 8 }, completion_tokens_details: { reasoning_tokens: 30 } },
    });
    expect(typeof out.created).toBe("number");
    expect(geminiAdapter.usage({ usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 4, thoughtsTokenCount: 30, cachedContentTokenCount: 8 } })).toEqual({ input: 12, output: 34, cached: 8 });
  });

  it("turns functionCall parts into tool calls with JSON arguments and the thought signature", () => {
    const out = fromGenerateContent(
      {
        candidates: [
          {
            content: { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "c2ln" }, { functionCall: { name: "get_time", args: {} } }] },
            finishReason: "STOP",
          },
        ],
        createTime: "2025-06-01T12:00:00.000000Z",
      },
      "gemini-2.5-pro",
    );
    expect(out.created).toBe(Date.parse("2025-06-01T12:00:00Z") / 1000);
    const choice = out.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(2);
    const [a, b] = choice.message.tool_calls;
    expect(a).toMatchObject({ type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' }, extra_content: { google: { thought_signature: "c2ln" } } });
    expect(b.function).toEqual({ name: "get_time", arguments: "{}" });
    expect(a.id).toMatch(/^call_/);
    expect(a.id).not.toBe(b.id);
    expect(out.usage).toBeUndefined();
  });

  it("maps finish reasons", () => {
    const finish = (finishReason: string) => fromGenerateContent({ candidates: [{ content: { parts: [{ text: "x" }] }, finishReason }] }, "m").choices[0].finish_reason;
    expect(finish("STOP")).toBe("stop");
    expect(finish("MAX_TOKENS")).toBe("length");
    expect(finish("SAFETY")).toBe("content_filter");
    expect(finish("RECITATION")).toBe("content_filter");
    expect(finish("PROHIBITED_CONTENT")).toBe("content_filter");
    expect(finish("MALFORMED_FUNCTION_CALL")).toBe("stop");
    // A prompt blocked before any candidate.
    const blocked = fromGenerateContent({ promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 } }, "m");
    expect(blocked.choices).toEqual([{ index: 0, message: { role: "assistant", content: null, refusal: null }, logprobs: null, finish_reason: "content_filter" }]);
    expect(blocked.usage.prompt_tokens).toBe(5);
  });

  it("reads Google's error body", () => {
    const googleErrorMessage = (body: string) => geminiAdapter.classify(400, {}, body).message;
    const body = JSON.stringify(googleError(429, "Resource has been exhausted (e.g. check quota)."));
    expect(googleErrorMessage(body)).toBe("Resource has been exhausted (e.g. check quota).");
    expect(googleErrorMessage(`[${body}]`)).toBe("Resource has been exhausted (e.g. check quota).");
    expect(googleErrorMessage("<html>502</html>")).toBe("<html>502</html>");
    expect(googleErrorMessage(JSON.stringify({ error: { code: 503, status: "UNAVAILABLE" } }))).toBe("UNAVAILABLE");
  });
});

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/**
 * A streamGenerateContent?alt=sse answer as Vertex AI sends it (the Gemini API's
 * has the same framing, without createTime): CRLF-framed `data:` events, usage
 * on every event, finishReason and the full usage on the last. Multibyte text so
 * that chunk boundaries fall inside UTF-8 sequences.
 */
const RECORDED_EVENTS = [
  { candidates: [{ content: { role: "model", parts: [{ text: "Grüße aus " }] } }], usageMetadata: { promptTokenCount: 9, totalTokenCount: 9, trafficType: "ON_DEMAND" } },
  { candidates: [{ content: { role: "model", parts: [{ text: "München — 日本語 " }] } }], usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 6, totalTokenCount: 15, trafficType: "ON_DEMAND" } },
  { candidates: [{ content: { role: "model", parts: [{ text: "und 🙂🎉!" }] } }], usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 11, totalTokenCount: 20, trafficType: "ON_DEMAND" } },
  {
    candidates: [{ content: { role: "model", parts: [{ text: "" }] }, finishReason: "STOP" }],
    usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 12, totalTokenCount: 45, cachedContentTokenCount: 4, thoughtsTokenCount: 24, trafficType: "ON_DEMAND", promptTokensDetails: [{ modality: "TEXT", tokenCount: 9 }] },
  },
].map((e) => ({ ...e, modelVersion: "gemini-2.5-pro", createTime: "2025-07-01T10:00:00.123456Z", responseId: "rec-0001" }));
const RECORDED_TEXT = "Grüße aus München — 日本語 und 🙂🎉!";
const recorded = (eol: string) => Buffer.from(RECORDED_EVENTS.map((e) => `data: ${JSON.stringify(e)}${eol}${eol}`).join(""), "utf8");

interface Run {
  chunks: Json[];
  usage?: Usage;
  error?: string;
  complete: boolean;
}

function run(pieces: Buffer[], model = "gemini-2.5-pro"): Run {
  const t = new GeminiStreamTranslator(model);
  const out: Run = { chunks: [], complete: false };
  const take = (x: Translated) => {
    out.chunks.push(...(x.chunks as Json[]));
    out.usage = x.usage ?? out.usage;
    out.error ??= x.error;
  };
  for (const p of pieces) take(t.push(p));
  const end = t.end();
  take(end);
  out.complete = end.complete;
  return out;
}

const textOf = (chunks: Json[]) => chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("");

describe("stream translation", () => {
  it("translates a recorded stream", () => {
    const r = run([recorded("\r\n")]);
    expect(textOf(r.chunks)).toBe(RECORDED_TEXT);
    expect(r.complete).toBe(true);
    expect(r.usage).toEqual({ input: 9, output: 36, cached: 4 });
    expect(r.chunks[0]).toMatchObject({ id: "chatcmpl-rec-0001", object: "chat.completion.chunk", model: "gemini-2.5-pro", choices: [{ index: 0, delta: { role: "assistant", content: "Grüße aus " }, finish_reason: null }] });
    expect(r.chunks.at(-1)!.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
    expect(r.chunks.filter((c) => c.choices[0].finish_reason !== null)).toHaveLength(1);
  });

  it("gives the same chunks and usage however the bytes are split (incl. inside UTF-8 sequences and CRLF)", () => {
    const framings = ["\r\n", "\n", "\r"];
    fc.assert(
      fc.property(fc.constantFrom(...framings), fc.array(fc.nat(), { maxLength: 40 }), (eol, cuts) => {
        const bytes = recorded(eol);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces: Buffer[] = [];
        let at = 0;
        for (const p of [...points, bytes.length]) {
          pieces.push(bytes.subarray(at, p));
          at = p;
        }
        const whole = run([bytes]);
        const split = run(pieces);
        expect(split.chunks).toEqual(whole.chunks);
        expect(textOf(split.chunks)).toBe(RECORDED_TEXT);
        // The final usage is the provider's last usageMetadata.
        expect(split.usage).toEqual(usageOf(RECORDED_EVENTS.at(-1)!.usageMetadata));
        expect(split.complete).toBe(true);
        expect(split.error).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it("is incomplete when the stream ends before a finishReason, and reports in-stream errors", () => {
    const cut = recorded("\r\n");
    const partial = run([cut.subarray(0, cut.indexOf("data:", 200))]);
    expect(partial.complete).toBe(false);
    expect(textOf(partial.chunks).length).toBeGreaterThan(0);

    const failed = run([Buffer.from(`data: ${JSON.stringify(googleError(500, "Internal error encountered."))}\r\n\r\n`)]);
    expect(failed.error).toBe("Internal error encountered.");
    expect(failed.complete).toBe(false);
    expect(failed.chunks).toEqual([]);
  });

  it("streams function calls as whole tool-call deltas with their index", () => {
    const events = [
      { candidates: [{ content: { role: "model", parts: [{ text: "Checking." }] } }] },
      {
        candidates: [
          {
            content: { role: "model", parts: [{ functionCall: { name: "a", args: { x: 1 } }, thoughtSignature: "c2ln" }, { functionCall: { name: "b", args: {} } }] },
            finishReason: "STOP",
          },
        ],
        usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 5, totalTokenCount: 8 },
      },
    ];
    const r = run([Buffer.from(events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(""))]);
    expect(r.complete).toBe(true);
    const calls = r.chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "a", arguments: '{"x":1}' }, extra_content: { google: { thought_signature: "c2ln" } } });
    expect(calls[1]).toMatchObject({ index: 1, function: { name: "b", arguments: "{}" } });
    expect(r.chunks.at(-1)!.choices[0].finish_reason).toBe("tool_calls");
    expect(r.usage).toEqual({ input: 3, output: 5, cached: 0 });
  });
});

// ---------------------------------------------------------------------------
// Through the gateway, with the official openai client
// ---------------------------------------------------------------------------

const GEMINI_KEY = "gm-test-key-0001";
const VERTEX_TOKEN = "ya29.test-access-token";

describe("through the gateway", () => {
  let gem: GeminiMock;
  let vtx: GeminiMock;
  let gw: RunningGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gem = await startGeminiUpstream({ name: "gem", apiKey: GEMINI_KEY, stream: { chunks: 5 }, thoughtsTokens: 7, cachedTokens: 2 });
    vtx = await startGeminiUpstream({ name: "vtx", accessToken: VERTEX_TOKEN, stream: { chunks: 3 } });
    gw = await startGateway(
      {
        accounts: [
          { id: "gemini-main", provider: "gemini", base_url: gem.url, model: "gemini-2.5-flash" },
          { id: "vertex-main", provider: "vertex", base_url: vtx.url, project: "my-proj", region: "europe-west4", model: "gemini-2.5-pro" },
          { id: "gemini-embed", provider: "gemini", base_url: gem.url },
          { id: "vertex-embed", provider: "vertex", base_url: vtx.url, project: "my-proj", region: "europe-west4" },
          { id: "gemini-stale-key", provider: "gemini", base_url: gem.url, model: "gemini-2.5-flash", api_key: "${GEMINI_STALE_KEY}" },
          { id: "gemini-quota", provider: "gemini", base_url: gem.url, model: "gemini-2.5-flash" },
        ],
        routes: [
          { model: "gemini-flash", targets: [{ account: "gemini-main" }] },
          { model: "vertex-pro", targets: [{ account: "vertex-main" }] },
          { model: "google-ha", targets: [{ account: "gemini-main", weight: 1 }, { account: "vertex-main", weight: 0 }] },
          { model: "text-embedding-004", targets: [{ account: "gemini-embed" }] },
          { model: "text-embedding-005", targets: [{ account: "vertex-embed" }] },
          { model: "stale-then-vertex", targets: [{ account: "gemini-stale-key", weight: 1 }, { account: "vertex-main", weight: 0 }] },
          { model: "stale-only", targets: [{ account: "gemini-stale-key" }] },
          { model: "quota-then-vertex", targets: [{ account: "gemini-quota", weight: 1 }, { account: "vertex-main", weight: 0 }] },
        ],
      },
      { GEMINI_API_KEY: GEMINI_KEY, VERTEX_ACCESS_TOKEN: VERTEX_TOKEN, GEMINI_STALE_KEY: "AIza-revoked-0000" },
    );
    client = new OpenAI({ baseURL: gw.v1, apiKey: "caller-key", maxRetries: 0 });
  });

  afterAll(async () => {
    await gw?.close();
    await gem?.close();
    await vtx?.close();
  });

  it("answers a chat completion from the Gemini API", async () => {
    const { data, response } = await client.chat.completions.create({ model: "gemini-flash", messages: [{ role: "user", content: "hello" }] }).withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.choices[0].message.content).toBe("[gem] you said: hello");
    expect(data.choices[0].finish_reason).toBe("stop");
    expect(data.model).toBe("gemini-2.5-flash");
    // 5 pieces + 7 thinking tokens; 2 of the prompt tokens were cached.
    expect(data.usage).toMatchObject({ completion_tokens: 12, prompt_tokens_details: { cached_tokens: 2 } });
    expect(response.headers.get("x-gwc-account")).toBe("gemini-main");
    const seen = gem.requests.at(-1)!;
    expect(seen.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(seen.headers["x-goog-api-key"]).toBe(GEMINI_KEY);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.body).toEqual({ contents: [{ role: "user", parts: [{ text: "hello" }] }] });
  });

  it("answers a chat completion from Vertex AI, at the account's project and region", async () => {
    const { data, response } = await client.chat.completions.create({ model: "vertex-pro", messages: [{ role: "user", content: "bonjour" }] }).withResponse();
    expect(data.choices[0].message.content).toBe("[vtx] you said: bonjour");
    expect(data.usage?.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    expect(response.headers.get("x-gwc-account")).toBe("vertex-main");
    const seen = vtx.requests.at(-1)!;
    expect(seen.path).toBe("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent");
    expect({ api: seen.api, project: seen.project, location: seen.location, model: seen.model }).toEqual({ api: "vertex", project: "my-proj", location: "europe-west4", model: "gemini-2.5-pro" });
    expect(seen.headers.authorization).toBe(`Bearer ${VERTEX_TOKEN}`);
    expect(seen.headers["x-goog-api-key"]).toBeUndefined();
  });

  it("carries a multi-turn conversation with a system prompt", async () => {
    const res = await client.chat.completions.create({
      model: "vertex-pro",
      messages: [
        { role: "system", content: "You are a parrot." },
        { role: "user", content: "first" },
        { role: "assistant", content: "[vtx] you said: first" },
        { role: "user", content: "second" },
      ],
    });
    expect(res.choices[0].message.content).toBe("[vtx] you said: second");
    const body = vtx.requests.at(-1)!.body;
    expect(body.systemInstruction).toEqual({ parts: [{ text: "You are a parrot." }] });
    expect(body.contents.map((c: Json) => c.role)).toEqual(["user", "model", "user"]);
  });

  it("round-trips a tool call, thought signature included", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Paris" }];
    const first = await client.chat.completions.create({ model: "gemini-flash", messages, tools });
    expect(first.choices[0].finish_reason).toBe("tool_calls");
    const call = first.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall & { extra_content?: { google?: { thought_signature?: string } } };
    expect(call.function).toEqual({ name: "get_weather", arguments: '{"city":"Paris"}' });
    const signature = call.extra_content?.google?.thought_signature;
    expect(gem.signatures.has(signature!)).toBe(true);
    expect(gem.requests.at(-1)!.body.tools).toEqual([{ functionDeclarations: [{ name: "get_weather", description: "Current weather", parametersJsonSchema: tools[0].type === "function" && tools[0].function.parameters }] }]);

    messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "sunny, 21C" });
    const second = await client.chat.completions.create({ model: "gemini-flash", messages, tools });
    expect(second.choices[0].message.content).toBe('[gem] tool said: {"content":"sunny, 21C"}');
    expect(second.choices[0].finish_reason).toBe("stop");
    const body = gem.requests.at(-1)!.body;
    expect(body.contents[1]).toEqual({ role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: signature }] });
    expect(body.contents[2]).toEqual({ role: "user", parts: [{ functionResponse: { name: "get_weather", response: { content: "sunny, 21C" } } }] });

    // A caller that rebuilt the assistant message without extra_content still gets through (Gemini 3 would refuse a bare call).
    const rebuilt: OpenAI.ChatCompletionMessageParam[] = [
      messages[0],
      { role: "assistant", content: null, tool_calls: [{ id: call.id, type: "function", function: call.function }] },
      messages[2],
    ];
    const third = await client.chat.completions.create({ model: "vertex-pro", messages: rebuilt, tools, tool_choice: "auto" });
    expect(third.choices[0].message.content).toBe('[vtx] tool said: {"content":"sunny, 21C"}');
    expect(vtx.requests.at(-1)!.body.contents[1].parts[0].thoughtSignature).toBe(SKIP_THOUGHT_SIGNATURE);
  });

  it("streams with include_usage: text, finish reason and the provider's usage arrive", async () => {
    const stream = await client.chat.completions.create({
      model: "gemini-flash",
      messages: [{ role: "user", content: "stream please ✨" }],
      stream: true,
      stream_options: { include_usage: true },
    });
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
    expect(text).toBe("[gem] you said: stream please ✨");
    expect(finish).toBe("stop");
    expect(chunks).toBeGreaterThanOrEqual(7); // 5 content events, the finish chunk, the usage chunk
    expect(usage).toMatchObject({ completion_tokens: 5 + 7, prompt_tokens_details: { cached_tokens: 2 } });
    expect(usage!.prompt_tokens).toBeGreaterThan(0);
    const seen = gem.requests.at(-1)!;
    expect(seen.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    expect(seen.query).toEqual({ alt: "sse" });
  });

  it("streams tool calls from Vertex AI", async () => {
    const stream = await client.chat.completions.create({
      model: "vertex-pro",
      messages: [{ role: "user", content: "Rome" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      stream: true,
    });
    const calls: Json[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      calls.push(...(chunk.choices[0]?.delta?.tool_calls ?? []));
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } });
    expect(finish).toBe("tool_calls");
    expect(vtx.requests.at(-1)!.body.toolConfig).toEqual({ functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] } });
    expect(vtx.requests.at(-1)!.path).toMatch(/:streamGenerateContent$/);
  });

  it("passes a 400 through as BadRequestError with Google's message", async () => {
    gem.queue.push({ kind: "status", status: 400, body: googleError(400, "* GenerateContentRequest.generation_config.max_output_tokens: must be positive.\n") });
    const err = await client.chat.completions.create({ model: "gemini-flash", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("max_output_tokens: must be positive.");
  });

  it("treats Gemini's 400 API_KEY_INVALID as the gateway's key being refused: fails over, never shows it", async () => {
    const { data, response } = await client.chat.completions.create({ model: "stale-then-vertex", messages: [{ role: "user", content: "hi" }] }).withResponse();
    expect(gem.requests.at(-1)!.headers["x-goog-api-key"]).toBe("AIza-revoked-0000");
    expect(response.headers.get("x-gwc-account")).toBe("vertex-main");
    expect(data.choices[0].message.content).toBe("[vtx] you said: hi");

    const err = (await client.chat.completions.create({ model: "stale-only", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(502);
    expect(err.message).toContain("gemini-stale-key (400: the provider rejected the gateway's credentials for this account)");
    expect(err.message).not.toContain("API key not valid");
  });

  it("keeps an account out for the retryDelay of Gemini's 429 body (it sends no Retry-After)", async () => {
    // RESOURCE_EXHAUSTED with RetryInfo retryDelay "20s", twice: one 429 only moves its own request on (a rate
    // limit is not a health failure); a streak of them holds the account out for the delay.
    gem.queue.push({ kind: "status", status: 429 }, { kind: "status", status: 429 });
    const ask = () => client.chat.completions.create({ model: "quota-then-vertex", messages: [{ role: "user", content: "hi" }] }).withResponse();
    for (let i = 0; i < 2; i++) expect((await ask()).response.headers.get("x-gwc-account")).toBe("vertex-main");
    const seen = gem.requests.length;
    // Well inside the 20 s: the quota-exhausted account is not asked again; without the delay it would be.
    for (let i = 0; i < 3; i++) expect((await ask()).response.headers.get("x-gwc-account")).toBe("vertex-main");
    expect(gem.requests.length).toBe(seen);
  });

  it("fails over to the next account on 503, JSON and streamed", async () => {
    gem.queue.push({ kind: "status", status: 503 });
    const before = vtx.requests.length;
    const { data, response } = await client.chat.completions.create({ model: "google-ha", messages: [{ role: "user", content: "again" }] }).withResponse();
    expect(response.headers.get("x-gwc-account")).toBe("vertex-main");
    expect(data.choices[0].message.content).toBe("[vtx] you said: again");
    expect(vtx.requests.length).toBe(before + 1);

    gem.queue.push({ kind: "status", status: 503 });
    const stream = await client.chat.completions.create({ model: "google-ha", messages: [{ role: "user", content: "streamed" }], stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("[vtx] you said: streamed");
  });

  it("fails over when the stream opens with an error event, and reports a stream that breaks midway", async () => {
    gem.queue.push({ kind: "stream-error-first" });
    const stream = await client.chat.completions.create({ model: "google-ha", messages: [{ role: "user", content: "first try" }], stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("[vtx] you said: first try");

    gem.queue.push({ kind: "stream-fail-after", chunks: 2 });
    const broken = await client.chat.completions.create({ model: "gemini-flash", messages: [{ role: "user", content: "this will break" }], stream: true });
    let partial = "";
    const err = await (async () => {
      for await (const chunk of broken) partial += chunk.choices[0]?.delta?.content ?? "";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain("incomplete");
    expect(partial.length).toBeGreaterThan(0);
    expect("[gem] you said: this will break".startsWith(partial)).toBe(true);
  });

  it("serves embeddings from batchEmbedContents and Vertex predict", async () => {
    const g = await client.embeddings.create({ model: "text-embedding-004", input: ["alpha", "beta"] });
    expect(g.data.map((d) => d.embedding)).toEqual([embeddingFor("alpha", 8), embeddingFor("beta", 8)]);
    expect(gem.requests.at(-1)!.path).toBe("/v1beta/models/text-embedding-004:batchEmbedContents");

    const v = await client.embeddings.create({ model: "text-embedding-005", input: "gamma", dimensions: 4, encoding_format: "float" });
    expect(v.data[0].embedding).toEqual(embeddingFor("gamma", 4));
    expect(v.usage.prompt_tokens).toBe(2);
    expect(vtx.requests.at(-1)!.path).toBe("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/text-embedding-005:predict");
  });
});
