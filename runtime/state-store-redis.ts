import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { HttpError } from "./errors.ts";
import type { PlanRedis } from "./plan.ts";
import { BudgetLeases, type Report } from "./budget-leases.ts";
import { redisClient } from "./redis-client.ts";
import { ACQUIRE, COUNT, GRANT, READ, RENEW, REPORT, RESERVE, SETTLE, TAKE } from "./redis-scripts.ts";
import type { CountLine, MoneyLine, StateStore, SharedStoreHealth, Take } from "./state-store.ts";
import { StoreMirror } from "./store-mirror.ts";

/** A period's money line outlives its period this long, so late settles still land. */
export const MONEY_GRACE_MS = 86_400_000;
/** How often counters other instances move are read back for the synchronous views. */
const REFRESH_MS = 250;
/** A command that takes longer fails: governed requests never hang on Redis. */
const COMMAND_TIMEOUT_MS = 1000;

type Script = (numKeys: number, ...args: (string | number)[]) => Promise<number[]>;
type Scripts = Record<"take" | "reserve" | "settle" | "acquire" | "count" | "renew" | "read" | "grant" | "report", Script>;

/** Something to send once Redis answers again: a settle, release or forced count that must not be lost. */
type Pending = { kind: "settle"; keys: string[]; lease: string; actual: number } | { kind: "count"; key: string; cost: number; expiresAt: number };

/**
 * Budget, rate-limit and concurrency counters in Redis, shared by every
 * instance pointed at it (see redis-scripts.ts for the keys and scripts).
 *
 * Leases: each reservation and concurrency slot is a lease held under this
 * instance's id; the instance renews its lease every third of `lease_ttl`
 * (and on every call), and any script that runs after it lapses returns the
 * lapsed instance's holdings. The interface pairs reserve with settle by
 * (keys, amount), not by id, so the store keeps its lease ids by that
 * signature: two reservations with the same keys and amount are
 * interchangeable, so settling either lease leaves Redis the same.
 *
 * Redis down: governed calls fail at once (no offline queue, a short command
 * timeout) with 503 `state_unavailable`, or, with `when_down: local`, decide
 * on this instance's share of the headroom last seen. What must not be lost
 * (settles, releases, forced counts) waits in a bounded journal and is sent
 * when Redis is back.
 */
export class RedisStore implements StateStore {
  readonly #redis: Redis | Cluster;
  readonly #scripts: Scripts;
  readonly #id = randomBytes(8).toString("hex");
  readonly #hold: string;
  readonly #zset: string;
  readonly #mirror = new StoreMirror();
  /** Lease ids by `keys + amount` signature; `local:` ids were granted while Redis was down. */
  readonly #leases = new Map<string, string[]>();
  #seq = 0;
  /** Outages so far: local leases of an earlier one no longer count against the local share. */
  #epoch = 0;
  #connected = false;
  /** Instances holding a lease, as last seen: the local share divides by it. */
  #instances = 1;
  readonly #pending: Pending[] = [];
  /** What local decisions took per key while Redis was down. */
  readonly #local = new Map<string, number>();
  readonly #timers: NodeJS.Timeout[] = [];
  #flushing = false;
  /** Budget leasing's slices, when it is on. */
  readonly #slices: BudgetLeases | undefined;
  /** The report under way, if one is: one at a time. */
  #reporting: Promise<void> | undefined;

