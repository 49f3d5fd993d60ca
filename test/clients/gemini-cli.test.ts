// Gemini CLI (`gemini -p`, the real bundle from npm) with GOOGLE_GEMINI_BASE_URL
// on gwc, in front of a Gemini-format upstream (passthrough) and an
// OpenAI-format one (translated).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { startGeminiUpstream, type GeminiMock } from "../mocks/gemini-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { CLI, CLIENT_KEY, UPSTREAM_KEYS, isolatedHome, runCli, startGatewayFor, type GatewayProcess } from "./harness.ts";
import { needs } from "./features.ts";
import { startRecorder, type Recorder } from "./recorder.ts";

let gemini: GeminiMock;
let openai: MockUpstream;
let viaGemini: GatewayProcess;
let viaOpenAI: GatewayProcess;
let recorder: Recorder;

beforeAll(async () => {
  gemini = await startGeminiUpstream({ name: "gemini", apiKey: UPSTREAM_KEYS.gemini, thoughtsTokens: 7, cachedTokens: 5 });
  openai = await startOpenAIUpstream({ name: "openai" });
  viaGemini = await startGatewayFor("gemini", gemini.url);
  // The CLI sends generationConfig.topK, which chat cannot carry: the route drops it (and says so) rather than refuse.
  // No drop_unsupported_params: the CLI's topK is refused by name (the next scenario turns dropping on).
  viaOpenAI = await startGatewayFor("openai", openai.url);
  recorder = await startRecorder(viaGemini.url);
});

afterAll(async () => {
  await recorder?.close();
  await viaGemini?.stop();
  await viaOpenAI?.stop();
  await gemini?.close();
  await openai?.close();
});

/** `gemini -p` in a fresh HOME: API-key auth, no telemetry or update checks, the workspace trusted. */
async function geminiP(baseUrl: string, prompt: string, args: string[], before: (project: string) => void = () => {}) {
  const { home, project } = isolatedHome("gemini");
  mkdirSync(join(home, ".gemini"));
  writeFileSync(
    join(home, ".gemini", "settings.json"),
    JSON.stringify({
      security: { auth: { selectedType: "gemini-api-key" } },
      privacy: { usageStatisticsEnabled: false },
      telemetry: { enabled: false },
      general: { disableAutoUpdate: true, disableUpdateNag: true },
    }),
  );
  writeFileSync(join(project, "notes.txt"), "the secret word is pelican\n");
  before(project);
  return runCli("node", [CLI.gemini, "-p", prompt, "-o", "json", ...args], {
    cwd: project,
    env: { HOME: home, GEMINI_API_KEY: CLIENT_KEY, GOOGLE_GEMINI_BASE_URL: baseUrl, GEMINI_CLI_TRUST_WORKSPACE: "true" },
  });
}

/** The headers of the passthrough run, client side and upstream side, for the header test that follows it. */
let clientHeaderRun: { sent: Record<string, unknown>[]; upstream: Record<string, unknown>[] } | undefined;
const googHeaders = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith("x-goog-") && k !== "x-goog-api-key"));

const generates = (m: GeminiMock, from: number) => m.requests.slice(from).filter((r) => r.action === "generateContent" || r.action === "streamGenerateContent");

