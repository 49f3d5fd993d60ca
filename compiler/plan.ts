import prices from "../schemas/prices.json" with { type: "json" };
import {
  PLAN_VERSION,
  SUBSET_MAX_MEMBERS,
  WITHOUT_MAX_MEMBERS,
  type AliasTable,
  type BudgetExceeded,
  type Plan,
  type PlanAccount,
  type PlanBudget,
  type PlanPool,
  type PlanPrice,
  type PlanRedis,
  type PlanRateLimit,
  type PlanRoute,
  type PlanTarget,
  type BudgetLevel,
} from "../runtime/plan.ts";
import { buildAliasTable } from "./alias-table.ts";
import type { BudgetConfig, Config, PoolConfig, PriceConfig, RateLimitConfig, RedisConfig, RouteConfig } from "./config-types.ts";
import { parseDuration, parseEnvRef } from "./durations.ts";
import { flattenRoute, type RouteNode } from "./failover-graph.ts";
import { AZURE_API_VERSION, PROVIDERS } from "./provider-defaults.ts";
import { resolveResilience } from "./resilience.ts";

export const POOL_DEFAULTS = {
  max_connections: 64,
  queue_size: 256,
  backpressure: "error",
  queue_timeout: "1s",
  request_timeout: "60s",
} as const satisfies Required<PoolConfig>;

const NANO = 1_000_000_000;

/**
 * Turns a checked config into the plan: every default applied, every id turned
 * into an index, every table built. Only called when check found no errors, so
 * references resolve; it still never trusts more than it must.
 */
