// The OpenAI-compatible providers: one wire format, each with its own default
// base URL and key variable. Every one serves a chat through the real gateway
// and the official `openai` client, and the upstream sees that provider's key
// (or no Authorization header at all for the keyless local servers).
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/compile.ts";
import { PROVIDERS } from "../../compiler/provider-defaults.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { relay } from "../mocks/azure-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

/** Each OpenAI-compatible provider, its key variable (the one its SDK or docs use) and a model it serves. */
const FAMILY: [provider: string, keyEnv: string | null, model: string][] = [
  ["groq", "GROQ_API_KEY", "llama-3.3-70b-versatile"],
  ["mistral", "MISTRAL_API_KEY", "mistral-large-latest"],
  ["deepseek", "DEEPSEEK_API_KEY", "deepseek-chat"],
  ["xai", "XAI_API_KEY", "grok-3-mini"],
  ["together", "TOGETHER_API_KEY", "meta-llama/Llama-3.3-70B-Instruct-Turbo"],
  ["fireworks", "FIREWORKS_API_KEY", "accounts/fireworks/models/llama-v3p1-8b-instruct"],
  ["openrouter", "OPENROUTER_API_KEY", "openai/gpt-4o-mini"],
  ["cerebras", "CEREBRAS_API_KEY", "llama3.1-8b"],
  ["perplexity", "PERPLEXITY_API_KEY", "sonar"],
  ["nebius", "NEBIUS_API_KEY", "meta-llama/Meta-Llama-3.1-70B-Instruct"],
  ["ollama", null, "llama3.2"],
  ["vllm", null, "Qwen/Qwen2.5-7B-Instruct"],
  ["openai-compatible", null, "local-model"],
];

/**
 * Default base URLs as each provider's SDK or OpenAI-compatibility docs give
 * them: the OpenAI client's `baseURL` (ending in /v1, or the provider's own
 * prefix before it), except Perplexity, whose API has no version segment.
 */
const BASE_URLS: Record<string, string> = {
  openai: "https://api.openai.com/v1",
  groq: "https://api.groq.com/openai/v1",
  mistral: "https://api.mistral.ai/v1",
  deepseek: "https://api.deepseek.com/v1",
  xai: "https://api.x.ai/v1",
  together: "https://api.together.xyz/v1",
  fireworks: "https://api.fireworks.ai/inference/v1",
  openrouter: "https://openrouter.ai/api/v1",
  cerebras: "https://api.cerebras.ai/v1",
  perplexity: "https://api.perplexity.ai",
  nebius: "https://api.studio.nebius.com/v1",
  ollama: "http://127.0.0.1:11434/v1",
  vllm: "http://127.0.0.1:8000/v1",
  "openai-compatible": "",
};

describe("the provider table", () => {
  it("lists at least 20 providers, exactly the ones the schema names", () => {
    const schema = JSON.parse(readFileSync("schemas/gateway.schema.json", "utf8")) as { $defs: { providerName: { enum: string[] } } };
    expect(Object.keys(PROVIDERS).length).toBeGreaterThanOrEqual(20);
    expect(Object.keys(PROVIDERS).sort()).toEqual([...schema.$defs.providerName.enum].sort());
  });

  it("gives every OpenAI-compatible provider the SDK's base URL and key variable", () => {
    const compatible = Object.entries(PROVIDERS).filter(([, d]) => d.wire === "openai");
    expect(compatible.map(([name]) => name).sort()).toEqual(Object.keys(BASE_URLS).sort());
    for (const [name, d] of compatible) {
      expect(d.baseUrl, name).toBe(BASE_URLS[name]);
      if (d.baseUrl === "") continue;
      const url = new URL(d.baseUrl);
      expect(url.pathname.endsWith("/v1") || name === "perplexity", `${name}: ${d.baseUrl}`).toBe(true);
      expect(url.protocol, name).toBe(url.hostname === "127.0.0.1" ? "http:" : "https:");
      expect(d.baseUrl.endsWith("/"), name).toBe(false);
    }
    for (const [name, keyEnv] of FAMILY) expect(PROVIDERS[name].apiKeyEnv, name).toBe(keyEnv);
    expect(PROVIDERS.openai.apiKeyEnv).toBe("OPENAI_API_KEY");
  });

  it("follows each other SDK's convention", () => {
    // Anthropic's SDK adds /v1/messages itself; Gemini's and Cohere's add their version paths.
    expect(PROVIDERS.anthropic).toMatchObject({ wire: "anthropic", baseUrl: "https://api.anthropic.com", apiKeyEnv: "ANTHROPIC_API_KEY" });
    expect(PROVIDERS.gemini).toMatchObject({ wire: "gemini", baseUrl: "https://generativelanguage.googleapis.com", apiKeyEnv: "GEMINI_API_KEY" });
    expect(PROVIDERS.cohere).toMatchObject({ wire: "cohere", baseUrl: "https://api.cohere.com", apiKeyEnv: "CO_API_KEY" });
    // Regional endpoints carry the region; Azure's is per resource, so the account must name it.
    expect(PROVIDERS.vertex).toMatchObject({ wire: "vertex", baseUrl: "https://{region}-aiplatform.googleapis.com", region: "us-central1" });
    expect(PROVIDERS.bedrock).toMatchObject({ wire: "bedrock", baseUrl: "https://bedrock-runtime.{region}.amazonaws.com", region: "us-east-1", apiKeyEnv: "AWS_SECRET_ACCESS_KEY" });
    expect(PROVIDERS.azure).toMatchObject({ wire: "azure", baseUrl: "", apiKeyEnv: "AZURE_OPENAI_API_KEY" });
    for (const [name, d] of Object.entries(PROVIDERS)) {
      if (d.baseUrl.includes("{region}")) expect(d.region, name).toBeDefined();
    }
  });

  it("makes an openai-compatible account name its base_url, and fills the others' defaults", () => {
    const without = compileSource(JSON.stringify({ accounts: [{ id: "local", provider: "openai-compatible" }] }), "c.json");
    expect(without.plan).toBeUndefined();
    expect(without.diagnostics.map((d) => d.code)).toContain("GWC_E_BASE_URL_REQUIRED");
    const groq = compileSource(JSON.stringify({ accounts: [{ id: "g", provider: "groq" }, { id: "p", provider: "perplexity" }] }), "c.json");
    expect(groq.plan!.accounts.map((a) => [a.baseUrl, a.apiKeyEnv, a.wire])).toEqual([
      ["https://api.groq.com/openai/v1", "GROQ_API_KEY", "openai"],
      ["https://api.perplexity.ai", "PERPLEXITY_API_KEY", "openai"],
    ]);
  });
});

