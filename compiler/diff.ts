// `gwc diff`: what a config change will do, for review in CI. Both sides are
// compiled plans, so the split is read off the same tables the router picks
// from, and every budget, limit and price is compared in the plan's own
// integer units. Things are matched by their configured ids (stable keys for
// budgets and limits), never by position.
import type { Plan, PlanAccount, PlanBudget, PlanPool, PlanPrice, PlanRateLimit, PlanRoute } from "../runtime/plan.ts";
import { Router } from "../runtime/router.ts";
import { exactShares, percent, type Share } from "./distribution.ts";
import { formatDuration } from "./durations.ts";

export type Section = "routes" | "accounts" | "virtual_keys" | "teams" | "budgets" | "rate_limits" | "prices" | "pools";

export interface Change {
  section: Section;
  /** What changed, in words a reviewer reads: `team "backend"`, `route "default"`. */
  subject: string;
  kind: "added" | "removed" | "changed";
  /** One sentence: "team backend's daily cap falls from $250.00 to $100.00". */
  text: string;
  before?: unknown;
  after?: unknown;
}

export interface RouteSplit {
  route: string;
  /** Each account in either split, with its share before and after (null where it is not a member). */
  accounts: { account: string; before: Share | null; after: Share | null }[];
  changed: boolean;
}

export interface PlanDiff {
  changes: Change[];
  splits: RouteSplit[];
}

export function diffPlans(before: Plan, after: Plan): PlanDiff {
  const changes: Change[] = [];
  const splits = diffRoutes(before, after, changes);
  diffAccounts(before, after, changes);
  diffKeyed(changes, "teams", "team", before.teams, after.teams, (t) => t.id, () => []);
  diffKeyed(changes, "virtual_keys", "key", before.virtualKeys, after.virtualKeys, (k) => k.id, (a, b) => {
    const notes: string[] = [];
    const team = (p: Plan, i: number) => (i < 0 ? "no team" : `team ${p.teams[i].id}`);
    if (team(before, a.team) !== team(after, b.team)) notes.push(`moves from ${team(before, a.team)} to ${team(after, b.team)}`);
    if (JSON.stringify(a.models) !== JSON.stringify(b.models)) notes.push(`may use ${models(a.models)} → ${models(b.models)}`);
    if (a.maxConcurrent !== b.maxConcurrent) notes.push(`concurrent requests ${limitText(a.maxConcurrent)} → ${limitText(b.maxConcurrent)}`);
    return notes;
  });
  diffBudgets(before, after, changes);
  diffRateLimits(before, after, changes);
  diffPrices(before, after, changes);
  diffKeyed(changes, "pools", "pool", before.pools, after.pools, (p) => p.id, poolNotes);
  return { changes, splits };
}

function diffRoutes(before: Plan, after: Plan, changes: Change[]): RouteSplit[] {
  const rb = new Router(before);
  const ra = new Router(after);
  const routesB = byId(before.routes, (r) => r.id);
  const routesA = byId(after.routes, (r) => r.id);
  const splits: RouteSplit[] = [];
  for (const id of union(routesB.keys(), routesA.keys())) {
    const b = routesB.get(id);
    const a = routesA.get(id);
    const subject = `route ${JSON.stringify(id)}`;
    const sharesB = b === undefined ? [] : exactShares(rb, b, new Set());
    const sharesA = a === undefined ? [] : exactShares(ra, a, new Set());
    const accounts = [...union(sharesB.map((s) => s.account), sharesA.map((s) => s.account))].map((account) => ({
      account,
      before: sharesB.find((s) => s.account === account) ?? null,
      after: sharesA.find((s) => s.account === account) ?? null,
    }));
    const changed = accounts.some((x) => fraction(x.before) !== fraction(x.after));
    splits.push({ route: id, accounts, changed });
    if (b === undefined || a === undefined) {
      changes.push({ section: "routes", subject, kind: b === undefined ? "added" : "removed", text: `${subject} is ${b === undefined ? "added" : "removed"}` });
      continue;
    }
    if (changed) {
      const moves = accounts.filter((x) => fraction(x.before) !== fraction(x.after)).map((x) => `${x.account} ${fraction(x.before)} → ${fraction(x.after)}`);
      changes.push({ section: "routes", subject, kind: "changed", text: `${subject} split: ${moves.join(", ")}`, before: sharesB, after: sharesA });
    }
    const chainB = chain(before, b);
    const chainA = chain(after, a);
    if (chainB !== chainA) changes.push({ section: "routes", subject, kind: "changed", text: `${subject} failover order was ${chainB}; now ${chainA}`, before: chainB, after: chainA });
  }
  return splits;
}

function diffAccounts(before: Plan, after: Plan, changes: Change[]): void {
  diffKeyed(changes, "accounts", "account", before.accounts, after.accounts, (a) => a.id, (a, b) => {
    const notes: string[] = [];
    for (const field of ["provider", "baseUrl", "model", "apiKeyEnv"] as const satisfies (keyof PlanAccount)[]) {
      if (a[field] !== b[field]) notes.push(`${FIELD_NAMES[field]} ${a[field] ?? "none"} → ${b[field] ?? "none"}`);
    }
    if (before.pools[a.pool].id !== after.pools[b.pool].id) notes.push(`pool ${before.pools[a.pool].id} → ${after.pools[b.pool].id}`);
    return notes;
  });
}

