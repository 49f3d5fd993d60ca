// Upstream keys never reach callers (issue #11 item 11). Every configured
// secret, and a key-shaped string nobody configured, is planted in every error
// shape of every provider format — JSON bodies the gateway relays or rewraps,
// bodies of every status that fails over, SSE error events before and after the
// first byte, Bedrock exception frames, a URL with `?key=`, an echoed
// `Authorization: Bearer` — and every byte and header the caller gets is grepped.
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Scrubber } from "../../runtime/scrub.ts";
import { startRawUpstream, type RawUpstream, type Scripted } from "../mocks/raw-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

// Every planted value carries PLANTED, so one search finds any part of any of them.
const SECRETS = {
  SCRUB_OPENAI_KEY: "sk-proj-PLANTEDopenai0123456789abcdefXYZ",
  SCRUB_ANTHROPIC_KEY: "sk-ant-api03-PLANTEDanthropic0123456789abc",
  SCRUB_GEMINI_KEY: "AIzaSyPLANTEDgemini0123456789abcdefgh",
  SCRUB_COHERE_KEY: "PLANTEDcohere0123456789abcdefghijklmnop",
  SCRUB_AZURE_KEY: "PLANTEDazure0123456789abcdef0123",
  SCRUB_AWS_ID: "AKIAPLANTEDAWS012345",
  SCRUB_AWS_SECRET: "PLANTEDawsSecret/0123456789+abcdefghijklm",
  SCRUB_VK: "gwc-vk-PLANTED-0123456789",
  SCRUB_ADMIN: "gwc-admin-PLANTED-0123456789",
};
/** Shaped like a key, configured nowhere: scrubbed by its shape. */
const STRAY = "sk-PLANTEDstrayKeyNotConfigured0123456789";

/** Upstream text quoting every secret, as providers echo what they were sent. */
const PLANT = `Incorrect API key provided: ${Object.values(SECRETS).join(", ")} and ${STRAY}. Request https://example.test/v1beta/models/x?key=PLANTEDinQuery&alt=sse with Authorization: Bearer PLANTEDbearerToken0123`;

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const frame = (type: "event" | "exception", name: string, payload: object) =>
  Buffer.from(
    codec.encode({
      headers: {
        ":message-type": { type: "string", value: type },
        [type === "event" ? ":event-type" : ":exception-type"]: { type: "string", value: name },
        ":content-type": { type: "string", value: "application/json" },
      },
      body: fromUtf8(JSON.stringify(payload)),
    }),
  );

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Scripted => ({ status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
const sse = (events: string[]): Scripted => ({ status: 200, headers: { "content-type": "text/event-stream" }, body: events });
const data = (v: unknown) => `data: ${JSON.stringify(v)}\n\n`;

const oai = { error: { message: PLANT, type: "invalid_request_error", param: null, code: null } };
const oaiChunk = { id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "partial " }, finish_reason: null }] };
const ant = (type: string) => ({ type: "error", error: { type, message: PLANT } });
const antOpen = [`event: message_start\ndata: ${JSON.stringify({ type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", model: "m", content: [], usage: { input_tokens: 3, output_tokens: 1 } } })}\n\n`,
  `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "partial " } })}\n\n`];
