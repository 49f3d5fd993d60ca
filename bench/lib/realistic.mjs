// The configuration people actually run (issue #17), shared by the `realistic`
// target in run.mjs, the profile and bench/scale.mjs: a 70/30 split over two
// accounts, an organization, 4 teams and N virtual keys, each with daily and
// monthly budgets, request and token rate limits and a concurrency cap, and
// (when the runtime has them) /metrics and the JSON access log on. Keys are
// configured by SHA-256 (`key_sha256`), as a deployment that keeps keys off
// the gateway's machine would; the load generator (post.lua with BENCH_KEYS) sends a key
// picked at random per request, so every request takes the key lookup,
// admission and budget path of a different key. Limits are far above what a
// run can reach, so nothing is refused: the bench prices the checks, not 429s.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export const REAL_KEYS = 1000;
export const REAL_KEY_PREFIX = "gwc-bench-vk-";
/** The i-th key's secret, as post.lua builds it with BENCH_KEYS. */
export const realKey = (i) => `${REAL_KEY_PREFIX}${String(i).padStart(5, "0")}`;

/** Whether the runtime's schema has `observability` (metrics) and `server.access_log` yet. */
export function observabilitySupported(schemaFile) {
  const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
  return schema.properties?.observability !== undefined && schema.properties?.server?.properties?.access_log !== undefined;
}

/**
 * The realistic config. `accounts` are the 70/30 pair (base URLs given);
 * `keys` virtual keys spread over 4 teams.
 */
export function realisticConfig({ primary, secondary, keys = REAL_KEYS, teams = 4, observability = false, accountExtra = {} }) {
  const account = (id, url, weight) => ({ id, provider: "openai", base_url: `${url}/v1`, api_key: "${OPENAI_API_KEY}", model: "gpt-4o", weight, ...accountExtra });
  const teamList = Array.from({ length: teams }, (_, t) => ({
    id: `team-${t}`,
    budget: { daily_limit_usd: 500_000, monthly_limit_usd: 1_000_000 },
    rate_limit: { request_max_limit: 1_000_000_000, request_reset_duration: "1m" },
  }));
  const virtual_keys = Array.from({ length: keys }, (_, k) => ({
    id: `vk-${k}`,
    key_sha256: createHash("sha256").update(realKey(k)).digest("hex"),
    team: teamList[k % teams].id,
    budget: { daily_limit_usd: 10_000, monthly_limit_usd: 100_000 },
    rate_limit: { request_max_limit: 100_000_000, request_reset_duration: "1m", token_max_limit: 1_000_000_000_000, token_reset_duration: "1h" },
    max_concurrent_requests: 8,
  }));
  return {
    accounts: [account("primary", primary, 70), account("secondary", secondary ?? primary, 30)],
    organization: { id: "bench-org", budget: { monthly_limit_usd: 10_000_000 } },
    teams: teamList,
    virtual_keys,
    ...(observability ? { observability: { metrics: true }, server: { access_log: true } } : {}),
  };
}

/**
 * The at-scale config (item 10): `accounts` accounts at `url` in routes of 10
 * (model-0, model-1, ...), an organization, `keys / 100` teams and `keys`
 * virtual keys governed as in realisticConfig. `pool` (optional) is every
 * account's pool.
 */
export function scaleConfig({ url, accounts = 1000, keys = 10_000, pool, weightSeed = 0 }) {
  const base = realisticConfig({ primary: url, keys, teams: Math.max(1, Math.ceil(keys / 100)) });
  const accountList = Array.from({ length: accounts }, (_, i) => ({
    id: `acct-${i}`,
    provider: "openai",
    base_url: `${url}/v1`,
    api_key: "${OPENAI_API_KEY}",
    model: "gpt-4o",
    weight: 1 + ((i * 7919 + weightSeed) % 100),
    ...(pool ? { pool } : {}),
  }));
  const routes = Array.from({ length: Math.ceil(accounts / 10) }, (_, r) => ({ model: `model-${r}`, targets: accountList.slice(r * 10, r * 10 + 10).map((a) => ({ account: a.id })) }));
  return { ...base, accounts: accountList, routes };
}
