// Codex (`codex exec`, the real native binary from npm) with a custom
// model_provider on gwc's /v1 (wire_api = "responses"), in front of an
// OpenAI-format upstream (Responses passthrough) and an Anthropic-format one
// (Responses translated).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { CLI, CLIENT_KEY, UPSTREAM_KEYS, isolatedHome, runCli, startGatewayFor, type GatewayProcess } from "./harness.ts";
import { needs } from "./features.ts";
import { startRecorder, type Recorder } from "./recorder.ts";

let openai: MockUpstream;
let claude: MockAnthropicUpstream;
let viaOpenAI: GatewayProcess;
let viaAnthropic: GatewayProcess;
let recorder: Recorder;

beforeAll(async () => {
  openai = await startOpenAIUpstream({ name: "openai", stream: { chunks: 3 } });
  claude = await startAnthropicUpstream({ name: "claude", apiKey: UPSTREAM_KEYS.anthropic });
  viaOpenAI = await startGatewayFor("openai", openai.url);
  viaAnthropic = await startGatewayFor("anthropic", claude.url);
  recorder = await startRecorder(viaOpenAI.url);
});

afterAll(async () => {
  await recorder?.close();
  await viaOpenAI?.stop();
  await viaAnthropic?.stop();
  await openai?.close();
  await claude?.close();
});

/** `codex exec` in a fresh CODEX_HOME whose config.toml names gwc as the model provider. */
async function codexExec(baseUrl: string, model: string, prompt: string) {
  const { home, project } = isolatedHome("codex");
  writeFileSync(join(project, "notes.txt"), "the secret word is pelican\n");
  writeFileSync(
    join(home, "config.toml"),
    // No update check, no analytics: a test run talks to nothing but the gateway.
    [`model = "${model}"`, `model_provider = "gwc"`, "check_for_update_on_startup = false", "", "[analytics]", "enabled = false", "", "[model_providers.gwc]", `name = "gwc"`, `base_url = "${baseUrl}/v1"`, `env_key = "GWC_API_KEY"`, `wire_api = "responses"`, "request_max_retries = 0", "stream_max_retries = 0", ""].join("\n"),
  );
  return runCli("node", [CLI.codex, "exec", "--skip-git-repo-check", prompt], { cwd: project, env: { HOME: home, CODEX_HOME: home, GWC_API_KEY: CLIENT_KEY } });
}

const responsesPosts = <T extends { method: string; path: string }>(reqs: T[], from: number) => reqs.slice(from).filter((r) => r.method === "POST" && r.path === "/v1/responses");

describe("codex exec through gwc to an OpenAI upstream (Responses passthrough)", () => {
  needs("responsesApi")("runs a shell tool loop, reasoning carried between turns, and every field arrives as sent", async () => {
    const seen = openai.requests.length;
    const answered = openai.answers.length;
    const exchanged = recorder.exchanges.length;
    openai.queue.push({ kind: "ok", tool: { name: "exec_command", input: { cmd: "cat notes.txt" } } });
    const run = await codexExec(recorder.url, "gpt-5-codex", "what is the secret word in notes.txt?");
    expect(run.timedOut).toBe(false);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toContain("[openai] tool said:");
    expect(run.stdout).toContain("pelican");

    const upstream = responsesPosts(openai.requests, seen);
    expect(upstream.length).toBe(2);
    for (const r of upstream) expect(r.headers.authorization).toBe(`Bearer ${UPSTREAM_KEYS.openai}`);
    const sent = recorder.exchanges.slice(exchanged).filter((e) => e.method === "POST" && e.url === "/v1/responses");
    expect(sent.map((e) => e.body)).toEqual(upstream.map((r) => r.body));
    // The second turn returns the reasoning item (encrypted_content) and the call's output.
    const second = upstream[1].body.input;
    expect(second.some((i: any) => i.type === "reasoning" && typeof i.encrypted_content === "string")).toBe(true);
    expect(second.find((i: any) => i.type === "function_call_output").output).toContain("pelican");
    // Codex's total is the upstream's, turn by turn.
    const total = openai.answers.slice(answered).reduce((n, a) => n + a.body.usage.total_tokens, 0);
    expect(run.stderr + run.stdout).toContain(`tokens used\n${total.toLocaleString("en-US")}`);
  });
});

describe("codex exec through gwc to an Anthropic upstream (Responses translated)", () => {
  needs("responsesApi", "unsupportedParams")("is refused clearly, naming the tool chat cannot carry (Codex sends a namespace tool and web_search)", async () => {
    const seen = claude.requests.length;
    const run = await codexExec(viaAnthropic.url, "claude-sonnet-4-6", "say hello");
    expect(run.timedOut).toBe(false);
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).toContain("unsupported_parameter");
    expect(run.stderr + run.stdout).toMatch(/tools\[\d+\]\.type/);
    expect(claude.requests.length).toBe(seen);
  });

  needs("responsesApi", "unsupportedParams")("with drop_unsupported_params on the route, runs a shell tool loop on a Claude account", async () => {
    const gw = await startGatewayFor("anthropic", claude.url, { routes: [{ model: "*", targets: [{ account: "anthropic-upstream" }], drop_unsupported_params: true }] });
    try {
      const seen = claude.requests.length;
      claude.queue.push({ kind: "ok", tool: { name: "exec_command", input: { cmd: "cat notes.txt" } } });
      const run = await codexExec(gw.url, "claude-sonnet-4-6", "what is the secret word in notes.txt?");
      expect(run.timedOut).toBe(false);
      expect(run.code, run.stderr + run.stdout).toBe(0);
      expect(run.stdout).toContain("[claude] tool said:");
      expect(run.stdout).toContain("pelican");
      const sent = claude.requests.slice(seen).filter((r) => r.path === "/v1/messages");
      expect(sent.length).toBe(2);
      expect(sent[0].headers["x-api-key"]).toBe(UPSTREAM_KEYS.anthropic);
      expect(sent[0].body.tools.map((t: any) => t.name)).toContain("exec_command");
    } finally {
      await gw.stop();
    }
  });
});
