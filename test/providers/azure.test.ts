// Azure OpenAI behind the gateway: the adapter's request (deployment path,
// api-version, api-key), Azure's error bodies, the relay of Azure's streams
// under any chunking, and the whole path through the real gateway with the
// official `openai` client against an Azure-speaking mock.
import fc from "fast-check";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AccountContext, InboundRequest } from "../../runtime/providers/adapter.ts";
import { azureAdapter } from "../../runtime/providers/azure.ts";
import { adapterFor } from "../../runtime/providers/index.ts";
import { AZURE_API_VERSION } from "../../compiler/provider-defaults.ts";
import { startAzureUpstream, type AzureMock } from "../mocks/azure-upstream.ts";
import type { Behavior } from "../mocks/openai-upstream.ts";
import { compile, startGateway, type RunningGateway } from "../runtime/harness.ts";

const account: AccountContext = { baseUrl: "https://res.openai.azure.com", basePath: "", apiKey: "az-key", options: { api_version: "2024-10-21" } };

function inbound(json: Record<string, unknown>, endpoint: InboundRequest["endpoint"] = "chat", injectUsage = false): InboundRequest {
  const raw = Buffer.from(JSON.stringify(json));
  return { endpoint, raw, json, stream: json.stream === true, injectUsage };
}

const weatherTool = {
  type: "function" as const,
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};

describe("the Azure adapter", () => {
  it("is the adapter registered for the azure wire, and relays OpenAI's shapes", () => {
    expect(adapterFor("azure")).toBe(azureAdapter);
    expect(azureAdapter.response).toBeUndefined();
    expect(azureAdapter.stream).toBeUndefined();
    expect(["chat", "completions", "embeddings"].every((e) => azureAdapter.supports(e as InboundRequest["endpoint"]))).toBe(true);
  });

  it("posts to the deployment with api-version and the key in api-key", async () => {
    const req = inbound({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    const up = await azureAdapter.request(req, account, "my-gpt4o-deployment");
    expect(up.path).toBe("/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21");
    expect(up.headers["api-key"]).toBe("az-key");
    expect(up.headers).not.toHaveProperty("authorization");
    expect(up.headers["content-type"]).toBe("application/json");
    // The body goes as it came, as the AzureOpenAI SDK sends it (model included; the path decides).
    expect(up.body).toBe(req.raw);
  });

  it.each([
    ["completions", "/openai/deployments/d/completions?api-version=2024-10-21"],
    ["embeddings", "/openai/deployments/d/embeddings?api-version=2024-10-21"],
  ] as const)("builds the %s path", async (endpoint, path) => {
    expect((await azureAdapter.request(inbound({ model: "x" }, endpoint), account, "d")).path).toBe(path);
  });

  it("accepts the endpoint with or without /openai, under a path, and escapes the deployment", async () => {
    const req = inbound({ model: "x", messages: [] });
    expect((await azureAdapter.request(req, { ...account, basePath: "/openai" }, "d")).path).toBe("/openai/deployments/d/chat/completions?api-version=2024-10-21");
    expect((await azureAdapter.request(req, { ...account, basePath: "/gw" }, "d")).path).toBe("/gw/openai/deployments/d/chat/completions?api-version=2024-10-21");
    expect((await azureAdapter.request(req, account, "a b/c")).path).toBe("/openai/deployments/a%20b%2Fc/chat/completions?api-version=2024-10-21");
    expect((await azureAdapter.request(req, { ...account, options: { api_version: "2025-04-01-preview" } }, "d")).path).toMatch(/\?api-version=2025-04-01-preview$/);
  });

  it("asks for streamed usage when the gateway needs it, keeping the rest of the body", async () => {
    const json = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_obfuscation: false }, temperature: 0 };
    const up = await azureAdapter.request(inbound(json, "chat", true), account, "dep");
    expect(up.headers.accept).toBe("text/event-stream");
    expect(JSON.parse(String(up.body))).toEqual({ ...json, stream_options: { include_obfuscation: false, include_usage: true } });
  });

  it("reads OpenAI's usage", () => {
    expect(azureAdapter.usage({ usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14, prompt_tokens_details: { cached_tokens: 2 } } })).toEqual({ input: 10, output: 4, cached: 2 });
    expect(azureAdapter.usage({ choices: [], prompt_filter_results: [] })).toBeUndefined();
  });

  it("finds the message in Azure error bodies", () => {
    const msg = (body: string) => azureAdapter.classify(400, {}, body).message;
    expect(msg('{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded token rate limit."}}')).toBe(
      "Requests to the ChatCompletions_Create Operation have exceeded token rate limit.",
    );
    expect(msg('{"error":{"message":"The response was filtered","code":"content_filter","innererror":{"code":"ResponsibleAIPolicyViolation"}}}')).toBe(
      "The response was filtered (ResponsibleAIPolicyViolation)",
    );
    expect(msg('{"error":{"code":"DeploymentNotFound"}}')).toBe("DeploymentNotFound");
    expect(msg('{"statusCode":429,"message":"Rate limit is exceeded. Try again in 1 seconds."}')).toBe("Rate limit is exceeded. Try again in 1 seconds.");
    expect(msg("<html>Bad Gateway</html>")).toBe("<html>Bad Gateway</html>");
  });

  it("gets api_version 2024-10-21 by default from the compiler", () => {
    const plan = compile({ accounts: [{ id: "az", provider: "azure", base_url: "https://res.openai.azure.com", model: "dep" }] });
    expect(plan.accounts[0].options).toContainEqual(["api_version", AZURE_API_VERSION]);
    expect(AZURE_API_VERSION).toBe("2024-10-21");
    expect(plan.accounts[0].apiKeyEnv).toBe("AZURE_OPENAI_API_KEY");
  });
});

