import { event } from "./log.ts";

/**
 * A circuit breaker per account and upstream model (per account where routes
 * pass the caller's model through), keyed by ids so it survives reloads.
 *
 *   closed ──(5 consecutive failures, or ≥50% of the last 20 with ≥10 seen)──► open
 *   open ──(cooldown over)──► half-open: one probe request at a time
 *   half-open ──success──► closed, ramping: its share grows linearly over RAMP_MS
 *   half-open ──failure──► open again, cooldown doubled (up to MAX_COOLDOWN_MS)
 *
 * A rate limit is not a health failure. A lone 429 only moves its own request
 * on; RATE_LIMIT_STREAK 429s in a row (no answer between) hold the account out
 * until the last one's Retry-After, then it is back at its full share at once:
 * no cooldown, no ramp.
 *
 * "Down" feeds the router, which then picks from the precomputed table for
 * the healthy set, so the account's share moves to the others by weight.
 */
export const CONSECUTIVE_FAILURES = 5;
export const WINDOW = 20;
export const MIN_SAMPLES = 10;
export const BASE_COOLDOWN_MS = 5_000;
export const MAX_COOLDOWN_MS = 60_000;
export const RAMP_MS = 30_000;
export const RATE_LIMIT_STREAK = 2;
/** How long a streak of 429s without a Retry-After holds the account out. */
export const DEFAULT_RATE_LIMIT_MS = 1_000;

/** `gwc_breaker_state`'s values. */
export const BREAKER_CLOSED = 0;
export const BREAKER_HALF_OPEN = 1;
export const BREAKER_OPEN = 2;

/**
 * How many of a runtime's breakers are anything but closed and fully ramped.
 * While it is 0 no account can be down for health, so the router picks from
 * the route's own table without asking each member.
 */
export class HealthBoard {
  unsettled = 0;
}

export class AccountHealth {
  #consecutive = 0;
  #outcomes = new Uint8Array(WINDOW); // ring buffer: 1 = failure
  #seen = 0;
  #failuresInWindow = 0;
  #openUntil = 0;
  #cooldown = BASE_COOLDOWN_MS;
  #probing = false;
  #halfOpen = false;
  #rampStart = -Infinity;
  #limitedStreak = 0;
  #limitedUntil = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly board = new HealthBoard(),
    /** The account's id, for the breaker events in the log. */
    private readonly account = "",
  ) {}

  /** 0 closed (ramping included), 1 half-open (cooldown over, probing), 2 open; read at scrape time, no side effects. */
  get state(): number {
    if (this.#openUntil === 0) return BREAKER_CLOSED;
    return this.now() < this.#openUntil ? BREAKER_OPEN : BREAKER_HALF_OPEN;
  }

  /** Closed and fully ramped: never down. */
  get settled(): boolean {
    return this.#openUntil === 0 && this.#rampStart === -Infinity && this.#limitedUntil === 0;
  }

  /** Whether the router should leave this account out of a pick now. */
  isDown(random?: number): boolean {
    // The common case on the per-request path: closed and fully ramped, no clock read, no draw.
    if (this.settled) return false;
    const now = this.now();
    if (this.#limitedUntil > 0) {
      if (now < this.#limitedUntil) return true;
      // Its Retry-After is over: back at its full share at once.
      this.#limitedUntil = 0;
      if (this.settled) {
        this.board.unsettled--;
        return false;
      }
    }
    if (this.#openUntil > 0) {
      if (now < this.#openUntil) return true;
      // Cooldown over: half-open, one probe at a time.
      this.#halfOpen = true;
      return this.#probing;
    }
    const ramp = (now - this.#rampStart) / RAMP_MS;
    if (ramp >= 1) {
      this.#rampStart = -Infinity;
      this.board.unsettled--;
      return false;
    }
    return (random ?? Math.random()) > ramp;
  }

  /** Called when a request is about to go to this account. */
  attempt(): void {
    if (this.#halfOpen) this.#probing = true;
  }

  /** The upstream answered 429: not a health failure (see above). */
  rateLimited(retryAfterMs?: number): void {
    // A probe that met a rate limit found the provider alive: let the next request probe.
    if (this.#halfOpen) this.#probing = false;
    if (++this.#limitedStreak < RATE_LIMIT_STREAK) return;
    const settled = this.settled;
    this.#limitedUntil = Math.max(this.#limitedUntil, this.now() + (retryAfterMs ?? DEFAULT_RATE_LIMIT_MS));
    if (settled) this.board.unsettled++;
  }

  success(): void {
    this.#limitedStreak = 0;
    this.#record(0);
    this.#consecutive = 0;
    if (this.#halfOpen) {
      this.#halfOpen = false;
      this.#probing = false;
      this.#openUntil = 0;
      this.#cooldown = BASE_COOLDOWN_MS;
      this.#rampStart = this.now();
      // A fresh start: the failures that opened the circuit are history.
      this.#outcomes.fill(0);
      this.#seen = 0;
      this.#failuresInWindow = 0;
      event("breaker_closed", { account: this.account }, `account ${this.account} answered its probe: circuit closed, its share ramps back over ${RAMP_MS / 1000} s`);
    }
  }

  /** `retryAfterMs` from an upstream 429 keeps the account out for exactly that long. */
  failure(retryAfterMs?: number): void {
    const settled = this.settled;
    const wasOpen = this.state === BREAKER_OPEN;
    this.#trip(retryAfterMs);
    if (settled && !this.settled) this.board.unsettled++;
    if (!wasOpen && this.state === BREAKER_OPEN) {
      event("breaker_opened", { account: this.account, open_ms: this.#openUntil - this.now() }, `account ${this.account} failing: circuit open, no traffic for ${Math.ceil((this.#openUntil - this.now()) / 1000)} s`, "warn");
    }
  }

  #trip(retryAfterMs: number | undefined): void {
    this.#record(1);
    this.#consecutive++;
    const now = this.now();
    if (this.#halfOpen) {
      this.#probing = false;
      this.#cooldown = Math.min(this.#cooldown * 2, MAX_COOLDOWN_MS);
      this.#openUntil = now + Math.max(this.#cooldown, retryAfterMs ?? 0);
      return;
    }
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.#openUntil = Math.max(this.#openUntil, now + retryAfterMs);
      this.#halfOpen = false;
      return;
    }
    const rateTripped = this.#seen >= MIN_SAMPLES && this.#failuresInWindow * 2 >= Math.min(this.#seen, WINDOW);
    if (this.#consecutive >= CONSECUTIVE_FAILURES || rateTripped) {
      this.#openUntil = now + this.#cooldown;
      this.#rampStart = -Infinity;
    }
  }

  /** When an open circuit lets traffic through again (0 when closed). */
  get openUntil(): number {
    return this.#openUntil;
  }

  /** Until when a streak of 429s holds the account out (0 when none does). */
  get limitedUntil(): number {
    return this.#limitedUntil;
  }

  /** When this account takes traffic again (its probe, or the end of its rate limit); 0 when it does now. */
  get downUntil(): number {
    return Math.max(this.#openUntil, this.#limitedUntil);
  }

  #record(failed: 0 | 1): void {
    const slot = this.#seen % WINDOW;
    if (this.#seen >= WINDOW) this.#failuresInWindow -= this.#outcomes[slot];
    this.#outcomes[slot] = failed;
    this.#failuresInWindow += failed;
    this.#seen++;
  }
}
