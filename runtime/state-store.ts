import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StartupError } from "./secrets.ts";

/** One budget counter a request must fit under: `spent + reserved + amount ≤ cap`. */
export interface MoneyLine {
  key: string;
  cap: number;
  /** When the counter's period ends; it may be forgotten after that. */
  expiresAt: number;
}

/** One fixed-window counter: `count + cost ≤ limit`. */
export interface CountLine {
  key: string;
  limit: number;
  expiresAt: number;
}

/** A value now (the embedded store) or later (a remote one). */
export type MaybePromise<T> = T | Promise<T>;

/** `f(value)`, at once when the value is already here: awaiting a plain value still costs a turn of the microtask queue. */
export function whenReady<T, R>(value: MaybePromise<T>, f: (v: T) => R): MaybePromise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/**
 * Where budget and rate-limit counters live. Every multi-line operation is
 * all-or-nothing, so a store backed by Redis can run each as one Lua script
 * and N gateways enforce one cap. Keys are stable ids (see compiler/plan.ts
 * stableKey), so a reload keeps every counter.
 */
export interface StateStore {
  /** Reserves `amount` on every line, or on none: -1 when it fit, else the index of the first line without room. */
  reserve(lines: readonly MoneyLine[], amount: number): MaybePromise<number>;
  /** Turns a reservation into spend: each key's reserved drops by `reserved`, its spent grows by `actual`. */
  settle(keys: readonly string[], reserved: number, actual: number): MaybePromise<void>;
  cancel(keys: readonly string[], reserved: number): MaybePromise<void>;
  /** Adds `cost` to every line if all stay within their limits (or always, with `force`): -1, or the first line that would not. */
  count(lines: readonly CountLine[], cost: number, force?: boolean): MaybePromise<number>;
  money(key: string): { spent: number; reserved: number };
  counter(key: string): number;
  close(): MaybePromise<void>;
  // Optional, and only on stores several processes share (Redis, the
  // workers' primary); without them governance keeps these in the process.
  /** Takes one of `limit` concurrency slots of `key`: true when taken. The slot returns on release, or when this process's lease ends. */
  acquire?(key: string, limit: number): MaybePromise<boolean>;
  release?(key: string): MaybePromise<void>;
  /** Where counters live and whether that place answers, for /readyz. */
  status?(): StoreStatus;
}

export interface StoreStatus {
  store: string;
  connected: boolean;
  /** What governed requests get while not connected. */
  whenDown?: "reject" | "local";
}

interface Money {
  spent: number;
  reserved: number;
  expiresAt: number;
}

const SNAPSHOT_VERSION = 1;

/**
 * The embedded store: counters in memory, snapshotted to `dir/state.json`
 * every `intervalMs` (write to a temporary file, then rename, so a crash
 * leaves the previous snapshot whole). Reservations are not snapshotted:
 * after a restart nothing is in flight.
 */
export class MemoryStore implements StateStore {
  readonly #money = new Map<string, Money>();
  readonly #counts = new Map<string, { count: number; expiresAt: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dir: string | null = null,
    intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {
    if (dir !== null) {
      this.#restore();
      this.#timer = setInterval(() => this.snapshot(), intervalMs);
      this.#timer.unref();
    }
  }

  reserve(lines: readonly MoneyLine[], amount: number): number {
    for (let i = 0; i < lines.length; i++) {
      const m = this.#money.get(lines[i].key);
      if ((m === undefined ? 0 : m.spent + m.reserved) + amount > lines[i].cap) return i;
    }
    for (const line of lines) {
      let m = this.#money.get(line.key);
      if (m === undefined) this.#money.set(line.key, (m = { spent: 0, reserved: 0, expiresAt: line.expiresAt }));
      m.reserved += amount;
    }
    return -1;
  }

  settle(keys: readonly string[], reserved: number, actual: number): void {
    for (const key of keys) {
      const m = this.#money.get(key);
      if (m === undefined) continue;
      m.reserved -= reserved;
      m.spent += actual;
    }
  }

  cancel(keys: readonly string[], reserved: number): void {
    this.settle(keys, reserved, 0);
  }

  count(lines: readonly CountLine[], cost: number, force = false): number {
    if (!force) {
      for (let i = 0; i < lines.length; i++) {
        if ((this.#counts.get(lines[i].key)?.count ?? 0) + cost > lines[i].limit) return i;
      }
    }
    for (const line of lines) {
      const c = this.#counts.get(line.key);
      if (c === undefined) this.#counts.set(line.key, { count: cost, expiresAt: line.expiresAt });
      else c.count += cost;
    }
    return -1;
  }

  money(key: string): { spent: number; reserved: number } {
    const m = this.#money.get(key);
    return { spent: m?.spent ?? 0, reserved: m?.reserved ?? 0 };
  }

  counter(key: string): number {
    return this.#counts.get(key)?.count ?? 0;
  }

  /** Writes every live counter atomically; expired ones are dropped first. */
  snapshot(): void {
    if (this.dir === null) return;
    const now = this.now();
    for (const [k, m] of this.#money) if (m.expiresAt <= now && m.reserved === 0) this.#money.delete(k);
    for (const [k, c] of this.#counts) if (c.expiresAt <= now) this.#counts.delete(k);
    const data = {
      version: SNAPSHOT_VERSION,
      money: [...this.#money].map(([k, m]) => [k, m.spent, m.expiresAt]),
      counts: [...this.#counts].map(([k, c]) => [k, c.count, c.expiresAt]),
    };
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, "state.json");
    // A temporary file of this process's own: two gateways pointed at one
    // directory (a mistake, but a possible one) then overwrite each other's
    // snapshots whole instead of interleaving into a file neither can read.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data));
    renameSync(tmp, file);
  }

  close(): void {
    clearInterval(this.#timer);
    this.snapshot();
  }

  #restore(): void {
    const file = join(this.dir!, "state.json");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return; // first start
    }
    // Spend caps rest on these counters, so an unreadable snapshot stops start-up rather than resetting them.
    let data: { version: number; money: [string, number, number][]; counts: [string, number, number][] };
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new StartupError(`the state snapshot ${file} is not valid JSON (${(e as Error).message}); move it aside to start with every budget and rate-limit counter at zero`);
    }
    if (data?.version !== SNAPSHOT_VERSION || !Array.isArray(data.money) || !Array.isArray(data.counts)) {
      throw new StartupError(`the state snapshot ${file} is not a version ${SNAPSHOT_VERSION} gwc snapshot; move it aside to start with every counter at zero`);
    }
    const now = this.now();
    for (const [k, spent, expiresAt] of data.money) if (expiresAt > now) this.#money.set(k, { spent, reserved: 0, expiresAt });
    for (const [k, count, expiresAt] of data.counts) if (expiresAt > now) this.#counts.set(k, { count, expiresAt });
  }
}
