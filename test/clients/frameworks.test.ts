// The Vercel AI SDK (`ai` with @ai-sdk/openai and @ai-sdk/anthropic) and
// LangChain (@langchain/openai) against gwc processes in front of each wire
// format.
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, streamText } from "ai";
import { describe, expect, it } from "vitest";
import { CLIENT_KEY, UPSTREAM_KEYS, fleetForSuite } from "./harness.ts";
import { needs } from "./features.ts";

const f = fleetForSuite();

const last = <T>(xs: T[]) => xs[xs.length - 1];
const openaiOn = (url: string) => createOpenAI({ baseURL: `${url}/v1`, apiKey: CLIENT_KEY });
const anthropicOn = (url: string) => createAnthropic({ baseURL: `${url}/anthropic/v1`, apiKey: CLIENT_KEY });
const langchainOn = (url: string, extra: object = {}) => new ChatOpenAI({ model: "gpt-4o", apiKey: CLIENT_KEY, configuration: { baseURL: `${url}/v1` }, maxRetries: 0, ...extra });
const SCHEMA = { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city", "days"], additionalProperties: false };

describe("Vercel AI SDK", () => {
  needs("responsesApi")("openai() (the Responses API) to an OpenAI upstream: passthrough, text and usage as answered", async () => {
    const res = await generateText({ model: openaiOn(f.gw.openai.url)("gpt-5"), prompt: "hi", maxRetries: 0 });
    const up = last(f.openai.requests);
    expect(up.path).toBe("/v1/responses");
    expect(up.headers.authorization).toBe(`Bearer ${UPSTREAM_KEYS.openai}`);
    expect(res.text).toBe("[openai] you said: hi");
    expect(res.usage.inputTokens).toBe(last(f.openai.answers).body.usage.input_tokens);
    const streamed = streamText({ model: openaiOn(f.gw.openai.url)("gpt-5"), prompt: "stream it", maxRetries: 0 });
    expect(await streamed.text).toBe("[openai] you said: stream it");
  });

  needs("responsesApi")("openai() (the Responses API) to an Anthropic upstream is translated", async () => {
    const res = await generateText({ model: openaiOn(f.gw.anthropic.url)("claude-sonnet-4-6"), prompt: "hi", maxRetries: 0 });
    expect(res.text).toBe("[claude] you said: hi");
  });

  it("openai.chat() to an OpenAI upstream, and translated to an Anthropic and a Gemini upstream", async () => {
    for (const [format, name] of [["openai", "openai"], ["anthropic", "claude"], ["gemini", "gemini"]] as const) {
      const res = await generateText({ model: openaiOn(f.gw[format].url).chat("m"), prompt: "hi", maxRetries: 0 });
      expect(res.text, format).toBe(`[${name}] you said: hi`);
      const streamed = streamText({ model: openaiOn(f.gw[format].url).chat("m"), prompt: "stream it", maxRetries: 0 });
      expect(await streamed.text, format).toBe(`[${name}] you said: stream it`);
    }
  });

  needs("anthropicPassthrough")("anthropic() to an Anthropic upstream: thinking and cache usage come back as the upstream sent them", async () => {
    const model = anthropicOn(f.gw.anthropic.url)("claude-sonnet-4-6");
    const call = () =>
      generateText({
        model,
        maxRetries: 0,
        messages: [
          { role: "system", content: "You are terse. ".repeat(40), providerOptions: { anthropic: { cacheControl: { type: "ephemeral" } } } },
          { role: "user", content: "hi" },
        ],
        providerOptions: { anthropic: { thinking: { type: "enabled", budgetTokens: 1024 } } },
      });
    const first = await call();
    const answered = last(f.anthropic.answers).message;
    expect(last(f.anthropic.requests).headers["x-api-key"]).toBe(UPSTREAM_KEYS.anthropic);
    expect(last(f.anthropic.requests).body.thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
    expect(first.text).toBe("[claude] you said: hi");
    expect(first.reasoningText).toBe(answered.content[0].thinking);
    expect(first.providerMetadata?.anthropic?.cacheCreationInputTokens).toBe(answered.usage.cache_creation_input_tokens);
    const second = await call();
    expect(second.usage.inputTokens).toBe(last(f.anthropic.answers).message.usage.input_tokens + answered.usage.cache_creation_input_tokens);
    expect(second.usage.cachedInputTokens).toBe(answered.usage.cache_creation_input_tokens);
  });

  it("anthropic() to an OpenAI upstream is translated", async () => {
    const res = await generateText({ model: anthropicOn(f.gw.openai.url)("gpt-4o"), prompt: "hi", maxRetries: 0 });
    expect(res.text).toBe("[openai] you said: hi");
  });
});

describe("LangChain", () => {
  it("chat to an OpenAI upstream, and translated to an Anthropic and a Gemini upstream", async () => {
    for (const [format, name] of [["openai", "openai"], ["anthropic", "claude"], ["gemini", "gemini"]] as const) {
      const res = await langchainOn(f.gw[format].url).invoke("hi");
      expect(res.content, format).toBe(`[${name}] you said: hi`);
      expect(res.usage_metadata?.input_tokens, format).toBeGreaterThan(0);
    }
  });

  it("withStructuredOutput to an OpenAI upstream: the json_schema arrives and the answer parses", async () => {
    const out = await langchainOn(f.gw.openai.url).withStructuredOutput(SCHEMA, { name: "trip" }).invoke("plan a trip");
    expect(last(f.openai.requests).body.response_format).toMatchObject({ type: "json_schema", json_schema: { name: "trip", schema: SCHEMA } });
    expect(out).toEqual({ city: "plan a trip", days: 1 });
  });

  needs("structuredOutputToAnthropic")("withStructuredOutput to an Anthropic upstream: the schema is carried (not dropped) and the answer parses", async () => {
    const out = await langchainOn(f.gw.anthropic.url).withStructuredOutput(SCHEMA, { name: "trip" }).invoke("plan a trip");
    expect(out).toMatchObject({ city: expect.any(String), days: expect.any(Number) });
    const sent = last(f.anthropic.requests).body;
    expect(JSON.stringify(sent)).toContain('"days"');
  });

  needs("responsesApi")("useResponsesApi to an OpenAI upstream (passthrough) and to an Anthropic upstream (translated)", async () => {
    const viaOpenAI = await langchainOn(f.gw.openai.url, { model: "gpt-5", useResponsesApi: true }).invoke("hi");
    expect(last(f.openai.requests).path).toBe("/v1/responses");
    expect(viaOpenAI.text).toBe("[openai] you said: hi");
    const viaAnthropic = await langchainOn(f.gw.anthropic.url, { model: "claude-sonnet-4-6", useResponsesApi: true }).invoke("hi");
    expect(viaAnthropic.text).toBe("[claude] you said: hi");
  });
});
