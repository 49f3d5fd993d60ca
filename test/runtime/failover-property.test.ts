// Invariant (DESIGN.md): a request tries each account at most once and always
// terminates; the caller gets the answer of the first account along the
// failover graph that answered. Checked against the real runtime for random
// routes and random upstream outcomes.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromConfig } from "../../compiler/testing.ts";
import { startOpenAIUpstream, type Behavior, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway } from "./harness.ts";

const MOCKS = 4;
const outcomes: Behavior[] = [
  { kind: "ok" },
  { kind: "status", status: 429 },
  { kind: "status", status: 500 },
  { kind: "status", status: 503 },
  { kind: "status", status: 400 },
  { kind: "reset" },
];
/** What the caller should see when the request reaches an account with this outcome; undefined = move on. */
const terminal = (b: Behavior): number | undefined => (b.kind === "ok" ? 200 : b.kind === "status" && b.status === 400 ? 400 : undefined);

let mocks: MockUpstream[];
beforeAll(async () => {
  mocks = await Promise.all(Array.from({ length: MOCKS }, (_, i) => startOpenAIUpstream({ name: `m${i}` })));
});
afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()));
});

describe("failover over random outcomes", () => {
  it("terminates, tries each account once, and answers with the first success along the graph", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: MOCKS, maxLength: MOCKS }),
        fc.array(fc.integer({ min: 0, max: outcomes.length - 1 }), { minLength: MOCKS, maxLength: MOCKS }),
        async (weights: number[], outcomeIdx: number[]) => {
          if (weights.every((w) => w === 0)) weights = [1, ...weights.slice(1)];
          // Same-account retries are the attempt policy's own property (test/property/attempt-policy.test.ts): off here.
          const config = { accounts: mocks.map((m, i) => account(`m${i}`, m.url, weights[i])), resilience: { retries: { max: 0 } } };
          const gw = await startGateway(config);
          const before = mocks.map((m) => m.requests.length);
          mocks.forEach((m, i) => {
            m.queue.length = 0;
            m.queue.push(outcomes[outcomeIdx[i]]);
          });
          try {
            const res = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "x", messages: [{ role: "user", content: "hi" }] }) });
            await res.arrayBuffer();
            const hits = mocks.map((m, i) => m.requests.length - before[i]);
            // Each account at most once.
            expect(hits.every((h) => h <= 1)).toBe(true);
            const tried = new Set(hits.flatMap((h, i) => (h === 1 ? [`m${i}`] : [])));
            // Some first pick explains exactly what was tried and what came back.
            const testing = fromConfig(config);
            const explained = [...tried].some((first) => {
              if (weights[Number(first.slice(1))] === 0) return false; // the first pick always has weight
              const walk = [first, ...testing.failover({ account: first })];
              const stop = walk.findIndex((id) => terminal(outcomes[outcomeIdx[Number(id.slice(1))]]) !== undefined);
              const expectedTried = stop < 0 ? walk : walk.slice(0, stop + 1);
              const expectedStatus = stop < 0 ? undefined : terminal(outcomes[outcomeIdx[Number(walk[stop].slice(1))]]);
              const sameSet = expectedTried.length === tried.size && expectedTried.every((id) => tried.has(id));
              if (!sameSet) return false;
              if (expectedStatus === undefined) return res.status >= 429 && res.headers.get("x-gwc-account") === null;
              return res.status === expectedStatus && res.headers.get("x-gwc-account") === walk[stop];
            });
            expect(explained).toBe(true);
          } finally {
            await gw.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