export function buildPlan(config: Config, meta: { gwcVersion: string; configSha256: string }): Plan {
  const accountsConfig = config.accounts ?? [];
  const accountIndex = new Map(accountsConfig.map((a, i) => [a.id, i]));

  const pools: PlanPool[] = [];
  const poolIndex = new Map<string, number>();
  const accounts: PlanAccount[] = accountsConfig.map((a) => {
    const defaults = PROVIDERS[a.provider];
    const settings = config.providers?.[a.provider];
    const region = a.region ?? defaults.region;
    // Vertex's global location has no region prefix in its host.
    const regional = region === "global" ? defaults.baseUrl.replace("{region}-", "") : defaults.baseUrl.replace("{region}", region ?? "");
    const baseUrl = (a.base_url ?? settings?.base_url ?? regional).replace(/\/+$/, "");
    const options: [string, string][] = [];
    if (region !== undefined) options.push(["region", region]);
    if (a.project !== undefined) options.push(["project", a.project]);
    if (a.provider === "azure") options.push(["api_version", a.api_version ?? AZURE_API_VERSION]);
    const secretOptions: [string, string, boolean][] =
      a.provider === "bedrock"
        ? [
            ["aws_access_key_id", a.aws_access_key_id === undefined ? "AWS_ACCESS_KEY_ID" : parseEnvRef(a.aws_access_key_id)!, true],
            ["aws_session_token", a.aws_session_token === undefined ? "AWS_SESSION_TOKEN" : parseEnvRef(a.aws_session_token)!, a.aws_session_token !== undefined],
          ]
        : [];
    const poolConfig = { ...POOL_DEFAULTS, ...settings?.pool, ...a.pool };
    const poolId = `${a.provider}@${new URL(baseUrl).origin}${a.pool ? `#${a.id}` : ""}`;
    let pool = poolIndex.get(poolId);
    if (pool === undefined) {
      pool = pools.length;
      poolIndex.set(poolId, pool);
      pools.push({
        id: poolId,
        provider: a.provider,
        maxConnections: poolConfig.max_connections,
        queueSize: poolConfig.queue_size,
        backpressure: poolConfig.backpressure,
        queueTimeoutMs: ms(poolConfig.queue_timeout),
        requestTimeoutMs: ms(poolConfig.request_timeout),
      });
    }
    return {
      id: a.id,
      provider: a.provider,
      wire: defaults.wire,
      baseUrl,
      apiKeyEnv: a.api_key !== undefined ? parseEnvRef(a.api_key)! : defaults.apiKeyEnv,
      options,
      secretOptions,
      resume: defaults.resume ?? null,
      model: a.model ?? null,
      pool,
      rateLimit: rateLimit(stableKey("account", a.id), a.rate_limit),
    };
  });

  // Routes: the config's, or one catch-all over every account.
  const routesConfig: RouteConfig[] =
    config.routes && config.routes.length > 0 ? config.routes : [{ id: "*", model: "*", targets: accountsConfig.map((a) => ({ account: a.id })) }];
  const routeIndex = new Map(routesConfig.map((r, i) => [r.id ?? r.model, i]));
  const nodes: RouteNode[] = routesConfig.map((r) => ({
    members: r.targets.map((t): PlanTarget => {
      const account = accountIndex.get(t.account)!;
      const a = accountsConfig[account];
      return { account, model: t.model ?? a.model ?? (r.model === "*" ? null : r.model), weight: t.weight ?? a.weight ?? 1 };
    }),
    fallbacks: (r.fallbacks ?? []).map((f) => routeIndex.get(f)!),
  }));
  const routes: PlanRoute[] = routesConfig.map((r, i) => {
    const { targets, order } = flattenRoute(nodes, i);
    const members = nodes[i].members.length;
    const weights = targets.slice(0, members).map((t) => t.weight);
    const positions = weights.map((_, p) => p);
    const tableWithout = (isDown: (p: number) => boolean): AliasTable | null =>
      buildAliasTable(positions, weights.map((w, p) => (isDown(p) ? 0 : w)));
    return {
      id: r.id ?? r.model,
      model: r.model,
      members,
      targets,
      order,
      table: tableWithout(() => false),
      subsets:
        members <= SUBSET_MAX_MEMBERS
          ? Array.from({ length: 1 << members }, (_, mask) => tableWithout((p) => (mask & (1 << p)) === 0))
          : null,
      without:
        members > SUBSET_MAX_MEMBERS && members <= WITHOUT_MAX_MEMBERS
          ? positions.map((down) => tableWithout((p) => p === down))
          : null,
      resilience: resolveResilience(config.resilience, config.fallback_config, r.resilience, r.fallback_config),
      // Only when set, so plans (and their golden files) without it stay as they were.
      ...(r.drop_unsupported_params === true ? { dropUnsupportedParams: true } : {}),
    };
  });

  // Governance: a flat list of budget nodes, each keyed by a stable id.
  const budgets: PlanBudget[] = [];
  const addBudget = (level: BudgetLevel, owner: string, key: string, b: BudgetConfig | undefined): number => {
    if (b === undefined || (b.daily_limit_usd ?? b.weekly_limit_usd ?? b.monthly_limit_usd) === undefined) return -1;
    budgets.push({ key, level, owner, dailyNano: nano(b.daily_limit_usd), weeklyNano: nano(b.weekly_limit_usd), monthlyNano: nano(b.monthly_limit_usd) });
    return budgets.length - 1;
  };
  const orgId = config.organization?.id ?? "default";
  const organization = {
    id: orgId,
    budget: addBudget("organization", orgId, stableKey("org", orgId), config.organization?.budget),
    rateLimit: rateLimit(stableKey("org", orgId), config.organization?.rate_limit),
  };
  const teamIndex = new Map<string, number>();
  const teams = (config.teams ?? []).map((t, i) => {
    teamIndex.set(t.id, i);
    return { id: t.id, budget: addBudget("team", t.id, stableKey("team", t.id), t.budget), rateLimit: rateLimit(stableKey("team", t.id), t.rate_limit) };
  });
  const virtualKeys = (config.virtual_keys ?? []).map((k) => {
    const team = k.team === undefined ? -1 : teamIndex.get(k.team)!;
    const own = addBudget("virtual_key", k.id, stableKey("vk", k.id), k.budget);
    const chain = [organization.budget, team >= 0 ? teams[team].budget : -1, own].filter((b) => b >= 0);
    const providerBudgets = Object.entries(k.provider_budgets ?? {})
      .map(([provider, b]): [string, number] => [provider, addBudget("provider", `${k.id}/${provider}`, stableKey("vk", k.id, "provider", provider), b)])
      .filter(([, b]) => b >= 0);
    const rateLimits = [organization.rateLimit, team >= 0 ? teams[team].rateLimit : null, rateLimit(stableKey("vk", k.id), k.rate_limit)].filter(
      (r): r is PlanRateLimit => r !== null,
    );
    const exceeded = k.on_budget_exceeded;
    const onBudgetExceeded: BudgetExceeded =
      exceeded === undefined || exceeded === "reject"
        ? { kind: "reject" }
        : exceeded.reroute_to_route !== undefined
          ? { kind: "route", route: routeIndex.get(exceeded.reroute_to_route) ?? routesConfig.findIndex((r) => r.model === exceeded.reroute_to_route) }
          : { kind: "account", account: accountIndex.get(exceeded.reroute_to_account!)! };
    return {
      id: k.id,
      keyEnv: k.key === undefined ? null : parseEnvRef(k.key)!,
      keySha256: k.key_sha256 === undefined ? null : k.key_sha256.toLowerCase(),
      team,
      models: k.models ?? null,
      budgets: chain,
      providerBudgets,
      rateLimits,
      maxConcurrent: k.max_concurrent_requests ?? 0,
      onBudgetExceeded,
    };
  });

  const priceEntries = new Map<string, PlanPrice>();
  for (const [model, p] of Object.entries(prices.models as Record<string, PriceConfig>)) priceEntries.set(model, price(p));
  for (const [model, p] of Object.entries(config.pricing ?? {})) priceEntries.set(model, price(p));

  return {
    version: PLAN_VERSION,
    gwcVersion: meta.gwcVersion,
    configSha256: meta.configSha256,
    accounts,
    pools,
    routes,
    resilience: resolveResilience(config.resilience, config.fallback_config, undefined, undefined),
    routeByModel: routes.flatMap((r, i): [string, number][] => (r.model === "*" ? [] : [[r.model, i]])),
    catchAllRoute: routes.findIndex((r) => r.model === "*"),
    organization,
    teams,
    budgets,
    virtualKeys,
    prices: [...priceEntries],
    state: { dir: config.state?.dir ?? ".gwc-state", snapshotIntervalMs: ms(config.state?.snapshot_interval ?? "1s"), ...redisPlan(config.state?.redis) },
    server: {
      maxBodyBytes: config.server?.max_body_bytes ?? 4 * 1024 * 1024,
      shutdownTimeoutMs: ms(config.server?.shutdown_timeout ?? "30s"),
      headerTimeoutMs: ms(config.server?.header_timeout ?? "10s"),
      bodyTimeoutMs: ms(config.server?.body_timeout ?? "30s"),
      keepAliveTimeoutMs: ms(config.server?.keep_alive_timeout ?? "65s"),
      adminKeyEnv: config.server?.admin_key === undefined ? null : parseEnvRef(config.server.admin_key)!,
      uiApply: config.server?.ui_apply ?? false,
      maxEventBytes: config.server?.max_event_bytes ?? 1024 * 1024,
      maxUpstreamBodyBytes: config.server?.max_upstream_body_bytes ?? 64 * 1024 * 1024,
      logLevel: config.server?.log_level ?? "info",
      accessLog: config.server?.access_log ?? true,
    },
    observability: {
      metrics: config.observability?.metrics ?? true,
      perKeyMetrics: config.observability?.per_key_metrics ?? false,
      logBodies: config.observability?.log_bodies ?? false,
    },
  };
}

