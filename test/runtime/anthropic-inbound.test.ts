// The Anthropic endpoint as Claude Code and the Anthropic SDK meet it
// (ANTHROPIC_BASE_URL pointed at the gateway), served by an OpenAI account.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, type RunningGateway } from "./harness.ts";

let openai: MockUpstream;
let gw: RunningGateway;
let client: Anthropic;

beforeAll(async () => {
  openai = await startOpenAIUpstream({ name: "openai", stream: { chunks: 3 } });
  gw = await startGateway({ accounts: [account("openai-main", openai.url, 1, { model: "gpt-4o" })] });
  client = new Anthropic({ baseURL: `${gw.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await openai.close();
});

describe("POST /anthropic/v1/messages served by an OpenAI account", () => {
  it("answers a message in Anthropic's shape, system prompt and turns carried over", async () => {
    const msg = await client.messages.create({
      model: "claude-sonnet-4-6",
      max_tokens: 100,
      system: "be brief",
      messages: [
        { role: "user", content: "first" },
        { role: "assistant", content: "ok" },
        { role: "user", content: "second" },
      ],
    });
    expect(msg.type).toBe("message");
    expect(msg.role).toBe("assistant");
    expect(msg.content[0]).toEqual({ type: "text", text: "[openai] you said: second" });
    expect(msg.stop_reason).toBe("end_turn");
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
    const sent = openai.requests.at(-1)!.body;
    expect(sent.model).toBe("gpt-4o");
    expect(sent.messages[0]).toEqual({ role: "system", content: "be brief" });
    expect(sent.messages).toHaveLength(4);
  });

  it("streams Anthropic's events, and the SDK assembles the message", async () => {
    const stream = client.messages.stream({ model: "claude-sonnet-4-6", max_tokens: 100, messages: [{ role: "user", content: "stream it" }] });
    const types: string[] = [];
    stream.on("streamEvent", (e) => types.push(e.type));
    const final = await stream.finalMessage();
    expect(final.content[0]).toEqual({ type: "text", text: "[openai] you said: stream it" });
    expect(final.stop_reason).toBe("end_turn");
    expect(final.usage.output_tokens).toBeGreaterThan(0);
    expect(types[0]).toBe("message_start");
    expect(types.at(-1)).toBe("message_stop");
    expect(types).toContain("content_block_delta");
  });

  it("carries tools both ways", async () => {
    const msg = await client.messages.create({
      model: "claude-sonnet-4-6",
      max_tokens: 100,
      tools: [{ name: "get_weather", description: "weather", input_schema: { type: "object", properties: {} } }],
      messages: [{ role: "user", content: "weather?" }],
    });
    expect(msg.stop_reason).toBe("tool_use");
    const use = msg.content.find((b) => b.type === "tool_use")!;
    expect(use.type === "tool_use" && use.name).toBe("get_weather");
    const answer = await client.messages.create({
      model: "claude-sonnet-4-6",
      max_tokens: 100,
      tools: [{ name: "get_weather", description: "weather", input_schema: { type: "object", properties: {} } }],
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: msg.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.type === "tool_use" ? use.id : "", content: "sunny" }] },
      ],
    });
    expect(answer.stop_reason).toBe("end_turn");
    expect(openai.requests.at(-1)!.body.messages.at(-1)).toMatchObject({ role: "tool", content: "sunny" });
  });

  it("answers errors in Anthropic's shape", async () => {
    const err = await client.messages.create({ model: "x", messages: [] } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    // One account: the first try and both same-account retries meet the 503.
    openai.queue.push({ kind: "status", status: 503 }, { kind: "status", status: 503 }, { kind: "status", status: 503 });
    const down = await client.messages.create({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(Anthropic.APIError);
    expect((down as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    expect(JSON.stringify((down as InstanceType<typeof Anthropic.APIError>).error)).toContain("openai-main");
  });
});