// ---------------------------------------------------------------------------
// One chat per provider, through the real gateway
// ---------------------------------------------------------------------------

let mock: MockUpstream;
/** A front for keyless servers: records what arrived, then lets the (key-checking) mock answer. */
let front: Server;
let frontSeen: { path: string; headers: IncomingMessage["headers"] }[] = [];
let frontUrl: string;
let gw: RunningGateway;
let client: OpenAI;

const keyOf = (provider: string) => `key-for-${provider}`;

beforeAll(async () => {
  mock = await startOpenAIUpstream({ name: "family", stream: { chunks: 3 } });
  front = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      frontSeen.push({ path: req.url ?? "", headers: { ...req.headers } });
      void relay(mock.url, { path: req.url ?? "/", headers: { "content-type": "application/json", authorization: "Bearer keyless-front" }, body: Buffer.concat(parts) }, res);
    });
  });
  await new Promise<void>((ok) => front.listen(0, "127.0.0.1", ok));
  frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}/v1`;

  const env: Record<string, string> = {};
  for (const [provider, keyEnv] of FAMILY) if (keyEnv !== null) env[keyEnv] = keyOf(provider);
  gw = await startGateway(
    {
      accounts: FAMILY.map(([provider, keyEnv, model]) => ({ id: provider, provider, base_url: keyEnv === null ? frontUrl : mock.url, model })),
      routes: FAMILY.map(([provider]) => ({ model: `via-${provider}`, targets: [{ account: provider }] })),
    },
    env,
  );
  client = new OpenAI({ baseURL: gw.v1, apiKey: "caller-key", maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await new Promise((ok) => front.close(ok));
  await mock.close();
});

describe("one chat per OpenAI-compatible provider", () => {
  it.each(FAMILY)("%s (key in %s) serves a chat", async (provider, keyEnv, model) => {
    const frontBefore = frontSeen.length;
    const { data, response } = await client.chat.completions.create({ model: `via-${provider}`, messages: [{ role: "user", content: `hi ${provider}` }] }).withResponse();
    expect(data.choices[0].message.content).toBe(`[family] you said: hi ${provider}`);
    expect(data.model).toBe(model);
    expect(response.headers.get("x-gwc-account")).toBe(provider);
    const seen = mock.requests.at(-1)!;
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.body.model).toBe(model);
    if (keyEnv !== null) {
      expect(seen.headers.authorization).toBe(`Bearer ${keyOf(provider)}`);
      expect(frontSeen.length).toBe(frontBefore);
    } else {
      // Keyless: the gateway sent no Authorization header at all (the front added one for the mock).
      expect(frontSeen.length).toBe(frontBefore + 1);
      expect(frontSeen.at(-1)!.path).toBe("/v1/chat/completions");
      expect(frontSeen.at(-1)!.headers.authorization).toBeUndefined();
      expect(seen.headers.authorization).toBe("Bearer keyless-front");
    }
  });

  it("streams from a keyless local server with usage", async () => {
    const stream = await client.chat.completions.create({ model: "via-ollama", messages: [{ role: "user", content: "stream" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("[family] you said: stream");
    expect(usage?.completion_tokens).toBe(3);
    expect(frontSeen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it("never sends the caller's key upstream", () => {
    expect(mock.requests.some((r) => String(r.headers.authorization).includes("caller-key"))).toBe(false);
    expect(frontSeen.some((r) => String(r.headers.authorization).includes("caller-key"))).toBe(false);
  });
});

describe("SSE framing of OpenAI-compatible servers", () => {
  // SSE lines may end in CRLF (servers behind some proxies and frameworks send "\r\n\r\n").
  it("relays a stream whose events end in CRLF", async () => {
    const body =
      `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\r\n\r\n` +
      `data: [DONE]\r\n\r\n`;
    const crlf = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(body);
      });
    });
    await new Promise<void>((ok) => crlf.listen(0, "127.0.0.1", ok));
    const local = await startGateway({ accounts: [{ id: "v", provider: "vllm", base_url: `http://127.0.0.1:${(crlf.address() as AddressInfo).port}/v1` }] }, {});
    try {
      const c = new OpenAI({ baseURL: local.v1, apiKey: "k", maxRetries: 0 });
      const stream = await c.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }], stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      expect(text).toBe("ok");
    } finally {
      await local.close();
      await new Promise((ok) => crlf.close(ok));
    }
  });
});
