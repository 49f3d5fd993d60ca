import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { event } from "./log.ts";
import { StartupError } from "./secrets.ts";
import { parseSnapshot, SNAPSHOT_VERSION } from "./snapshot-file.ts";
import { lockStateDir, type StateLock } from "./state-lock.ts";

/** One budget counter a request must fit under: `spent + reserved + amount ≤ cap`. */
export interface MoneyLine {
  key: string;
  cap: number;
  /** When the counter's period ends; it may be forgotten after that. */
  expiresAt: number;
  /** The store's own handle on this line's counter, if it keeps one (the embedded store does); opaque to callers. */
  cell?: unknown;
}

/** One fixed-window counter: `count + cost ≤ limit`. */
export interface CountLine {
  key: string;
  limit: number;
  expiresAt: number;
  /** As MoneyLine's. */
  cell?: unknown;
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
  /**
   * A request's whole admission as one all-or-nothing step (one round trip to
   * a remote store): -1 when everything was taken, else what refused it (see
   * Take). Without it, governance runs count, acquire and reserve one by one.
   */
  take?(t: Take): MaybePromise<number>;
  /** settle plus a forced count of `cost` on `lines` (the response's tokens), as one step. */
  settleCounting?(keys: readonly string[], reserved: number, actual: number, lines: readonly CountLine[], cost: number): MaybePromise<void>;
}

/**
 * What one attempt takes before it goes upstream. take() answers -1, or the
 * first thing without room, numbered in this order:
 *
 *   0 … counts.length-1      a request window (counted by one)
 *   counts.length            the concurrency slot
 *   counts.length+1+i        money line i (reserved `amount`)
 *
 * `forced` counters (an account's requests) are added to whatever they hold
 * and never refuse; nothing at all is taken when anything refuses.
 */
export interface Take {
  counts: readonly CountLine[];
  forced: readonly CountLine[];
  slot: { key: string; limit: number } | undefined;
  money: readonly MoneyLine[];
  amount: number;
}

/**
 * What a shared store adds to its health() on /readyz: where counters live and
 * whether that place answers. It stays `ok` while disconnected: every instance
 * shares the same Redis (or primary), so taking them out of rotation helps no
 * one, and requests with no budget or limit still flow.
 */
export interface SharedStoreHealth extends StoreHealth {
  store: "redis" | "primary";
  connected: boolean;
  /** What governed requests get while not connected. */
  whenDown?: "reject" | "local";
}

/**
 * A counter of the embedded store. Lines carry a handle on theirs (`cell`),
 * trusted only while it is still this store's entry for that key: an entry
 * leaves its map only when a snapshot drops it as expired, which clears its
 * `owner`. With keys rotating, the map lookups this saves (a hash, a bucket and
 * an entry, cold in cache) were most of the store's time per request.
 */
interface Cell {
  key: string;
  owner: MemoryStore | undefined;
  expiresAt: number;
}

interface Count extends Cell {
  count: number;
}

interface Money extends Cell {
  spent: number;
  reserved: number;
}

/** How the embedded store's snapshots are going, for /readyz. */
export interface StoreHealth {
  ok: boolean;
  /** The snapshot file, or null for a store kept in memory only. */
  path: string | null;
  /** The last failure's cause while failing (e.g. `ENOSPC: no space left on device`). */
  error?: string;
  /** Failures in a row, and since when (ISO time). */
  failures?: number;
  since?: string;
  /** When the last snapshot was written (ISO time), if one was. */
  lastSnapshotAt?: string;
}

/** A store's health when it reports one (the embedded store does; the frozen interface does not ask for it). */
export function storeHealth(store: StateStore): StoreHealth | undefined {
  const health = (store as { health?: () => StoreHealth }).health;
  return typeof health === "function" ? health.call(store) : undefined;
}

/** The longest wait between retries of a failing snapshot. */
const MAX_BACKOFF_MS = 30_000;

/**
 * Counters the timer's snapshot serializes per turn of the event loop (about
 * 1 ms of work): at 10,000 keys a whole snapshot is 40,000 counters and 2 MB,
 * which held the loop 16-30 ms when done at once.
 */
const SLICE = 2000;

