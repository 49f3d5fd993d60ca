// The article's headline split, 70% OpenAI / 30% Anthropic, served for real:
// a caller speaking OpenAI's format cannot tell from any response which
// provider served it (only x-gwc-account says), and the Anthropic SDK on the
// Anthropic endpoint gets Anthropic's shapes from either provider.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, type RunningGateway } from "../runtime/harness.ts";

let openaiUp: MockUpstream;
let anthropicUp: MockAnthropicUpstream;
let gw: RunningGateway;

/** The shape of a JSON value: keys and value types, recursively; arrays by their first element. */
function shape(v: unknown): unknown {
  if (v === null) return "null";
  if (Array.isArray(v)) return v.length === 0 ? "[]" : [shape(v[0])];
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]));
  return typeof v;
}

beforeAll(async () => {
  openaiUp = await startOpenAIUpstream({ name: "gpt" });
  anthropicUp = await startAnthropicUpstream({ name: "claude" });
  gw = await startGateway(
    {
      accounts: [
        { id: "openai-primary", provider: "openai", base_url: openaiUp.url, model: "gpt-4o", weight: 70 },
        { id: "anthropic-secondary", provider: "anthropic", base_url: anthropicUp.url, model: "claude-sonnet-4-5", weight: 30 },
      ],
      fallback_config: { enabled: true, on_status_codes: [429, 500, 502, 503] },
    },
    { OPENAI_API_KEY: "sk-test", ANTHROPIC_API_KEY: "sk-ant-test" },
  );
});

afterAll(async () => {
  await gw.close();
  await openaiUp.close();
  await anthropicUp.close();
});

describe("70% OpenAI / 30% Anthropic through one OpenAI client", () => {
  it("splits about 70/30 and every answer has the same shape", async () => {
    const client = new OpenAI({ baseURL: gw.v1, apiKey: "x", maxRetries: 0 });
    const shapes = new Map<string, string>();
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const { data, response } = await client.chat.completions.create({ model: "any", messages: [{ role: "user", content: "hi" }] }).withResponse();
      const account = response.headers.get("x-gwc-account")!;
      counts.set(account, (counts.get(account) ?? 0) + 1);
      // Fields whose values vary by provider (a system fingerprint, a service tier) still exist in both.
      shapes.set(account, JSON.stringify(shape({ ...data, choices: data.choices.map((c) => ({ ...c, logprobs: null })) })));
      expect(data.choices[0].message.content).toMatch(/you said: hi$/);
    }
    const primary = counts.get("openai-primary") ?? 0;
    // Within 4 standard deviations: a fair split fails this once in 16,000 runs (3 failed once in 370), and a 50/50 one is 7.6 away.
    // The split's exact shares are proved on the alias table itself (test/property/alias-table.test.ts).
    expect(Math.abs(primary - 210)).toBeLessThanOrEqual(4 * Math.sqrt(300 * 0.7 * 0.3));
    expect(shapes.get("anthropic-secondary")).toBe(shapes.get("openai-primary"));
  });

  it("streams the same chunk shapes from either provider", async () => {
    const client = new OpenAI({ baseURL: gw.v1, apiKey: "x", maxRetries: 0 });
    const byAccount = new Map<string, string[]>();
    for (let i = 0; i < 40 && byAccount.size < 2; i++) {
      const { data: stream, response } = await client.chat.completions
        .create({ model: "any", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } })
        .withResponse();
      const kinds: string[] = [];
      let text = "";
      for await (const c of stream) {
        kinds.push(c.choices.length === 0 ? "usage" : c.choices[0].finish_reason ? "finish" : "delta");
        text += c.choices[0]?.delta?.content ?? "";
      }
      expect(text).toMatch(/you said: hi$/);
      byAccount.set(response.headers.get("x-gwc-account")!, [...new Set(kinds)]);
    }
    expect(byAccount.get("anthropic-secondary")).toEqual(byAccount.get("openai-primary"));
  });
});

describe("the Anthropic SDK on /anthropic/v1/messages, served by an Anthropic account", () => {
  it("answers and streams in Anthropic's shapes", async () => {
    const only = await startGateway(
      { accounts: [{ id: "claude", provider: "anthropic", base_url: anthropicUp.url, model: "claude-sonnet-4-5" }] },
      { ANTHROPIC_API_KEY: "sk-ant-test" },
    );
    try {
      const client = new Anthropic({ baseURL: `${only.url}/anthropic`, apiKey: "x", maxRetries: 0 });
      const msg = await client.messages.create({ model: "claude-sonnet-4-6", max_tokens: 50, system: "brief", messages: [{ role: "user", content: "hello" }] });
      expect(msg.content[0]).toMatchObject({ type: "text" });
      expect(msg.content[0].type === "text" && msg.content[0].text).toMatch(/hello/);
      expect(anthropicUp.requests.at(-1)!.body.system).toBe("brief");
      const final = await client.messages.stream({ model: "claude-sonnet-4-6", max_tokens: 50, messages: [{ role: "user", content: "stream" }] }).finalMessage();
      expect(final.content[0].type === "text" && final.content[0].text).toMatch(/stream/);
      expect(final.usage.output_tokens).toBeGreaterThan(0);
    } finally {
      await only.close();
    }
  });
});
