// Metrics, the access log and traces observe finished requests in one batch per
// turn of the event loop (observability.ts). Nothing may be missed for it: a
// scrape that arrives before the batch has run still counts every request
// whose response is over.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installObservability } from "../../runtime/observability.ts";
import { newRecord } from "../../runtime/request-record.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { parseMetrics, sum } from "./metrics-text.ts";
import { startGateway, type RunningGateway } from "./harness.ts";

let up: MockUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  up = await startOpenAIUpstream({ name: "up" });
  gw = await startGateway({ accounts: [{ id: "main", provider: "openai", base_url: up.url }] });
  await installObservability(gw.runtime, { current: () => gw.server.gateway, env: {} });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

/** A served chat request, as the server hands it to the observers when its response closes. */
function finished(id: string) {
  const r = newRecord(id, "POST", "/v1/chat/completions");
  Object.assign(r, { operation: "chat", model: "gpt-4o", route: "*", status: 200, account: "main", provider: "openai", responseModel: "gpt-4o", durationMs: 1.5, upstreamMs: 1 });
  r.attempts.push({ account: "main", provider: "openai", model: "gpt-4o", status: 200, errorType: null, ms: 1 });
  return r;
}

describe("observer batch", () => {
  it("a scrape in the same turn as a response's end counts that request", async () => {
    const before = sum(parseMetrics(await gw.runtime.metrics!.text()), "gwc_requests_total", { route: "*" });
    for (let i = 0; i < 3; i++) for (const observe of gw.runtime.observers) observe(finished(`same-turn-${i}`));
    // No turn of the event loop between the requests' end and the scrape.
    const after = parseMetrics(await gw.runtime.metrics!.text());
    expect(sum(after, "gwc_requests_total", { route: "*" }) - before).toBe(3);
    expect(sum(after, "gwc_attempts_total", { account: "main", outcome: "ok" })).toBeGreaterThanOrEqual(3);
  });
});