// ---------------------------------------------------------------------------
// Through the real gateway
// ---------------------------------------------------------------------------

const ENV = { AZURE_OPENAI_API_KEY: "az-test-key", AZURE_BACKUP_KEY: "az-backup-key" };
let az: AzureMock;
let backup: AzureMock;

function config() {
  return {
    accounts: [
      { id: "az", provider: "azure", base_url: az.url, model: "my-gpt4o-deployment", api_version: "2024-10-21" },
      { id: "az-backup", provider: "azure", base_url: backup.url, model: "backup-deployment", api_key: "${AZURE_BACKUP_KEY}", api_version: "2025-04-01-preview", weight: 0 },
    ],
    routes: [
      { model: "gpt-4o", targets: [{ account: "az" }, { account: "az-backup", weight: 0 }] },
      { model: "text-embedding-3-small", targets: [{ account: "az", model: "embeddings-deployment" }] },
      { model: "gpt-35-turbo-instruct", targets: [{ account: "az", model: "instruct-deployment" }] },
    ],
  };
}

beforeAll(async () => {
  az = await startAzureUpstream({ name: "az", stream: { chunks: 5 }, deployments: ["my-gpt4o-deployment", "embeddings-deployment", "instruct-deployment"] });
  backup = await startAzureUpstream({ name: "az-backup", modelName: "gpt-4o-mini-2024-07-18" });
});