const goog = (code: number, status: string) => ({ error: { code, message: PLANT, status } });
const amzn = (type: string) => ({ "content-type": "application/json", "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });

type Case = [name: string, model: string, stream: boolean, answer: Scripted];

const CASES: Case[] = [
  // OpenAI's format: relayed as it came when it is the caller's (400, 404), named in the all-failed message otherwise.
  ["openai 400 relayed", "openai-m", false, json(400, oai)],
  ["openai 404 relayed", "openai-m", false, json(404, oai)],
  ["openai 422 relayed, text body", "openai-m", false, { status: 422, headers: { "content-type": "text/plain" }, body: PLANT }],
  ["openai 429 (all rate-limited)", "openai-m", false, json(429, { error: { ...oai.error, code: "rate_limit_exceeded" } }, { "retry-after": "1" })],
  ["openai 500 (all failed)", "openai-m", false, json(500, oai)],
  ["openai 503 HTML (all failed)", "openai-m", false, { status: 503, headers: { "content-type": "text/html" }, body: `<html>${PLANT}</html>` }],
  ["openai 401 (the gateway's key)", "openai-m", false, json(401, oai)],
  ["openai 200 error object", "openai-m", false, json(200, oai)],
  ["openai SSE error first", "openai-m", true, sse([data(oai)])],
  ["openai SSE error mid-stream", "openai-m", true, sse([data(oaiChunk), data(oai)])],
  // Azure: OpenAI's format, its own shapes.
  ["azure 400 content_filter relayed", "azure-m", false, json(400, { error: { message: PLANT, code: "content_filter", innererror: { code: "ResponsibleAIPolicyViolation" } } })],
  ["azure 429 API Management", "azure-m", false, json(429, { statusCode: 429, message: PLANT }, { "retry-after": "1" })],
  // Anthropic: rewrapped into OpenAI's shape.
  ["anthropic 400", "anthropic-m", false, json(400, ant("invalid_request_error"))],
  ["anthropic 429", "anthropic-m", false, json(429, ant("rate_limit_error"), { "retry-after": "1" })],
  ["anthropic 529", "anthropic-m", false, json(529, ant("overloaded_error"))],
  ["anthropic SSE error first", "anthropic-m", true, sse([`event: error\ndata: ${JSON.stringify(ant("overloaded_error"))}\n\n`])],
  ["anthropic SSE error mid-stream", "anthropic-m", true, sse([...antOpen, `event: error\ndata: ${JSON.stringify(ant("api_error"))}\n\n`])],
  // Gemini.
  ["gemini 400", "gemini-m", false, json(400, goog(400, "INVALID_ARGUMENT"))],
  ["gemini 429", "gemini-m", false, json(429, goog(429, "RESOURCE_EXHAUSTED"))],
  ["gemini 500", "gemini-m", false, json(500, goog(500, "INTERNAL"))],
  ["gemini SSE error first", "gemini-m", true, sse([data([goog(503, "UNAVAILABLE")])])],
  ["gemini SSE error mid-stream", "gemini-m", true, sse([data({ candidates: [{ index: 0, content: { role: "model", parts: [{ text: "partial " }] } }] }), data(goog(500, "INTERNAL"))])],
  // Bedrock: restJson1 errors and exception frames.
  ["bedrock 400 ValidationException", "bedrock-m", false, { status: 400, headers: amzn("ValidationException"), body: JSON.stringify({ message: PLANT }) }],
  ["bedrock 429 ThrottlingException", "bedrock-m", false, { status: 429, headers: amzn("ThrottlingException"), body: JSON.stringify({ message: PLANT }) }],
  ["bedrock exception frame first", "bedrock-m", true, { status: 200, headers: { "content-type": "application/vnd.amazon.eventstream" }, body: [frame("exception", "throttlingException", { message: PLANT })] }],
  ["bedrock exception frame mid-stream", "bedrock-m", true, { status: 200, headers: { "content-type": "application/vnd.amazon.eventstream" }, body: [frame("event", "messageStart", { role: "assistant" }), frame("event", "contentBlockDelta", { contentBlockIndex: 0, delta: { text: "partial " } }), frame("exception", "modelStreamErrorException", { message: PLANT })] }],
  // Cohere.
  ["cohere 400", "cohere-m", false, json(400, { id: "x", message: PLANT })],
  ["cohere 429", "cohere-m", false, json(429, { id: "x", message: PLANT })],
  ["cohere SSE error at message-end", "cohere-m", true, sse([`event: message-start\ndata: ${JSON.stringify({ type: "message-start", id: "x" })}\n\n`, `event: content-delta\ndata: ${JSON.stringify({ type: "content-delta", delta: { message: { content: { text: "partial " } } } })}\n\n`, `event: message-end\ndata: ${JSON.stringify({ type: "message-end", delta: { finish_reason: "ERROR", error: PLANT } })}\n\n`])],
];

let raw: RawUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  raw = await startRawUpstream();
});

// A gateway per case: a case's 429s and 5xx hold or trip its account (resilience), which must not
// decide how the next case's request is answered.
beforeEach(async () => {
  const at = (id: string, provider: string, extra: object = {}) => ({ id, provider, base_url: raw.url, model: "m", ...extra });
  gw = await startGateway(
    {
      accounts: [
        at("openai-a", "openai", { api_key: "${SCRUB_OPENAI_KEY}" }),
        at("azure-a", "azure", { api_key: "${SCRUB_AZURE_KEY}", api_version: "2024-10-21" }),
        at("anthropic-a", "anthropic", { api_key: "${SCRUB_ANTHROPIC_KEY}" }),
        at("gemini-a", "gemini", { api_key: "${SCRUB_GEMINI_KEY}" }),
        at("bedrock-a", "bedrock", { region: "us-east-1", aws_access_key_id: "${SCRUB_AWS_ID}", api_key: "${SCRUB_AWS_SECRET}" }),
        at("cohere-a", "cohere", { api_key: "${SCRUB_COHERE_KEY}" }),
      ],
      routes: ["openai", "azure", "anthropic", "gemini", "bedrock", "cohere"].map((p) => ({ model: `${p}-m`, targets: [{ account: `${p}-a` }] })),
      virtual_keys: [{ id: "k", key: "${SCRUB_VK}" }],
      server: { admin_key: "${SCRUB_ADMIN}" },
    },
    { ...SECRETS },
  );
});

