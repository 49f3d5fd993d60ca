import { createHash, hash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { HttpError } from "./errors.ts";
import { event } from "./log.ts";
import { periodBounds, PERIODS, type Period } from "./periods.ts";
import type { InboundRequest, Usage } from "./providers/adapter.ts";
import { requestBound } from "./request-bound.ts";
import type { Plan, PlanBudget, PlanPrice, PlanRateLimit, PlanRoute, PlanVirtualKey, Wire } from "./plan.ts";
import { StartupError } from "./secrets.ts";
import { whenReady, type CountLine, type MaybePromise, type MoneyLine, type StateStore, type Take } from "./state-store.ts";

export { DEFAULT_MAX_OUTPUT_TOKENS } from "./request-bound.ts";

/** A budget line's meaning, for the 402 message and the usage view. */
interface LineMeta {
  budget: PlanBudget;
  period: Period;
  resetsAt: number;
}

/** A key's requests in flight, by key id; the Runtime keeps them across reloads. */
export interface InFlight {
  count: number;
}

/** A reservation held while one attempt is in flight. */
export interface Reservation {
  keys: readonly string[];
  amount: number;
}

/** A rate-limit window's counter line, with its limit and reset as header text. */
interface WindowLine extends CountLine {
  limitText: string;
  resetSeconds: number;
  resetText: string;
}

/** A key's current request and token window lines; rebuilt after `expiresAt`, the first of their ends. */
interface KeyLines {
  req: WindowLine[];
  tok: WindowLine[];
  expiresAt: number;
}

/** A key's budget indices: [all, without the key's own (after a reroute)]. */
type BudgetSets = [readonly number[], readonly number[]];

/** The money lines a set of budgets reserves on, built once per period. */
interface BudgetLines {
  lines: MoneyLine[];
  keys: string[];
  metas: LineMeta[];
  /** The earliest period end among them: rebuilt after it. */
  expiresAt: number;
}

const BEARER = "Bearer ";
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const NOTHING = () => {};
const NO_LINES: never[] = [];

/**
 * A budget without room; `own` when it is the key's own budget (which may
 * reroute). The message names spent, reserved and the limit: while requests
 * are in flight, their reservations can be what leaves no room.
 */
export class BudgetExceeded extends HttpError {
  constructor(
    readonly meta: LineMeta,
    readonly own: boolean,
    money: { spent: number; reserved: number },
    needed: number,
  ) {
    const b = meta.budget;
    const cap = capOf(b, meta.period);
    const state = money.reserved > 0 ? `$${usd(money.spent)} spent and $${usd(money.reserved)} reserved by requests in flight, of $${usd(cap)}` : `$${usd(money.spent)} spent of $${usd(cap)}`;
    super(
      402,
      "insufficient_quota",
      "budget_exceeded",
      `The ${meta.period} budget of ${b.level.replace("_", " ")} '${b.owner}' has no room for this request (up to $${usd(needed)}): ${state}. It resets at ${new Date(meta.resetsAt).toISOString()}.`,
    );
  }
}

/** What admission hands the request: its rate-limit headers and the release of its concurrency slot. */
export interface Admission {
  headers: Record<string, string>;
  release: () => void;
  /**
   * With a store that takes in one step (Redis): the window counts and the
   * slot not taken yet. The first attempt's take() takes them with its budgets,
   * then fills `headers`.
   */
  pending?: { vk: number; key: PlanVirtualKey | undefined; req: WindowLine[]; tok: WindowLine[] };
}

/**
 * Virtual keys, budgets and rate limits over a state store. Keys are looked up
 * by SHA-256; every counter is keyed by a stable id plus its period or window,
 * so reloads and restarts keep them. Every method that touches the store
 * answers synchronously when the store does (the embedded one), so the
 * per-request path awaits only a store that is really remote.
 */
export interface BudgetPeriodState {
  period: Period;
  limitNano: number;
  spentNano: number;
  reservedNano: number;
  /** Decimal USD text, as `/v1/usage` shows it. */
  limitUsd: string;
  spentUsd: string;
  reservedUsd: string;
  /** Epoch ms. */
  resetsAt: number;
}

export class Governance {
  readonly #byHash = new Map<string, number>();
  /** Keys already matched by hash, as presented: SHA-256 through OpenSSL cost 3–5 µs a request with cold caches. */
  readonly #known = new Map<string, number>();
  /** The same keys' `Authorization` headers in their usual form, `Bearer <key>`. */
  readonly #knownBearer = new Map<string, number>();
  readonly #adminHash: Buffer | null;
  readonly #prices: Map<string, PlanPrice>;
  // Per-request lookups below are keyed by plan objects (identity), never by built strings.
  readonly #reqLines = new Map<PlanRateLimit, WindowLine>();
  readonly #tokLines = new Map<PlanRateLimit, WindowLine>();
  readonly #budgetLines = new WeakMap<readonly number[], BudgetLines>();
  /**
   * budgetsFor's answers, [all, without the key's own], per key (index + 1; 0 is no key): one
   * array slot when they are the same for every provider (the key has no provider budgets),
   * else per provider in #providerBudgetSets.
   */
  readonly #budgetSets: (BudgetSets | undefined)[];
  readonly #providerBudgetSets = new Map<number, Map<string, BudgetSets>>();
  /**
   * Each key's current window lines (index + 1; 0 is no key), until the first of its windows ends.
   * With keys rotating per request, looking each limit's line up again (and allocating the arrays)
   * was most of admission's cost; an array slot per key is one load. The arrays are shared: never push into them.
   */
  readonly #keyLines: (KeyLines | undefined)[];
  /** Each key's in-flight count (see #inFlightOf), by key index. */
  readonly #held: (InFlight | undefined)[];
  /** What #tightest found: the room left on its line. */
  #least = Infinity;
  /** Budget lines already reported spent (see #announce). */
  readonly #announced = new Set<string>();

  constructor(
    readonly plan: Plan,
    readonly store: StateStore,
    /** In-flight requests per key id; shared across reloads by the Runtime. */
    private readonly inflight: Map<string, InFlight>,
    env: NodeJS.ProcessEnv,
  ) {
    const missing: string[] = [];
    plan.virtualKeys.forEach((k, i) => {
      let hex = k.keySha256;
      if (k.keyEnv !== null) {
        const value = env[k.keyEnv];
        if (!value) missing.push(`${k.keyEnv} (the key of virtual key '${k.id}')`);
        else hex = sha256(value);
      }
      if (hex !== null) this.#byHash.set(hex, i);
    });
    const admin = plan.server.adminKeyEnv === null ? undefined : env[plan.server.adminKeyEnv];
    if (plan.server.adminKeyEnv !== null && !admin) missing.push(`${plan.server.adminKeyEnv} (the admin key)`);
    if (missing.length > 0) throw new StartupError(`environment variable${missing.length > 1 ? "s" : ""} not set: ${missing.join(", ")}`);
    this.#adminHash = admin ? Buffer.from(sha256(admin), "hex") : null;
    this.#prices = new Map(plan.prices);
    // Filled in as keys are seen, but sized now: an array first written at a far index would hold its slots in a dictionary.
    this.#budgetSets = new Array<BudgetSets | undefined>(plan.virtualKeys.length + 1).fill(undefined);
    this.#keyLines = new Array<KeyLines | undefined>(plan.virtualKeys.length + 1).fill(undefined);
    this.#held = new Array<InFlight | undefined>(plan.virtualKeys.length).fill(undefined);
  }

  /** Whether callers need a key at all. */
  get open(): boolean {
    return this.plan.virtualKeys.length === 0;
  }

  /**
   * The caller's key index, -1 on an open gateway; 401 when a needed key is
   * missing or unknown. A key is matched by its SHA-256, so how long a miss
   * takes says nothing about any stored key; a key that matched once is then
   * found by a map lookup.
   */
  identify(headers: IncomingHttpHeaders): number {
    if (this.open) return -1;
    // The usual form, exactly `Bearer <key>`, is found as sent: no regex and no new string per request.
    const auth = headers.authorization;
    if (auth !== undefined) {
      const sent = this.#knownBearer.get(auth);
      if (sent !== undefined) return sent;
    }
    const presented = presentedKey(headers);
    if (presented === undefined) {
      throw new HttpError(401, "invalid_request_error", "missing_api_key", "Send your gateway key as `Authorization: Bearer <key>` or `x-api-key: <key>`.");
    }
    let i = this.#known.get(presented);
    if (i === undefined) {
      i = this.#byHash.get(sha256(presented));
      if (i === undefined) throw new HttpError(401, "invalid_request_error", "invalid_api_key", "The API key is not a key of this gateway.");
      // Only keys that matched are remembered, so each map holds at most one entry per virtual key.
      this.#known.set(presented, i);
    }
    if (auth !== undefined && auth.length === BEARER.length + presented.length && auth.startsWith(BEARER)) this.#knownBearer.set(auth, i);
    return i;
  }

  isAdmin(headers: IncomingHttpHeaders): boolean {
    const presented = presentedKey(headers);
    if (presented === undefined || this.#adminHash === null) return false;
    return timingSafeEqual(createHash("sha256").update(presented).digest(), this.#adminHash);
  }

  /**
   * Admission before any upstream work: the key may use this model, is under
   * its concurrency cap and its request limits, and has tokens left. Counts the
   * request. Returns the rate-limit headers and a release for the concurrency slot.
   */
  admit(vk: number, model: string, route: PlanRoute, now: number): MaybePromise<Admission> {
    const key = vk >= 0 ? this.plan.virtualKeys[vk] : undefined;
    const limits = this.rateLimits(key);
    if (key?.models && !key.models.some((m) => m === "*" || m === model || m === route.id)) {
      throw new HttpError(403, "permission_error", "model_not_allowed", `This key may not use model '${model}'. Allowed: ${key.models.join(", ")}.`, {}, "model");
    }
    const deferred = this.store.take !== undefined;
    if (limits.length === 0) return deferred ? { headers: {}, release: NOTHING, pending: { vk, key, req: [], tok: [] } } : this.#occupy(vk, key, NO_HEADERS);
    const lines = this.#linesOfKey(vk, limits, now);
    // The token windows' room, read once: it refuses the request, or it is the request's header.
    const tok = this.#tightest(lines.tok);
    const tokLeft = this.#least;
    if (tok !== undefined && tokLeft === 0) throw rateLimited("tokens", tok, now);
    if (deferred) return { headers: {}, release: NOTHING, pending: { vk, key, req: lines.req, tok: lines.tok } };
    const denied = lines.req.length === 0 ? -1 : this.store.count(lines.req, 1);
    if (denied instanceof Promise) return denied.then((d) => this.#counted(d, vk, key, lines.req, tok, tokLeft, now));
    return this.#counted(denied, vk, key, lines.req, tok, tokLeft, now);
  }

  /** Admission once the request windows have answered: refused, or on to the concurrency slot with its headers. */
  #counted(denied: number, vk: number, key: PlanVirtualKey | undefined, req: readonly WindowLine[], tok: WindowLine | undefined, tokLeft: number, now: number): MaybePromise<Admission> {
    if (denied >= 0) throw rateLimited("requests", req[denied], now);
    const tight = this.#tightest(req);
    return this.#occupy(vk, key, rateHeaders(tight, this.#least, tok, tokLeft, now));
  }

  /** Takes a concurrency slot when the key has a cap: in the store when it is shared by several processes, else here. */
  #occupy(vk: number, key: PlanVirtualKey | undefined, headers: Record<string, string>): MaybePromise<Admission> {
    if (key === undefined || key.maxConcurrent <= 0) return { headers, release: NOTHING };
    const held = this.#inFlightOf(vk, key);
    const store = this.store;
    if (store.acquire !== undefined && store.release !== undefined) {
      const slot = `conc|${key.id}`;
      return whenReady(store.acquire(slot, key.maxConcurrent), (taken) => {
        if (!taken) throw concurrencyLimited(key, key.maxConcurrent);
        held.count++;
        return {
          headers,
          release: () => {
            held.count--;
            void store.release!(slot);
          },
        };
      });
    }
    if (held.count >= key.maxConcurrent) throw concurrencyLimited(key, held.count);
    held.count++;
    return { headers, release: () => void held.count-- };
  }

  /** The key's in-flight count, shared with every Governance of the Runtime (reloads) by key id; found once per key. */
  #inFlightOf(vk: number, key: PlanVirtualKey): InFlight {
    let held = this.#held[vk];
    if (held === undefined) {
      held = this.inflight.get(key.id);
      if (held === undefined) this.inflight.set(key.id, (held = { count: 0 }));
      this.#held[vk] = held;
    }
    return held;
  }

  /** The line of `lines` with the least room left (undefined when none); that room is left in #least. */
  #tightest(lines: readonly WindowLine[]): WindowLine | undefined {
    let best: WindowLine | undefined;
    let least = Infinity;
    for (const line of lines) {
      const remaining = Math.max(0, line.limit - this.store.counter(line.key));
      if (remaining < least) {
        least = remaining;
        best = line;
      }
    }
    this.#least = least;
    return best;
  }

  rateLimits(key: PlanVirtualKey | undefined): PlanRateLimit[] {
    if (key !== undefined) return key.rateLimits;
    return this.plan.organization.rateLimit === null ? [] : [this.plan.organization.rateLimit];
  }

  /** Whether an account is over its own request or token limit (then it is down for routing). */
  accountOverLimit(account: number, now: number): boolean {
    const rl = this.plan.accounts[account].rateLimit;
    if (rl === null) return false;
    const req = this.#windowLine(rl, "req", now);
    const tok = this.#windowLine(rl, "tok", now);
    return (req !== undefined && this.store.counter(req.key) >= req.limit) || (tok !== undefined && this.store.counter(tok.key) >= tok.limit);
  }

  #accountLine(account: number, now: number): WindowLine | undefined {
    const rl = this.plan.accounts[account].rateLimit;
    return rl === null ? undefined : this.#windowLine(rl, "req", now);
  }

  /**
   * Everything an attempt takes before it goes upstream: what admission left
   * pending (its windows and concurrency slot), the reservation on `budgets`
   * (none when empty), and the account's request count. With a store that
   * takes in one step, one call, all or nothing; otherwise reserve, then count.
   * Throws what refused it (429, or BudgetExceeded as reserve does).
   */
  take(admission: Admission, budgets: readonly number[], amount: number, account: number, now: number): MaybePromise<Reservation | undefined> {
    const store = this.store;
    const money = budgets.length > 0 ? this.#linesOf(budgets, now) : undefined;
    const own = this.#accountLine(account, now);
    if (store.take === undefined) {
      // Admission took its part already: the reservation, then the account's count (no closures when both answer now).
      const r = money === undefined ? undefined : this.#reserveOn(money, amount);
      if (r instanceof Promise) return r.then((x) => whenReady(own === undefined ? undefined : store.count([own], 1, true), () => x));
      const counted = own === undefined ? undefined : store.count([own], 1, true);
      return counted instanceof Promise ? counted.then(() => r) : r;
    }
    const pending = admission.pending;
    const slot = pending?.key !== undefined && pending.key.maxConcurrent > 0 ? { key: `conc|${pending.key.id}`, limit: pending.key.maxConcurrent } : undefined;
    const counts = pending?.req ?? NO_LINES;
    if (money === undefined && own === undefined && counts.length === 0 && slot === undefined) {
      admission.pending = undefined;
      return undefined;
    }
    const t: Take = { counts, forced: own === undefined ? NO_LINES : [own], slot, money: money?.lines ?? NO_LINES, amount };
    return whenReady(store.take(t), (refused) => {
      if (refused >= 0) this.#refuse(t, refused, money, amount, pending?.key, now);
      if (pending !== undefined) this.#admitted(admission, pending, slot, now);
      return money === undefined ? undefined : { keys: money.keys, amount };
    });
  }

  /** Throws what refused a take (see state-store.ts Take for the numbering). */
  #refuse(t: Take, refused: number, money: BudgetLines | undefined, amount: number, key: PlanVirtualKey | undefined, now: number): never {
    if (refused < t.counts.length) throw rateLimited("requests", t.counts[refused], now);
    if (refused === t.counts.length) throw concurrencyLimited(key!, t.slot!.limit);
    return this.#overBudget(money!, refused - t.counts.length - 1, amount);
  }

  /** A deferred admission went through: its slot is held until the request ends, its headers are known. */
  #admitted(admission: Admission, pending: NonNullable<Admission["pending"]>, slot: Take["slot"], now: number): void {
    admission.pending = undefined;
    const key = pending.key;
    if (slot !== undefined && key !== undefined) {
      const held = this.#inFlightOf(pending.vk, key);
      held.count++;
      const store = this.store;
      admission.release = () => {
        held.count--;
        void store.release!(slot.key);
      };
    }
    if (pending.req.length + pending.tok.length > 0) {
      const req = this.#tightest(pending.req);
      const reqLeft = this.#least;
      const tok = this.#tightest(pending.tok);
      Object.assign(admission.headers, rateHeaders(req, reqLeft, tok, this.#least, now));
    }
  }

  price(model: string): PlanPrice | undefined {
    return this.#prices.get(model);
  }

  /** Budget indices a request of this key pays into when served by `provider`; `skipOwn` after a reroute. Built once, then shared. */
  budgetsFor(vk: number, provider: string, skipOwn: boolean): readonly number[] {
    const sets = this.#budgetSets[vk + 1] ?? this.#budgetSetsOf(vk, provider);
    return sets[skipOwn ? 1 : 0];
  }

  #budgetSetsOf(vk: number, provider: string): BudgetSets {
    const key = vk < 0 ? undefined : this.plan.virtualKeys[vk];
    const byProvider = key !== undefined && key.providerBudgets.length > 0 ? this.#providerBudgetSets.get(vk) ?? new Map<string, BudgetSets>() : undefined;
    let sets = byProvider?.get(provider);
    if (sets === undefined) {
      const org = this.plan.organization.budget;
      const all = key === undefined ? (org >= 0 ? [org] : []) : [...key.budgets, ...key.providerBudgets.filter(([p]) => p === provider).map(([, b]) => b)];
      sets = [all, all.filter((b) => this.plan.budgets[b].level !== "virtual_key")];
      if (byProvider === undefined) this.#budgetSets[vk + 1] = sets;
      else this.#providerBudgetSets.set(vk, byProvider.set(provider, sets));
    }
    return sets;
  }

  /**
   * Reserves `amount` on every capped period of every budget, or throws the
   * budget that has no room (a key's provider budget reports as a
   * BudgetExceeded with `meta.budget.level === "provider"`).
   */
  #reserveOn(money: BudgetLines, amount: number): MaybePromise<Reservation> {
    const failed = this.store.reserve(money.lines, amount);
    return failed instanceof Promise ? failed.then((f) => this.#reserved(money, f, amount)) : this.#reserved(money, failed, amount);
  }

  #reserved(money: BudgetLines, failed: number, amount: number): Reservation {
    if (failed >= 0) this.#overBudget(money, failed, amount);
    return { keys: money.keys, amount };
  }

  /** Throws the BudgetExceeded of money line `i` (announced once). */
  #overBudget(money: BudgetLines, i: number, amount: number): never {
    const meta = money.metas[i];
    this.#announce(money.keys[i], meta);
    throw new BudgetExceeded(meta, meta.budget.level === "virtual_key", this.store.money(money.keys[i]), amount);
  }

  /** A budget line found spent: one `budget_exhausted` event per line and period, not one per refused request. */
  #announce(key: string, meta: LineMeta): void {
    if (this.#announced.has(key)) return;
    if (this.#announced.size >= 10_000) this.#announced.clear();
    this.#announced.add(key);
    const b = meta.budget;
    event("budget_exhausted", { level: b.level, id: b.owner, period: meta.period, resets_at: new Date(meta.resetsAt).toISOString() }, `the ${meta.period} budget of ${b.level.replace("_", " ")} '${b.owner}' is spent`, "warn");
  }

  /** Every capped period of every budget in the set, as of `now`; shared until the first of them ends. */
  #linesOf(budgets: readonly number[], now: number): BudgetLines {
    let cached = this.#budgetLines.get(budgets);
    if (cached === undefined || now >= cached.expiresAt) {
      cached = { lines: [], keys: [], metas: [], expiresAt: Infinity };
      for (const b of budgets) {
        const budget = this.plan.budgets[b];
        for (const period of PERIODS) {
          const cap = capOf(budget, period);
          if (cap < 0) continue;
          const { start, end } = periodBounds(period, now);
          const key = `${budget.key}|${period}|${start}`;
          cached.lines.push({ key, cap, expiresAt: end, cell: undefined });
          cached.keys.push(key);
          cached.metas.push({ budget, period, resetsAt: end });
          cached.expiresAt = Math.min(cached.expiresAt, end);
        }
      }
      this.#budgetLines.set(budgets, cached);
    }
    return cached;
  }

  cancel(r: Reservation): MaybePromise<void> {
    return this.store.cancel(r.keys, r.amount);
  }

  /**
   * An attempt's end: settle its reservation to `spent`, what the reported
   * usage costs (served; without usage the reservation stands as spent), or
   * release it (not served), and add the reported tokens to the token
   * windows: one store call when the store can do both at once.
   */
  finish(r: Reservation | undefined, served: boolean, usage: Usage | undefined, spent: number | undefined, vk: number, account: number, now: number): MaybePromise<unknown> {
    const lines = usage === undefined ? NO_LINES : this.#tokenLines(vk, account, now);
    const actual = r === undefined || !served ? 0 : (spent ?? r.amount);
    if (r !== undefined && lines.length > 0 && this.store.settleCounting !== undefined) {
      return this.store.settleCounting(r.keys, r.amount, actual, lines, usage!.input + usage!.output);
    }
    const done = r === undefined ? undefined : served ? this.store.settle(r.keys, r.amount, actual) : this.cancel(r);
    if (lines.length === 0) return done;
    const tokens = usage!.input + usage!.output;
    return done instanceof Promise ? done.then(() => this.store.count(lines, tokens, true)) : this.store.count(lines, tokens, true);
  }

  /** The token windows a response counts into: the key's (and its team's and org's) and the account's. */
  #tokenLines(vk: number, account: number, now: number): readonly CountLine[] {
    const keyLines: readonly CountLine[] = this.#linesOfKey(vk, this.rateLimits(vk >= 0 ? this.plan.virtualKeys[vk] : undefined), now).tok;
    const rl = this.plan.accounts[account].rateLimit;
    const own = rl === null ? undefined : this.#windowLine(rl, "tok", now);
    return own === undefined ? keyLines : [...keyLines, own];
  }

  /** The key's request and token lines as of `now` (see #keyLines). */
  #linesOfKey(vk: number, limits: readonly PlanRateLimit[], now: number): KeyLines {
    let k = this.#keyLines[vk + 1];
    if (k === undefined || now >= k.expiresAt) {
      const req = this.#windowLines(limits, "req", now);
      const tok = this.#windowLines(limits, "tok", now);
      k = { req, tok, expiresAt: Math.min(...req.map((l) => l.expiresAt), ...tok.map((l) => l.expiresAt)) };
      this.#keyLines[vk + 1] = k;
    }
    return k;
  }

  /** Whether responses must be read for usage: something is priced or counted in tokens. */
  metered(vk: number, account: number): boolean {
    if (this.budgetsFor(vk, this.plan.accounts[account].provider, false).length > 0) return true;
    if (this.plan.accounts[account].rateLimit?.tokens) return true;
    return this.rateLimits(vk >= 0 ? this.plan.virtualKeys[vk] : undefined).some((r) => r.tokens !== null);
  }

  /** What `GET /v1/usage` shows for one key. */
  usageOf(vk: number, now: number): object {
    const key = this.plan.virtualKeys[vk];
    const budgets = [...key.budgets, ...key.providerBudgets.map(([, b]) => b)].flatMap((b) => {
      const budget = this.plan.budgets[b];
      return this.budgetState(b, now).map((p) => ({
        level: budget.level,
        id: budget.owner,
        period: p.period,
        limit_usd: p.limitUsd,
        spent_usd: p.spentUsd,
        reserved_usd: p.reservedUsd,
        remaining_usd: usd(Math.max(0, p.limitNano - p.spentNano - p.reservedNano)),
        resets_at: new Date(p.resetsAt).toISOString(),
      }));
    });
    const limits = key.rateLimits.map((rl) => ({
      id: rl.key,
      ...Object.fromEntries(
        this.limitState(rl, now).map((w) => [w.kind, { limit: w.limit, used: w.used, remaining: Math.max(0, w.limit - w.used), resets_at: new Date(w.resetsAt).toISOString() }]),
      ),
    }));
    return { object: "usage", key: key.id, budgets, rate_limits: limits, in_flight: this.inflight.get(key.id)?.count ?? 0 };
  }

  /** A budget's capped periods now: limit, spent and reserved (nano-USD and USD), and when each resets. */
  budgetState(budget: number, now: number): BudgetPeriodState[] {
    const b = this.plan.budgets[budget];
    return PERIODS.filter((p) => capOf(b, p) >= 0).map((period) => {
      const { start, end } = periodBounds(period, now);
      const { spent, reserved } = this.store.money(`${b.key}|${period}|${start}`);
      const cap = capOf(b, period);
      return { period, limitNano: cap, spentNano: spent, reservedNano: reserved, limitUsd: usd(cap), spentUsd: usd(spent), reservedUsd: usd(reserved), resetsAt: end };
    });
  }

  /** A rate limit's current windows: limit, used, and when each resets. */
  limitState(rl: PlanRateLimit, now: number): { kind: "requests" | "tokens"; limit: number; used: number; resetsAt: number }[] {
    return (["req", "tok"] as const).flatMap((kind) => {
      const line = this.#windowLine(rl, kind, now);
      if (line === undefined) return [];
      return [{ kind: kind === "req" ? ("requests" as const) : ("tokens" as const), limit: line.limit, used: this.store.counter(line.key), resetsAt: line.expiresAt }];
    });
  }

  /**
   * The current window's counter line for each limit. A line (its key string
   * included) is built once per window and reused until the window ends, so
   * the per-request path allocates no keys.
   */
  #windowLines(limits: readonly PlanRateLimit[], kind: "req" | "tok", now: number): WindowLine[] {
    const lines: WindowLine[] = [];
    for (const rl of limits) {
      const line = this.#windowLine(rl, kind, now);
      if (line !== undefined) lines.push(line);
    }
    return lines;
  }

  #windowLine(rl: PlanRateLimit, kind: "req" | "tok", now: number): WindowLine | undefined {
    const w = kind === "req" ? rl.requests : rl.tokens;
    if (w === null) return undefined;
    const cache = kind === "req" ? this.#reqLines : this.#tokLines;
    let line = cache.get(rl);
    if (line === undefined || now >= line.expiresAt) {
      const start = now - (now % w.windowMs);
      line = { key: `${rl.key}|${kind}|${start}`, limit: w.limit, limitText: String(w.limit), expiresAt: start + w.windowMs, resetSeconds: -1, resetText: "", cell: undefined };
      cache.set(rl, line);
    }
    return line;
  }

}

