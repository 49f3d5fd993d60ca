// OpenAI's chat and legacy completions to accounts of other formats, through
// the official openai client: each field mapped, or refused by name (never
// dropped silently), `n` served by n calls where the provider gives one choice,
// and an account's pinned chat model kept off embeddings.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RequestRecord } from "../../runtime/request-record.ts";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startGeminiUpstream, type GeminiMock } from "../mocks/gemini-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, until, type RunningGateway } from "../runtime/harness.ts";

const KEY = "gwc-cross-0123456789";
let claude: MockAnthropicUpstream;
let gem: GeminiMock;
let openai: MockUpstream;
let gw: RunningGateway;
let client: OpenAI;
const records: RequestRecord[] = [];

beforeAll(async () => {
  claude = await startAnthropicUpstream({ name: "claude", stream: { chunks: 3 } });
  gem = await startGeminiUpstream({ name: "gem", stream: { chunks: 3 } });
  openai = await startOpenAIUpstream({ name: "openai" });
  gw = await startGateway(
    {
      accounts: [
        { id: "claude", provider: "anthropic", base_url: claude.url, api_key: "${ANTHROPIC_API_KEY}", model: "claude-sonnet-4-6" },
        { id: "gem", provider: "gemini", base_url: gem.url, api_key: "${GEMINI_API_KEY}", model: "gemini-2.5-flash" },
        // Pinned to a chat model; the catch-all route sends embeddings here.
        { id: "gpt", provider: "openai", base_url: openai.url, model: "gpt-4o" },
      ],
      routes: [
        { model: "claude", targets: [{ account: "claude" }] },
        { model: "claude-lenient", targets: [{ account: "claude" }], drop_unsupported_params: true },
        { model: "gemini", targets: [{ account: "gem" }] },
        { model: "*", targets: [{ account: "gpt" }] },
      ],
      pricing: Object.fromEntries(
        ["claude-sonnet-4-6", "gemini-2.5-flash", "gpt-4o", "text-embedding-3-small"].map((m) => [m, { input_per_mtok_usd: 1, output_per_mtok_usd: 1 }]),
      ),
      virtual_keys: [{ id: "k", key: "${GWC_KEY}", budget: { daily_limit_usd: 100 } }],
    },
    { ANTHROPIC_API_KEY: "sk-ant", GEMINI_API_KEY: "AIza-g", OPENAI_API_KEY: "sk-o", GWC_KEY: KEY },
  );
  gw.runtime.observers.push((r) => records.push(r));
  client = new OpenAI({ baseURL: gw.v1, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await claude.close();
  await gem.close();
  await openai.close();
});

describe("chat to Anthropic: mapped or refused by name", () => {
  it("maps response_format json_schema to structured output and reasoning_effort to effort", async () => {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false };
    await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "where?" }],
      response_format: { type: "json_schema", json_schema: { name: "place", schema, strict: true } },
      reasoning_effort: "low",
    });
    expect(claude.requests.at(-1)!.body.output_config).toEqual({ format: { type: "json_schema", schema }, effort: "low" });
  });

  it("refuses logprobs and json_object with a 400 naming the field", async () => {
    await expect(client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "x" }], logprobs: true })).rejects.toMatchObject({
      status: 400,
      code: "unsupported_parameter",
      param: "logprobs",
    });
    await expect(client.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "x" }], response_format: { type: "json_object" } })).rejects.toMatchObject({
      status: 400,
      param: "response_format",
    });
  });

  it("drops them where the route allows, and names them", async () => {
    const { response } = await client.chat.completions
      .create({ model: "claude-lenient", messages: [{ role: "user", content: "x" }], logprobs: true, frequency_penalty: 0.5, store: true })
      .withResponse();
    expect(response.headers.get("x-gwc-dropped-params")).toBe("logprobs, frequency_penalty, store");
    expect(claude.requests.at(-1)!.body).not.toHaveProperty("logprobs");
  });

  it("serves n by n calls, merged, usage summed and every call reserved and billed", async () => {
    records.length = 0;
    const before = claude.requests.length;
    const res = await client.chat.completions.create({ model: "claude", n: 3, messages: [{ role: "user", content: "three please" }] });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(res.choices.every((c) => c.message.content === "[claude] you said: three please")).toBe(true);
    expect(claude.requests.length - before).toBe(3);
    const upstream = claude.answers.slice(-3).map((a) => a.message.usage);
    expect(res.usage!.completion_tokens).toBe(upstream.reduce((a, u) => a + u.output_tokens, 0));
    expect(res.usage!.prompt_tokens).toBe(upstream.reduce((a, u) => a + u.input_tokens, 0));
    await until(() => records.length === 1);
    expect(records[0].attempts).toHaveLength(3);
    expect(records[0].usage!.outputTokens).toBe(res.usage!.completion_tokens);
    expect(records[0].costNanoUsd).toBe((res.usage!.prompt_tokens + res.usage!.completion_tokens) * 1000);
  });

  it("refuses n on a stream to Anthropic, naming it", async () => {
    await expect(client.chat.completions.create({ model: "claude", n: 2, stream: true, messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({ status: 400, param: "n" });
  });
});

describe("legacy completions to accounts without them", () => {
  it("answers a text_completion from Anthropic, JSON and stream", async () => {
    const res = await client.completions.create({ model: "claude", prompt: "say hi", max_tokens: 50 });
    expect(res.object).toBe("text_completion");
    expect(res.choices[0].text).toBe("[claude] you said: say hi");
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    expect(claude.requests.at(-1)!.body).toMatchObject({ max_tokens: 50, messages: [{ role: "user", content: "say hi" }] });
    let text = "";
    for await (const c of await client.completions.create({ model: "claude", prompt: "stream hi", stream: true })) text += c.choices[0]?.text ?? "";
    expect(text).toBe("[claude] you said: stream hi");
    // The legacy default of 16 tokens, as OpenAI applies it.
    expect(claude.requests.at(-1)!.body.max_tokens).toBe(16);
  });

  it("answers a text_completion from Gemini", async () => {
    const res = await client.completions.create({ model: "gemini", prompt: "say hi", max_tokens: 50 });
    expect(res.choices[0].text).toBe("[gem] you said: say hi");
  });

  it("relays to an OpenAI-format account as it came", async () => {
    const res = await client.completions.create({ model: "gpt-4o", prompt: ["a", "b"], max_tokens: 5 });
    expect(openai.requests.at(-1)!.path).toBe("/v1/completions");
    expect(res.choices.length).toBeGreaterThan(0);
  });

  it("refuses what one chat turn cannot carry", async () => {
    await expect(client.completions.create({ model: "claude", prompt: ["a", "b"] })).rejects.toMatchObject({ status: 400, param: "prompt" });
    await expect(client.completions.create({ model: "claude", prompt: "a", suffix: "z" })).rejects.toMatchObject({ status: 400, param: "suffix" });
  });
});

describe("embeddings on the catch-all route", () => {
  it("keep the model they name rather than the account's pinned chat model", async () => {
    await client.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
    expect(openai.requests.at(-1)!.body.model).toBe("text-embedding-3-small");
    await client.chat.completions.create({ model: "anything", messages: [{ role: "user", content: "x" }] });
    expect(openai.requests.at(-1)!.body.model).toBe("gpt-4o");
  });
});

describe("model lists", () => {
  it("include what passthrough accounts' upstreams serve, on every surface", async () => {
    const a = await startAnthropicUpstream({ name: "a" });
    const o = await startOpenAIUpstream({ name: "o" });
    const g = await startGateway(
      {
        accounts: [
          { id: "a", provider: "anthropic", base_url: a.url, api_key: "${ANTHROPIC_API_KEY}" },
          { id: "o", provider: "openai", base_url: o.url },
        ],
      },
      { ANTHROPIC_API_KEY: "sk-ant", OPENAI_API_KEY: "sk-o" },
    );
    try {
      const upstreamOpenAI = (await (await fetch(`${o.url}/models`, { headers: { authorization: "Bearer sk-o" } })).json()).data.map((m: { id: string }) => m.id);
      const upstreamAnthropic = (await (await fetch(`${a.url}/v1/models`, { headers: { "x-api-key": "sk-ant", "anthropic-version": "2023-06-01" } })).json()).data.map((m: { id: string }) => m.id);
      const listed = (await new OpenAI({ baseURL: g.v1, apiKey: "k" }).models.list()).data.map((m) => m.id);
      expect(listed).toEqual(expect.arrayContaining([...upstreamOpenAI, ...upstreamAnthropic]));
      const viaAnthropic = (await (await fetch(`${g.url}/anthropic/v1/models`)).json()).data.map((m: { id: string }) => m.id);
      expect(viaAnthropic).toEqual(expect.arrayContaining(upstreamAnthropic));
    } finally {
      await g.close();
      await a.close();
      await o.close();
    }
  });
});
