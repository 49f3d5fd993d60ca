import type { Worker } from "node:cluster";
import { HttpError } from "./errors.ts";
import type { CountLine, MoneyLine, StateStore, SharedStoreHealth, Take } from "./state-store.ts";
import { MemoryStore } from "./state-store.ts";
import { StoreMirror } from "./store-mirror.ts";

// `--workers N` without Redis: the primary process owns the embedded store
// (and its snapshots); workers ask it over the cluster IPC channel. Every
// call is one message and one answer, run by the primary in arrival order, so
// the calls of all workers are as atomic as one process's.
//
//   worker ──{ gwcState: id, op, args }──► primary: MemoryStore + holdings per worker
//          ◄──{ gwcState: id, result, values }──┘
//
// The primary remembers what each worker holds (reservations, concurrency
// slots) and returns it when that worker dies, as a Redis lease would.

type Op = "take" | "reserve" | "settle" | "cancel" | "count" | "acquire" | "release" | "read";

interface Request {
  gwcState: number;
  op: Op;
  args: unknown[];
}

interface Answer {
  gwcState: number;
  result: number | boolean | null;
  /** Money as [key, spent, reserved], counts as [key, count], of every key the call touched. */
  money: [string, number, number][];
  counts: [string, number][];
}

const REFRESH_MS = 250;
const ASK_TIMEOUT_MS = 2000;
const NOTHING = () => {};

/** The worker's side: every call is a message to the primary; the synchronous views read a mirror. */
export class IpcStore implements StateStore {
  readonly #waiting = new Map<number, (a: Answer) => void>();
  readonly #mirror = new StoreMirror();
  #next = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly channel: NodeJS.Process = process) {
    channel.on("message", (m: Answer) => {
      if (typeof m?.gwcState !== "number") return;
      const done = this.#waiting.get(m.gwcState);
      this.#waiting.delete(m.gwcState);
      for (const [k, s, r] of m.money) this.#mirror.setMoney(k, s, r);
      for (const [k, c] of m.counts) this.#mirror.setCount(k, c);
      done?.(m);
    });
    this.#timer = setInterval(() => {
      const { money, counts } = this.#mirror.watched();
      if (money.length + counts.length > 0) this.#ask("read", [money, counts]).catch(() => {});
    }, REFRESH_MS);
    this.#timer.unref();
  }

  /** A request's windows, slot, budgets and account count: one message, run whole by the primary. */
  take(t: Take): Promise<number> {
    return this.#ask("take", [t]).then((a) => a.result as number);
  }

  reserve(lines: readonly MoneyLine[], amount: number): Promise<number> {
    return this.#ask("reserve", [lines, amount]).then((a) => a.result as number);
  }

  // Settling never fails the request it settles: a primary that does not answer has lost its state anyway.
  settle(keys: readonly string[], reserved: number, actual: number): Promise<void> {
    return this.#ask("settle", [keys, reserved, actual]).then(NOTHING, NOTHING);
  }

  settleCounting(keys: readonly string[], reserved: number, actual: number, lines: readonly CountLine[], cost: number): Promise<void> {
    return this.#ask("settle", [keys, reserved, actual, lines, cost]).then(NOTHING, NOTHING);
  }

  cancel(keys: readonly string[], reserved: number): Promise<void> {
    return this.#ask("cancel", [keys, reserved]).then(NOTHING, NOTHING);
  }

  count(lines: readonly CountLine[], cost: number, force = false): Promise<number> {
    const asked = this.#ask("count", [lines, cost, force]).then((a) => a.result as number);
    // A forced count (tokens, an account's requests) comes after the answer: it never fails the request.
    return force ? asked.catch(() => -1) : asked;
  }

  acquire(key: string, limit: number): Promise<boolean> {
    return this.#ask("acquire", [key, limit]).then((a) => a.result as boolean);
  }

  release(key: string): Promise<void> {
    return this.#ask("release", [key]).then(NOTHING, NOTHING);
  }

  money(key: string): { spent: number; reserved: number } {
    return this.#mirror.money(key);
  }

  counter(key: string): number {
    return this.#mirror.counter(key);
  }

  health(): SharedStoreHealth {
    return { ok: true, path: null, store: "primary", connected: this.channel.connected === true };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** One call to the primary; a primary that does not answer within ASK_TIMEOUT_MS fails it with 503, never a hang. */
  #ask(op: Op, args: unknown[]): Promise<Answer> {
    const id = ++this.#next;
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        fail(new HttpError(503, "server_error", "state_unavailable", "The gateway's primary process, which keeps budgets and rate limits, did not answer. Retry shortly.", { "retry-after": "1" }, null, "state_unavailable"));
      }, ASK_TIMEOUT_MS);
      this.#waiting.set(id, (a) => {
        clearTimeout(timer);
        ok(a);
      });
      if (this.channel.connected !== true) return;
      this.channel.send!({ gwcState: id, op, args } satisfies Request);
    });
  }
}

/** The primary's side: runs workers' calls on the one embedded store and tracks what each holds. */
export class StateHost {
  /** Per worker: what it holds, as [signature → {keys, amount, count}]; concurrency slots under `k` + key. */
  readonly #held = new Map<number, Map<string, { keys: readonly string[]; amount: number; n: number }>>();
  readonly #slots = new Map<string, number>();

  constructor(readonly store: MemoryStore) {}

