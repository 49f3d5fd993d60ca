import prices from "../schemas/prices.json" with { type: "json" };
import type { BudgetConfig, Config, PoolConfig, RateLimitConfig } from "./config-types.ts";
import { didYouMean, pointerOf, type DiagnosticBag } from "./diagnostics.ts";
import { parseDuration, parseEnvRef } from "./durations.ts";
import { PROVIDERS } from "./provider-defaults.ts";
import { checkResilience } from "./resilience.ts";

const MAX_TABLE_TOTAL = 0xffffffff;
const PERIODS = ["daily_limit_usd", "weekly_limit_usd", "monthly_limit_usd"] as const;

/**
 * Semantic rules the schema cannot say: references that must resolve, ids that
 * must be unique, weights that must leave something to pick, fallbacks that
 * must not loop, budgets that must be able to price what they pay for.
 * Runs on a schema-valid config; reports every problem, stops at none.
 */
export function check(config: Config, bag: DiagnosticBag): void {
  const accounts = config.accounts ?? [];
  const routes = config.routes ?? [];
  const accountIds = uniqueIds(accounts.map((a) => a.id), "/accounts", "id", "account", bag);
  // Two routes without ids for one model are reported as a duplicate model below, not twice.
  const routeIds = uniqueIds(routes.map((r) => r.id ?? r.model), "/routes", (i) => (routes[i].id === undefined ? "model" : "id"), "route", bag, (i, first) =>
    routes[i].id !== undefined || routes[first].id !== undefined,
  );
  const teamIds = uniqueIds((config.teams ?? []).map((t) => t.id), "/teams", "id", "team", bag);
  uniqueIds((config.virtual_keys ?? []).map((k) => k.id), "/virtual_keys", "id", "virtual key", bag);

  // An empty list can serve nothing, so it is not a config to ship. No list at all is a fragment (the
  // article's budgets example sets only keys and budgets): it compiles, with a warning.
  if (config.accounts !== undefined && accounts.length === 0) {
    bag.error("GWC_E_NO_ACCOUNTS", "/accounts", "`accounts` is empty, so the gateway could serve nothing. Add at least one account.");
  } else if (accounts.length === 0) {
    bag.warning("GWC_W_NO_ACCOUNTS", "", "The config has no accounts: every model request will be refused with 503. Add `accounts`.");
  }

  // Accounts: secrets, URLs, durations.
  accounts.forEach((a, i) => {
    const at = pointerOf("accounts", i);
    if (a.api_key !== undefined) envRef(a.api_key, `${at}/api_key`, "api_key", bag);
    const settings = config.providers?.[a.provider];
    const baseUrl = a.base_url ?? settings?.base_url;
    if (a.base_url !== undefined) checkBaseUrl(a.base_url, a.provider, `${at}/base_url`, bag);
    if (baseUrl === undefined && PROVIDERS[a.provider].baseUrl === "") {
      bag.error("GWC_E_BASE_URL_REQUIRED", at, `Account '${a.id}' of provider '${a.provider}' has no default endpoint; set \`base_url\` on it or under \`providers.${a.provider}\`.`);
    }
    checkPool(a.pool, `${at}/pool`, bag);
    checkRateLimit(a.rate_limit, `${at}/rate_limit`, bag);
    if (a.provider === "vertex" && a.project === undefined) {
      bag.error("GWC_E_PROVIDER_SETTING", at, `Vertex AI account '${a.id}' needs \`project\`, the Google Cloud project id.`);
    }
    if (a.provider === "azure" && a.model === undefined) {
      bag.warning("GWC_W_AZURE_DEPLOYMENT", at, `Azure account '${a.id}' has no \`model\`; the caller's model name will be used as the deployment name.`);
    }
    const only: [keyof typeof a, string[]][] = [["region", ["vertex", "bedrock"]], ["project", ["vertex"]], ["api_version", ["azure"]], ["aws_access_key_id", ["bedrock"]], ["aws_session_token", ["bedrock"]]];
    for (const [field, providers] of only) {
      if (a[field] !== undefined && !providers.includes(a.provider)) {
        bag.error("GWC_E_PROVIDER_SETTING", `${at}/${field}`, `\`${field}\` applies only to ${providers.join(" and ")} accounts, not '${a.provider}'.`);
      }
    }
    if (a.aws_access_key_id !== undefined) envRef(a.aws_access_key_id, `${at}/aws_access_key_id`, "aws_access_key_id", bag);
    if (a.aws_session_token !== undefined) envRef(a.aws_session_token, `${at}/aws_session_token`, "aws_session_token", bag);
  });
  for (const [name, settings] of Object.entries(config.providers ?? {})) {
    if (settings.base_url !== undefined) checkBaseUrl(settings.base_url, name, pointerOf("providers", name, "base_url"), bag);
    checkPool(settings.pool, pointerOf("providers", name, "pool"), bag);
  }

  // Routes: targets, weights, fallbacks.
  const models = new Map<string, number>();
  routes.forEach((r, i) => {
    const at = pointerOf("routes", i);
    const first = models.get(r.model);
    if (first !== undefined) {
      bag.error("GWC_E_DUPLICATE_ROUTE_MODEL", `${at}/model`, `Model '${r.model}' is already routed by /routes/${first}; one route per model. Merge their targets.`);
    } else {
      models.set(r.model, i);
    }
    const seen = new Set<string>();
    let total = 0;
    r.targets.forEach((t, j) => {
      const tat = `${at}/targets/${j}`;
      if (!accountIds.has(t.account)) {
        bag.error("GWC_E_UNKNOWN_ACCOUNT", `${tat}/account`, `No account has id '${t.account}'.${didYouMean(t.account, accountIds.keys())}`);
        return;
      }
      if (seen.has(t.account)) {
        bag.error("GWC_E_DUPLICATE_TARGET", `${tat}/account`, `Account '${t.account}' is listed twice in this route; list it once with the combined weight.`);
      }
      seen.add(t.account);
      total += t.weight ?? accounts[accountIds.get(t.account)!].weight ?? 1;
    });
    if (seen.size > 0 && total === 0) {
      bag.error("GWC_E_ZERO_WEIGHTS", `${at}/targets`, `Every target of route '${r.id ?? r.model}' has weight 0, so nothing can be picked. Give at least one a positive weight.`);
    }
    if (total > MAX_TABLE_TOTAL) {
      bag.error("GWC_E_WEIGHT_TOTAL", `${at}/targets`, `The weights of route '${r.id ?? r.model}' add up to ${total}, above ${MAX_TABLE_TOTAL}. Scale them down.`);
    }
    (r.fallbacks ?? []).forEach((f, j) => {
      if (!routeIds.has(f)) {
        bag.error("GWC_E_UNKNOWN_ROUTE", `${at}/fallbacks/${j}`, `No route has id '${f}' (a route's id defaults to its model).${didYouMean(f, routeIds.keys())}`);
      }
    });
    if (r.fallback_config !== undefined) checkStatuses(r.fallback_config.on_status_codes, `${at}/fallback_config/on_status_codes`, bag);
    checkResilience(r.resilience, `${at}/resilience`, bag, config.resilience);
  });
  checkStatuses(config.fallback_config?.on_status_codes, "/fallback_config/on_status_codes", bag);
  checkResilience(config.resilience, "/resilience", bag);
  checkFallbackCycles(config, routeIds, bag);

  // One model name sent as is to providers of different wire formats: one of them will not know it.
  const passthroughWarning = (at: string, label: string, accountIndexes: number[]) => {
    const wires = new Set(accountIndexes.map((i) => PROVIDERS[accounts[i].provider].wire));
    if (wires.size > 1) {
      const ids = accountIndexes.map((i) => `'${accounts[i].id}'`).join(", ");
      bag.warning("GWC_W_MIXED_PASSTHROUGH", at, `${label} sends the same model name to ${ids}, which speak different APIs; a model one of them serves, the other will refuse. Set \`model\` on each account (or target).`);
    }
  };
  if (routes.length === 0) {
    passthroughWarning("/accounts", "The catch-all route", accounts.flatMap((a, i) => (a.model === undefined && (a.weight ?? 1) > 0 ? [i] : [])));
  }
  routes.forEach((r, i) => {
    const passing = r.targets.flatMap((t) => {
      const index = accountIds.get(t.account);
      return index !== undefined && t.model === undefined && accounts[index].model === undefined ? [index] : [];
    });
    passthroughWarning(pointerOf("routes", i, "targets"), `Route '${r.id ?? r.model}'`, passing);
  });

  if (routes.length === 0 && accounts.length > 0) {
    const total = accounts.reduce((s, a) => s + (a.weight ?? 1), 0);
    if (total === 0) bag.error("GWC_E_ZERO_WEIGHTS", "/accounts", "Every account has weight 0, so nothing can be picked. Give at least one a positive weight.");
    if (total > MAX_TABLE_TOTAL) bag.error("GWC_E_WEIGHT_TOTAL", "/accounts", `The account weights add up to ${total}, above ${MAX_TABLE_TOTAL}. Scale them down.`);
  }
  if (routes.length > 0) {
    const used = new Set<string>();
    for (const r of routes) for (const t of r.targets) used.add(t.account);
    for (const k of config.virtual_keys ?? []) {
      if (typeof k.on_budget_exceeded === "object" && k.on_budget_exceeded.reroute_to_account) used.add(k.on_budget_exceeded.reroute_to_account);
    }
    accounts.forEach((a, i) => {
      if (!used.has(a.id)) bag.warning("GWC_W_UNUSED_ACCOUNT", pointerOf("accounts", i), `Account '${a.id}' is in no route, so it gets no traffic. Add it to a route's targets or remove it.`);
    });
  }

  // Governance.
  checkBudget(config.organization?.budget, "/organization/budget", bag);
  checkRateLimit(config.organization?.rate_limit, "/organization/rate_limit", bag);
  (config.teams ?? []).forEach((t, i) => {
    checkBudget(t.budget, pointerOf("teams", i, "budget"), bag);
    checkRateLimit(t.rate_limit, pointerOf("teams", i, "rate_limit"), bag);
    capsAbove(t.budget, config.organization?.budget, pointerOf("teams", i, "budget"), "the organization", bag);
  });
  const servesModel = (name: string) => models.has(name) || routeIds.has(name) || models.has("*") || routes.length === 0;
  (config.virtual_keys ?? []).forEach((k, i) => {
    const at = pointerOf("virtual_keys", i);
    if (k.key !== undefined) envRef(k.key, `${at}/key`, "key", bag);
    if (k.key_sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(k.key_sha256)) {
      bag.error("GWC_E_KEY_SHA256", `${at}/key_sha256`, "key_sha256 must be 64 hex digits: the SHA-256 of the key (e.g. `printf %s \"$KEY\" | sha256sum`).");
    }
    if (k.key !== undefined && k.key_sha256 !== undefined) {
      bag.error("GWC_E_KEY_TWICE", at, `Virtual key '${k.id}' sets both \`key\` and \`key_sha256\`; keep one.`);
    }
    if (k.key === undefined && k.key_sha256 === undefined) {
      bag.warning("GWC_W_KEY_WITHOUT_SECRET", at, `Virtual key '${k.id}' has neither \`key\` nor \`key_sha256\`, so no caller can present it. Add one.`);
    }
    let parent: { budget?: BudgetConfig; name: string } = { budget: config.organization?.budget, name: "the organization" };
    if (k.team !== undefined) {
      if (!teamIds.has(k.team)) {
        bag.error("GWC_E_UNKNOWN_TEAM", `${at}/team`, `No team has id '${k.team}'.${didYouMean(k.team, teamIds.keys())}`);
      } else {
        parent = { budget: config.teams![teamIds.get(k.team)!].budget, name: `team '${k.team}'` };
      }
    }
    checkBudget(k.budget, `${at}/budget`, bag);
    capsAbove(k.budget, parent.budget, `${at}/budget`, parent.name, bag);
    for (const [provider, budget] of Object.entries(k.provider_budgets ?? {})) {
      const pat = `${at}/provider_budgets/${provider}`;
      checkBudget(budget, pat, bag);
      capsAbove(budget, k.budget ?? parent.budget, pat, k.budget ? `key '${k.id}'` : parent.name, bag);
    }
    checkRateLimit(k.rate_limit, `${at}/rate_limit`, bag);
    (k.models ?? []).forEach((m, j) => {
      if (!servesModel(m)) bag.error("GWC_E_UNKNOWN_ROUTE", `${at}/models/${j}`, `Virtual key '${k.id}' allows '${m}', but no route serves that model.${didYouMean(m, [...models.keys(), ...routeIds.keys()])}`);
    });
    const exceeded = k.on_budget_exceeded;
    if (typeof exceeded === "object") {
      if (exceeded.reroute_to_account !== undefined && !accountIds.has(exceeded.reroute_to_account)) {
        bag.error("GWC_E_UNKNOWN_ACCOUNT", `${at}/on_budget_exceeded/reroute_to_account`, `No account has id '${exceeded.reroute_to_account}'.${didYouMean(exceeded.reroute_to_account, accountIds.keys())}`);
      }
      const reroute = exceeded.reroute_to_route;
      if (reroute !== undefined && !routeIds.has(reroute) && !models.has(reroute)) {
        bag.error("GWC_E_UNKNOWN_ROUTE", `${at}/on_budget_exceeded/reroute_to_route`, `No route has id or model '${reroute}'.${didYouMean(reroute, [...routeIds.keys(), ...models.keys()])}`);
      }
      if (!hasCaps(k.budget)) {
        bag.warning("GWC_W_REROUTE_WITHOUT_BUDGET", `${at}/on_budget_exceeded`, `Virtual key '${k.id}' reroutes when its budget is spent but has no budget of its own; add \`budget\` or remove the reroute.`);
      }
    }
  });

  if (config.server?.admin_key !== undefined) envRef(config.server.admin_key, "/server/admin_key", "admin_key", bag);
  duration(config.server?.shutdown_timeout, "/server/shutdown_timeout", bag);
  for (const key of ["header_timeout", "body_timeout", "keep_alive_timeout"] as const) duration(config.server?.[key], `/server/${key}`, bag);
  checkObservability(config, bag);
  duration(config.state?.snapshot_interval, "/state/snapshot_interval", bag);
  const redis = config.state?.redis;
  if (redis !== undefined) {
    envRef(redis.url, "/state/redis/url", "url", bag);
    const ttl = duration(redis.lease_ttl, "/state/redis/lease_ttl", bag);
    if (ttl !== undefined && ttl < 1000) {
      bag.error("GWC_E_LEASE_TTL", "/state/redis/lease_ttl", `lease_ttl must be at least 1s: leases are renewed every third of it, and a shorter one expires under a healthy instance's feet.`);
    }
  }
  checkPrices(config, accountIds, bag);
}

