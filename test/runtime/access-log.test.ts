// The access log and lifecycle events in-process, written to a file: bodies
// only under observability.log_bodies, breaker events as JSON lines.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureLog } from "../../runtime/log.ts";
import { installObservability } from "../../runtime/observability.ts";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { compileSource } from "../../compiler/compile.ts";
import { startGateway, until, type RunningGateway } from "./harness.ts";

const file = join(tempDir(), "gwc.log");
const logger = configureLog({ level: "info", dest: file, sync: true });
const lines = () =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

let up: MockUpstream;
let backup: MockUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  up = await startOpenAIUpstream({ name: "up" });
  backup = await startOpenAIUpstream({ name: "backup" });
  gw = await startGateway({
    accounts: [
      { id: "main", provider: "openai", base_url: up.url, weight: 1 },
      { id: "spare", provider: "openai", base_url: backup.url, weight: 0 },
    ],
    fallback_config: { enabled: true, on_status_codes: [500] },
    observability: { log_bodies: true },
  });
  await installObservability(gw.runtime, { current: () => gw.server.gateway, logger, env: {} });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
  await backup?.close();
});

describe("access log", () => {
  it("holds the request and answer only when observability.log_bodies says so", async () => {
    const client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "a prompt worth debugging" }] }, { headers: { "x-request-id": "bodies-1" } });
    await until(() => lines().some((l) => l.req_id === "bodies-1"));
    const line = lines().find((l) => l.req_id === "bodies-1")!;
    expect(line.request_body).toContain("a prompt worth debugging");
    expect(line.response_body).toContain(answer.choices[0].message.content!);
    expect(line).toMatchObject({ level: "info", status: 200, route: "*", attempts: [{ account: "main", status: 200, error_type: null }] });
  });

  it("says when a breaker opens, as a JSON event", async () => {
    up.fallback = { kind: "status", status: 500 };
    try {
      const client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
      for (let i = 0; i < 5; i++) await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] });
      await until(() => lines().some((l) => l.event === "breaker_opened"));
      expect(lines().find((l) => l.event === "breaker_opened")).toMatchObject({ level: "warn", account: "main", open_ms: expect.any(Number), msg: expect.stringContaining("circuit open") });
    } finally {
      up.fallback = { kind: "ok" };
    }
  });

  it("warns at build time that bodies will be logged", () => {
    const { diagnostics } = compileSource(JSON.stringify({ accounts: [{ id: "a", provider: "openai" }], observability: { log_bodies: true } }), "c.json");
    expect(diagnostics.map((d) => [d.code, d.pointer])).toContainEqual(["GWC_W_LOG_BODIES", "/observability/log_bodies"]);
  });
});