const FIELD_NAMES = { provider: "provider", baseUrl: "base_url", model: "model", apiKeyEnv: "api key variable" } as const;

function diffBudgets(before: Plan, after: Plan, changes: Change[]): void {
  const b = byId(before.budgets, (x) => x.key);
  const a = byId(after.budgets, (x) => x.key);
  for (const key of union(b.keys(), a.keys())) {
    const x = b.get(key);
    const y = a.get(key);
    const owner = budgetOwner((y ?? x)!);
    for (const [period, field] of PERIODS) {
      const from = x?.[field] ?? -1;
      const to = y?.[field] ?? -1;
      if (from === to) continue;
      const text =
        from < 0
          ? `${owner} gains a ${period} cap of ${usd(to)}`
          : to < 0
            ? `${owner} loses its ${period} cap of ${usd(from)}`
            : `${owner}'s ${period} cap ${to < from ? "falls" : "rises"} from ${usd(from)} to ${usd(to)}`;
      changes.push({ section: "budgets", subject: owner, kind: from < 0 ? "added" : to < 0 ? "removed" : "changed", text, before: from < 0 ? null : from / 1e9, after: to < 0 ? null : to / 1e9 });
    }
  }
}

const PERIODS = [
  ["daily", "dailyNano"],
  ["weekly", "weeklyNano"],
  ["monthly", "monthlyNano"],
] as const satisfies [string, keyof PlanBudget][];

function budgetOwner(b: PlanBudget): string {
  if (b.level === "provider") {
    const slash = b.owner.lastIndexOf("/");
    return `key ${b.owner.slice(0, slash)}'s ${b.owner.slice(slash + 1)} budget`;
  }
  return `${b.level === "virtual_key" ? "key" : b.level} ${b.owner}`;
}

function diffRateLimits(before: Plan, after: Plan, changes: Change[]): void {
  const b = rateLimitsOf(before);
  const a = rateLimitsOf(after);
  for (const key of union(b.keys(), a.keys())) {
    const x = b.get(key);
    const y = a.get(key);
    for (const kind of ["requests", "tokens"] as const) {
      const from = x?.[kind] ?? null;
      const to = y?.[kind] ?? null;
      if (windowText(from, kind) === windowText(to, kind)) continue;
      const subject = limitOwner(key);
      changes.push({
        section: "rate_limits",
        subject,
        kind: from === null ? "added" : to === null ? "removed" : "changed",
        text: `${subject} ${kind} limit: ${windowText(from, kind)} → ${windowText(to, kind)}`,
        before: from,
        after: to,
      });
    }
  }
}

function rateLimitsOf(plan: Plan): Map<string, PlanRateLimit> {
  const all = [plan.organization.rateLimit, ...plan.teams.map((t) => t.rateLimit), ...plan.accounts.map((a) => a.rateLimit), ...plan.virtualKeys.flatMap((k) => k.rateLimits)];
  return byId(all.filter((r): r is PlanRateLimit => r !== null), (r) => r.key);
}

/** `vk:alice` → `key alice`; stable keys are `prefix:id`. */
function limitOwner(key: string): string {
  const colon = key.indexOf(":");
  const names: Record<string, string> = { org: "organization", team: "team", vk: "key", account: "account" };
  return `${names[key.slice(0, colon)] ?? key.slice(0, colon)} ${key.slice(colon + 1)}`;
}

function diffPrices(before: Plan, after: Plan, changes: Change[]): void {
  const b = new Map(before.prices);
  const a = new Map(after.prices);
  for (const model of union(b.keys(), a.keys())) {
    const x = b.get(model);
    const y = a.get(model);
    if (x !== undefined && y !== undefined && priceText(x) === priceText(y)) continue;
    const subject = `price of ${model}`;
    const kind = x === undefined ? "added" : y === undefined ? "removed" : "changed";
    const text = `${subject}: ${x === undefined ? "none" : priceText(x)} → ${y === undefined ? "none" : priceText(y)}`;
    changes.push({ section: "prices", subject, kind, text, before: x ?? null, after: y ?? null });
  }
}

function poolNotes(a: PlanPool, b: PlanPool): string[] {
  const fields = [
    ["max_connections", "maxConnections"],
    ["queue_size", "queueSize"],
    ["backpressure", "backpressure"],
    ["queue_timeout_ms", "queueTimeoutMs"],
    ["request_timeout_ms", "requestTimeoutMs"],
  ] as const satisfies [string, keyof PlanPool][];
  return fields.filter(([, f]) => a[f] !== b[f]).map(([name, f]) => `${name} ${a[f]} → ${b[f]}`);
}

