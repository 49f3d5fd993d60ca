// An operation no account of a route can perform (embeddings on a route of
// Anthropic accounts) is the caller's to fix: 400 unsupported_operation naming
// the route and why, not a 502 that clients retry. On a route where only some
// accounts can, those are the only ones picked, failover or not.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { startGateway, type RunningGateway } from "./harness.ts";

describe("an operation a route cannot serve", () => {
  let claude: MockAnthropicUpstream;
  let openai: MockUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    claude = await startAnthropicUpstream({ name: "claude" });
    openai = await startOpenAIUpstream({ name: "openai" });
    gw = await startGateway(
      {
        accounts: [
          { id: "claude-a", provider: "anthropic", base_url: claude.url, model: "claude-sonnet-4-5" },
          { id: "claude-b", provider: "anthropic", base_url: claude.url, model: "claude-haiku-4-5" },
          { id: "oai", provider: "openai", base_url: openai.url, model: "text-embedding-3-small" },
        ],
        routes: [
          { id: "claude-only", model: "claude", targets: [{ account: "claude-a" }, { account: "claude-b" }] },
          { id: "mixed", model: "mixed", targets: [{ account: "claude-a", weight: 1 }, { account: "oai", weight: 1 }] },
        ],
        fallback_config: { enabled: false },
      },
      { ANTHROPIC_API_KEY: "sk-ant-test", OPENAI_API_KEY: "sk-test" },
    );
  });
  afterAll(async () => {
    await gw.close();
    await claude.close();
    await openai.close();
  });

  it("answers 400 unsupported_operation naming the route and why, and sends nothing upstream", async () => {
    const client = new OpenAI({ baseURL: gw.v1, apiKey: "x", maxRetries: 0 });
    const err = await client.embeddings.create({ model: "claude", input: "hello" }).catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("unsupported_operation");
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe("model");
    expect((err as Error).message).toContain("route 'claude-only'");
    expect((err as Error).message).toContain("cannot serve embeddings: none of its accounts' providers (anthropic) offers it");
    expect(claude.requests).toHaveLength(0);
  });

  it("on a route where only some accounts can, picks only those, even with failover off", async () => {
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gw.v1}/embeddings`, { method: "POST", body: JSON.stringify({ model: "mixed", input: "hello" }) });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-gwc-account")).toBe("oai");
    }
    expect(claude.requests).toHaveLength(0);
  });
});
