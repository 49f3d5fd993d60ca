// `/admin/api/…`: what the dashboard shows, as JSON, behind the admin key.
// Everything is read at request time from live state (breakers, pools, the
// counter store) and from LiveStats (the last minutes of request records); the
// request path pays nothing for it. Ids only: no key, secret or prompt ever
// appears in an answer.
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError } from "./errors.ts";
import type { Gateway, Runtime } from "./gateway.ts";
import { BREAKER_HALF_OPEN, BREAKER_OPEN } from "./health.ts";
import type { AccountFigures } from "./live-stats.ts";
import type { PlanRoute } from "./plan.ts";

export type BreakerState = "closed" | "ramping" | "half_open" | "open";

/** What applying a config draft came to: reloaded, or the compiler's diagnostics. */
export type ApplyResult = { ok: true; version: string } | { ok: false; status: number; message: string; diagnostics: string[] };

/** Answers `/admin/api/…`; 401 without the admin key, 404 when the config sets none. */
export async function adminApi(runtime: Runtime, gateway: Gateway, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (gateway.plan.server.adminKeyEnv === null) {
    throw new HttpError(404, "invalid_request_error", "no_admin_key", "This gateway has no admin key (`server.admin_key`), so the admin API and the dashboard are off.");
  }
  if (!gateway.governance.isAdmin(req.headers)) {
    throw new HttpError(401, "invalid_request_error", "invalid_admin_key", "Send the admin key as `Authorization: Bearer <admin key>`.");
  }
  const route = `${req.method} ${path}`;
  if (route === "GET /admin/api/snapshot") return send(res, 200, snapshot(runtime, gateway, Date.now()));
  if (route === "GET /admin/api/config") {
    return send(res, 200, { version: gateway.plan.configSha256.slice(0, 12), source: gateway.configSource, apply: applyState(runtime, gateway) });
  }
  if (route === "POST /admin/api/config") {
    const refused = applyState(runtime, gateway);
    if (refused !== "enabled") throw new HttpError(409, "invalid_request_error", "apply_disabled", refused);
    const body = await readText(req, gateway.plan.server.maxBodyBytes);
    const result = await runtime.applyConfig!(body);
    if (!result.ok) return send(res, result.status, { error: { message: result.message, type: "invalid_request_error", code: "config_invalid", param: null }, diagnostics: result.diagnostics });
    return send(res, 200, { ok: true, version: result.version });
  }
  throw new HttpError(404, "invalid_request_error", "unknown_url", `Unknown admin URL: ${route}. There are GET /admin/api/snapshot, GET and POST /admin/api/config.`);
}