afterAll(async () => {
  await az.close();
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

  it("answers a chat from the deployment, with the key in api-key", async () => {
    const { data, response } = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] }).withResponse();
    expect(data.choices[0].message.content).toBe("[az] you said: hello");
    expect(data.model).toBe("gpt-4o-2024-08-06");
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect((data as unknown as { prompt_filter_results: unknown[] }).prompt_filter_results).toHaveLength(1);
    expect(response.headers.get("x-gwc-account")).toBe("az");
    const seen = az.requests.at(-1)!;
    expect(seen.path).toBe("/openai/deployments/my-gpt4o-deployment/chat/completions");
    expect(seen.apiVersion).toBe("2024-10-21");
    expect(seen.headers["api-key"]).toBe("az-test-key");
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.body).toEqual({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
  });

  it("carries a multi-turn conversation with a system prompt", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: "system", content: "You are terse." },
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Hello Ada." },
      { role: "user", content: "What is my name?" },
    ];
    const res = await client.chat.completions.create({ model: "gpt-4o", messages, max_tokens: 20 });
    expect(res.choices[0].message.content).toBe("[az] you said: What is my name?");
    expect(az.requests.at(-1)!.body.messages).toEqual(messages);
  });

  it("makes a tool call round trip", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Oslo?" }];
    const first = await client.chat.completions.create({ model: "gpt-4o", messages, tools: [weatherTool] });
    expect(first.choices[0].finish_reason).toBe("tool_calls");
    const call = first.choices[0].message.tool_calls![0];
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.function.name).toBe("get_weather");
    messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: '{"temp_c":4}' });
    const second = await client.chat.completions.create({ model: "gpt-4o", messages, tools: [weatherTool] });
    expect(second.choices[0].finish_reason).toBe("stop");
    expect(second.choices[0].message.content).toBe("[az] you said: Weather in Oslo?");
    const sent = az.requests.at(-1)!.body.messages;
    expect(sent[1].tool_calls[0].id).toBe(call.id);
    expect(sent[2]).toEqual({ role: "tool", tool_call_id: call.id, content: '{"temp_c":4}' });
  });

  it("streams with include_usage, past Azure's prompt-filter event", async () => {
    const stream = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "stream please" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let filtered = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      if ((chunk as unknown as { prompt_filter_results?: unknown }).prompt_filter_results) filtered++;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("[az] you said: stream please");
    expect(filtered).toBe(1);
    expect(usage?.completion_tokens).toBe(5);
    expect(az.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });
  });

  it("serves embeddings and legacy completions from their deployments", async () => {
    const emb = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect(emb.data).toHaveLength(2);
    expect(az.requests.at(-1)!.path).toBe("/openai/deployments/embeddings-deployment/embeddings");
    const completion = await client.completions.create({ model: "gpt-35-turbo-instruct", prompt: "say hi" });
    expect(completion.choices[0].text).toBe("[az] you said: say hi");
    expect(az.requests.at(-1)!.path).toBe("/openai/deployments/instruct-deployment/completions");
  });

  it("passes a 400 through as BadRequestError with Azure's message", async () => {
    az.queue.push({ kind: "status", status: 400 });
    const before = backup.requests.length;
    const err = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("content management policy");
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("content_filter");
    expect(backup.requests.length).toBe(before);
  });
});

describe("failover away from Azure errors", () => {
  let gw: RunningGateway;
  let client: OpenAI;

  afterEach(async () => {
    await gw?.close();
    az.queue.length = 0;
    backup.queue.length = 0;
  });

  const cases: [string, Behavior][] = [
    ["429", { kind: "status", status: 429, retryAfterSeconds: 6 }],
    ["503", { kind: "status", status: 503 }],
    ["a stream that opens with an error", { kind: "stream-error-first" }],
  ];
  it.each(cases)("%s fails over to the second account", async (_, behavior) => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    az.queue.push(behavior);
    if (behavior.kind === "stream-error-first") {
      const stream = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
      expect(text).toBe("[az-backup] you said: hi");
    } else {
      const { data, response } = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).withResponse();
      expect(data.choices[0].message.content).toBe("[az-backup] you said: hi");
      expect(response.headers.get("x-gwc-account")).toBe("az-backup");
    }
    const seen = backup.requests.at(-1)!;
    expect(seen.headers["api-key"]).toBe("az-backup-key");
    expect(seen.deployment).toBe("backup-deployment");
    expect(seen.apiVersion).toBe("2025-04-01-preview");
  });

  it("carries Azure's message when every account is rate limited", async () => {
    gw = await startGateway(config(), ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    az.queue.push({ kind: "status", status: 429 });
    // The backup is the last account left: its two same-account retries meet the limit too.
    for (let i = 0; i < 3; i++) backup.queue.push({ kind: "status", status: 429, body: { statusCode: 429, message: "Rate limit is exceeded. Try again in 1 seconds." } });
    const err = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as Error).message).toContain("exceeded token rate limit");
    expect((err as Error).message).toContain("Rate limit is exceeded. Try again in 1 seconds.");
  });

  it("fails over when the key is refused, without passing Azure's text on", async () => {
    gw = await startGateway(config(), { ...ENV, AZURE_OPENAI_API_KEY: "wrong" });
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    az.queue.push({ kind: "status", status: 401 });
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    expect(res.choices[0].message.content).toBe("[az-backup] you said: hi");
  });
});

