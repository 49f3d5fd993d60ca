// Anthropic in, Anthropic out: what Claude Code and the Anthropic SDK send
// reaches an Anthropic upstream as they sent it (headers included), and what
// the upstream answers reaches them byte for byte — thinking blocks and their
// signatures, ids, cache usage. Budgets price the answer's own usage, and a
// route mixing formats fails over across them.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RequestRecord } from "../../runtime/request-record.ts";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, until, type RunningGateway } from "./harness.ts";

const KEY = "gwc-claude-0123456789";
const env = { ANTHROPIC_API_KEY: "sk-ant-upstream", OPENAI_API_KEY: "sk-openai-upstream", GWC_KEY: KEY };

let claude: MockAnthropicUpstream;
let spare: MockAnthropicUpstream;
let openai: MockUpstream;
let gw: RunningGateway;
let client: Anthropic;
const records: RequestRecord[] = [];

beforeAll(async () => {
  claude = await startAnthropicUpstream({ name: "claude", cache: { read: 1200, creation: 300 }, stream: { chunks: 3 } });
  spare = await startAnthropicUpstream({ name: "spare" });
  openai = await startOpenAIUpstream({ name: "openai" });
  gw = await startGateway(
    {
      accounts: [
        { id: "claude", provider: "anthropic", base_url: claude.url, api_key: "${ANTHROPIC_API_KEY}" },
        { id: "pinned", provider: "anthropic", base_url: spare.url, api_key: "${ANTHROPIC_API_KEY}", model: "claude-haiku-4-5" },
        { id: "gpt", provider: "openai", base_url: openai.url, api_key: "${OPENAI_API_KEY}", model: "gpt-4o" },
      ],
      routes: [
        { model: "claude-sonnet-4-6", targets: [{ account: "claude" }] },
        { model: "claude-pinned", targets: [{ account: "pinned" }] },
        // Anthropic first, then OpenAI: a failure crosses formats.
        { id: "mixed", model: "claude-mixed", targets: [{ account: "claude", weight: 1 }, { account: "gpt", weight: 0 }] },
        { id: "gpt-first", model: "gpt-first", targets: [{ account: "gpt", weight: 1 }, { account: "claude", weight: 0 }] },
        { id: "only-gpt", model: "only-gpt", targets: [{ account: "gpt" }] },
        { id: "lenient", model: "lenient", targets: [{ account: "gpt" }], drop_unsupported_params: true },
      ],
      // $3 input, $3.75 cache write, $0.30 cache read, $15 output per million tokens, for every model sent upstream.
      pricing: Object.fromEntries(
        ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-mixed", "gpt-first", "gpt-4o"].map((m) => [
          m,
          { input_per_mtok_usd: 3, output_per_mtok_usd: 15, cached_input_per_mtok_usd: 0.3, cache_write_per_mtok_usd: 3.75 },
        ]),
      ),
      virtual_keys: [{ id: "team", key: "${GWC_KEY}", budget: { daily_limit_usd: 100 } }],
    },
    env,
  );
  gw.runtime.observers.push((r) => records.push(r));
  client = new Anthropic({ baseURL: `${gw.url}/anthropic`, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await claude.close();
  await spare.close();
  await openai.close();
});

/** Everything Claude Code puts in a request that a translation used to lose. */
const CLAUDE_CODE_BODY = {
  model: "claude-sonnet-4-6",
  max_tokens: 4000,
  system: [
    { type: "text", text: "You are Claude Code." },
    { type: "text", text: "Project rules: be brief.", cache_control: { type: "ephemeral" } },
  ],
  messages: [
    { role: "user", content: [{ type: "text", text: "list the files", cache_control: { type: "ephemeral", ttl: "1h" } }] },
  ],
  thinking: { type: "enabled", budget_tokens: 2048 },
  metadata: { user_id: "user_abc_session_1" },
  context_management: { edits: [{ type: "clear_tool_uses_20250919" }] },
  output_config: { effort: "high" },
  tools: [{ name: "Bash", description: "run a command", input_schema: { type: "object", properties: { command: { type: "string" } } }, cache_control: { type: "ephemeral" } }],
  tool_choice: { type: "auto" },
};
const BETAS = "interleaved-thinking-2025-05-14,context-management-2025-06-27,prompt-caching-scope-2026-01-05";