describe("gemini -p through gwc to a Gemini upstream (passthrough)", () => {
  needs("geminiApi")("routes with its side call, runs a file-reading tool loop, and every field arrives as sent", async () => {
    const seen = gemini.requests.length;
    const answered = gemini.answers.length;
    const exchanged = recorder.exchanges.length;
    // The model router's side call (JSON mode) comes first; then the main turn calls read_file.
    const run = await geminiP(recorder.url, "what is the secret word in notes.txt?", [], (project) => {
      gemini.queue.push({ kind: "ok" }, { kind: "ok", tool: { name: "read_file", input: { file_path: join(project, "notes.txt") } } });
    });
    expect(run.timedOut).toBe(false);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.response).toContain("[gemini] tool said:");
    expect(out.response).toContain("pelican");

    const upstream = generates(gemini, seen);
    expect(upstream.map((r) => r.action)).toEqual(["generateContent", "streamGenerateContent", "streamGenerateContent"]);
    expect(upstream[1].query.alt).toBe("sse");
    for (const r of upstream) {
      expect(r.headers["x-goog-api-key"]).toBe(UPSTREAM_KEYS.gemini);
      expect(JSON.stringify(r.headers)).not.toContain(CLIENT_KEY);
    }
    const sent = recorder.exchanges.slice(exchanged).filter((e) => e.method === "POST" && e.url.startsWith("/v1beta/models/"));
    expect(sent.map((e) => e.body)).toEqual(upstream.map((r) => r.body));
    clientHeaderRun = { sent: sent.map((e) => e.headers), upstream: upstream.map((r) => r.headers) };
    // The function call's thoughtSignature came back unaltered (the mock refuses it otherwise).
    const call = upstream[2].body.contents.flatMap((c: any) => c.parts).find((p: any) => p.functionCall);
    expect(gemini.signatures.has(call.thoughtSignature)).toBe(true);

    // The CLI's token stats are the upstream's usageMetadata (thoughts and cached tokens included).
    const finals = gemini.answers.slice(answered).map((a) => (a.events ? a.events.at(-1) : a.body).usageMetadata);
    const stats = Object.values(out.stats.models as Record<string, { tokens: Record<string, number> }>).map((m) => m.tokens);
    const total = (k: string) => stats.reduce((n, t) => n + t[k], 0);
    expect(total("thoughts")).toBe(finals.reduce((n, u) => n + (u.thoughtsTokenCount ?? 0), 0));
    expect(total("cached")).toBe(finals.reduce((n, u) => n + (u.cachedContentTokenCount ?? 0), 0));
    expect(total("prompt")).toBe(finals.reduce((n, u) => n + u.promptTokenCount, 0));
  });

  needs("geminiApi", "googHeaders")("relays Google's own headers (x-goog-api-client) as the CLI sent them", () => {
    expect(clientHeaderRun, "the passthrough run above").toBeDefined();
    expect(clientHeaderRun!.sent[0]["x-goog-api-client"]).toMatch(/^google-genai-sdk\//);
    expect(clientHeaderRun!.upstream.map(googHeaders)).toEqual(clientHeaderRun!.sent.map(googHeaders));
  });
});

describe("gemini -p through gwc to an OpenAI upstream (translated)", () => {
  needs("geminiApi", "unsupportedParams")("is refused clearly, naming the field chat cannot carry (Gemini CLI sends topK)", async () => {
    const seen = openai.requests.length;
    const run = await geminiP(viaOpenAI.url, "say hello", ["-m", "gemini-2.5-flash"]);
    expect(run.timedOut).toBe(false);
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).toContain("generationConfig.topK");
    expect(run.stderr + run.stdout).toContain("drop_unsupported_params");
    expect(openai.requests.length).toBe(seen);
  });

  needs("geminiApi", "unsupportedParams")("with drop_unsupported_params on the route, answers from an OpenAI-format account", async () => {
    const gw = await startGatewayFor("openai", openai.url, { routes: [{ model: "*", targets: [{ account: "openai-upstream" }], drop_unsupported_params: true }] });
    try {
      const seen = openai.requests.length;
      const run = await geminiP(gw.url, "say hello", ["-m", "gemini-2.5-flash"]);
      expect(run.timedOut).toBe(false);
      expect(run.code, run.stderr + run.stdout).toBe(0);
      expect(JSON.parse(run.stdout).response).toContain("[openai]");
      const chats = openai.requests.slice(seen).filter((r) => r.path === "/v1/chat/completions");
      expect(chats.length).toBeGreaterThanOrEqual(1);
      expect(chats[0].headers.authorization).toBe(`Bearer ${UPSTREAM_KEYS.openai}`);
    } finally {
      await gw.stop();
    }
  });
});