/** Added and removed by id; for ids on both sides, one change per note `compare` finds. */
function diffKeyed<T>(changes: Change[], section: Section, noun: string, before: T[], after: T[], id: (t: T) => string, compare: (a: T, b: T) => string[]): void {
  const b = byId(before, id);
  const a = byId(after, id);
  for (const key of union(b.keys(), a.keys())) {
    const subject = `${noun} ${JSON.stringify(key)}`;
    const x = b.get(key);
    const y = a.get(key);
    if (x === undefined || y === undefined) {
      changes.push({ section, subject, kind: x === undefined ? "added" : "removed", text: `${subject} is ${x === undefined ? "added" : "removed"}` });
      continue;
    }
    for (const note of compare(x, y)) changes.push({ section, subject, kind: "changed", text: `${subject}: ${note}` });
  }
}

// ── formats ───────────────────────────────────────────────────────────────

const SECTION_TITLES: Record<Section, string> = {
  routes: "Routes",
  accounts: "Accounts",
  virtual_keys: "Virtual keys",
  teams: "Teams",
  budgets: "Budgets",
  rate_limits: "Rate limits",
  prices: "Prices",
  pools: "Pools",
};

const MARK = { added: "+", removed: "-", changed: "~" } as const;

export function formatText(diff: PlanDiff): string {
  if (diff.changes.length === 0) return "no changes\n";
  const out: string[] = [];
  for (const [section, changes] of grouped(diff)) {
    out.push(`${SECTION_TITLES[section]}:`);
    for (const c of changes) out.push(`  ${MARK[c.kind]} ${c.text}`);
    if (section === "routes") out.push(...splitLines(diff, "    "));
  }
  out.push(`${diff.changes.length} change${diff.changes.length === 1 ? "" : "s"}`);
  return out.join("\n") + "\n";
}

export function formatMarkdown(diff: PlanDiff): string {
  if (diff.changes.length === 0) return "**gwc diff:** no changes\n";
  const out = [`### gwc diff: ${diff.changes.length} change${diff.changes.length === 1 ? "" : "s"}`, ""];
  for (const split of diff.splits.filter((s) => s.changed)) {
    out.push(`**Split of route \`${split.route}\`**`, "", "| account | before | after |", "| --- | ---: | ---: |");
    for (const x of split.accounts) out.push(`| ${cell(x.account)} | ${shareText(x.before)} | ${shareText(x.after)} |`);
    out.push("");
  }
  for (const [section, changes] of grouped(diff)) {
    out.push(`**${SECTION_TITLES[section]}**`, "");
    for (const c of changes) out.push(`- ${c.kind === "added" ? "➕" : c.kind === "removed" ? "➖" : "✏️"} ${cell(c.text)}`);
    out.push("");
  }
  return out.join("\n");
}

export function formatJson(diff: PlanDiff): string {
  return JSON.stringify(diff, null, 2) + "\n";
}

function grouped(diff: PlanDiff): [Section, Change[]][] {
  const sections = new Map<Section, Change[]>();
  for (const c of diff.changes) sections.set(c.section, [...(sections.get(c.section) ?? []), c]);
  return [...sections];
}

function splitLines(diff: PlanDiff, indent: string): string[] {
  const out: string[] = [];
  for (const split of diff.splits.filter((s) => s.changed && s.accounts.some((x) => x.before !== null) && s.accounts.some((x) => x.after !== null))) {
    const width = Math.max(...split.accounts.map((x) => x.account.length));
    out.push(`${indent}split of route ${JSON.stringify(split.route)}:`);
    for (const x of split.accounts) out.push(`${indent}  ${x.account.padEnd(width)}  ${shareText(x.before).padStart(16)} → ${shareText(x.after)}`);
  }
  return out;
}

// ── helpers ───────────────────────────────────────────────────────────────

function chain(plan: Plan, route: PlanRoute): string {
  if (route.resilience.failoverOn.length === 0) return "no failover";
  return route.order.map((p) => plan.accounts[route.targets[p].account].id).join(" → ");
}

function fraction(s: Share | null): string {
  return s === null || s.numerator === 0 ? "0" : `${s.numerator}/${s.denominator}`;
}

function shareText(s: Share | null): string {
  if (s === null) return "—";
  return s.numerator === 0 ? "0% (0)" : `${percent(s)} (${s.numerator}/${s.denominator})`;
}

function models(list: string[] | null): string {
  return list === null ? "every model" : list.join(", ");
}

function limitText(n: number): string {
  return n > 0 ? String(n) : "unlimited";
}

function windowText(w: { limit: number; windowMs: number } | null, kind: string): string {
  return w === null ? "none" : `${w.limit} ${kind}/${formatDuration(w.windowMs)}`;
}


function usd(nano: number): string {
  return `$${(nano / 1e9).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 6 })}`;
}

function priceText(p: PlanPrice): string {
  const m = (nano: number) => usd(nano);
  return `input ${m(p.inputNano)}, output ${m(p.outputNano)}, cached input ${m(p.cachedInputNano)}, cache write ${m(p.cacheWriteNano)} per Mtok`;
}

/** Markdown table cells and list items: a `|` or a newline in an id must not break the table. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function byId<T>(items: T[], id: (t: T) => string): Map<string, T> {
  return new Map(items.map((t) => [id(t), t]));
}

function union(a: Iterable<string>, b: Iterable<string>): string[] {
  return [...new Set([...a, ...b])];
}