function uniqueIds(
  ids: string[],
  base: string,
  field: string | ((i: number) => string),
  what: string,
  bag: DiagnosticBag,
  report: (i: number, first: number) => boolean = () => true,
): Map<string, number> {
  const index = new Map<string, number>();
  ids.forEach((id, i) => {
    const first = index.get(id);
    if (first !== undefined) {
      if (!report(i, first)) return;
      const f = typeof field === "string" ? field : field(i);
      bag.error("GWC_E_DUPLICATE_ID", `${base}/${i}/${f}`, `Another ${what} (${base}/${first}) already has id '${id}'; ids must be unique.`);
    } else {
      index.set(id, i);
    }
  });
  return index;
}

function envRef(value: string, at: string, field: string, bag: DiagnosticBag): void {
  if (parseEnvRef(value) !== undefined) return;
  if (value.includes("$")) {
    bag.error("GWC_E_ENV_REF", at, `'${field}' must be exactly one \`\${NAME}\` reference, NAME made of letters, digits and '_' (e.g. "\${OPENAI_API_KEY}").`);
  } else {
    // The value itself is never echoed: it may be a real secret.
    bag.error("GWC_E_LITERAL_SECRET", at, `'${field}' holds a literal value; secrets never go in the config. Put it in an environment variable and write "\${VAR_NAME}".`);
  }
}