// ---------------------------------------------------------------------------
// The relay of an Azure stream under any chunking (property)
// ---------------------------------------------------------------------------

/** A recorded Azure OpenAI chat stream (api-version 2024-10-21, include_usage): prompt filter first, usage last. */
const AZURE_STREAM = [
  `data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}\n\n`,
  `data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}\n\n`,
  `data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Grüße"},"finish_reason":null,"index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}\n\n`,
  `data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":" aus Köln 🌧"},"finish_reason":null,"index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}\n\n`,
  `data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}\n\n`,
  `data: {"choices":[],"created":1733000000,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":{"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":0},"prompt_tokens":12,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":16}}\n\n`,
  `data: [DONE]\n\n`,
].join("");

describe("an Azure stream relayed under any chunking", () => {
  let replay: Server;
  let cuts: number[] = [];
  /** Milliseconds between pieces, so they travel as separate reads. */
  let pause = 1;
  let gw: RunningGateway;
  let client: OpenAI;

  beforeAll(async () => {
    // Writes the recording in the pieces `cuts` says, a tick apart so they travel separately.
    replay = createServer((req, res) => {
      req.resume();
      req.on("end", async () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.flushHeaders();
        res.socket?.setNoDelay(true);
        let at = 0;
        for (const p of [...cuts, bytes.length]) {
          res.write(bytes.subarray(at, p));
          at = p;
          await new Promise((ok) => setTimeout(ok, pause));
        }
        res.end();
      });
    });
    await new Promise<void>((ok) => replay.listen(0, "127.0.0.1", ok));
    const url = `http://127.0.0.1:${(replay.address() as AddressInfo).port}`;
    gw = await startGateway({ accounts: [{ id: "az", provider: "azure", base_url: url, model: "dep" }] }, ENV);
    client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
  });

  afterAll(async () => {
    await gw.close();
    await new Promise((ok) => replay.close(ok));
  });

  // Cut points on UTF-8 character boundaries: a character split across reads is the next test's subject.
  const bytes = Buffer.from(AZURE_STREAM);
  const boundary = (i: number) => (bytes[i] & 0xc0) !== 0x80;

  it("gives the caller the same text and Azure's reported usage (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 25 }), async (points) => {
        cuts = points.filter(boundary).sort((a, b) => a - b);
        const stream = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream: true, stream_options: { include_usage: true } });
        let text = "";
        let usage: OpenAI.CompletionUsage | null | undefined;
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta?.content ?? "";
          if (chunk.usage) usage = chunk.usage;
        }
        expect(text).toBe("Grüße aus Köln 🌧");
        expect(usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 });
      }),
      { numRuns: 40 },
    );
  });

  // A character whose bytes arrive in two network reads must reach the caller whole.
  it("keeps a multi-byte character whose bytes arrive in two reads", async () => {
    const inside = bytes.indexOf(Buffer.from("ö")) + 1;
    cuts = [inside];
    pause = 30;
    try {
      const stream = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      expect(text).toBe("Grüße aus Köln 🌧");
    } finally {
      pause = 1;
    }
  });
});
