// The governance the benchmarks turn on, shared by the live `gateway+gov`
// target (run.mjs) and the in-process full-decision micro benchmark, so both
// measure the same thing: a virtual key (sent as a bearer token), a budget at
// every level (organization, team, key; daily and monthly), and a request and
// a token rate limit. Limits are far above what a run can reach.
export const GOV_KEY = "gwc-bench-virtual-key-0001";
export const GOV_ENV = { GWC_BENCH_KEY: GOV_KEY };

/** A config's accounts and routes, with the benchmark's governance added. */
export function governed(config) {
  return {
    ...config,
    organization: { id: "bench", budget: { monthly_limit_usd: 1_000_000 } },
    teams: [{ id: "bench-team", budget: { daily_limit_usd: 500_000, monthly_limit_usd: 1_000_000 } }],
    virtual_keys: [
      {
        id: "bench-key",
        key: "${GWC_BENCH_KEY}",
        team: "bench-team",
        budget: { daily_limit_usd: 100_000, monthly_limit_usd: 1_000_000 },
        rate_limit: { request_max_limit: 1_000_000_000, request_reset_duration: "1m", token_max_limit: 1_000_000_000_000, token_reset_duration: "1h" },
      },
    ],
  };
}
