// Invariant (DESIGN.md): a rate limit admits at most its limit per window, and
// a new window starts from zero. Governance keeps each key's current window
// lines until the first of them ends (issue #17: keys rotating per request);
// for any order of keys and any clock moving forward across window ends, what
// it admits and the x-ratelimit-remaining-requests it reports equal a plain
// count per key, team and window.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/compile.ts";
import { Governance } from "../../runtime/governance.ts";
import { HttpError } from "../../runtime/errors.ts";
import { MemoryStore } from "../../runtime/state-store.ts";

const KEYS = 4;
const KEY_LIMIT = 3;
const TEAM_LIMIT = 7;
const WINDOW_MS = 60_000;

function governance(): Governance {
  const config = {
    accounts: [{ id: "a", provider: "openai", base_url: "http://127.0.0.1:9/v1", api_key: "${K}", model: "gpt-4o" }],
    teams: [{ id: "t", rate_limit: { request_max_limit: TEAM_LIMIT, request_reset_duration: "1m" } }],
    virtual_keys: Array.from({ length: KEYS }, (_, k) => ({
      id: `vk-${k}`,
      key: `\${VK_${k}}`,
      team: "t",
      rate_limit: { request_max_limit: KEY_LIMIT, request_reset_duration: "1m", token_max_limit: 1_000_000, token_reset_duration: "1m" },
    })),
  };
  const { plan, diagnostics } = compileSource(JSON.stringify(config), "rate-windows.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  const env = Object.fromEntries(Array.from({ length: KEYS }, (_, k) => [`VK_${k}`, `key-${k}`]));
  return new Governance(plan, new MemoryStore(null), new Map(), { ...env, K: "x" });
}

describe("rate-limit windows with keys rotating", () => {
  it("admit exactly what a per-window count allows, and report what is left", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ key: fc.nat(KEYS - 1), advanceMs: fc.oneof(fc.constant(0), fc.nat(WINDOW_MS / 2), fc.nat(3 * WINDOW_MS)) }), { maxLength: 120 }), (steps) => {
        const gov = governance();
        const route = gov.plan.routes[0];
        const used = new Map<string, number>();
        let now = 1_800_000_000_000; // a window boundary
        for (const { key, advanceMs } of steps) {
          now += advanceMs;
          const window = Math.floor(now / WINDOW_MS);
          const mine = used.get(`${key}|${window}`) ?? 0;
          const team = used.get(`team|${window}`) ?? 0;
          const vk = gov.identify({ authorization: `Bearer key-${key}` });
          let admitted = true;
          let remaining: string | undefined;
          try {
            const a = gov.admit(vk, "gpt-4o", route, now);
            if (a instanceof Promise) throw new Error("the in-memory store answered with a promise");
            remaining = a.headers["x-ratelimit-remaining-requests"];
            a.release();
          } catch (e) {
            if (!(e instanceof HttpError) || e.status !== 429) throw e;
            admitted = false;
          }
          expect(admitted).toBe(mine < KEY_LIMIT && team < TEAM_LIMIT);
          if (admitted) {
            used.set(`${key}|${window}`, mine + 1);
            used.set(`team|${window}`, team + 1);
            expect(remaining).toBe(String(Math.min(KEY_LIMIT - mine - 1, TEAM_LIMIT - team - 1)));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