/** "enabled", or why a draft cannot be applied here. */
function applyState(runtime: Runtime, gateway: Gateway): string {
  if (!gateway.plan.server.uiApply) return "Applying drafts is off: set `server.ui_apply: true` to allow it.";
  if (runtime.applyConfig === undefined) return "Applying drafts needs the gateway to run under `gwc serve <config>`, which compiles and reloads the config file.";
  return "enabled";
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

async function readText(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpError(413, "invalid_request_error", "request_too_large", `The draft is larger than ${limit} bytes.`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function snapshot(runtime: Runtime, gateway: Gateway, now: number) {
  const { plan } = gateway;
  const stats = runtime.stats;
  const figures = stats.accounts();
  const served = stats.served();
  const accounts = plan.accounts.map((a, i) => {
    const health = runtime.health.get(a.id);
    const pool = runtime.pools.get(plan.pools[a.pool].id);
    const f = figures.get(a.id);
    return {
      id: a.id,
      provider: a.provider,
      model: a.model,
      breaker: breakerState(runtime, health, a.id),
      out: outReason(runtime, gateway, i, now),
      ...accountFigures(f),
      pool: { inFlight: pool?.active ?? 0, queued: pool?.queued ?? 0, capacity: plan.pools[a.pool].maxConnections, queueSize: plan.pools[a.pool].queueSize },
      rateLimit: a.rateLimit === null ? null : gateway.governance.limitState(a.rateLimit, now),
    };
  });
  const routes = plan.routes.map((route) => routeView(gateway, route, served.get(route.id), (i) => accounts[i].out !== null));
  return {
    now,
    config: {
      version: plan.configSha256.slice(0, 12),
      gwcVersion: plan.gwcVersion,
      loadedAt: runtime.loads.at(-1)?.at ?? null,
      reloads: runtime.loads.slice().reverse(),
    },
    routes,
    accounts,
    budgets: budgetTree(gateway, now),
    requests: stats.recent(),
    series: stats.series(),
  };
}

export type Snapshot = ReturnType<typeof snapshot>;

/**
 * The account's worst breaker (its per-model breakers included, as /metrics reads it); a closed
 * account-level breaker still ramping its share back shows as such.
 */
function breakerState(runtime: Runtime, health: { settled: boolean; downUntil: number } | undefined, id: string): BreakerState {
  const worst = runtime.breakerState(id);
  if (worst === BREAKER_OPEN) return "open";
  if (worst === BREAKER_HALF_OPEN) return "half_open";
  // Held out for a rate limit is not a breaker state: the breaker itself is closed (outReason says why).
  return health === undefined || health.settled || health.downUntil > 0 ? "closed" : "ramping";
}

/** Why an account gets no new traffic now, or null. */
function outReason(runtime: Runtime, gateway: Gateway, account: number, now: number): string | null {
  const a = gateway.plan.accounts[account];
  const health = runtime.health.get(a.id);
  if (health !== undefined && !health.settled && health.openUntil > now) {
    return `circuit open for ${Math.ceil((health.openUntil - now) / 1000)} s more`;
  }
  if (health !== undefined && health.downUntil > now) return `rate-limited (429s in a row) for ${Math.ceil((health.downUntil - now) / 1000)} s more`;
  if (gateway.governance.accountOverLimit(account, now)) return "over its own rate limit until its window resets";
  if (gateway.unsupportedAccounts().includes(a.id)) return "its provider's wire format is not supported by this runtime";
  return null;
}

function accountFigures(f: AccountFigures | undefined) {
  if (f === undefined) return { attempts: 0, errorRate: 0, errors: {}, latencyMs: { p50: null, p95: null }, ttftMs: { p50: null, p95: null } };
  return {
    attempts: f.attempts,
    errorRate: f.attempts === 0 ? 0 : (f.attempts - f.ok) / f.attempts,
    errors: Object.fromEntries(f.errors),
    latencyMs: { p50: f.latency.quantile(0.5), p95: f.latency.quantile(0.95) },
    ttftMs: { p50: f.ttft.quantile(0.5), p95: f.ttft.quantile(0.95) },
  };
}

function routeView(gateway: Gateway, route: PlanRoute, served: Map<string, number> | undefined, isOut: (account: number) => boolean) {
  const { plan, router } = gateway;
  const configured = router.distributionCounts(route, () => false);
  const effective = router.distributionCounts(route, isOut);
  const total = [...(served?.values() ?? [])].reduce((a, b) => a + b, 0);
  const members = route.targets.slice(0, route.members);
  return {
    id: route.id,
    model: route.model,
    split: members.map((t, p) => {
      const id = plan.accounts[t.account].id;
      return {
        account: id,
        weight: t.weight,
        configured: configured.counts[p] / configured.denominator,
        effective: effective.counts[p] / effective.denominator,
        live: total === 0 ? null : (served?.get(id) ?? 0) / total,
      };
    }),
    served: total,
    failover: route.resilience.failoverOn.length > 0 ? route.order.map((p) => plan.accounts[route.targets[p].account].id) : [],
  };
}

export interface BudgetNode {
  level: "organization" | "team" | "virtual_key" | "provider";
  id: string;
  periods: { period: string; limitUsd: string; spentUsd: string; reservedUsd: string; used: number; resetsAt: number }[];
  children: BudgetNode[];
}

/** organization > team > key > key's provider budgets, with every node's periods. */
function budgetTree(gateway: Gateway, now: number): BudgetNode {
  const { plan, governance } = gateway;
  const periods = (budget: number) =>
    budget < 0
      ? []
      : governance.budgetState(budget, now).map((p) => ({
          period: p.period,
          limitUsd: p.limitUsd,
          spentUsd: p.spentUsd,
          reservedUsd: p.reservedUsd,
          used: p.limitNano > 0 ? (p.spentNano + p.reservedNano) / p.limitNano : 1,
          resetsAt: p.resetsAt,
        }));
  const keyNode = (k: (typeof plan.virtualKeys)[number]): BudgetNode => ({
    level: "virtual_key",
    id: k.id,
    periods: periods(k.budgets.find((b) => plan.budgets[b].level === "virtual_key") ?? -1),
    children: k.providerBudgets.map(([provider, b]) => ({ level: "provider", id: provider, periods: periods(b), children: [] })),
  });
  return {
    level: "organization",
    id: plan.organization.id,
    periods: periods(plan.organization.budget),
    children: [
      ...plan.teams.map((t, i): BudgetNode => ({ level: "team", id: t.id, periods: periods(t.budget), children: plan.virtualKeys.filter((k) => k.team === i).map(keyNode) })),
      ...plan.virtualKeys.filter((k) => k.team < 0).map(keyNode),
    ],
  };
}
