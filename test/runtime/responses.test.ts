// OpenAI's Responses API through the gateway, as the openai SDK (and Codex, the
// Vercel AI SDK's default provider, LangChain's useResponsesApi) call it:
// relayed to OpenAI-format accounts, translated to chat for the others, and a
// stored response reached again only at the account that stored it.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, type RunningGateway } from "./harness.ts";

let left: MockUpstream;
let right: MockUpstream;
let claude: MockAnthropicUpstream;
let gw: RunningGateway;
let client: OpenAI;

beforeAll(async () => {
  left = await startOpenAIUpstream({ name: "left", stream: { chunks: 3 } });
  right = await startOpenAIUpstream({ name: "right" });
  claude = await startAnthropicUpstream({ name: "claude", stream: { chunks: 3 } });
  gw = await startGateway(
    {
      accounts: [
        { id: "left", provider: "openai", base_url: left.url },
        { id: "right", provider: "openai", base_url: right.url },
        { id: "claude", provider: "anthropic", base_url: claude.url, api_key: "${ANTHROPIC_API_KEY}", model: "claude-sonnet-4-6" },
      ],
      routes: [
        { model: "gpt-5", targets: [{ account: "left" }] },
        // Half the traffic each way: only affinity keeps a follow-up where its response is stored.
        { model: "gpt-split", targets: [{ account: "left", weight: 1 }, { account: "right", weight: 1 }] },
        { model: "claude", targets: [{ account: "claude" }] },
        { model: "claude-lenient", targets: [{ account: "claude" }], drop_unsupported_params: true },
      ],
    },
    { OPENAI_API_KEY: "sk-openai-upstream", ANTHROPIC_API_KEY: "sk-ant-upstream" },
  );
  client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await left.close();
  await right.close();
  await claude.close();
});

const TOOLS: OpenAI.Responses.FunctionTool[] = [
  { type: "function", name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }, strict: true },
];