function checkBaseUrl(value: string, provider: string, at: string, bag: DiagnosticBag): void {
  // The value is not echoed: people paste keys into the wrong field.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    bag.error("GWC_E_BASE_URL", at, `base_url needs a scheme and host, like "http://127.0.0.1:8000/v1".`);
    return;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    bag.error("GWC_E_BASE_URL", at, `base_url is not a valid URL; write it like "https://host:port/v1".`);
    return;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    bag.error("GWC_E_BASE_URL", at, `base_url must use http or https, not '${url.protocol.slice(0, -1)}'.`);
  } else if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    bag.error("GWC_E_BASE_URL", at, "base_url must have no query, fragment or credentials; keys go in `api_key`.");
  } else if (provider === "anthropic" && /\/v1\/?$/.test(url.pathname)) {
    bag.warning("GWC_W_BASE_URL_V1", at, "Anthropic's base URL has no /v1 (the SDK adds /v1/messages); remove the trailing /v1.");
  }
}

function duration(value: string | undefined, at: string, bag: DiagnosticBag): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) {
    bag.error("GWC_E_DURATION", at, `'${value}' is not a duration; write a positive number with a unit, like "500ms", "30s", "5m", "1h", "1d" or "1h30m".`);
  }
  return ms;
}

function checkPool(pool: PoolConfig | undefined, at: string, bag: DiagnosticBag): void {
  if (pool === undefined) return;
  duration(pool.queue_timeout, `${at}/queue_timeout`, bag);
  duration(pool.request_timeout, `${at}/request_timeout`, bag);
  if (pool.queue_timeout !== undefined && pool.backpressure !== undefined && pool.backpressure !== "block") {
    bag.warning("GWC_W_QUEUE_TIMEOUT_UNUSED", `${at}/queue_timeout`, `queue_timeout applies only to backpressure "block"; with "${pool.backpressure}" it is ignored.`);
  }
}