/**
 * Cost in nano-USD, rounded up. Exact: in doubles while the total stays below
 * 2^53 (every term a whole number; rounding is monotone, so a term or sum past
 * 2^53 shows in the total), else in BigInt, since tokens × price can pass it.
 */
export function cost(price: PlanPrice, usage: Usage): number {
  const cached = Math.min(usage.cached, usage.input);
  const written = Math.min(usage.cacheWrite ?? 0, usage.input - cached);
  const plain = usage.input - cached - written;
  const writeNano = price.cacheWriteNano ?? price.inputNano;
  const total = plain * price.inputNano + cached * price.cachedInputNano + written * writeNano + usage.output * price.outputNano;
  if (total <= Number.MAX_SAFE_INTEGER && whole(plain) && whole(cached) && whole(written) && whole(usage.output)) {
    const rest = total % 1_000_000;
    return (total - rest) / 1_000_000 + (rest > 0 ? 1 : 0);
  }
  return bigCost(plain, cached, written, usage.output, price, writeNano);
}

/** cost() in BigInt: exact at any size (and a RangeError for a token count that is not a whole number). */
export function bigCost(plain: number, cached: number, written: number, output: number, price: PlanPrice, writeNano: number): number {
  const total = BigInt(plain) * BigInt(price.inputNano) + BigInt(cached) * BigInt(price.cachedInputNano) + BigInt(written) * BigInt(writeNano) + BigInt(output) * BigInt(price.outputNano);
  return Number((total + 999_999n) / 1_000_000n);
}

