// Claude Code (`claude -p`, the real native binary from npm) pointed at a gwc
// process with ANTHROPIC_BASE_URL, in front of an Anthropic-format upstream
// (passthrough) and an OpenAI-format one (translated).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startGeminiUpstream, type GeminiMock } from "../mocks/gemini-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { CLI, CLIENT_KEY, UPSTREAM_KEYS, isolatedHome, runCli, startGatewayFor, type GatewayProcess } from "./harness.ts";
import { needs } from "./features.ts";
import { startRecorder, type Recorder } from "./recorder.ts";

let claude: MockAnthropicUpstream;
let openai: MockUpstream;
let viaAnthropic: GatewayProcess;
let viaOpenAI: GatewayProcess;
let gemini: GeminiMock;
let viaGemini: GatewayProcess;
let recorder: Recorder;

beforeAll(async () => {
  claude = await startAnthropicUpstream({ name: "claude", apiKey: UPSTREAM_KEYS.anthropic, stream: { chunks: 3 } });
  openai = await startOpenAIUpstream({ name: "openai" });
  viaAnthropic = await startGatewayFor("anthropic", claude.url);
  viaOpenAI = await startGatewayFor("openai", openai.url);
  gemini = await startGeminiUpstream({ name: "gemini", apiKey: UPSTREAM_KEYS.gemini });
  viaGemini = await startGatewayFor("gemini", gemini.url);
  recorder = await startRecorder(viaAnthropic.url);
});

afterAll(async () => {
  await recorder?.close();
  await viaAnthropic?.stop();
  await viaOpenAI?.stop();
  await viaGemini?.stop();
  await gemini?.close();
  await claude?.close();
  await openai?.close();
});

/** One `claude -p` run in a fresh HOME, its base URL on `baseUrl` (gwc's /anthropic), extra args after the prompt. */
async function claudeP(baseUrl: string, prompt: string, args: string[], files: Record<string, string> = {}, before: (project: string) => void = () => {}) {
  const { home, project } = isolatedHome("claude");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(project, name), text);
  before(project);
  const run = await runCli(CLI.claude, ["-p", prompt, "--model", "claude-sonnet-4-6", "--no-session-persistence", ...args], {
    cwd: project,
    env: {
      HOME: home,
      CLAUDE_CONFIG_DIR: join(home, ".claude"),
      ANTHROPIC_BASE_URL: `${baseUrl}/anthropic`,
      ANTHROPIC_API_KEY: CLIENT_KEY,
      DISABLE_AUTOUPDATER: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    },
  });
  return { ...run, project };
}

const posts = (m: MockAnthropicUpstream, from: number) => m.requests.slice(from).filter((r) => r.method === "POST" && r.path === "/v1/messages");
const anthropicHeaders = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith("anthropic-")));

