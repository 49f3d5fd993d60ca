import type { Plan, PlanBudget, PlanRateLimit, PlanRoute } from "../runtime/plan.ts";
import { maxAttempts } from "../runtime/attempt-policy.ts";
import { Router } from "../runtime/router.ts";
import { exactShares, percent } from "./distribution.ts";
import { formatDuration } from "./durations.ts";
import { stableKey } from "./plan.ts";

/**
 * What a plan will do, in words: per route the exact split (and under every
 * single-account outage), the failover chains, and the budget/limit tree.
 */
export function explain(plan: Plan): string {
  const router = new Router(plan);
  const out: string[] = [];
  const name = (account: number) => plan.accounts[account].id;
  for (const route of plan.routes) {
    const label = route.model === "*" ? "every model (catch-all)" : `model "${route.model}"`;
    out.push(`route ${JSON.stringify(route.id)}: ${label}`);
    if (route.members === 0) {
      out.push("  no accounts: requests are refused with 503", "");
      continue;
    }
    const width = Math.max(...route.targets.slice(0, route.members).map((t) => name(t.account).length));
    const shares = (down: Set<number>, indent: string): string[] => {
      const lines = exactShares(router, route, down).filter((s) => s.numerator > 0);
      if (lines.length === 0) return [`${indent}no account with weight is up: requests go straight down the failover order`];
      return lines.map((s) => `${indent}${s.account.padEnd(width)}  ${percent(s).padStart(7)}  ${s.numerator}/${s.denominator}`);
    };
    out.push("  split:", ...shares(new Set(), "    "));
    const weighted = route.targets.slice(0, route.members).flatMap((t, p) => (t.weight > 0 ? [p] : []));
    if (route.members > 1) {
      for (const p of weighted) {
        const down = route.targets[p].account;
        out.push(`  when ${name(down)} is down:`, ...shares(new Set([down]), "    "));
      }
    }
    const r = route.resilience;
    out.push(`  failover ${failoverWhen(route)}:`);
    for (const p of weighted) {
      const chain = r.failoverOn.length > 0 ? [...router.failover(route, p)].map((q) => name(route.targets[q].account)) : [];
      out.push(`    ${[name(route.targets[p].account), ...chain].join(" → ")}${chain.length === 0 ? " (no failover)" : ""}`);
    }
    out.push(...policyLines(route), "");
  }
  out.push("budgets and limits (UTC calendar periods):");
  out.push(...governance(plan));
  return out.join("\n") + "\n";
}

function failoverWhen(route: PlanRoute): string {
  return route.resilience.failoverOn.length === 0 ? "(disabled)" : `(on ${route.resilience.failoverOn.join(", ")})`;
}

/** The route's attempt policy and its worst case per request. */
function policyLines(route: PlanRoute): string[] {
  const r = route.resilience;
  const accounts = route.order.length;
  const attempts = maxAttempts(r, accounts);
  // Before a stream's first token: every attempt waits out its first-token timeout, every retry its longest wait.
  const longestWait = Math.max(r.maxBackoffMs, r.maxRetryAfterMs);
  const firstToken = Math.min(r.deadlineMs, attempts * r.firstTokenTimeoutMs + r.retries * longestWait);
  return [
    `  policy: deadline ${formatDuration(r.deadlineMs)}; first token ${formatDuration(r.firstTokenTimeoutMs)} (streams), headers ${formatDuration(r.headersTimeoutMs)} (JSON); stall ${formatDuration(r.stallTimeoutMs)}`,
    `    retries: up to ${r.retries} on the same account, backoff ${formatDuration(r.backoffMs)} doubling to ${formatDuration(r.maxBackoffMs)} (full jitter), Retry-After waited up to ${formatDuration(r.maxRetryAfterMs)}, budget ${Math.round(r.budgetRatio * 100)}% of first attempts per 10s (+1)`,
    `    mid-stream break: ${r.midStream === "continue" ? "continue on the next account that can resume a partial answer, else an error event" : "an error event"}`,
    `  worst case: ${attempts} attempts (${accounts} account${accounts === 1 ? "" : "s"} + ${r.retries} retr${r.retries === 1 ? "y" : "ies"}), ${formatDuration(r.deadlineMs)} in all (the deadline); a stream's first token within ${formatDuration(firstToken)}`,
  ];
}


function governance(plan: Plan): string[] {
  const out: string[] = [];
  const line = (indent: string, title: string, budget: number, limits: (PlanRateLimit | null)[]) => {
    const parts = [budget >= 0 ? caps(plan.budgets[budget]) : "no budget", ...limits.filter((l) => l !== null).map(rate)];
    out.push(`${indent}${title}: ${parts.join("; ")}`);
  };
  line("  ", `organization ${JSON.stringify(plan.organization.id)}`, plan.organization.budget, [plan.organization.rateLimit]);
  const keysOf = (team: number) => plan.virtualKeys.filter((k) => k.team === team);
  const key = (indent: string, k: Plan["virtualKeys"][number]) => {
    const own = k.budgets.find((b) => plan.budgets[b].level === "virtual_key") ?? -1;
    const extra = k.onBudgetExceeded.kind === "reject" ? "" : ` (when spent: reroute to ${k.onBudgetExceeded.kind === "route" ? `route ${JSON.stringify(plan.routes[k.onBudgetExceeded.route].id)}` : `account ${JSON.stringify(plan.accounts[k.onBudgetExceeded.account].id)}`})`;
    line(indent, `key ${JSON.stringify(k.id)}${extra}`, own, [k.rateLimits.find((r) => r.key === stableKey("vk", k.id)) ?? null]);
    for (const [provider, b] of k.providerBudgets) line(indent + "  ", `provider ${provider}`, b, []);
  };
  plan.teams.forEach((t, i) => {
    line("    ", `team ${JSON.stringify(t.id)}`, t.budget, [t.rateLimit]);
    for (const k of keysOf(i)) key("      ", k);
  });
  for (const k of keysOf(-1)) key("    ", k);
  if (plan.virtualKeys.length === 0) out.push("    no virtual keys: the gateway is open to every caller");
  for (const a of plan.accounts) if (a.rateLimit !== null) out.push(`  account ${JSON.stringify(a.id)}: ${rate(a.rateLimit)}`);
  return out;
}

function caps(b: PlanBudget): string {
  const usd = (nano: number) => `$${(nano / 1e9).toFixed(2)}`;
  const parts: string[] = [];
  if (b.dailyNano >= 0) parts.push(`${usd(b.dailyNano)}/day`);
  if (b.weeklyNano >= 0) parts.push(`${usd(b.weeklyNano)}/week`);
  if (b.monthlyNano >= 0) parts.push(`${usd(b.monthlyNano)}/month`);
  return parts.join(", ");
}

function rate(r: PlanRateLimit): string {
  const parts: string[] = [];
  if (r.requests) parts.push(`${r.requests.limit} requests/${formatDuration(r.requests.windowMs)}`);
  if (r.tokens) parts.push(`${r.tokens.limit} tokens/${formatDuration(r.tokens.windowMs)}`);
  return parts.join(", ");
}