function checkRateLimit(limit: RateLimitConfig | undefined, at: string, bag: DiagnosticBag): void {
  if (limit === undefined) return;
  duration(limit.request_reset_duration, `${at}/request_reset_duration`, bag);
  duration(limit.token_reset_duration, `${at}/token_reset_duration`, bag);
  if (limit.request_reset_duration !== undefined && limit.request_max_limit === undefined) {
    bag.error("GWC_E_LIMIT_INCOMPLETE", `${at}/request_reset_duration`, "request_reset_duration needs request_max_limit: how many requests per window?");
  }
  if (limit.token_reset_duration !== undefined && limit.token_max_limit === undefined) {
    bag.error("GWC_E_LIMIT_INCOMPLETE", `${at}/token_reset_duration`, "token_reset_duration needs token_max_limit: how many tokens per window?");
  }
}

function checkStatuses(codes: number[] | undefined, at: string, bag: DiagnosticBag): void {
  codes?.forEach((c, i) => {
    if (c < 408 || (c > 409 && c < 429) || (c > 429 && c < 500)) {
      bag.warning("GWC_W_CLIENT_ERROR_FAILOVER", `${at}/${i}`, `Status ${c} means the request itself is wrong; sending it to another provider will fail the same way.`);
    }
  });
}

/** A route reachable from itself through `fallbacks` is a mistake, even though each account is tried once. */
function checkFallbackCycles(config: Config, routeIds: Map<string, number>, bag: DiagnosticBag): void {
  const routes = config.routes ?? [];
  const state = new Array<0 | 1 | 2>(routes.length).fill(0); // 0 new, 1 on the path, 2 done
  const path: number[] = [];
  const reported = new Set<number>();
  const visit = (i: number): void => {
    state[i] = 1;
    path.push(i);
    (routes[i].fallbacks ?? []).forEach((f, j) => {
      const next = routeIds.get(f);
      if (next === undefined) return;
      if (state[next] === 1) {
        const cycle = path.slice(path.indexOf(next)).map((k) => routes[k].id ?? routes[k].model);
        if (!reported.has(i)) {
          reported.add(i);
          bag.error("GWC_E_FALLBACK_CYCLE", pointerOf("routes", i, "fallbacks", j), `Fallbacks loop: ${[...cycle, cycle[0]].join(" → ")}. Remove one of these fallbacks.`);
        }
      } else if (state[next] === 0) {
        visit(next);
      }
    });
    path.pop();
    state[i] = 2;
  };
  routes.forEach((_, i) => state[i] === 0 && visit(i));
}