/**
 * The embedded store: counters in memory, snapshotted to `dir/state.json`
 * every `intervalMs` (write to a temporary file, then rename, so a crash
 * leaves the previous snapshot whole). Reservations are not snapshotted:
 * after a restart nothing is in flight.
 *
 * The timer's snapshot is taken in slices between requests and written
 * asynchronously, so it never holds the event loop for long. Each counter is
 * read once, at or after the tick that started the snapshot, so a snapshot
 * holds at least everything settled before that tick. `close()` and
 * `snapshot()` write at once; a later snapshot is never replaced by an earlier
 * one still being written.
 *
 * The dir is this process's alone (state-lock.ts); a snapshot on disk is
 * checked whole before it is trusted (snapshot-file.ts). A snapshot that
 * cannot be written never throws out of the timer: the cause is logged once,
 * retried with backoff, and shown by `health()` (on /readyz) until one works.
 */
export class MemoryStore implements StateStore {
  readonly #money = new Map<string, Money>();
  readonly #counts = new Map<string, Count>();
  /** settle's counters per array of keys (see #moneyAt). */
  readonly #settling = new WeakMap<readonly string[], readonly (Money | undefined)[]>();
  /** reserve's and count's entries found by the check pass, cleared slot by slot before they return (setting `length` costs a builtin call). */
  readonly #found: (Money | Count | undefined)[] = [];
  readonly #file: string | null;
  #timer: NodeJS.Timeout | undefined;
  #lock: StateLock | undefined;
  #failure: { cause: string; count: number; since: number; retryAt: number } | undefined;
  #lastSnapshotAt: number | undefined;
  /** Snapshots started, and the latest one renamed into place (a sequence number each). */
  #started = 0;
  #renamed = 0;
  /** The timer's snapshot while it is being written. */
  #pending: Promise<boolean> | undefined;

  constructor(
    private readonly dir: string | null = null,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
    /** Snapshot failures and recoveries, as log events (log.ts). */
    private readonly log: (line: string, failing: boolean) => void = (line, failing) =>
      event(failing ? "snapshot_failed" : "snapshot_recovered", { dir }, line, failing ? "error" : "info"),
  ) {
    this.#file = dir === null ? null : join(dir, "state.json");
    if (dir !== null) {
      this.#lock = lockStateDir(dir);
      try {
        this.#restore();
      } catch (e) {
        this.#lock.release();
        throw e;
      }
      this.#timer = setInterval(() => this.#tick(), intervalMs);
      this.#timer.unref();
    }
  }

  reserve(lines: readonly MoneyLine[], amount: number): number {
    // One lookup per line: the check pass keeps what it found for the update pass (nothing runs between them).
    const found = this.#found;
    for (let i = 0; i < lines.length; i++) {
      const m = this.#cellOf(lines[i], this.#money);
      if ((m === undefined ? 0 : m.spent + m.reserved) + amount > lines[i].cap) return forget(found, i);
      found[i] = m;
    }
    for (let i = 0; i < lines.length; i++) {
      let m = found[i] as Money | undefined;
      found[i] = undefined;
      if (m === undefined) {
        const line = lines[i];
        this.#money.set(line.key, (m = { key: line.key, owner: this, expiresAt: line.expiresAt, spent: 0, reserved: 0 }));
        line.cell = m;
      }
      m.reserved += amount;
    }
    return -1;
  }

  settle(keys: readonly string[], reserved: number, actual: number): void {
    for (const m of this.#moneyAt(keys)) {
      if (m === undefined) continue;
      m.reserved -= reserved;
      m.spent += actual;
    }
  }

  cancel(keys: readonly string[], reserved: number): void {
    this.settle(keys, reserved, 0);
  }

  count(lines: readonly CountLine[], cost: number, force = false): number {
    const found = this.#found;
    for (let i = 0; i < lines.length; i++) {
      const c = this.#cellOf(lines[i], this.#counts);
      if (!force && (c?.count ?? 0) + cost > lines[i].limit) return forget(found, i);
      found[i] = c;
    }
    for (let i = 0; i < lines.length; i++) {
      const c = found[i] as Count | undefined;
      found[i] = undefined;
      if (c !== undefined) c.count += cost;
      else {
        const line = lines[i];
        const made: Count = { key: line.key, owner: this, expiresAt: line.expiresAt, count: cost };
        this.#counts.set(line.key, made);
        line.cell = made;
      }
    }
    return -1;
  }