/**
 * Counter keys: stable across reloads (built from ids, never indices) and
 * unambiguous whatever the ids contain: `%`, `/` and `:` inside an id are
 * percent-escaped, so `vk:alice/provider:openai` can only mean alice's OpenAI
 * budget and never a key whose id is `alice/provider:openai`.
 */
export function stableKey(...kindIdPairs: string[]): string {
  const escape = (id: string) => id.replace(/[%/:]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (let i = 0; i < kindIdPairs.length; i += 2) parts.push(`${kindIdPairs[i]}:${escape(kindIdPairs[i + 1])}`);
  return parts.join("/");
}

/** `{ redis }` when the config shares counters through Redis; nothing otherwise, so plans without it keep their shape. */
function redisPlan(redis: RedisConfig | undefined): { redis?: PlanRedis } {
  if (redis === undefined) return {};
  return {
    redis: { urlEnv: parseEnvRef(redis.url)!, prefix: redis.prefix ?? "gwc:", leaseTtlMs: ms(redis.lease_ttl ?? "30s"), whenDown: redis.when_down ?? "reject", ...(redis.cluster === true ? { cluster: true as const } : {}), ...leasingPlan(redis.budget_leasing) },
  };
}

function leasingPlan(leasing: RedisConfig["budget_leasing"]): { budgetLeasing?: PlanRedis["budgetLeasing"] } {
  if (leasing === undefined || leasing === false) return {};
  const o = leasing === true ? {} : leasing;
  return { budgetLeasing: { maxSliceNano: nano(o.max_slice_usd ?? 1), reportMs: ms(o.report_interval ?? "100ms") } };
}

function ms(duration: string): number {
  return parseDuration(duration)!;
}

function nano(usd: number | undefined): number {
  return usd === undefined ? -1 : Math.round(usd * NANO);
}

function price(p: PriceConfig): PlanPrice {
  return {
    inputNano: nano(p.input_per_mtok_usd),
    outputNano: nano(p.output_per_mtok_usd),
    cachedInputNano: nano(p.cached_input_per_mtok_usd ?? p.input_per_mtok_usd),
    cacheWriteNano: nano(p.cache_write_per_mtok_usd ?? p.input_per_mtok_usd),
  };
}

function rateLimit(key: string, r: RateLimitConfig | undefined): PlanRateLimit | null {
  if (r === undefined || (r.request_max_limit === undefined && r.token_max_limit === undefined)) return null;
  return {
    key,
    requests: r.request_max_limit === undefined ? null : { limit: r.request_max_limit, windowMs: ms(r.request_reset_duration ?? "1m") },
    tokens: r.token_max_limit === undefined ? null : { limit: r.token_max_limit, windowMs: ms(r.token_reset_duration ?? "1m") },
  };
}