function checkBudget(budget: BudgetConfig | undefined, at: string, bag: DiagnosticBag): void {
  if (budget === undefined) return;
  if (!hasCaps(budget)) bag.warning("GWC_W_EMPTY_BUDGET", at, "This budget sets no cap; add daily_limit_usd, weekly_limit_usd or monthly_limit_usd.");
  const { daily_limit_usd: d, weekly_limit_usd: w, monthly_limit_usd: m } = budget;
  if (d !== undefined && w !== undefined && d > w) bag.warning("GWC_W_CAP_ORDER", `${at}/daily_limit_usd`, `The daily cap ($${d}) is above the weekly cap ($${w}), so it can never bind.`);
  if (w !== undefined && m !== undefined && w > m) bag.warning("GWC_W_CAP_ORDER", `${at}/weekly_limit_usd`, `The weekly cap ($${w}) is above the monthly cap ($${m}), so it can never bind.`);
  if (d !== undefined && w === undefined && m !== undefined && d > m) bag.warning("GWC_W_CAP_ORDER", `${at}/daily_limit_usd`, `The daily cap ($${d}) is above the monthly cap ($${m}), so it can never bind.`);
}

function hasCaps(budget: BudgetConfig | undefined): boolean {
  return budget !== undefined && PERIODS.some((p) => budget[p] !== undefined);
}

