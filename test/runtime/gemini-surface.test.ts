// The Gemini API through the gateway as @google/genai (and the Gemini CLI,
// GOOGLE_GEMINI_BASE_URL) call it: relayed as it came to Gemini accounts,
// translated for the others; errors in Google's shape.
import { GoogleGenAI, type GenerateContentResponse } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGeminiUpstream, type GeminiMock } from "../mocks/gemini-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, type RunningGateway } from "./harness.ts";
import { startRecordingProxy, type RecordingProxy } from "./recording-proxy.ts";

const KEY = "gwc-gemini-0123456789";
let gem: GeminiMock;
let vtx: GeminiMock;
let proxy: RecordingProxy;
let openai: MockUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  gem = await startGeminiUpstream({ name: "gem", apiKey: "AIza-upstream", stream: { chunks: 3 }, thoughtsTokens: 7, cachedTokens: 2 });
  proxy = await startRecordingProxy(gem.url);
  vtx = await startGeminiUpstream({ name: "vtx", accessToken: "ya29.vertex" });
  openai = await startOpenAIUpstream({ name: "openai", stream: { chunks: 3 } });
  gw = await startGateway(
    {
      accounts: [
        { id: "gem", provider: "gemini", base_url: proxy.url, api_key: "${GEMINI_API_KEY}" },
        { id: "gpt", provider: "openai", base_url: openai.url, model: "gpt-4o" },
        { id: "vtx", provider: "vertex", base_url: vtx.url, project: "my-proj", region: "europe-west4", model: "gemini-2.5-pro" },
      ],
      routes: [
        { model: "gemini-2.5-flash", targets: [{ account: "gem" }] },
        { model: "gpt-behind-gemini", targets: [{ account: "gpt" }] },
        { model: "mixed", targets: [{ account: "gem", weight: 1 }, { account: "gpt", weight: 0 }] },
        { model: "on-vertex", targets: [{ account: "vtx" }] },
      ],
      virtual_keys: [{ id: "cli", key: "${GWC_KEY}" }],
    },
    { GEMINI_API_KEY: "AIza-upstream", OPENAI_API_KEY: "sk-openai", VERTEX_ACCESS_TOKEN: "ya29.vertex", GWC_KEY: KEY },
  );
});

afterAll(async () => {
  await gw.close();
  await proxy.close();
  await gem.close();
  await vtx.close();
  await openai.close();
});

const genai = (base = gw.url) => new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: base } });

/** What the Gemini CLI sends on a main turn. */
const CLI_REQUEST = {
  contents: [{ role: "user", parts: [{ text: "list files" }] }],
  systemInstruction: { parts: [{ text: "You are the Gemini CLI." }] },
  tools: [{ functionDeclarations: [{ name: "ls", description: "list", parametersJsonSchema: { type: "object", properties: { path: { type: "string" } } } }] }],
  generationConfig: { temperature: 1, topP: 0.95, topK: 64, thinkingConfig: { includeThoughts: true, thinkingBudget: 8192 } },
};

