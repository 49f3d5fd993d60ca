// The official SDKs (openai, @anthropic-ai/sdk, @google/genai) against gwc
// processes in front of each wire format: same format in and out is a
// passthrough (what was sent arrives, what was answered comes back), across
// formats the answer is translated.
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { CLIENT_KEY, UPSTREAM_KEYS, fleetForSuite } from "./harness.ts";
import { needs } from "./features.ts";

const f = fleetForSuite();

const openaiOn = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
const anthropicOn = (url: string) => new Anthropic({ baseURL: `${url}/anthropic`, apiKey: CLIENT_KEY, maxRetries: 0 });
const genaiOn = (url: string) => new GoogleGenAI({ apiKey: CLIENT_KEY, httpOptions: { baseUrl: url } });
const last = <T>(xs: T[]) => xs[xs.length - 1];

describe("openai SDK", () => {
  it("chat to an OpenAI upstream: the body arrives as sent and the answer comes back as answered", async () => {
    const params = { model: "gpt-4o", messages: [{ role: "user" as const, content: "hi" }], temperature: 0.2, n: 1, user: "u-1", seed: 7 };
    const res = await openaiOn(f.gw.openai.url).chat.completions.create(params);
    const up = last(f.openai.requests);
    expect(up.body).toEqual(params);
    expect(up.headers.authorization).toBe(`Bearer ${UPSTREAM_KEYS.openai}`);
    expect(res.choices[0].message.content).toBe("[openai] you said: hi");
    expect(res.id).toMatch(/^chatcmpl-/);
  });

  for (const format of ["anthropic", "gemini"] as const) {
    it(`chat to ${format === "anthropic" ? "an Anthropic" : "a Gemini"} upstream is translated`, async () => {
      const res = await openaiOn(f.gw[format].url).chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
      expect(res.choices[0].message.content).toBe(`[${format === "anthropic" ? "claude" : "gemini"}] you said: hi`);
      expect(res.usage!.prompt_tokens).toBeGreaterThan(0);
    });
  }

  needs("responsesApi")("responses.create to an OpenAI upstream: passthrough, ids and usage as the upstream's, a follow-up by previous_response_id", async () => {
    const client = openaiOn(f.gw.openai.url);
    const params = { model: "gpt-5", input: "hi", instructions: "be brief", reasoning: { effort: "low" as const, summary: "auto" as const }, store: true, metadata: { run: "1" } };
    const res = await client.responses.create(params);
    const up = last(f.openai.requests);
    expect(up.path).toBe("/v1/responses");
    expect(up.body).toEqual(params);
    const answered = last(f.openai.answers).body;
    expect(res.id).toBe(answered.id);
    expect(res.usage).toEqual(answered.usage);
    expect(res.output_text).toBe("[openai] you said: hi");
    const next = await client.responses.create({ model: "gpt-5", previous_response_id: res.id, input: "again" });
    expect(next.output_text).toBe("[openai] you said: again");
    expect(last(f.openai.requests).body.previous_response_id).toBe(res.id);
  });

  needs("responsesApi")("responses.create streamed from an OpenAI upstream: every event as the upstream sent it", async () => {
    const stream = await openaiOn(f.gw.openai.url).responses.create({ model: "gpt-5", input: "stream it", stream: true });
    const got: any[] = [];
    for await (const e of stream) got.push(e);
    expect(got).toEqual(last(f.openai.answers).events);
    expect(last(got).type).toBe("response.completed");
  });

  needs("responsesApi")("responses.create to an Anthropic upstream is translated, streamed with the Responses events and usage", async () => {
    const client = openaiOn(f.gw.anthropic.url);
    const res = await client.responses.create({ model: "claude-sonnet-4-6", input: "hi", instructions: "be brief" });
    expect(res.output_text).toBe("[claude] you said: hi");
    expect(last(f.anthropic.requests).body.system).toBe("be brief");
    const stream = await client.responses.create({ model: "claude-sonnet-4-6", input: "stream it", stream: true });
    const types: string[] = [];
    let done: any;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.completed") done = e.response;
    }
    expect(types[0]).toBe("response.created");
    expect(types).toContain("response.output_text.delta");
    expect(done.output_text ?? done.output[0].content[0].text).toBe("[claude] you said: stream it");
    expect(done.usage.input_tokens).toBeGreaterThan(0);
  });
});

