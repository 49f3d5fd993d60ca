import { nearCap, sliceSize } from "./lease-slice.ts";
import type { MoneyLine } from "./state-store.ts";

// Budget leasing, this instance's side (state.redis.budget_leasing). Per
// budget line the instance holds a slice reserved in Redis under its lease;
// requests take their reservation from it here, with no round trip, and give
// back what they did not cost. Spend goes to Redis in periodic reports.
//
//   granted (reserved in Redis for this instance) = free + in flight + unreported
//
// Redis's spent + reserved therefore covers everything this instance has spent
// or may spend, so the cap holds while it lives; if it dies, what it had not
// reported is the overspend, bounded by its slices (they return after the TTL).

interface Slice {
  /** Reserved in Redis under this instance's slice lease, as far as it knows. */
  granted: number;
  /** Of granted, not taken by a request. Negative only if a request cost more than it reserved. */
  free: number;
  /** Taken by requests still running. */
  inflight: number;
  /** Of inflight, taken from a slice Redis has since lost: what they do not cost does not come back. */
  orphans: number;
  /** Spent by requests that ended, not yet written to Redis. */
  unreported: number;
  /** The budget was near its cap when last seen: free slice goes back at once. */
  near: boolean;
  /** The latest request's reservation here: what "near the cap" is measured in. */
  need: number;
  lastUse: number;
  /** The line's cap, as of the last grant. */
  cap: number;
  /** Grants sent and not answered yet. */
  granting: number;
  /** A grant failed: Redis may hold more than `granted`, to be set right by the next report. */
  unsure: boolean;
}

/** One line's part of a report: spend to write, free slice to give back, and the slice this instance keeps (-1 while a grant is on its way). */
export interface Report {
  key: string;
  spend: number;
  give: number;
  keep: number;
}

export class BudgetLeases {
  readonly #slices = new Map<string, Slice>();

  constructor(
    private readonly maxSlice: number,
    /** A slice unused this long goes back. */
    private readonly idleMs: number,
  ) {}

  /** Takes `amount` from every line's slice: -1, or the first line whose slice lacks it (then nothing is taken). */
  take(lines: readonly MoneyLine[], amount: number, now: number): number {
    for (let i = 0; i < lines.length; i++) {
      const s = this.#slices.get(lines[i].key);
      if (s === undefined || s.free < amount) return i;
    }
    for (const l of lines) {
      const s = this.#slices.get(l.key)!;
      s.free -= amount;
      s.inflight += amount;
      s.need = amount;
      s.lastUse = now;
    }
    return -1;
  }

  /** What to ask Redis for, per line: the slice to want and the least that will do (0 and 0 when its slice has enough). */
  asks(lines: readonly MoneyLine[], amount: number, instances: number, headroom: (line: MoneyLine) => number): { want: number; need: number }[] {
    return lines.map((l) => {
      const need = Math.max(0, amount - Math.max(0, this.#slices.get(l.key)?.free ?? 0));
      return need === 0 ? { want: 0, need: 0 } : { want: sliceSize(headroom(l), need, instances, this.maxSlice), need };
    });
  }

  /** A grant is sent for these lines (answered by grant(), or failed()). */
  granting(keys: readonly string[], now: number): void {
    for (const k of keys) this.#slice(k, now).granting++;
  }

  /** A grant got no answer, or a report did not land: Redis may hold more than `granted`, so the next report says what this instance holds. */
  failed(keys: readonly string[], granting: boolean): void {
    for (const k of keys) {
      const s = this.#slices.get(k);
      if (s === undefined) continue;
      if (granting) s.granting--;
      s.unsure = true;
    }
  }

  /** Redis granted `amount` more on `line` (0 when the grant was refused, or not asked for that line), and has `spent` and `reserved` now. */
  grant(line: MoneyLine, amount: number, spent: number, reserved: number, need: number, instances: number, now: number): void {
    const s = this.#slice(line.key, now);
    s.cap = line.cap;
    s.granting--;
    s.granted += amount;
    s.free += amount;
    s.need = need;
    s.near = nearCap(line.cap - spent - reserved, need, instances);
  }

  /** A request ends: its reservation comes back to the slices, its cost waits for the next report. True when a line is near its cap (report now). */
  settle(keys: readonly string[], reserved: number, actual: number, now: number): boolean {
    let near = false;
    for (const k of keys) {
      // A slice Redis has lost (lease lapsed) still reports the spend of requests it started.
      const s = this.#slice(k, now);
      s.inflight -= reserved;
      s.unreported += actual;
      if (s.orphans >= reserved) s.orphans -= reserved;
      else s.free += reserved - actual;
      near ||= s.near;
    }
    return near;
  }

  /**
   * What to write to Redis now, applied here at once: every line's unreported
   * spend, and its free slice when it is near the cap, idle, or `all` (closing).
   */
  reports(now: number, all = false): Report[] {
    const out: Report[] = [];
    for (const [key, s] of this.#slices) {
      const give = all || s.near || (s.inflight === 0 && now - s.lastUse > this.idleMs) ? Math.max(0, s.free) : 0;
      if (s.unreported === 0 && give === 0 && !(s.unsure && s.granting === 0)) continue;
      s.granted = Math.max(0, s.granted - s.unreported - give);
      out.push({ key, spend: s.unreported, give, keep: s.granting === 0 ? s.granted : -1 });
      if (s.granting === 0) s.unsure = false;
      s.free -= give;
      s.unreported = 0;
      if (s.inflight === 0 && s.free <= 0 && s.granting === 0) this.#slices.delete(key);
    }
    return out;
  }

  /** After a report: Redis held `held` before it, and has `spent` and `reserved` now. Less held than was reported means the lease lapsed. */
  reported(r: Report, held: number, spent: number, reserved: number, instances: number): void {
    const s = this.#slices.get(r.key);
    if (s === undefined) return;
    if (held < r.spend + r.give) {
      s.granted = 0;
      s.free = Math.min(0, s.free);
      s.orphans = s.inflight;
    }
    s.near = nearCap(s.cap - spent - reserved, s.need, instances);
  }

  /** Requests that may be taken from local slices right now, for tests and metrics: the sum of free slices. */
  free(key: string): number {
    return this.#slices.get(key)?.free ?? 0;
  }

  #slice(key: string, now: number): Slice {
    let s = this.#slices.get(key);
    if (s === undefined) this.#slices.set(key, (s = { granted: 0, free: 0, inflight: 0, orphans: 0, unreported: 0, near: false, need: 0, lastUse: now, cap: 0, granting: 0, unsure: false }));
    return s;
  }
}