/** The bytes the mock sent for an answer: its JSON body, or its stream's events as it writes them. */
function sentBytes(m: MockAnthropicUpstream = claude): string {
  const a = m.answers.at(-1)!;
  if (a.events !== undefined) return a.events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
  return JSON.stringify(a.message ?? a.body);
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}/anthropic${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": KEY, "anthropic-version": "2023-06-01", ...headers },
    body: JSON.stringify(body),
  });
}

describe("Anthropic surface to an Anthropic account: a passthrough", () => {
  it("relays the request as sent (every field, anthropic-* headers) with only the credentials swapped", async () => {
    const res = await post("/v1/messages", CLAUDE_CODE_BODY, { "anthropic-beta": BETAS });
    expect(res.status).toBe(200);
    const seen = claude.requests.at(-1)!;
    expect(seen.path).toBe("/v1/messages");
    expect(seen.body).toEqual(CLAUDE_CODE_BODY);
    expect(seen.headers["anthropic-beta"]).toBe(BETAS);
    expect(seen.headers["anthropic-version"]).toBe("2023-06-01");
    expect(seen.headers["x-api-key"]).toBe("sk-ant-upstream");
    expect(JSON.stringify(seen.headers)).not.toContain(KEY);
    // The answer is the upstream's bytes.
    expect(await res.text()).toBe(sentBytes());
  });

  it("gives the SDK the upstream's message: id, thinking block and signature, cache usage", async () => {
    const msg = await client.messages.create(CLAUDE_CODE_BODY as unknown as Anthropic.MessageCreateParamsNonStreaming);
    const upstream = JSON.parse(sentBytes());
    expect(msg.id).toBe(upstream.id);
    expect(msg.id).toMatch(/^msg_01/);
    expect(msg.content[0]).toEqual({ type: "thinking", thinking: "[claude] thinking about: list the files", signature: upstream.content[0].signature });
    expect(msg.usage).toMatchObject({ input_tokens: upstream.usage.input_tokens, cache_read_input_tokens: 1200, cache_creation_input_tokens: 300 });
  });

  it("streams the upstream's events byte for byte, thinking and signature deltas included", async () => {
    const res = await post("/v1/messages", { ...CLAUDE_CODE_BODY, stream: true }, { "anthropic-beta": BETAS });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text).toBe(sentBytes());
    expect(text).toContain('"type":"signature_delta"');

    const stream = client.messages.stream({ ...CLAUDE_CODE_BODY } as unknown as Anthropic.MessageStreamParams);
    let start: Anthropic.Message | undefined;
    stream.on("streamEvent", (e) => {
      if (e.type === "message_start") start = structuredClone(e.message);
    });
    const final = await stream.finalMessage();
    // message_start carries the real input side, not 0/0.
    expect(start!.usage).toEqual(JSON.parse(sentBytes().split("\n")[1].slice(6)).message.usage);
    expect(start!.usage).toMatchObject({ cache_read_input_tokens: 1200, cache_creation_input_tokens: 300 });
    expect(final.content.map((b) => b.type)).toEqual(["thinking", "tool_use"]);
    const signature = JSON.parse(sentBytes().split("\n\n").find((e) => e.includes("signature_delta"))!.split("\n")[1].slice(6)).delta.signature;
    expect(final.content[0].type === "thinking" && final.content[0].signature).toBe(signature);
  });

  it("carries a tool loop whose thinking block goes back signed and unaltered (the upstream refuses an altered one)", async () => {
    const first = await client.messages.create(CLAUDE_CODE_BODY as unknown as Anthropic.MessageCreateParamsNonStreaming);
    const use = first.content.find((b) => b.type === "tool_use")!;
    const next = await client.messages.create({
      ...(CLAUDE_CODE_BODY as unknown as Anthropic.MessageCreateParamsNonStreaming),
      messages: [
        ...(CLAUDE_CODE_BODY.messages as Anthropic.MessageParam[]),
        { role: "assistant", content: first.content as Anthropic.ContentBlockParam[] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.type === "tool_use" ? use.id : "", content: "a.txt b.txt" }] },
      ],
    });
    expect(next.content.find((b) => b.type === "text")).toMatchObject({ text: "[claude] tool said: a.txt b.txt" });
    expect(claude.requests.at(-1)!.body.messages[1].content[0]).toEqual(first.content[0]);
  });

  it("rewrites only the model when the account pins one", async () => {
    const res = await post("/v1/messages", { ...CLAUDE_CODE_BODY, model: "claude-pinned" });
    expect(res.status).toBe(200);
    expect(spare.requests.at(-1)!.body).toEqual({ ...CLAUDE_CODE_BODY, model: "claude-haiku-4-5" });
  });

  it("prices input, cache writes and cache reads apart, from the stream's own usage", async () => {
    records.length = 0;
    const res = await post("/v1/messages", { ...CLAUDE_CODE_BODY, stream: true });
    await res.text();
    await until(() => records.length === 1);
    const start = JSON.parse(sentBytes().split("\n")[1].slice(6)).message.usage;
    const output = JSON.parse(sentBytes().split("\n\n").find((e) => e.includes("message_delta"))!.split("\n")[1].slice(6)).usage.output_tokens;
    const r = records[0];
    expect(r.usage).toEqual({ inputTokens: start.input_tokens + 1200 + 300, outputTokens: output, cacheReadTokens: 1200, cacheWriteTokens: 300 });
    // $3 input, $3.75 cache write, $0.30 cache read, $15 output per million tokens.
    expect(r.costNanoUsd).toBe(start.input_tokens * 3000 + 300 * 3750 + 1200 * 300 + output * 15000);
  });

  it("answers errors in Anthropic's shape, and relays the upstream's own 400 as it came", async () => {
    const bad = await post("/v1/messages", { model: "claude-sonnet-4-6", max_tokens: 10, temperature: 1.5, messages: [{ role: "user", content: "x" }] });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-gwc-account")).toBe("claude");
    expect(await bad.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("temperature") }, request_id: expect.stringMatching(/^req_/) });
    const noKey = await fetch(`${gw.url}/anthropic/v1/messages`, { method: "POST", body: "{}" });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ type: "error", error: { type: "authentication_error" } });
    await expect(client.messages.create({ model: "claude-sonnet-4-6", messages: [] } as never)).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });
});

