// The per-request record every observer (metrics, access log, traces, the
// dashboard) reads: one per request, with each attempt and what it answered.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RequestRecord } from "../../runtime/request-record.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, until, type RunningGateway } from "./harness.ts";

let bad: MockUpstream;
let good: MockUpstream;
let gw: RunningGateway;
let client: OpenAI;
const records: RequestRecord[] = [];

beforeAll(async () => {
  bad = await startOpenAIUpstream({ name: "bad" });
  good = await startOpenAIUpstream({ name: "good" });
  gw = await startGateway({ accounts: [account("bad", bad.url, 1), account("good", good.url, 0)] });
  gw.runtime.observers.push((r) => records.push(r));
  client = new OpenAI({ baseURL: gw.v1, apiKey: "k", maxRetries: 0 });
});

afterAll(async () => {
  await gw.close();
  await bad.close();
  await good.close();
});

describe("request record", () => {
  it("names every attempt and what it answered, then the usage of the one that served", async () => {
    records.length = 0;
    bad.queue.push({ kind: "status", status: 503 });
    await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }, { headers: { "x-request-id": "rec-1" } });
    await until(() => records.length === 1);
    const r = records[0];
    expect(r).toMatchObject({ id: "rec-1", method: "POST", path: "/v1/chat/completions", operation: "chat", model: "gpt-4o", status: 200, errorType: null, account: "good", stream: false });
    expect(r.attempts.map((a) => [a.account, a.status, a.errorType])).toEqual([
      ["bad", 503, "overloaded"],
      ["good", 200, null],
    ]);
    expect(r.durationMs).toBeGreaterThanOrEqual(r.upstreamMs);
  });

  it("records a stream's time to first token and an error's type", async () => {
    records.length = 0;
    const s = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
    for await (const _ of s);
    await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: "{" });
    await until(() => records.length === 2);
    const [stream, bad] = records;
    expect(stream.stream).toBe(true);
    expect(stream.ttftMs).toBeGreaterThan(0);
    expect(stream.ttftMs!).toBeLessThanOrEqual(stream.durationMs);
    expect(bad).toMatchObject({ status: 400, errorType: "invalid_request", attempts: [] });
  });
});