describe("Responses API to an OpenAI account: a passthrough", () => {
  it("relays the body and openai-beta as sent, and the answer as it came", async () => {
    const body = {
      model: "gpt-5",
      input: [{ type: "message" as const, role: "developer" as const, content: [{ type: "input_text" as const, text: "be brief" }] }, { role: "user" as const, content: "hello" }],
      reasoning: { effort: "low" as const, summary: "auto" as const },
      include: ["reasoning.encrypted_content" as const],
      store: false,
      prompt_cache_key: "session-1",
    };
    const res = await client.responses.create(body, { headers: { "openai-beta": "responses=v1" } });
    const seen = left.requests.at(-1)!;
    expect(seen.path).toBe("/v1/responses");
    expect(seen.body).toEqual(body);
    expect(seen.headers["openai-beta"]).toBe("responses=v1");
    expect(seen.headers.authorization).toBe("Bearer sk-openai-upstream");
    const { output_text: _, ...got } = res as OpenAI.Responses.Response & { output_text: string };
    expect(got).toEqual(left.answers.at(-1)!.body);
  });

  it("streams the upstream's events as they came, usage included", async () => {
    const stream = await client.responses.create({ model: "gpt-5", input: "stream please", stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    expect(events).toEqual(left.answers.at(-1)!.events);
    expect(events.at(-1)!.type).toBe("response.completed");
  });

  it("sends a follow-up, a read, its input items and a delete to the account that stored the response", async () => {
    const servedFirst = (m: typeof left) => m.requests.some((r) => typeof r.body?.input === "string" && r.body.input.startsWith("first"));
    // At least 6 rounds, and on until both accounts have stored one (a 50/50 split puts 6 on one side 1 time in 32).
    for (let i = 0; i < 6 || (i < 40 && !(servedFirst(left) && servedFirst(right))); i++) {
      const first = await client.responses.create({ model: "gpt-split", input: `first ${i}` });
      const follow = await client.responses.create({ model: "gpt-split", previous_response_id: first.id, input: `second ${i}` });
      expect(follow.previous_response_id).toBe(first.id);
      const read = await client.responses.retrieve(first.id);
      expect(read.id).toBe(first.id);
      const items = await client.responses.inputItems.list(first.id);
      expect(items.data.length).toBeGreaterThan(0);
      await client.responses.delete(first.id);
      await expect(client.responses.retrieve(first.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    }
    // Both accounts served: the split was not what kept each follow-up in place.
    expect(servedFirst(left)).toBe(true);
    expect(servedFirst(right)).toBe(true);
  });

  it("keeps a streamed response's follow-up at the account that streamed it", async () => {
    for (let i = 0; i < 4; i++) {
      const stream = await client.responses.create({ model: "gpt-split", input: `streamed ${i}`, stream: true });
      let id = "";
      for await (const e of stream) if (e.type === "response.created") id = e.response.id;
      const follow = await client.responses.create({ model: "gpt-split", previous_response_id: id, input: "and then?" });
      expect(follow.previous_response_id).toBe(id);
    }
  });

  it("says so when it knows no such stored response", async () => {
    await expect(client.responses.retrieve("resp_unknown")).rejects.toMatchObject({ status: 404, code: "response_not_found" });
  });
});

describe("Responses API to an Anthropic account: translated", () => {
  it("answers a Response with output_text and usage", async () => {
    const res = await client.responses.create({ model: "claude", instructions: "be brief", input: "hello", max_output_tokens: 200 });
    expect(res.object).toBe("response");
    expect(res.status).toBe("completed");
    expect(res.output_text).toBe("[claude] you said: hello");
    const sent = claude.requests.at(-1)!.body;
    expect(sent).toMatchObject({ model: "claude-sonnet-4-6", system: "be brief", max_tokens: 200, messages: [{ role: "user", content: "hello" }] });
    const upstream = claude.answers.at(-1)!.message;
    expect(res.usage).toMatchObject({ input_tokens: upstream.usage.input_tokens, output_tokens: upstream.usage.output_tokens });
  });

  it("carries a function call loop both ways", async () => {
    const first = await client.responses.create({ model: "claude", input: "weather in Paris?", tools: TOOLS });
    const call = first.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call.name).toBe("get_weather");
    expect(JSON.parse(call.arguments)).toHaveProperty("city");
    const second = await client.responses.create({
      model: "claude",
      tools: TOOLS,
      input: [{ role: "user", content: "weather in Paris?" }, call, { type: "function_call_output", call_id: call.call_id, output: "sunny" }],
    });
    expect(second.output_text).toBe("[claude] tool said: sunny");
    const sent = claude.requests.at(-1)!.body;
    expect(sent.messages[1].content[0]).toMatchObject({ type: "tool_use", id: call.call_id, name: "get_weather" });
    expect(sent.messages[2].content[0]).toMatchObject({ type: "tool_result", tool_use_id: call.call_id, content: "sunny" });
  });

  it("streams the Responses event sequence, and the SDK assembles the final response", async () => {
    const stream = client.responses.stream({ model: "claude", input: "stream it" });
    const types: string[] = [];
    stream.on("event", (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe("[claude] you said: stream it");
    expect(types.slice(0, 4)).toEqual(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
    expect(types).toContain("response.output_text.delta");
    expect(types.slice(-4)).toEqual(["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]);
    expect(final.usage!.output_tokens).toBeGreaterThan(0);
  });

  it("streams a function call as its item events", async () => {
    const stream = client.responses.stream({ model: "claude", input: "weather in Paris?", tools: TOOLS });
    const types: string[] = [];
    stream.on("event", (e) => types.push(e.type));
    const final = await stream.finalResponse();
    const call = final.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call.name).toBe("get_weather");
    expect(JSON.parse(call.arguments)).toHaveProperty("city");
    expect(types).toEqual(expect.arrayContaining(["response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done"]));
    expect(types.at(-1)).toBe("response.completed");
  });

  it("refuses what chat cannot carry, naming it; drops it where the route says so", async () => {
    await expect(client.responses.create({ model: "claude", input: "x", previous_response_id: "resp_elsewhere" })).rejects.toMatchObject({
      status: 400,
      code: "unsupported_parameter",
      param: "previous_response_id",
    });
    const search = [{ type: "web_search" as const }];
    await expect(client.responses.create({ model: "claude", input: "x", tools: search })).rejects.toMatchObject({ status: 400, param: "tools[0].type" });
    const { response } = await client.responses.create({ model: "claude-lenient", input: "x", tools: search, store: true }).withResponse();
    expect(response.headers.get("x-gwc-dropped-params")).toBe("store, tools[0].type");
  });

  it("maps a json_schema text format onto the Anthropic request", async () => {
    const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false };
    await client.responses.create({ model: "claude", input: "json please", text: { format: { type: "json_schema", name: "reply", schema, strict: true } } });
    const sent = claude.requests.at(-1)!.body;
    // Anthropic's structured output, or a forced tool: the schema reaches the upstream either way.
    expect(JSON.stringify(sent)).toContain(JSON.stringify(schema.properties));
  });
});
