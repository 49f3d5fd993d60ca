// Invariant: metric labels take only configured ids, so the number of series
// is bounded by the config whatever callers send. Any record (any model text,
// `__proto__` and quotes included) leaves only known label values behind.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_TYPES } from "../../runtime/error-type.ts";
import { Runtime } from "../../runtime/gateway.ts";
import { GatewayMetrics } from "../../runtime/metrics.ts";
import { newRecord, type Operation } from "../../runtime/request-record.ts";
import { MemoryStore } from "../../runtime/state-store.ts";
import { compile } from "../runtime/harness.ts";
import { parseMetrics } from "../runtime/metrics-text.ts";

const plan = compile({
  accounts: [
    { id: "a", provider: "openai", base_url: "http://127.0.0.1:9/v1", api_key: "${K}" },
    { id: "b", provider: "anthropic", base_url: "http://127.0.0.1:9", api_key: "${K}", model: "claude-sonnet-4-6" },
  ],
  routes: [
    { model: "gpt-4o", targets: [{ account: "a", weight: 1 }, { account: "b", weight: 1 }] },
    { id: "rest", model: "*", targets: [{ account: "a", weight: 1 }] },
  ],
  teams: [{ id: "t", budget: { daily_limit_usd: 1 } }],
  virtual_keys: [{ id: "k", key: "${K}", team: "t", budget: { daily_limit_usd: 1 }, rate_limit: { request_max_limit: 5, request_reset_duration: "1m" } }],
});
const runtime = new Runtime(new MemoryStore());
const gateway = runtime.load(plan, { K: "secret-k" });

const configured = new Set<string>(["gpt-4o", "claude-sonnet-4-6", "rest", "a", "b", "openai", "anthropic", "t", plan.organization.id, ""]);
const fixed = new Set<string>([...ERROR_TYPES, "ok", "chat", "text_completion", "embeddings", "input", "output", "cache_read", "cache_write", "daily", "weekly", "monthly", "team", "organization", "requests", "tokens"]);

const attempt = fc.record({
  account: fc.constantFrom("a", "b"),
  provider: fc.constantFrom("openai", "anthropic"),
  model: fc.oneof(fc.string(), fc.constantFrom("gpt-4o", "__proto__")),
  status: fc.option(fc.integer({ min: 100, max: 599 })),
  errorType: fc.option(fc.constantFrom(...ERROR_TYPES)),
  ms: fc.double({ min: 0, max: 1e5, noNaN: true }),
});
const record = fc.record({
  operation: fc.constantFrom<Operation>("chat", "text_completion", "embeddings"),
  model: fc.option(fc.oneof(fc.string(), fc.constantFrom("gpt-4o", "__proto__", 'a"b', "x\ny", "rest"))),
  route: fc.option(fc.constantFrom("gpt-4o", "rest")),
  status: fc.integer({ min: 200, max: 599 }),
  errorType: fc.option(fc.constantFrom(...ERROR_TYPES)),
  attempts: fc.array(attempt, { maxLength: 3 }),
  answered: fc.option(fc.constantFrom("a", "b")),
  responseModel: fc.option(fc.string()),
  usage: fc.option(fc.record({ inputTokens: fc.nat(), outputTokens: fc.nat(), cacheReadTokens: fc.nat(), cacheWriteTokens: fc.nat() })),
  cost: fc.option(fc.nat()),
  ttft: fc.option(fc.double({ min: 0, max: 1e5, noNaN: true })),
});

describe("metric labels (property)", () => {
  it("hold only configured ids, provider names, status codes and the error_type vocabulary", async () => {
    const metrics = new GatewayMetrics(runtime, { current: () => gateway, perKey: false });
    const records = fc.sample(record, { numRuns: 300, seed: 42 });
    await fc.assert(
      fc.asyncProperty(record, async (r) => {
        const rec = newRecord("id", "POST", "/v1/chat/completions");
        Object.assign(rec, { operation: r.operation, model: r.model, route: r.route, status: r.status, errorType: r.errorType, attempts: r.attempts, usage: r.usage, costNanoUsd: r.cost, ttftMs: r.ttft, durationMs: 5, upstreamMs: 3 });
        if (r.answered !== null) Object.assign(rec, { account: r.answered, provider: r.answered === "a" ? "openai" : "anthropic", responseModel: r.responseModel });
        metrics.observe(rec);
        for (const s of parseMetrics(await metrics.text())) {
          if (!s.name.startsWith("gwc_") && !s.name.startsWith("gen_ai_")) continue;
          for (const [name, value] of Object.entries(s.labels)) {
            if (name === "le" || name === "status_code" || (name === "version" && s.name === "gwc_config_info")) continue;
            expect(configured.has(value) || fixed.has(value), `${s.name} ${name}="${value}"`).toBe(true);
          }
        }
      }),
      { numRuns: 40, examples: records.slice(0, 5).map((x) => [x]) },
    );
  });
});