async function post(path: string, body: unknown, headers: Record<string, string> = { "x-goog-api-key": KEY }): Promise<Response> {
  return fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

describe("Gemini surface to a Gemini account: a passthrough", () => {
  it("relays the body as sent, with the gateway's key, and the answer byte for byte", async () => {
    const res = await post("/v1beta/models/gemini-2.5-flash:generateContent", CLI_REQUEST);
    expect(res.status).toBe(200);
    const seen = gem.requests.at(-1)!;
    expect(seen.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(seen.body).toEqual(CLI_REQUEST);
    expect(seen.headers["x-goog-api-key"]).toBe("AIza-upstream");
    expect(await res.text()).toBe(proxy.answers.at(-1));
  });

  it("streams with alt=sse event for event, under /gemini and with the key as ?key=", async () => {
    const res = await fetch(`${gw.url}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=${KEY}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "stream it" }] }] }),
    });
    expect(res.status).toBe(200);
    // Event for event as the upstream sent them; SSE's CRLF line ends come as LF.
    expect(await res.text()).toBe(proxy.answers.at(-1)!.replace(/\r\n/g, "\n"));
  });

  it("gives @google/genai the upstream's usage, thoughts and cache counts included", async () => {
    const res = await genai().models.generateContent({ model: "gemini-2.5-flash", contents: "hello" });
    const upstream = JSON.parse(proxy.answers.at(-1)!) as GenerateContentResponse;
    expect(res.text).toBe("[gem] you said: hello");
    expect(res.usageMetadata).toEqual(upstream.usageMetadata);
    expect(res.usageMetadata).toMatchObject({ thoughtsTokenCount: 7, cachedContentTokenCount: 2 });
    const chunks: string[] = [];
    for await (const c of await genai(`${gw.url}/gemini`).models.generateContentStream({ model: "gemini-2.5-flash", contents: "stream" })) chunks.push(c.text ?? "");
    expect(chunks.join("")).toBe("[gem] you said: stream");
  });

  it("relays countTokens, and lists the served models", async () => {
    const counted = await genai().models.countTokens({ model: "gemini-2.5-flash", contents: "count me" });
    expect(gem.requests.at(-1)!.path).toBe("/v1beta/models/gemini-2.5-flash:countTokens");
    expect(counted.totalTokens).toBe(JSON.parse(proxy.answers.at(-1)!).totalTokens);
    const pager = await genai().models.list();
    const names: string[] = [];
    for await (const m of pager) names.push(m.name ?? "");
    expect(names).toContain("models/gemini-2.5-flash");
  });

  it("answers errors in Google's shape", async () => {
    const noKey = await post("/v1beta/models/gemini-2.5-flash:generateContent", CLI_REQUEST, {});
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { code: 401, status: "UNAUTHENTICATED" } });
    const unknown = await post("/v1beta/models/nope:generateContent", CLI_REQUEST);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 404, status: "NOT_FOUND" } });
  });

  it("relays to a Vertex account too: same body, Vertex's path and bearer token, the account's model", async () => {
    const res = await post("/v1beta/models/on-vertex:generateContent", CLI_REQUEST);
    expect(res.status).toBe(200);
    const seen = vtx.requests.at(-1)!;
    expect(seen.path).toBe("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent");
    expect(seen.headers.authorization).toBe("Bearer ya29.vertex");
    expect(seen.body).toEqual(CLI_REQUEST);
  });

  it("leaves OpenAI's GET /v1/models alone", async () => {
    const list = await new OpenAI({ baseURL: gw.v1, apiKey: KEY }).models.list();
    expect(list.data.map((m) => m.id)).toContain("gemini-2.5-flash");
  });
});

describe("Gemini surface to an OpenAI account: translated", () => {
  it("answers in Gemini's shape through @google/genai, JSON and stream", async () => {
    const res = await genai().models.generateContent({ model: "gpt-behind-gemini", contents: "hello", config: { systemInstruction: "be brief", maxOutputTokens: 50 } });
    expect(res.text).toBe("[openai] you said: hello");
    expect(res.usageMetadata!.promptTokenCount).toBeGreaterThan(0);
    expect(openai.requests.at(-1)!.body).toMatchObject({ model: "gpt-4o", max_tokens: 50, messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }] });
    const chunks: GenerateContentResponse[] = [];
    for await (const c of await genai().models.generateContentStream({ model: "gpt-behind-gemini", contents: "stream" })) chunks.push(c);
    expect(chunks.map((c) => c.text ?? "").join("")).toBe("[openai] you said: stream");
    expect(chunks.at(-1)!.candidates![0].finishReason).toBe("STOP");
    expect(chunks.at(-1)!.usageMetadata!.candidatesTokenCount).toBeGreaterThan(0);
  });

  it("carries a function call loop", async () => {
    const tools = [{ functionDeclarations: [{ name: "ls", description: "list", parametersJsonSchema: { type: "object", properties: { path: { type: "string" } } } }] }];
    const first = await genai().models.generateContent({ model: "gpt-behind-gemini", contents: "list files", config: { tools } });
    const call = first.functionCalls![0];
    expect(call.name).toBe("ls");
    const second = await genai().models.generateContent({
      model: "gpt-behind-gemini",
      config: { tools },
      contents: [
        { role: "user", parts: [{ text: "list files" }] },
        { role: "model", parts: [{ functionCall: call }] },
        { role: "user", parts: [{ functionResponse: { id: call.id, name: "ls", response: { files: ["a"] } } }] },
      ],
    });
    // The OpenAI mock echoes the last user text; what matters is the turn it was sent.
    expect(second.text).toBe("[openai] you said: list files");
    const sent = openai.requests.at(-1)!.body;
    expect(sent.messages.at(-2)).toMatchObject({ role: "assistant", content: null, tool_calls: [{ id: call.id, type: "function", function: { name: "ls", arguments: JSON.stringify(call.args) } }] });
    expect(sent.messages.at(-1)).toEqual({ role: "tool", tool_call_id: call.id, content: '{"files":["a"]}' });
  });

  it("streams a function call whole in the last event, with the finish reason and usage", async () => {
    const tools = [{ functionDeclarations: [{ name: "ls", description: "list", parametersJsonSchema: { type: "object", properties: { path: { type: "string" } } } }] }];
    const chunks: GenerateContentResponse[] = [];
    for await (const c of await genai().models.generateContentStream({ model: "gpt-behind-gemini", contents: "list files", config: { tools } })) chunks.push(c);
    const last = chunks.at(-1)!;
    expect(last.functionCalls?.[0]).toMatchObject({ name: "ls" });
    expect(last.candidates![0].finishReason).toBe("STOP");
    expect(last.usageMetadata!.totalTokenCount).toBeGreaterThan(0);
  });

  it("refuses topK by name (chat has none), in Google's shape", async () => {
    const res = await post("/v1beta/models/gpt-behind-gemini:generateContent", CLI_REQUEST);
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT" } });
    expect(body.error.message).toContain("'generationConfig.topK'");
  });

  it("fails over from the Gemini account (relayed) to the OpenAI one (translated)", async () => {
    gem.queue.push({ kind: "status", status: 503 });
    const res = await genai().models.generateContent({ model: "mixed", contents: "hello" });
    expect(res.text).toBe("[openai] you said: hello");
  });

  it("estimates countTokens where no Gemini account serves, and says so", async () => {
    const res = await post("/v1beta/models/gpt-behind-gemini:countTokens", { contents: [{ role: "user", parts: [{ text: "count me" }] }] });
    expect(res.headers.get("x-gwc-estimate")).toBe("characters/4");
    expect((await res.json()).totalTokens).toBeGreaterThan(0);
  });
});
