/** Ticks (of the owner's refresh) a key stays watched after it was last read. */
const WATCH_TICKS = 40;
/** Ticks a value is kept after it was last read or written. */
const KEEP_TICKS = 240;

/**
 * A remote store's counters as last seen, for the synchronous views the
 * StateStore interface has (`money`, `counter`: rate-limit headers, the
 * token pre-check, /v1/usage). Every call's answer writes into it; keys read
 * lately are listed by `watched()` so the owner can read them back, so each
 * instance also sees what the others did within one refresh.
 */
export class StoreMirror {
  readonly #money = new Map<string, { spent: number; reserved: number; tick: number }>();
  readonly #counts = new Map<string, { count: number; tick: number }>();
  /** Key → the tick it was last read at; money keys and counter keys apart. */
  readonly #readMoney = new Map<string, number>();
  readonly #readCounts = new Map<string, number>();
  #tick = 0;

  money(key: string): { spent: number; reserved: number } {
    this.#readMoney.set(key, this.#tick);
    const m = this.#money.get(key);
    return m === undefined ? { spent: 0, reserved: 0 } : { spent: m.spent, reserved: m.reserved };
  }

  counter(key: string): number {
    this.#readCounts.set(key, this.#tick);
    return this.#counts.get(key)?.count ?? 0;
  }

  /** Whether a value was ever seen for this key (a decision on an unseen one would be a guess). */
  knowsMoney(key: string): boolean {
    return this.#money.has(key);
  }

  knowsCount(key: string): boolean {
    return this.#counts.has(key);
  }

  setMoney(key: string, spent: number, reserved: number): void {
    this.#money.set(key, { spent, reserved, tick: this.#tick });
  }

  setCount(key: string, count: number): void {
    this.#counts.set(key, { count, tick: this.#tick });
  }

  /** The keys read lately (one tick passes per call); values untouched for long are forgotten. */
  watched(): { money: string[]; counts: string[] } {
    const tick = ++this.#tick;
    const live = (read: Map<string, number>) => {
      const keys: string[] = [];
      for (const [k, t] of read) {
        if (tick - t > WATCH_TICKS) read.delete(k);
        else keys.push(k);
      }
      return keys;
    };
    for (const map of [this.#money, this.#counts] as const) {
      for (const [k, v] of map) if (tick - v.tick > KEEP_TICKS && !this.#readMoney.has(k) && !this.#readCounts.has(k)) map.delete(k);
    }
    return { money: live(this.#readMoney), counts: live(this.#readCounts) };
  }
}