  constructor(
    readonly config: PlanRedis,
    url: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    const p = `{${config.prefix}}`;
    this.#hold = `${p}h:${this.#id}`;
    this.#zset = `${p}instances`;
    this.#redis = redisClient(config, url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      // Reconnect with backoff: 100 ms doubling to 2 s, jittered so instances do not reconnect in step.
      retryStrategy: (times) => Math.min(2000, 100 * 2 ** Math.min(times, 5)) * (0.75 + Math.random() / 2),
      lazyConnect: false,
      // Not enableAutoPipelining: with the offline queue off, an auto-pipelined
      // script sent to a fresh connection could wait forever (no command timeout
      // applies to it); test/redis/workers.test.ts caught a request hanging.
    });
    for (const [name, lua] of Object.entries({ take: TAKE, reserve: RESERVE, settle: SETTLE, acquire: ACQUIRE, count: COUNT, renew: RENEW, read: READ, grant: GRANT, report: REPORT })) {
      // defineCommand sends EVALSHA and falls back to EVAL when Redis has not seen the script (after a restart too).
      this.#redis.defineCommand(name, { lua });
    }
    this.#scripts = this.#redis as unknown as Scripts;
    this.#redis.on("ready", () => {
      this.#connected = true;
      this.log(`state: connected to Redis`);
      void this.#renew().then(() => this.#flush());
    });
    this.#redis.on("close", () => {
      if (this.#connected) this.log(`state: lost Redis; governed requests ${config.whenDown === "reject" ? "get 503 until it is back" : "use this instance's local share"}`);
      this.#connected = false;
    });
    // Errors also arrive as failed commands; the event only needs a listener so it never throws out of the process.
    this.#redis.on("error", () => {});
    const renew = setInterval(() => void this.#renew().then(() => this.#flush()), Math.max(100, Math.floor(config.leaseTtlMs / 3)));
    const refresh = setInterval(() => void this.#refresh(), REFRESH_MS);
    renew.unref();
    refresh.unref();
    this.#timers.push(renew, refresh);
    const leasing = config.budgetLeasing;
    if (leasing !== undefined) {
      this.#slices = new BudgetLeases(leasing.maxSliceNano, 10 * leasing.reportMs);
      const report = setInterval(() => void this.#report(), leasing.reportMs);
      report.unref();
      this.#timers.push(report);
    }
  }

  /** Resolves once connected, or after `ms` either way (start-up does not wait on a Redis that is down). */
  ready(ms: number): Promise<void> {
    if (this.#connected) return Promise.resolve();
    return new Promise((ok) => {
      const t = setTimeout(ok, ms);
      this.#redis.once("ready", () => {
        clearTimeout(t);
        ok();
      });
    });
  }

  health(): SharedStoreHealth {
    return { ok: true, path: null, store: "redis", connected: this.#connected, whenDown: this.config.whenDown };
  }

  async reserve(lines: readonly MoneyLine[], amount: number): Promise<number> {
    const keys = lines.map((l) => this.#key("m", l.key));
    if (this.#connected && this.#slices !== undefined) {
      const leased = await this.#leased(lines, amount);
      if (leased !== undefined) return leased;
    }
    if (this.#connected) {
      const lease = String(++this.#seq);
      const args: (string | number)[] = [this.#id, this.config.leaseTtlMs, this.#prefix, lease, String(amount)];
      for (const l of lines) args.push(String(l.cap), String(l.expiresAt + MONEY_GRACE_MS));
      try {
        const out = await this.#call("reserve", 2 + keys.length, this.#zset, this.#hold, ...keys, ...args);
        for (let i = 0; 2 * i + 2 < out.length; i++) this.#mirror.setMoney(lines[i].key, out[2 * i + 1], out[2 * i + 2]);
        if (out[0] === -1) this.#push(signature(lines, amount), lease);
        return out[0];
      } catch {
        // It may have run before the answer was lost: returning the lease is harmless if it did not.
        this.#pending.push({ kind: "settle", keys, lease, actual: 0 });
      }
    }
    return this.#localReserve(lines, amount);
  }

  /**
   * The caller's whole wait on Redis: windows, concurrency slot, budgets and
   * the account's count in one script. While Redis is away, the same steps
   * one by one on the local share (or 503 with `reject`).
   */
  async take(t: Take): Promise<number> {
    if (this.#connected && this.#slices !== undefined && t.money.length > 0) {
      // Leasing: the budgets from this instance's slices; the windows and the slot (if any) in one script.
      const leased = await this.#leased(t.money, t.amount);
      if (leased !== undefined) {
        if (leased >= 0) return t.counts.length + 1 + leased;
        const back = () => void this.settle(t.money.map((l) => l.key), t.amount, 0);
        try {
          const rest = t.counts.length + t.forced.length > 0 || t.slot !== undefined ? await this.take({ ...t, money: [], amount: 0 }) : -1;
          if (rest >= 0) back();
          return rest;
        } catch (e) {
          back();
          throw e;
        }
      }
    }
    if (this.#connected) {
      const lease = String(++this.#seq);
      const { counts, forced, slot, money } = t;
      const keys: string[] = [this.#zset, this.#hold];
      const args: (string | number)[] = [this.#id, this.config.leaseTtlMs, this.#prefix, lease, String(t.amount), counts.length, forced.length, slot === undefined ? 0 : 1, slot?.limit ?? 0];
      for (const l of counts) keys.push(this.#key("c", l.key)), args.push(l.limit, l.expiresAt);
      for (const l of forced) keys.push(this.#key("c", l.key)), args.push(l.expiresAt);
      if (slot !== undefined) keys.push(this.#key("k", slot.key));
      for (const l of money) keys.push(this.#key("m", l.key)), args.push(String(l.cap), String(l.expiresAt + MONEY_GRACE_MS));
      try {
        const out = await this.#call("take", keys.length, ...keys, ...args);
        let o = 1;
        for (const l of counts) this.#mirror.setCount(l.key, out[o++]);
        for (const l of forced) this.#mirror.setCount(l.key, out[o++]);
        if (slot !== undefined) this.#mirror.setCount(`k\u0000${slot.key}`, out[o++]);
        for (const l of money) this.#mirror.setMoney(l.key, out[o++], out[o++]);
        if (out[0] === -1) {
          if (slot !== undefined) this.#push(`k\u0000${slot.key}`, `${lease}k`);
          if (money.length > 0) this.#push(signature(money, t.amount), lease);
        }
        return out[0];
      } catch {
        // As reserve: if it ran before the answer was lost, its leases return; its counts stay counted.
        this.#pending.push({ kind: "settle", keys: [], lease, actual: 0 }, { kind: "settle", keys: [], lease: `${lease}k`, actual: 0 });
        // One timed-out script is all a request waits for: with `reject`, 503 now rather than a second timeout.
        this.#unavailable();
      }
    }
    return takeInSteps(this, t);
  }

  settle(keys: readonly string[], reserved: number, actual: number): Promise<void> {
    return this.settleCounting(keys, reserved, actual, [], 0);
  }

  /** Settles and adds the response's tokens to their windows in one script. */
  settleCounting(keys: readonly string[], reserved: number, actual: number, lines: readonly CountLine[], cost: number): Promise<void> {
    const lease = this.#pop(signature(keys, reserved));
    if (lease === SLICE) {
      // Taken from this instance's slices: settled here, reported with the next report (at once near the cap).
      if (this.#slices!.settle(keys, reserved, actual, Date.now())) void this.#report();
      return lines.length === 0 ? Promise.resolve() : this.count(lines, cost, true).then(() => {});
    }
    const local = lease?.startsWith("local:") === true;
    if (local && lease!.startsWith(this.#epochTag)) this.#take(keys, actual - reserved);
    // A local lease is not in Redis: only its spend goes there.
    return this.#settle(keys.map((k) => this.#key("m", k)), keys, lease === undefined || local ? "" : lease, actual, lines, cost);
  }

  cancel(keys: readonly string[], reserved: number): Promise<void> {
    return this.settle(keys, reserved, 0);
  }

  async count(lines: readonly CountLine[], cost: number, force = false): Promise<number> {
    if (this.#connected) {
      const args: string[] = [String(cost), force ? "1" : "0"];
      for (const l of lines) args.push(String(l.limit), String(l.expiresAt));
      try {
        const out = await this.#call("count", lines.length, ...lines.map((l) => this.#key("c", l.key)), ...args);
        for (let i = 0; i + 1 < out.length; i++) this.#mirror.setCount(lines[i].key, out[i + 1]);
        return out[0];
      } catch {
        // Fall through: a forced count is kept for later; a checked one is decided locally or refused.
      }
    }
    if (force) {
      this.#journalCounts(lines, cost);
      this.#bound();
      return -1;
    }
    this.#unavailable();
    for (let i = 0; i < lines.length; i++) {
      if (!this.#mirror.knowsCount(lines[i].key)) this.#unjudgeable();
      if (this.#used(lines[i].key) + cost > this.#share(lines[i].limit - this.#mirror.counter(lines[i].key))) return i;
    }
    this.#take(lines.map((l) => l.key), cost);
    for (const l of lines) this.#pending.push({ kind: "count", key: this.#key("c", l.key), cost, expiresAt: l.expiresAt });
    this.#bound();
    return -1;
  }

  async acquire(key: string, limit: number): Promise<boolean> {
    const sig = `k\u0000${key}`;
    if (this.#connected) {
      const lease = String(++this.#seq);
      try {
        const [taken, count] = await this.#call("acquire", 3, this.#zset, this.#hold, this.#key("k", key), this.#id, this.config.leaseTtlMs, this.#prefix, lease, limit);
        this.#mirror.setCount(sig, count);
        if (taken === 1) this.#push(sig, lease);
        return taken === 1;
      } catch {
        this.#pending.push({ kind: "settle", keys: [], lease, actual: 0 });
      }
    }
    this.#unavailable();
    // Down: a conservative share of the cap, whatever other instances hold.
    if (this.#used(sig) + 1 > Math.floor(limit / Math.max(1, this.#instances))) return false;
    this.#take([sig], 1);
    this.#push(sig, `${this.#epochTag}${++this.#seq}`);
    return true;
  }

  release(key: string): Promise<void> {
    const sig = `k\u0000${key}`;
    const lease = this.#pop(sig);
    if (lease === undefined) return Promise.resolve();
    if (lease.startsWith("local:")) {
      if (lease.startsWith(this.#epochTag)) this.#take([sig], -1);
      return Promise.resolve();
    }
    return this.#settle([], [], lease, 0);
  }

  money(key: string): { spent: number; reserved: number } {
    return this.#mirror.money(key);
  }

  counter(key: string): number {
    return this.#mirror.counter(key);
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.#reporting;
    await this.#report(true);
    await this.#flush();
    this.#redis.disconnect();
  }

  /** One script, timed for the store's metrics (state-store-metrics.ts) when they are on. */
  async #call(op: keyof Scripts, numKeys: number, ...args: (string | number)[]): Promise<number[]> {
    const observe = this.observe;
    if (observe === undefined) return this.#scripts[op](numKeys, ...args);
    const t0 = performance.now();
    try {
      const out = await this.#scripts[op](numKeys, ...args);
      observe(op, (performance.now() - t0) / 1000, false);
      return out;
    } catch (e) {
      observe(op, (performance.now() - t0) / 1000, true);
      throw e;
    }
  }

  /** Set by the metrics: each script's duration, and whether it failed. */
  observe: ((op: string, seconds: number, failed: boolean) => void) | undefined;

  /** Settles, releases and forced counts waiting for Redis to come back. */
  get pending(): number {
    return this.#pending.length;
  }

  get #prefix(): string {
    return `{${this.config.prefix}}`;
  }

  #key(kind: "m" | "c" | "k", key: string): string {
    return `{${this.config.prefix}}${kind}:${key}`;
  }

  async #settle(redisKeys: string[], keys: readonly string[], lease: string, actual: number, lines: readonly CountLine[] = [], cost = 0): Promise<void> {
    if (this.#connected) {
      try {
        const counted = lines.length === 0 ? [] : [redisKeys.length, cost, ...lines.map((l) => l.expiresAt)];
        const countKeys = lines.map((l) => this.#key("c", l.key));
        const out = await this.#call("settle", 2 + redisKeys.length + countKeys.length, this.#zset, this.#hold, ...redisKeys, ...countKeys, this.#id, this.config.leaseTtlMs, this.#prefix, lease, String(actual), ...counted);
        keys.forEach((k, i) => this.#mirror.setMoney(k, out[2 * i], out[2 * i + 1]));
        lines.forEach((l, i) => this.#mirror.setCount(l.key, out[2 * keys.length + i]));
        return;
      } catch {
        // Kept for later. If it did run, its spend is counted twice: budgets err towards over-counting, never under.
      }
    }
    this.#pending.push({ kind: "settle", keys: redisKeys, lease, actual });
    if (lines.length > 0) this.#journalCounts(lines, cost);
    this.#bound();
  }

  /** Forced counts kept for when Redis is back; the views show them meanwhile. */
  #journalCounts(lines: readonly CountLine[], cost: number): void {
    for (const l of lines) {
      this.#pending.push({ kind: "count", key: this.#key("c", l.key), cost, expiresAt: l.expiresAt });
      this.#mirror.setCount(l.key, this.#mirror.counter(l.key) + cost);
    }
  }

  /** Sends what waited while Redis was down, in order; stops at the first failure and tries again later. */
  async #flush(): Promise<void> {
    if (this.#flushing || !this.#connected || this.#pending.length === 0) return;
    this.#flushing = true;
    try {
      while (this.#pending.length > 0 && this.#connected) {
        const p = this.#pending[0];
        if (p.kind === "settle") {
          await this.#call("settle", 2 + p.keys.length, this.#zset, this.#hold, ...p.keys, this.#id, this.config.leaseTtlMs, this.#prefix, p.lease, String(p.actual));
        } else {
          await this.#call("count", 1, p.key, String(p.cost), "1", "0", String(p.expiresAt));
        }
        this.#pending.shift();
      }
      if (this.#pending.length === 0 && this.#local.size > 0) {
        // A new outage starts from the counters as Redis now has them; local leases still out settle as spend only.
        this.#local.clear();
        this.#epoch++;
        this.log("state: Redis is back; what was spent meanwhile is written to it");
      }
    } catch {
      // Still unreachable: the next renewal tries again.
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * Budget leasing: takes `amount` on every line from this instance's slices,
   * asking Redis for more (one GRANT over the lines that lack it) when they
   * are short. -1, or the first line Redis could not give enough; undefined
   * when Redis did not answer (the caller decides as without leasing).
   */
  async #leased(lines: readonly MoneyLine[], amount: number): Promise<number | undefined> {
    const slices = this.#slices!;
    const sig = signature(lines, amount);
    for (let tries = 0; tries < 4; tries++) {
      const now = Date.now();
      if (slices.take(lines, amount, now) === -1) {
        this.#push(sig, SLICE);
        return -1;
      }
      const asks = slices.asks(lines, amount, this.#instances, (l) => {
        const m = this.#mirror.money(l.key);
        return l.cap - m.spent - m.reserved;
      });
      const args: (string | number)[] = [this.#id, this.config.leaseTtlMs, this.#prefix];
      lines.forEach((l, i) => args.push(String(l.cap), String(l.expiresAt + MONEY_GRACE_MS), String(asks[i].want), String(asks[i].need)));
      const keys = lines.map((l) => l.key);
      slices.granting(keys, now);
      let out: number[];
      try {
        out = await this.#call("grant", 2 + lines.length, this.#zset, this.#hold, ...lines.map((l) => this.#key("m", l.key)), ...args);
      } catch {
        slices.failed(keys, true);
        return undefined;
      }
      lines.forEach((l, i) => {
        const [granted, spent, reserved] = [out[1 + 3 * i], out[2 + 3 * i], out[3 + 3 * i]];
        this.#mirror.setMoney(l.key, spent, reserved);
        slices.grant(l, granted, spent, reserved, asks[i].need || amount, this.#instances, now);
      });
      if (out[0] >= 0) return out[0];
      // Granted: the next turn takes from it (unless concurrent requests took it first; then ask again).
    }
    // Outrun by concurrent requests four times: this one reserves in Redis as without leasing.
    return undefined;
  }

  /** Writes the slices' spend to Redis and gives back what is free and idle (everything, when closing). One script; one at a time. */
  #report(all = false): Promise<void> {
    const slices = this.#slices;
    if (slices === undefined || this.#reporting !== undefined || !this.#connected) return Promise.resolve();
    const reports = slices.reports(Date.now(), all);
    if (reports.length === 0) return Promise.resolve();
    this.#reporting = this.#send(slices, reports).finally(() => (this.#reporting = undefined));
    return this.#reporting;
  }

  async #send(slices: BudgetLeases, reports: Report[]): Promise<void> {
    const args: (string | number)[] = [this.#id, this.config.leaseTtlMs, this.#prefix];
    for (const r of reports) args.push(String(r.spend), String(r.give), String(r.keep));
    try {
      const out = await this.#call("report", 2 + reports.length, this.#zset, this.#hold, ...reports.map((r) => this.#key("m", r.key)), ...args);
      reports.forEach((r, i) => {
        const [held, spent, reserved] = [out[3 * i], out[1 + 3 * i], out[2 + 3 * i]];
        this.#mirror.setMoney(r.key, spent, reserved);
        slices.reported(r, held, spent, reserved, this.#instances);
      });
    } catch {
      // Not written (or written, the answer lost): the spend goes to Redis with the settles that wait for it; the next report sets the slice right.
      for (const r of reports) if (r.spend > 0) this.#pending.push({ kind: "settle", keys: [this.#key("m", r.key)], lease: "", actual: r.spend });
      slices.failed(reports.map((r) => r.key), false);
    }
  }

  async #renew(): Promise<void> {
    if (!this.#connected) return;
    try {
      this.#instances = Math.max(1, Number(await this.#call("renew", 2, this.#zset, this.#hold, this.#id, this.config.leaseTtlMs, this.#prefix)));
    } catch {
      // A renewal that fails is retried on the next tick, well inside the lease.
    }
  }

  /** Reads back the counters the synchronous views were asked for, so they show what other instances did too. */
  async #refresh(): Promise<void> {
    if (!this.#connected) return;
    const { money, counts } = this.#mirror.watched();
    if (money.length + counts.length === 0) return;
    try {
      const keys = [...money.map((k) => this.#key("m", k)), ...counts.map((k) => (k.startsWith("k\u0000") ? this.#key("k", k.slice(2)) : this.#key("c", k)))];
      const out = await this.#call("read", keys.length, ...keys, money.length);
      money.forEach((k, i) => this.#mirror.setMoney(k, out[2 * i], out[2 * i + 1]));
      counts.forEach((k, i) => this.#mirror.setCount(k, out[2 * money.length + i]));
    } catch {
      // The views keep their last values.
    }
  }

  #localReserve(lines: readonly MoneyLine[], amount: number): number {
    this.#unavailable();
    for (let i = 0; i < lines.length; i++) {
      if (!this.#mirror.knowsMoney(lines[i].key)) this.#unjudgeable();
      const { spent, reserved } = this.#mirror.money(lines[i].key);
      if (this.#used(lines[i].key) + amount > this.#share(lines[i].cap - spent - reserved)) return i;
    }
    this.#take(lines.map((l) => l.key), amount);
    this.#push(signature(lines, amount), `${this.#epochTag}${++this.#seq}`);
    return -1;
  }

  get #epochTag(): string {
    return `local:${this.#epoch}:`;
  }

  /** With `reject`, governed calls answer 503 at once while Redis is away. */
  #unavailable(): void {
    if (this.config.whenDown === "reject") this.#unjudgeable();
  }

  /** 503 `state_unavailable`: also what `local` answers for a counter it has never seen, rather than guess. */
  #unjudgeable(): never {
    throw new HttpError(
      503,
      "server_error",
      "state_unavailable",
      "The gateway cannot reach the store that keeps budgets and rate limits, so it cannot admit this request. Retry shortly.",
      { "retry-after": "1" },
      null,
      "state_unavailable",
    );
  }

  /** This instance's part of the headroom last seen: the rest may be taken by the others meanwhile. */
  #share(headroom: number): number {
    return Math.max(0, Math.floor(headroom / Math.max(1, this.#instances)));
  }

  #used(key: string): number {
    return this.#local.get(key) ?? 0;
  }

  #take(keys: readonly string[], amount: number): void {
    for (const k of keys) this.#local.set(k, this.#used(k) + amount);
  }

  #push(sig: string, lease: string): void {
    const list = this.#leases.get(sig);
    if (list === undefined) this.#leases.set(sig, [lease]);
    else list.push(lease);
  }

  #pop(sig: string): string | undefined {
    const list = this.#leases.get(sig);
    const lease = list?.pop();
    if (list !== undefined && list.length === 0) this.#leases.delete(sig);
    return lease;
  }

  /** The journal holds settles of leases taken before Redis went away, plus forced counts: past a bound, forced counts merge per key. */
  #bound(): void {
    if (this.#pending.length < 10_000) return;
    const merged = new Map<string, Pending & { kind: "count" }>();
    const rest: Pending[] = [];
    for (const p of this.#pending) {
      if (p.kind !== "count") rest.push(p);
      else {
        const m = merged.get(p.key);
        if (m === undefined) merged.set(p.key, { ...p });
        else m.cost += p.cost;
      }
    }
    this.#pending.length = 0;
    this.#pending.push(...rest, ...merged.values());
  }
}

/**
 * take() as separate steps, for while Redis is away (each step decides on the
 * local share, or refuses with 503): what an earlier step took is given back
 * when a later one refuses, so it stays all or nothing.
 */
async function takeInSteps(store: RedisStore, t: Take): Promise<number> {
  const { counts, slot, money } = t;
  let counted = false;
  let slotted = false;
  try {
    if (counts.length > 0) {
      const c = await store.count(counts, 1);
      if (c >= 0) return c;
      counted = true;
    }
    if (slot !== undefined) {
      if (!(await store.acquire(slot.key, slot.limit))) return undo(counts.length);
      slotted = true;
    }
    if (money.length > 0) {
      const r = await store.reserve(money, t.amount);
      if (r >= 0) return undo(counts.length + 1 + r);
    }
    if (t.forced.length > 0) await store.count(t.forced, 1, true);
    return -1;
  } catch (e) {
    await undo(-1);
    throw e;
  }
  async function undo(refused: number): Promise<number> {
    if (counted) await store.count(counts, -1, true);
    if (slotted) await store.release(slot!.key);
    return refused;
  }
}

/** The lease id of a reservation taken from this instance's slices (budget leasing): settled here, not in Redis. */
const SLICE = "slice";

function signature(lines: readonly (MoneyLine | string)[], amount: number): string {
  let sig = String(amount);
  for (const l of lines) sig += `\u0000${typeof l === "string" ? l : l.key}`;
  return sig;
}