describe("claude -p through gwc to an Anthropic upstream (passthrough)", () => {
  needs("anthropicPassthrough")("runs a tool loop: the file Claude Code reads locally reaches the model, and the answer comes back", async () => {
    const seen = claude.requests.length;
    const answered = claude.answers.length;
    const exchanged = recorder.exchanges.length;
    const run = await claudeP(recorder.url, "what is the secret word in notes.txt?", ["--tools", "Read", "--allowedTools", "Read", "--output-format", "json"], { "notes.txt": "the secret word is pelican\n" }, (project) =>
      claude.queue.push({ kind: "ok", tool: { name: "Read", input: { file_path: join(project, "notes.txt") } } }),
    );
    expect(run.timedOut).toBe(false);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.is_error).toBe(false);
    expect(result.result).toContain("[claude] tool said:");
    expect(result.result).toContain("pelican");

    const upstream = posts(claude, seen);
    expect(upstream.length).toBeGreaterThanOrEqual(2);
    for (const r of upstream) {
      expect(r.headers["x-api-key"]).toBe(UPSTREAM_KEYS.anthropic);
      expect(JSON.stringify(r.headers)).not.toContain(CLIENT_KEY);
    }
    // Passthrough: every request Claude Code sent arrives as sent — body field for field
    // (cache_control, thinking, metadata, context_management, output_config, system blocks)
    // and every anthropic-* header (anthropic-beta, anthropic-version, ...).
    const sent = recorder.exchanges.slice(exchanged).filter((e) => e.method === "POST" && e.url.startsWith("/anthropic/v1/messages"));
    expect(sent.length).toBe(upstream.length);
    sent.forEach((e, i) => {
      expect(upstream[i].body).toEqual(e.body);
      expect(anthropicHeaders(upstream[i].headers)).toEqual(anthropicHeaders(e.headers));
    });
    // The thinking block (and its signature) the model sent came back unaltered in the next turn.
    const thinking = claude.answers.slice(answered)[0].events!.find((e: any) => e.delta?.type === "signature_delta") as any;
    const turn = upstream[upstream.length - 1].body.messages.find((m: any) => m.role === "assistant");
    expect(turn.content[0]).toMatchObject({ type: "thinking", signature: thinking.delta.signature });
  });

  needs("anthropicPassthrough")("reports the upstream's prompt-cache usage (writes on the first turn, reads on the next) and prices it", async () => {
    const answered = claude.answers.length;
    claude.queue.push({ kind: "ok", tool: { name: "Read", input: { file_path: "/dev/null" } } });
    const run = await claudeP(viaAnthropic.url, "read nothing", ["--tools", "Read", "--allowedTools", "Read", "--output-format", "json"]);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(run.stdout);
    // What the upstream reported, summed over the turns (each stream's final message_delta).
    const finals = claude.answers.slice(answered).map((a) => (a.events!.find((e) => e.type === "message_delta") as any).usage);
    const sum = (k: string) => finals.reduce((n, u) => n + u[k], 0);
    expect(sum("cache_read_input_tokens")).toBeGreaterThan(0);
    expect(sum("cache_creation_input_tokens")).toBeGreaterThan(0);
    expect(result.usage.cache_read_input_tokens).toBe(sum("cache_read_input_tokens"));
    expect(result.usage.cache_creation_input_tokens).toBe(sum("cache_creation_input_tokens"));
    expect(result.usage.input_tokens).toBe(sum("input_tokens"));
    expect(result.total_cost_usd).toBeGreaterThan(0);
  });

  needs("anthropicPassthrough")("shows the model's thinking, signature intact, on a thinking prompt", async () => {
    const answered = claude.answers.length;
    const run = await claudeP(viaAnthropic.url, "think hard: is 1009 prime?", ["--tools", "", "--output-format", "stream-json", "--verbose"]);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const sentThinking = claude.answers
      .slice(answered)
      .flatMap((a) => a.events!)
      .filter((e: any) => e.type === "content_block_delta" && e.delta.type === "thinking_delta")
      .map((e: any) => e.delta.thinking)
      .join("");
    expect(sentThinking).toContain("thinking about:");
    const blocks = run.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === "assistant")
      .flatMap((m) => m.message.content);
    const thinking = blocks.find((b: any) => b.type === "thinking");
    expect(thinking?.thinking).toBe(sentThinking);
    expect(thinking?.signature).toMatch(/^[A-Za-z0-9+/=]{8,}$/);
    expect(blocks.find((b: any) => b.type === "text")?.text).toContain("[claude] you said:");
  });
});

describe("claude -p through gwc to an OpenAI upstream (translated)", () => {
  it("runs a tool loop on an OpenAI-format account", async () => {
    const seen = openai.requests.length;
    const run = await claudeP(viaOpenAI.url, "list the files", ["--tools", "Glob", "--allowedTools", "Glob", "--output-format", "json"]);
    expect(run.timedOut).toBe(false);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.is_error).toBe(false);
    const chats = openai.requests.slice(seen).filter((r) => r.path === "/v1/chat/completions");
    expect(chats.length).toBeGreaterThanOrEqual(2);
    expect(chats[0].body.tools.map((t: any) => t.function.name)).toContain("Glob");
    // The second turn carries the tool's result back as a tool message.
    expect(chats.at(-1)!.body.messages.some((m: any) => m.role === "tool")).toBe(true);
    expect(chats[0].headers.authorization).toBe(`Bearer ${UPSTREAM_KEYS.openai}`);
  });
});

describe("claude -p through gwc to a Gemini upstream (translated)", () => {
  it("runs a tool loop on a Gemini-format account", async () => {
    const seen = gemini.requests.length;
    const run = await claudeP(viaGemini.url, "list the files", ["--tools", "Glob", "--allowedTools", "Glob", "--output-format", "json"]);
    expect(run.timedOut).toBe(false);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(JSON.parse(run.stdout).result).toContain("[gemini] tool said:");
    const sent = gemini.requests.slice(seen).filter((r) => r.action === "streamGenerateContent" || r.action === "generateContent");
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent[0].headers["x-goog-api-key"]).toBe(UPSTREAM_KEYS.gemini);
    // The second turn carries the call and its result (the mock, like Gemini 3, refuses a call without a thoughtSignature).
    expect(sent.at(-1)!.body.contents.some((c: any) => c.parts.some((p: any) => p.functionResponse))).toBe(true);
  });
});