describe("@anthropic-ai/sdk", () => {
  needs("anthropicPassthrough")("messages to an Anthropic upstream: betas, cache_control, thinking and metadata arrive; id, thinking signature and cache usage come back", async () => {
    const params = {
      model: "claude-sonnet-4-6",
      max_tokens: 2048,
      system: [{ type: "text" as const, text: "You are terse. ".repeat(40), cache_control: { type: "ephemeral" as const } }],
      messages: [{ role: "user" as const, content: "hi" }],
      thinking: { type: "enabled" as const, budget_tokens: 1024 },
      metadata: { user_id: "user-1" },
      betas: ["interleaved-thinking-2025-05-14", "context-management-2025-06-27"],
    };
    const res = await anthropicOn(f.gw.anthropic.url).beta.messages.create(params);
    const up = last(f.anthropic.requests);
    const { betas: _betas, ...body } = params;
    expect(up.body).toEqual(body);
    expect(up.headers["anthropic-beta"]).toBe("interleaved-thinking-2025-05-14,context-management-2025-06-27");
    expect(up.headers["x-api-key"]).toBe(UPSTREAM_KEYS.anthropic);
    const answered = last(f.anthropic.answers).message;
    expect(res).toEqual(answered);
    expect(res.content[0]).toMatchObject({ type: "thinking" });
    expect(res.usage.cache_creation_input_tokens).toBeGreaterThan(0);
    // The same prefix again is a cache read.
    const again = await anthropicOn(f.gw.anthropic.url).beta.messages.create(params);
    expect(again.usage.cache_read_input_tokens).toBe(res.usage.cache_creation_input_tokens);
  });

  needs("anthropicPassthrough")("streams from an Anthropic upstream event for event, message_start carrying the real usage", async () => {
    const stream = anthropicOn(f.gw.anthropic.url).messages.stream({ model: "claude-sonnet-4-6", max_tokens: 100, messages: [{ role: "user", content: [{ type: "text", text: "stream it", cache_control: { type: "ephemeral" } }] }] });
    const events: any[] = [];
    // A copy: the SDK builds its snapshot by mutating message_start's message.
    stream.on("streamEvent", (e) => events.push(structuredClone(e)));
    const final = await stream.finalMessage();
    // The SDK hands every event but `ping` to its listeners.
    const sent = last(f.anthropic.answers).events!;
    expect(events).toEqual(sent.filter((e) => e.type !== "ping"));
    expect(final.usage.cache_creation_input_tokens).toBeGreaterThan(0);
    expect((events[0] as any).message.usage.input_tokens).toBe((sent[0] as any).message.usage.input_tokens);
  });

  needs("anthropicPassthrough")("count_tokens is relayed to an Anthropic upstream", async () => {
    const params = { model: "claude-sonnet-4-6", messages: [{ role: "user" as const, content: "count me" }] };
    const res = await anthropicOn(f.gw.anthropic.url).messages.countTokens(params);
    expect(last(f.anthropic.requests).path).toBe("/v1/messages/count_tokens");
    expect(res).toEqual(last(f.anthropic.answers).body);
  });

  needs("anthropicModelList")("models are listed from an Anthropic upstream", async () => {
    const page = await anthropicOn(f.gw.anthropic.url).models.list();
    expect(page.data.map((m) => m.id)).toContain("claude-sonnet-4-6");
  });

  needs("anthropicPassthrough")("messages to an OpenAI upstream are translated (and count_tokens estimated)", async () => {
    const client = anthropicOn(f.gw.openai.url);
    const res = await client.messages.create({ model: "gpt-4o", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    expect(res.content[0]).toEqual({ type: "text", text: "[openai] you said: hi" });
    const count = await client.messages.countTokens({ model: "gpt-4o", messages: [{ role: "user", content: "count me" }] });
    expect(count.input_tokens).toBeGreaterThan(0);
  });
});

describe("@google/genai", () => {
  needs("geminiApi")("generateContent to a Gemini upstream: the body arrives as sent, the answer and its usage come back", async () => {
    const ai = genaiOn(f.gw.gemini.url);
    const res = await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi", config: { temperature: 0.3, systemInstruction: "be brief" } });
    const up = last(f.gemini.requests);
    expect(up.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(up.headers["x-goog-api-key"]).toBe(UPSTREAM_KEYS.gemini);
    expect(up.body).toEqual({ contents: [{ parts: [{ text: "hi" }], role: "user" }], systemInstruction: { parts: [{ text: "be brief" }], role: "user" }, generationConfig: { temperature: 0.3 } });
    const answered = last(f.gemini.answers).body;
    expect(res.text).toBe("[gemini] you said: hi");
    expect(res.responseId).toBe(answered.responseId);
    expect(res.usageMetadata).toEqual(answered.usageMetadata);
  });

  needs("geminiApi")("generateContentStream from a Gemini upstream (alt=sse): every chunk as sent", async () => {
    const stream = await genaiOn(f.gw.gemini.url).models.generateContentStream({ model: "gemini-2.5-flash", contents: "stream it" });
    const texts: string[] = [];
    for await (const chunk of stream) texts.push(chunk.text ?? "");
    const up = last(f.gemini.requests);
    expect(up.action).toBe("streamGenerateContent");
    expect(up.query.alt).toBe("sse");
    expect(texts).toEqual(last(f.gemini.answers).events!.map((e) => e.candidates[0].content.parts[0].text));
  });

  needs("geminiApi")("countTokens is relayed to a Gemini upstream", async () => {
    const res = await genaiOn(f.gw.gemini.url).models.countTokens({ model: "gemini-2.5-flash", contents: "count me" });
    expect(last(f.gemini.requests).action).toBe("countTokens");
    expect(res.totalTokens).toBeGreaterThan(0);
  });

  needs("geminiApi")("generateContent to an OpenAI upstream is translated", async () => {
    const res = await genaiOn(f.gw.openai.url).models.generateContent({ model: "gpt-4o", contents: "hi" });
    expect(res.text).toBe("[openai] you said: hi");
    expect(res.usageMetadata?.promptTokenCount).toBeGreaterThan(0);
  });
});
