// The built gateway as production runs it (`node gateway.mjs`), watched from
// outside: every stdout line is JSON (access lines with exactly the documented
// fields, lifecycle events), spans arrive over OTLP/HTTP at a local receiver
// with the caller's trace continued upstream, and no secret appears anywhere.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { parseMetrics, sum } from "./metrics-text.ts";

const GWC = resolve("build/gwc.mjs");
const SECRETS = { OPENAI_API_KEY: "sk-provider-secret-p1", KEY_ALICE: "vk-alice-secret-p2", KEY_POOR: "vk-poor-secret-p3", KEY_SLOW: "vk-slow-secret-p4", ADMIN_KEY: "admin-secret-p5" };
const PROMPT = "the-prompt-text-nobody-should-log";
const ACCESS_FIELDS = ["time", "level", "req_id", "method", "path", "status", "model", "route", "key_id", "attempts", "usage", "cost_usd", "ttft_ms", "duration_ms", "overhead_ms", "error_type"].sort();

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

let a: MockUpstream;
let b: MockUpstream;
let receiver: Server;
const otlpBodies: string[] = [];

beforeAll(async () => {
  a = await startOpenAIUpstream({ name: "a" });
  b = await startOpenAIUpstream({ name: "b" });
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url === "/v1/traces") otlpBodies.push(body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((ok) => receiver.listen(0, "127.0.0.1", ok));
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await new Promise((ok) => receiver?.close(ok));
});