function capsAbove(child: BudgetConfig | undefined, parent: BudgetConfig | undefined, at: string, parentName: string, bag: DiagnosticBag): void {
  if (child === undefined || parent === undefined) return;
  for (const p of PERIODS) {
    const c = child[p];
    const limit = parent[p];
    if (c !== undefined && limit !== undefined && c > limit) {
      bag.warning("GWC_W_CHILD_CAP_ABOVE_PARENT", `${at}/${p}`, `$${c} is above ${parentName}'s ${p} of $${limit}; the parent's cap binds first. Lower it or raise the parent's.`);
    }
  }
}

/** With any budget in force, every model an account can be sent must have a price. */
function checkPrices(config: Config, accountIds: Map<string, number>, bag: DiagnosticBag): void {
  const budgeted =
    hasCaps(config.organization?.budget) ||
    (config.teams ?? []).some((t) => hasCaps(t.budget)) ||
    (config.virtual_keys ?? []).some((k) => hasCaps(k.budget) || Object.values(k.provider_budgets ?? {}).some(hasCaps));
  if (!budgeted) return;
  const priced = (model: string) => Object.hasOwn(prices.models, model) || (config.pricing !== undefined && Object.hasOwn(config.pricing, model));
  const accounts = config.accounts ?? [];
  const noPrice = (model: string, at: string) =>
    bag.error("GWC_E_NO_PRICE", at, `Budgets are in force but model '${model}' has no price. Add it under \`pricing\` (USD per million tokens).`);
  if (config.routes === undefined || config.routes.length === 0) {
    accounts.forEach((a, i) => {
      if (a.model === undefined) {
        bag.warning("GWC_W_UNPRICED_PASSTHROUGH", pointerOf("accounts", i), `Account '${a.id}' passes the caller's model through, so its price is known only per request; requests for unpriced models will be refused while budgets are in force. Set \`model\` to price it now.`);
      } else if (!priced(a.model)) {
        noPrice(a.model, pointerOf("accounts", i, "model"));
      }
    });
    return;
  }
  config.routes.forEach((r, i) => {
    r.targets.forEach((t, j) => {
      const index = accountIds.get(t.account);
      if (index === undefined) return;
      const model = t.model ?? accounts[index].model ?? (r.model === "*" ? undefined : r.model);
      if (model === undefined) return;
      if (!priced(model)) noPrice(model, pointerOf("routes", i, "targets", j));
    });
  });
}

/** Settings that are valid but probably not what was meant. */
function checkObservability(config: Config, bag: DiagnosticBag): void {
  const o = config.observability;
  if (o?.log_bodies === true && config.server?.access_log === false) {
    bag.warning("GWC_W_LOG_BODIES_UNUSED", "/observability/log_bodies", "`log_bodies` writes bodies into access lines, but `server.access_log` is false, so nothing is written. Remove one of them.");
  } else if (o?.log_bodies === true) {
    bag.warning("GWC_W_LOG_BODIES", "/observability/log_bodies", "Access lines will hold every prompt and answer in full. Turn this off outside debugging; never ship such logs where others can read them.");
  }
  if (o?.per_key_metrics === true && o.metrics === false) {
    bag.warning("GWC_W_PER_KEY_METRICS_UNUSED", "/observability/per_key_metrics", "`per_key_metrics` has no effect while `metrics` is false. Remove one of them.");
  }
  if (o?.per_key_metrics === true && (config.virtual_keys?.length ?? 0) > 1000) {
    bag.warning("GWC_W_PER_KEY_METRICS_CARDINALITY", "/observability/per_key_metrics", `${config.virtual_keys!.length} virtual keys make ${config.virtual_keys!.length} sets of series per scrape; most Prometheus setups will struggle. Turn \`per_key_metrics\` off and read one key with GET /v1/usage.`);
  }
}