/** A token count the double path takes: a whole, non-negative number (prices are, by the compiler). */
function whole(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * The most a request can cost when sent to an account speaking `wire`: every
 * token it can be billed (request-bound.ts), input at the dearest input rate
 * (plain, cache read or cache write, since the provider decides which).
 */
export function estimate(price: PlanPrice, req: InboundRequest, wire: Wire): number {
  const { input, output } = requestBound(req, wire);
  const inputNano = Math.max(price.inputNano, price.cachedInputNano, price.cacheWriteNano ?? 0);
  return cost({ ...price, inputNano }, { input, output, cached: 0 });
}

function capOf(b: PlanBudget, period: Period): number {
  return period === "daily" ? b.dailyNano : period === "weekly" ? b.weeklyNano : b.monthlyNano;
}

function usd(nano: number): string {
  return (nano / 1e9).toFixed(nano % 1e7 === 0 ? 2 : 6);
}

function sha256(text: string): string {
  return hash("sha256", text, "hex");
}

function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim() || undefined;
  const x = headers["x-api-key"];
  return typeof x === "string" && x !== "" ? x : undefined;
}

/**
 * OpenAI-style x-ratelimit-* headers for the tightest request and token line
 * (either may be absent): one object literal per shape, so every response's
 * headers share a hidden class.
 */