function build(): string {
  const dir = tempDir();
  const config = {
    accounts: [
      { id: "a", provider: "openai", base_url: a.url, api_key: "${OPENAI_API_KEY}" },
      { id: "b", provider: "openai", base_url: b.url, api_key: "${OPENAI_API_KEY}" },
    ],
    routes: [{ model: "gpt-4o", targets: [{ account: "a", weight: 1 }, { account: "b", weight: 0 }] }],
    fallback_config: { enabled: true, on_status_codes: [429, 500, 502, 503] },
    virtual_keys: [
      { id: "alice", key: "${KEY_ALICE}", budget: { daily_limit_usd: 50 } },
      { id: "poor", key: "${KEY_POOR}", budget: { daily_limit_usd: 0.000001 } },
      { id: "slow", key: "${KEY_SLOW}", rate_limit: { request_max_limit: 1, request_reset_duration: "1h" } },
    ],
    state: { dir: join(dir, "state") },
    server: { admin_key: "${ADMIN_KEY}" },
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const r = spawnSync(process.execPath, [GWC, "build", join(dir, "config.json"), "-o", dir], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return dir;
}

function waitFor(child: ChildProcess, out: () => string, text: string, ms = 10_000): Promise<void> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no ${text} within ${ms} ms:\n${out()}`)), ms);
    const check = () => {
      if (out().includes(text)) {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        ok();
      }
    };
    child.stdout!.on("data", check);
    check();
  });
}

describe("node gateway.mjs with observability", () => {
  it("writes only JSON lines to stdout, exports spans over OTLP, continues the caller's trace upstream, and leaks no secret", async () => {
    const dir = build();
    // PORT=0: the system picks a free port and the listening event says which (a random pick once met a port in use).
    const child = spawn(process.execPath, [join(dir, "gateway.mjs")], {
      cwd: dir,
      env: { PATH: process.env.PATH, PORT: "0", ...SECRETS, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`, OTEL_BSP_SCHEDULE_DELAY: "50" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((ok) => child.on("exit", ok));
    let url = "";
    const post = (key: string, body: object, headers: Record<string, string> = {}) =>
      fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    const chat = { model: "gpt-4o", messages: [{ role: "user", content: PROMPT }] };
    let metricsText = "";
    try {
      await waitFor(child, () => stdout, '"event":"listening"');
      const listening = stdout.split("\n").find((l) => l.includes('"event":"listening"'))!;
      url = `http://127.0.0.1:${(JSON.parse(listening) as { port: number }).port}`;
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const callerSpan = "00f067aa0ba902b7";
      const ok = await post(SECRETS.KEY_ALICE, chat, { traceparent: `00-${traceId}-${callerSpan}-01` });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
      // The upstream got the caller's trace, under a span of ours.
      const sentUp = String(a.requests.at(-1)!.headers.traceparent);
      expect(sentUp).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      expect(sentUp).not.toContain(callerSpan);

      const stream = await post(SECRETS.KEY_ALICE, { ...chat, stream: true });
      expect(stream.status).toBe(200);
      await stream.text();
      a.queue.push({ kind: "status", status: 503 });
      const failover = await post(SECRETS.KEY_ALICE, chat);
      expect(failover.headers.get("x-gwc-account")).toBe("b");
      await failover.arrayBuffer();
      for (const [key, status] of [["vk-wrong", 401], [SECRETS.KEY_POOR, 402], [SECRETS.KEY_SLOW, 200], [SECRETS.KEY_SLOW, 429]] as const) {
        const res = await post(key, chat);
        expect(res.status).toBe(status);
        await res.arrayBuffer();
      }
      metricsText = await (await fetch(`${url}/metrics`)).text();
      expect(sum(parseMetrics(metricsText), "gwc_requests_total")).toBe(7);

      child.kill("SIGHUP");
      await waitFor(child, () => stdout, '"event":"reload"');
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }

    // Every stdout line is JSON.
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const access = lines.filter((l) => l.event === undefined);
    const events = lines.filter((l) => l.event !== undefined);
    expect(access).toHaveLength(8); // seven model requests and one scrape
    for (const l of access) expect(Object.keys(l).sort()).toEqual(ACCESS_FIELDS);
    const model = access.filter((l) => l.path === "/v1/chat/completions");
    expect(model.map((l) => l.status)).toEqual([200, 200, 200, 401, 402, 200, 429]);
    expect(model[0]).toMatchObject({ level: "info", method: "POST", model: "gpt-4o", route: "gpt-4o", key_id: "alice", error_type: null });
    expect(model[0].attempts).toEqual([{ account: "a", provider: "openai", model: "gpt-4o", status: 200, error_type: null, ms: expect.any(Number) }]);
    expect(model[0].usage).toEqual({ input_tokens: expect.any(Number), output_tokens: expect.any(Number), cache_read_tokens: 0, cache_write_tokens: 0 });
    expect(model[0].cost_usd).toBeGreaterThan(0);
    expect(model[1].ttft_ms).toBeGreaterThan(0);
    expect((model[2].attempts as { account: string; error_type: string | null }[]).map((x) => [x.account, x.error_type])).toEqual([["a", "overloaded"], ["b", null]]);
    expect(model.slice(3).map((l) => l.error_type)).toEqual(["auth", "budget_exceeded", null, "rate_limited"]);
    for (const l of access) expect(typeof l.time === "string" && !Number.isNaN(Date.parse(l.time))).toBe(true);
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(["start", "listening", "budget_exhausted", "reload", "drain", "stop"]));
    expect(events.find((e) => e.event === "start")).toMatchObject({ level: "info", config_version: expect.stringMatching(/^[0-9a-f]{12}$/), tracing: true });
    expect(stdout).not.toContain(PROMPT);

    // Spans: one per request, a child per attempt, named and attributed in the GenAI vocabulary.
    const spans: OtlpSpan[] = otlpBodies.flatMap((body) =>
      (JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
    );
    const attr = (s: OtlpSpan, key: string) => {
      const v = s.attributes.find((x) => x.key === key)?.value;
      return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
    };
    const servers = spans.filter((s) => s.kind === 2 && attr(s, "url.path") === "/v1/chat/completions");
    expect(servers).toHaveLength(7);
    const first = servers.find((s) => s.traceId === "4bf92f3577b34da6a3ce929d0e0e4736")!;
    expect(first.name).toBe("chat gpt-4o");
    expect(first.parentSpanId).toBe("00f067aa0ba902b7");
    expect(attr(first, "gen_ai.operation.name")).toBe("chat");
    expect(attr(first, "gen_ai.provider.name")).toBe("openai");
    expect(attr(first, "gen_ai.request.model")).toBe("gpt-4o");
    expect(attr(first, "gen_ai.response.model")).toBe("gpt-4o");
    expect(attr(first, "gen_ai.usage.input_tokens")).toBe((model[0].usage as { input_tokens: number }).input_tokens);
    expect(attr(first, "gen_ai.usage.output_tokens")).toBe((model[0].usage as { output_tokens: number }).output_tokens);
    const children = spans.filter((s) => s.parentSpanId === first.spanId);
    expect(children).toHaveLength(1);
    expect(children[0].kind).toBe(3);
    expect(`00-${first.traceId}-${children[0].spanId}-01`).toBe(String(a.requests.find((r) => String(r.headers.traceparent).includes(first.traceId))!.headers.traceparent));
    const failed = servers.find((s) => spans.filter((c) => c.parentSpanId === s.spanId).length === 2)!;
    const tries = spans.filter((c) => c.parentSpanId === failed.spanId);
    expect(tries.map((t) => attr(t, "error.type")).sort()).toEqual(["overloaded", undefined]);
    expect(servers.map((s) => attr(s, "error.type")).filter(Boolean).sort()).toEqual(["auth", "budget_exceeded", "rate_limited"]);

    // No secret in stdout, stderr, metrics or spans.
    const everything = [stdout, stderr, metricsText, ...otlpBodies].join("\n");
    for (const secret of Object.values(SECRETS)) expect(everything).not.toContain(secret);
  });
});