  /** The counter of `line` in `map`: through its handle while that is current, else by key (and the handle kept). */
  #cellOf<T extends Cell>(line: MoneyLine | CountLine, map: Map<string, T>): T | undefined {
    const held = line.cell as T | undefined;
    if (held !== undefined && held.owner === this && held.key === line.key) return held;
    const found = map.get(line.key);
    if (found !== undefined) line.cell = found;
    return found;
  }

  /**
   * The money counters of `keys` (undefined where there is none). Settlement
   * passes the same array of keys its reservation was made on, so what was
   * found is kept per array and used while every entry is still current.
   */
  #moneyAt(keys: readonly string[]): readonly (Money | undefined)[] {
    const held = this.#settling.get(keys);
    if (held !== undefined && this.#current(held, keys)) return held;
    const found = keys.map((k) => this.#money.get(k));
    this.#settling.set(keys, found);
    return found;
  }

  #current(cells: readonly (Money | undefined)[], keys: readonly string[]): boolean {
    if (cells.length !== keys.length) return false;
    for (let i = 0; i < cells.length; i++) {
      const m = cells[i];
      if (m === undefined || m.owner !== this || m.key !== keys[i]) return false;
    }
    return true;
  }

  money(key: string): { spent: number; reserved: number } {
    const m = this.#money.get(key);
    return { spent: m?.spent ?? 0, reserved: m?.reserved ?? 0 };
  }

  counter(key: string): number {
    return this.#counts.get(key)?.count ?? 0;
  }

  health(): StoreHealth {
    const last = this.#lastSnapshotAt === undefined ? {} : { lastSnapshotAt: new Date(this.#lastSnapshotAt).toISOString() };
    const f = this.#failure;
    if (f === undefined) return { ok: true, path: this.#file, ...last };
    return { ok: false, path: this.#file, error: f.cause, failures: f.count, since: new Date(f.since).toISOString(), ...last };
  }

  /** Writes every live counter atomically, at once; expired ones are dropped first. Throws when the write fails. */
  snapshot(): void {
    if (this.dir === null) return;
    const now = this.now();
    const seq = ++this.#started;
    const text = [...this.#pieces(now)].join("");
    mkdirSync(this.dir, { recursive: true });
    // Not the temporary file of a sliced snapshot still being written.
    const tmp = `${this.#file!}.${process.pid}${this.#pending === undefined ? "" : ".now"}.tmp`;
    writeFileSync(tmp, text);
    this.#rename(tmp, seq, now);
  }

  /**
   * The timer's snapshot: SLICE counters serialized at a time, each piece
   * written without blocking the event loop, then renamed into place unless a later
   * snapshot already was (or the store closed meanwhile). False when it failed.
   */
  async #snapshotInSlices(now: number): Promise<boolean> {
    const seq = ++this.#started;
    const file = this.#file!;
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      mkdirSync(this.dir!, { recursive: true });
      // Each piece is written before the next is made: other work runs while it is written, and only one piece is held.
      const handle = await open(tmp, "w");
      try {
        for (const piece of this.#pieces(now)) await handle.write(piece);
      } finally {
        await handle.close();
      }
      if (this.#timer === undefined || this.#renamed > seq) {
        rmSync(tmp, { force: true });
        return true;
      }
      this.#rename(tmp, seq, now);
    } catch (e) {
      // After close() its own snapshot is what counts; this one's failure is no news.
      if (this.#timer !== undefined) this.#failed(e, this.now());
      return false;
    }
    this.#recovered();
    return true;
  }

  /** Renames a written snapshot into place, synchronously: nothing else can rename in between. */
  #rename(tmp: string, seq: number, startedAt: number): void {
    renameSync(tmp, this.#file!);
    this.#renamed = seq;
    this.#lock?.touch();
    this.#lastSnapshotAt = startedAt;
  }

  /** The snapshot's JSON text in pieces of up to SLICE counters. */
  *#pieces(now: number): Generator<string> {
    let text = "";
    let n = 0;
    for (const part of this.#parts(now)) {
      text += part;
      if (++n % SLICE === 0) {
        yield text;
        text = "";
      }
    }
    yield text;
  }

  /** The snapshot's JSON text, a counter at a time, read as it is reached; expired counters are dropped as they are met. */
  *#parts(now: number): Generator<string> {
    yield `{"version":${SNAPSHOT_VERSION},"money":[`;
    yield* live(this.#money, (m) => m.expiresAt <= now && m.reserved === 0, (m) => m.spent);
    yield `],"counts":[`;
    yield* live(this.#counts, (c) => c.expiresAt <= now, (c) => c.count);
    yield "]}";
  }

  /** One timer tick: a snapshot, unless a failing one is waiting out its backoff. Never throws. */
  #tick(): void {
    const now = this.now();
    if (this.#failure !== undefined && now < this.#failure.retryAt) return;
    // Up to a slice, at once: the write is as short as one slice, and nothing is left half-written between turns.
    if (this.#money.size + this.#counts.size <= SLICE && this.#pending === undefined) this.#trySnapshot(now);
    else void this.writeSnapshot();
  }

  /**
   * The timer's snapshot, taken now (what each tick does): resolves true once
   * written, false when it failed (logged, and shown by `health()`). While one
   * is still being written, a slow disk, this is that one.
   */
  writeSnapshot(): Promise<boolean> {
    if (this.dir === null) return Promise.resolve(true);
    this.#pending ??= this.#snapshotInSlices(this.now()).finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  #trySnapshot(now: number): boolean {
    try {
      this.snapshot();
    } catch (e) {
      this.#failed(e, now);
      return false;
    }
    this.#recovered();
    return true;
  }

  #failed(e: unknown, now: number): void {
    const cause = describeError(e);
    const f = this.#failure;
    // Logged once per cause: a full disk is one line, not one a second.
    if (f?.cause !== cause) this.log(`cannot write the state snapshot ${this.#file}: ${cause}; budgets keep counting in memory, retrying with backoff`, true);
    const count = (f?.count ?? 0) + 1;
    const backoff = Math.min(this.intervalMs * 2 ** Math.min(count, 16), MAX_BACKOFF_MS);
    this.#failure = { cause, count, since: f?.since ?? now, retryAt: now + backoff };
  }

  #recovered(): void {
    if (this.#failure !== undefined) {
      this.log(`the state snapshot ${this.#file} is written again (after ${this.#failure.count} failed attempts)`, false);
      this.#failure = undefined;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.dir !== null) this.#trySnapshot(this.now());
    this.#lock?.release();
    this.#lock = undefined;
  }

  #restore(): void {
    const file = this.#file!;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // first start
      throw new StartupError(`cannot read the state snapshot ${file}: ${(e as Error).message}`);
    }
    // Spend caps rest on these counters, so a snapshot that is wrong anywhere stops start-up rather than resetting them.
    const data = parseSnapshot(text, file);
    const now = this.now();
    for (const [key, spent, expiresAt] of data.money) if (expiresAt > now) this.#money.set(key, { key, owner: this, expiresAt, spent, reserved: 0 });
    for (const [key, count, expiresAt] of data.counts) if (expiresAt > now) this.#counts.set(key, { key, owner: this, expiresAt, count });
  }
}

/** Clears the first `n` slots of a check pass's finds; returns `n`, the line that refused. */
function forget(found: unknown[], n: number): number {
  for (let i = 0; i < n; i++) found[i] = undefined;
  return n;
}

/** `[key, value, expiresAt]` of each entry of `map`, comma-separated, deleting those that are `gone` (and so every handle on them). */
function* live<T extends Cell>(map: Map<string, T>, gone: (v: T) => boolean, value: (v: T) => number): Generator<string> {
  let first = true;
  for (const [k, v] of map) {
    if (gone(v)) {
      map.delete(k);
      v.owner = undefined;
      continue;
    }
    yield `${first ? "" : ","}[${JSON.stringify(k)},${number(value(v))},${number(v.expiresAt)}]`;
    first = false;
  }
}

/** A number as JSON writes it (a non-finite one as null, which the snapshot's check then refuses). */
function number(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
}

function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code !== undefined ? `${err.code}: ${err.message.replace(/^\w+: /, "")}` : String(err?.message ?? e);
}