function rateHeaders(req: WindowLine | undefined, reqLeft: number, tok: WindowLine | undefined, tokLeft: number, now: number): Record<string, string> {
  if (req !== undefined && tok !== undefined) {
    return {
      "x-ratelimit-limit-requests": req.limitText,
      "x-ratelimit-remaining-requests": String(reqLeft),
      "x-ratelimit-reset-requests": resetText(req, now),
      "x-ratelimit-limit-tokens": tok.limitText,
      "x-ratelimit-remaining-tokens": String(tokLeft),
      "x-ratelimit-reset-tokens": resetText(tok, now),
    };
  }
  if (req !== undefined) return { "x-ratelimit-limit-requests": req.limitText, "x-ratelimit-remaining-requests": String(reqLeft), "x-ratelimit-reset-requests": resetText(req, now) };
  if (tok !== undefined) return { "x-ratelimit-limit-tokens": tok.limitText, "x-ratelimit-remaining-tokens": String(tokLeft), "x-ratelimit-reset-tokens": resetText(tok, now) };
  return {};
}

/** Seconds until the window resets, as header text; the string is made once per second of the window. */
function resetText(line: WindowLine, now: number): string {
  const seconds = Math.ceil((line.expiresAt - now) / 1000);
  if (seconds !== line.resetSeconds) {
    line.resetSeconds = seconds;
    line.resetText = `${seconds}s`;
  }
  return line.resetText;
}

function concurrencyLimited(key: PlanVirtualKey, current: number): HttpError {
  return new HttpError(429, "rate_limit_error", "concurrency_limit", `Key '${key.id}' already has ${current} requests in flight, its limit.`, { "retry-after": "1" });
}

function rateLimited(kind: "requests" | "tokens", line: CountLine, now: number): HttpError {
  const wait = Math.max(1, Math.ceil((line.expiresAt - now) / 1000));
  const owner = line.key.slice(0, line.key.indexOf("|"));
  return new HttpError(429, "rate_limit_error", "rate_limit_exceeded", `Rate limit reached for ${owner}: ${line.limit} ${kind} per window. Try again in ${wait}s.`, {
    "retry-after": String(wait),
    [`x-ratelimit-limit-${kind}`]: String(line.limit),
    [`x-ratelimit-remaining-${kind}`]: "0",
    [`x-ratelimit-reset-${kind}`]: `${wait}s`,
  });
}