describe("Anthropic surface across formats", () => {
  it("fails over from the Anthropic account (passthrough) to the OpenAI one (translated)", async () => {
    claude.queue.push({ kind: "overloaded" });
    const before = openai.requests.length;
    const msg = await client.messages.create({ model: "claude-mixed", max_tokens: 100, messages: [{ role: "user", content: "hello" }] });
    expect(msg.content[0]).toEqual({ type: "text", text: "[openai] you said: hello" });
    expect(openai.requests.length).toBe(before + 1);
    expect(openai.requests.at(-1)!.body.model).toBe("gpt-4o");
  });

  it("fails over from the OpenAI account (translated) to the Anthropic one (passthrough), byte for byte", async () => {
    openai.queue.push({ kind: "status", status: 503 });
    const res = await post("/v1/messages", { model: "gpt-first", max_tokens: 100, messages: [{ role: "user", content: "hello" }] });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-gwc-account")).toBe("claude");
    expect(await res.text()).toBe(sentBytes());
    expect(claude.requests.at(-1)!.body.model).toBe("gpt-first");
  });

  it("fails a stream over when the Anthropic one opens with an error, and the OpenAI answer streams as Anthropic events", async () => {
    claude.queue.push({ kind: "stream-error-first" });
    const stream = client.messages.stream({ model: "claude-mixed", max_tokens: 100, messages: [{ role: "user", content: "hello" }] });
    const final = await stream.finalMessage();
    expect(final.content[0]).toEqual({ type: "text", text: "[openai] you said: hello" });
    expect(final.usage.output_tokens).toBeGreaterThan(0);
  });

  it("ends a relayed stream that breaks midway with Anthropic's error event, never message_stop", async () => {
    claude.queue.push({ kind: "stream-fail-after", chunks: 1 });
    const res = await post("/v1/messages", { model: "claude-sonnet-4-6", max_tokens: 100, stream: true, messages: [{ role: "user", content: "hello" }] });
    const text = await res.text();
    expect(text).toContain("event: message_start");
    expect(text).not.toContain("message_stop");
    const last = text.trim().split("\n\n").at(-1)!;
    expect(last.split("\n")[0]).toBe("event: error");
    expect(JSON.parse(last.split("\n")[1].slice(6))).toMatchObject({ type: "error", error: { type: "api_error" } });
  });

  it("refuses a field OpenAI chat cannot carry with a 400 naming it, in Anthropic's shape", async () => {
    const res = await post("/v1/messages", { model: "only-gpt", max_tokens: 100, top_k: 5, messages: [{ role: "user", content: "hi" }] });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(body.error.message).toContain("'top_k'");
    expect(body.error.message).toContain("drop_unsupported_params");
  });

  it("drops it instead when the route says so, and names it in x-gwc-dropped-params", async () => {
    const res = await post("/v1/messages", {
      model: "lenient",
      max_tokens: 100,
      top_k: 5,
      system: [{ type: "text", text: "rules", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: "hi" }],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-gwc-dropped-params")).toBe("top_k, cache_control");
    expect(openai.requests.at(-1)!.body).not.toHaveProperty("top_k");
    expect(openai.requests.at(-1)!.body.messages[0]).toEqual({ role: "system", content: "rules" });
  });

  it("maps thinking, metadata and a json_schema output format onto chat", async () => {
    await post("/v1/messages", {
      model: "only-gpt",
      max_tokens: 100,
      thinking: { type: "enabled", budget_tokens: 8000 },
      metadata: { user_id: "u-1" },
      output_config: { format: { type: "json_schema", schema: { type: "object", properties: { a: { type: "string" } } } } },
      messages: [{ role: "user", content: "hi" }],
    });
    expect(openai.requests.at(-1)!.body).toMatchObject({
      reasoning_effort: "medium",
      user: "u-1",
      response_format: { type: "json_schema", json_schema: { name: "output", schema: { type: "object", properties: { a: { type: "string" } } }, strict: true } },
    });
  });

  it("reports cache reads apart when translating, and keeps an Anthropic-looking id", async () => {
    const msg = await client.messages.create({ model: "only-gpt", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.id).not.toMatch(/^msg_msg_/);
    expect(msg.usage.cache_read_input_tokens).toBe(0);
  });
});

describe("count_tokens, models, preflight", () => {
  it("relays count_tokens to an Anthropic account", async () => {
    const body = { model: "claude-sonnet-4-6", messages: [{ role: "user", content: "count me" }] };
    const counted = await client.messages.countTokens(body as Anthropic.MessageCountTokensParams);
    expect(claude.requests.at(-1)!.path).toBe("/v1/messages/count_tokens");
    expect(claude.requests.at(-1)!.body).toEqual(body);
    expect(counted).toEqual(JSON.parse(sentBytes()));
  });

  it("estimates elsewhere, and says it is an estimate", async () => {
    const res = await post("/v1/messages/count_tokens", { model: "only-gpt", messages: [{ role: "user", content: "count me" }] });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-gwc-estimate")).toBe("characters/4");
    expect(await res.json()).toMatchObject({ input_tokens: expect.any(Number), estimated: true });
  });

  it("lists the served models in Anthropic's shape", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toContain("claude-sonnet-4-6");
    expect(page.data[0]).toMatchObject({ type: "model" });
    const one = await client.models.retrieve("claude-sonnet-4-6");
    expect(one.id).toBe("claude-sonnet-4-6");
  });

  it("answers a browser preflight with the headers the SDK sends, and HEAD with no body", async () => {
    const pre = await fetch(`${gw.url}/anthropic/v1/messages`, { method: "OPTIONS" });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-headers")).toContain("anthropic-beta");
    const head = await fetch(`${gw.url}/anthropic/v1/messages`, { method: "HEAD" });
    expect(head.status).toBe(200);
  });
});

describe("what Claude Code sends, to an OpenAI account", () => {
  it("carries adaptive thinking, clear_thinking context edits, effort and a mid-conversation system turn", async () => {
    const res = await post("/v1/messages", {
      model: "only-gpt",
      max_tokens: 64000,
      system: [{ type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: "hi" },
        { role: "system", content: [{ type: "text", text: "agents: none" }] },
        { role: "user", content: [{ type: "text", text: "go", cache_control: { type: "ephemeral" } }] },
      ],
      thinking: { type: "adaptive" },
      context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      output_config: { effort: "high" },
      metadata: { user_id: '{"session_id":"s1"}' },
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("event: message_stop");
    expect(res.headers.get("x-gwc-dropped-params")).toBe("cache_control, context_management");
    const sent = openai.requests.at(-1)!.body;
    expect(sent.messages.map((m: { role: string }) => m.role)).toEqual(["system", "user", "system", "user"]);
    expect(sent).toMatchObject({ reasoning_effort: "high", user: '{"session_id":"s1"}', stream: true });
  });

  it("refuses context edits that only Anthropic can make", async () => {
    const res = await post("/v1/messages", {
      model: "only-gpt",
      max_tokens: 100,
      messages: [{ role: "user", content: "hi" }],
      context_management: { edits: [{ type: "clear_tool_uses_20250919" }] },
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain("'context_management'");
  });
});