  attach(worker: Worker): void {
    const held = new Map<string, { keys: readonly string[]; amount: number; n: number }>();
    this.#held.set(worker.id, held);
    worker.on("message", (m: Request) => {
      if (typeof m?.gwcState !== "number") return;
      const answer = this.#run(held, m);
      if (worker.isConnected()) worker.send(answer);
    });
    worker.on("exit", () => this.#returnAll(worker.id));
  }

  #run(held: Map<string, { keys: readonly string[]; amount: number; n: number }>, m: Request): Answer {
    const s = this.store;
    const a: Answer = { gwcState: m.gwcState, result: null, money: [], counts: [] };
    const moneyOf = (keys: readonly string[]) => (a.money = keys.map((k) => [k, s.money(k).spent, s.money(k).reserved]));
    switch (m.op) {
      case "reserve": {
        const [lines, amount] = m.args as [MoneyLine[], number];
        a.result = s.reserve(lines, amount);
        const keys = lines.map((l) => l.key);
        if (a.result === -1) hold(held, keys, amount, 1);
        moneyOf(keys);
        break;
      }
      case "take": {
        const [t] = m.args as [Take];
        a.result = this.#take(held, t);
        moneyOf(t.money.map((l) => l.key));
        a.counts = [...t.counts, ...t.forced].map((l) => [l.key, s.counter(l.key)]);
        if (t.slot !== undefined) a.counts.push([t.slot.key, this.#slots.get(t.slot.key) ?? 0]);
        break;
      }
      case "settle":
      case "cancel": {
        const [keys, reserved, actual, lines, cost] = m.args as [string[], number, number | undefined, CountLine[] | undefined, number | undefined];
        s.settle(keys, reserved, actual ?? 0);
        hold(held, keys, reserved, -1);
        moneyOf(keys);
        if (lines !== undefined && lines.length > 0) {
          s.count(lines, cost!, true);
          a.counts = lines.map((l) => [l.key, s.counter(l.key)]);
        }
        break;
      }
      case "count": {
        const [lines, cost, force] = m.args as [CountLine[], number, boolean];
        a.result = s.count(lines, cost, force);
        a.counts = lines.map((l) => [l.key, s.counter(l.key)]);
        break;
      }
      case "acquire": {
        const [key, limit] = m.args as [string, number];
        const n = this.#slots.get(key) ?? 0;
        a.result = n < limit;
        if (a.result) {
          this.#slots.set(key, n + 1);
          hold(held, [`k\u0000${key}`], 0, 1);
        }
        a.counts = [[key, this.#slots.get(key) ?? 0]];
        break;
      }
      case "release": {
        const [key] = m.args as [string];
        if (hold(held, [`k\u0000${key}`], 0, -1)) this.#slots.set(key, (this.#slots.get(key) ?? 1) - 1);
        a.counts = [[key, this.#slots.get(key) ?? 0]];
        break;
      }
      case "read": {
        const [money, counts] = m.args as [string[], string[]];
        moneyOf(money);
        a.counts = counts.map((k) => [k, this.#slots.get(k) ?? s.counter(k)]);
        break;
      }
    }
    return a;
  }

  /** A whole take on the embedded store (see state-store.ts Take): what a later step refuses undoes the earlier ones. */
  #take(held: Map<string, { keys: readonly string[]; amount: number; n: number }>, t: Take): number {
    const s = this.store;
    if (t.counts.length > 0) {
      const c = s.count(t.counts, 1);
      if (c >= 0) return c;
    }
    const undo = (refused: number) => {
      if (t.counts.length > 0) s.count(t.counts, -1, true);
      return refused;
    };
    const slot = t.slot;
    if (slot !== undefined && (this.#slots.get(slot.key) ?? 0) >= slot.limit) return undo(t.counts.length);
    if (t.money.length > 0) {
      const r = s.reserve(t.money, t.amount);
      if (r >= 0) return undo(t.counts.length + 1 + r);
      hold(held, t.money.map((l) => l.key), t.amount, 1);
    }
    if (slot !== undefined) {
      this.#slots.set(slot.key, (this.#slots.get(slot.key) ?? 0) + 1);
      hold(held, [`k\u0000${slot.key}`], 0, 1);
    }
    if (t.forced.length > 0) s.count(t.forced, 1, true);
    return -1;
  }

  /** A worker died: its reservations and slots return, as its Redis lease would have. */
  #returnAll(worker: number): void {
    const held = this.#held.get(worker);
    this.#held.delete(worker);
    for (const h of held?.values() ?? []) {
      for (let i = 0; i < h.n; i++) {
        if (h.keys[0]?.startsWith("k\u0000")) {
          const key = h.keys[0].slice(2);
          this.#slots.set(key, (this.#slots.get(key) ?? 1) - 1);
        } else {
          this.store.cancel(h.keys, h.amount);
        }
      }
    }
  }
}

/** Adds `n` (±1) holdings of (keys, amount); false when releasing one that is not held. */
function hold(held: Map<string, { keys: readonly string[]; amount: number; n: number }>, keys: readonly string[], amount: number, n: number): boolean {
  const sig = `${amount}\u0000${keys.join("\u0000")}`;
  const h = held.get(sig);
  if (n > 0) {
    if (h === undefined) held.set(sig, { keys, amount, n });
    else h.n += n;
    return true;
  }
  if (h === undefined) return false;
  if (--h.n === 0) held.delete(sig);
  return true;
}
