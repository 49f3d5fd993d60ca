// What a request costs against a budget: the built-in price table, compiled
// into the plan, and the runtime's integer cost math.
import { describe, expect, it } from "vitest";
import { cost, estimate } from "../runtime/governance.ts";
import type { PlanPrice } from "../runtime/plan.ts";
import { compile } from "./runtime/harness.ts";

describe("cost", () => {
  const plan = compile({ accounts: [{ id: "claude", provider: "anthropic", model: "claude-sonnet-4-5" }] });
  const sonnet = new Map(plan.prices).get("claude-sonnet-4-5")!;
  // 1M input tokens, of which 200k were read from the prompt cache and 300k written to it, and 100k output.
  const usage = { input: 1_000_000, cached: 200_000, cacheWrite: 300_000, output: 100_000 };

  it("prices cache reads and cache writes as Anthropic bills them (Sonnet: 0.1x and 1.25x the input price)", () => {
    // 500k × $3 + 200k × $0.30 + 300k × $3.75 + 100k × $15, per million tokens.
    expect(cost(sonnet, usage)).toBe(1.5e9 + 0.06e9 + 1.125e9 + 1.5e9);
  });

  it("prices cache writes as input when a price has no write rate (a plan built before it had one)", () => {
    const { cacheWriteNano: _, ...older } = sonnet;
    expect(cost(older as PlanPrice, usage)).toBe(1.5e9 + 0.06e9 + 0.9e9 + 1.5e9);
  });

  it("reserves input at the cache-write rate when writes cost more, so a reservation covers what settles", () => {
    // A 1,000-byte body is at most 1,000 input tokens, all possibly cache writes at $3.75, plus max_tokens 100 at $15, per million.
    const json = { model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "x".repeat(912) }] };
    const req = { endpoint: "chat" as const, raw: Buffer.from(JSON.stringify(json)), json, stream: false };
    expect(req.raw.length).toBe(1000);
    expect(estimate(sonnet, req, "anthropic")).toBe(1000 * 3750 + 100 * 15000);
    expect(estimate(sonnet, req, "anthropic")).toBeGreaterThanOrEqual(cost(sonnet, { input: 1000, cached: 0, cacheWrite: 1000, output: 100 }));
  });

  it("takes a config's own write price over the built-in one", () => {
    const own = compile({
      accounts: [{ id: "claude", provider: "anthropic", model: "claude-sonnet-4-5" }],
      pricing: { "claude-sonnet-4-5": { input_per_mtok_usd: 3, output_per_mtok_usd: 15, cache_write_per_mtok_usd: 6 } },
    });
    expect(cost(new Map(own.prices).get("claude-sonnet-4-5")!, { input: 1_000_000, cached: 0, cacheWrite: 1_000_000, output: 0 })).toBe(6e9);
  });
});