afterEach(async () => {
  await gw?.close();
  raw.queue.length = 0;
});

afterAll(async () => {
  await raw?.close();
});

/** Everything the caller received: status line aside, every header and every byte of the body. */
async function call(path: string, body: object): Promise<{ status: number; seen: string }> {
  const res = await fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${SECRETS.SCRUB_VK}` }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, seen: `${[...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n\n${text}` };
}

describe("no upstream text carries a key to the caller", () => {
  it.each(CASES)("%s (OpenAI surface)", async (_, model, stream, answer) => {
    raw.queue.push(answer);
    const { status, seen } = await call("/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }], stream, max_tokens: 5 });
    expect(seen).not.toContain("PLANTED");
    // Something failed, and the caller was told (a status, or an error event in the stream).
    expect(status === 200 ? seen.includes('"error"') : status >= 400).toBe(true);
    expect(raw.queue).toHaveLength(0);
  });

  it.each(CASES.filter(([, model]) => model === "openai-m" || model === "anthropic-m"))("%s (Anthropic surface)", async (_, model, stream, answer) => {
    raw.queue.push(answer);
    const { seen } = await call("/anthropic/v1/messages", { model, max_tokens: 5, messages: [{ role: "user", content: "hi" }], stream });
    expect(seen).not.toContain("PLANTED");
  });

  it("keeps what the caller needs: the provider's words, with the key replaced", async () => {
    raw.queue.push(json(400, { error: { message: `Invalid 'messages': bad role. Key ${SECRETS.SCRUB_OPENAI_KEY}`, type: "invalid_request_error", param: "messages", code: null } }));
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${SECRETS.SCRUB_VK}` }, body: JSON.stringify({ model: "openai-m", messages: [] }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string; param: string } }).error).toMatchObject({ message: "Invalid 'messages': bad role. Key [redacted]", param: "messages" });
  });

  it("relays a caller's 400 byte for byte when it quotes no secret", async () => {
    const body = `{"error": {"message": "Missing required parameter: 'messages'.", "type": "invalid_request_error", "param": "messages", "code": "missing_required_parameter"}}\n`;
    raw.queue.push({ status: 400, headers: { "content-type": "application/json" }, body });
    const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${SECRETS.SCRUB_VK}` }, body: JSON.stringify({ model: "openai-m", messages: [] }) });
    expect(await res.text()).toBe(body);
  });
});

describe("Scrubber", () => {
  const s = new Scrubber(["configured-secret-value", "short"]);
  it.each([
    ["a configured value", "key configured-secret-value here", "key [redacted] here"],
    ["its JSON-escaped form", 'x "configured-secret-value" y', 'x "[redacted]" y'],
    ["an OpenAI project key", "sk-proj-abcDEF0123456789ghiJKL", "[redacted]"],
    ["an Anthropic key", "token sk-ant-api03-abcdefghijklmnop_QRSTUV-0123", "token [redacted]"],
    ["a Google API key", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "[redacted]"],
    ["an AWS access key id", "AKIAIOSFODNN7EXAMPLE is not allowed", "[redacted] is not allowed"],
    ["a bearer token", "Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [redacted]"],
    ["a key query parameter", "GET /v1/x?alt=sse&key=whatever123", "GET /v1/x?alt=sse&key=[redacted]"],
    ["a long hex run", "sig 0123456789abcdef0123456789abcdef0123", "sig [redacted]"],
    ["a long mixed base64 run (an AWS secret)", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[redacted]"],
  ])("removes %s", (_, input, output) => {
    expect(s.text(input)).toBe(output);
  });
  it.each([
    ["a secret too short to search for", "a short word"],
    ["a resource path", "Publisher model projects/my-project-123/locations/us-central1/publishers/google/models/gemini-2.5-flash was not found"],
    ["a long word", "Pneumonoultramicroscopicsilicovolcanoconiosis is long"],
    ["an ordinary message", "This model's maximum context length is 128000 tokens. However, you requested 130000 tokens."],
  ])("keeps %s", (_, input) => {
    expect(s.text(input)).toBe(input);
  });
  it("returns the very same bytes when there is nothing to remove", () => {
    const body = Buffer.from('{"error":{"message":"fine"}}');
    expect(s.bytes(body)).toBe(body);
  });
});
