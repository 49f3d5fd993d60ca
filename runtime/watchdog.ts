import type { CallerSignal } from "./caller-signal.ts";

/**
 * One attempt's clock: until the first token it allows `firstTokenMs` (from
 * dispatch: response headers included), after it `stallMs` between chunks.
 * On expiry it aborts the attempt's signal, which ends the upstream request
 * and its body; `fired` says which limit it was. One timer per attempt,
 * refreshed per chunk (no allocation on the per-chunk path).
 */
export class Watchdog {
  fired: "first_token" | "stall" | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stallMs: number;
  #streaming = false;

  constructor(
    private readonly signal: CallerSignal,
    firstTokenMs: number,
    stallMs: number,
  ) {
    this.#stallMs = stallMs;
    if (Number.isFinite(firstTokenMs)) this.#timer = setTimeout(() => this.#fire("first_token"), Math.max(0, firstTokenMs));
  }

  /** The first token came: from now on the gaps between chunks are what is timed. */
  firstToken(): void {
    if (this.#streaming) return;
    this.#streaming = true;
    clearTimeout(this.#timer);
    this.#timer = Number.isFinite(this.#stallMs) ? setTimeout(() => this.#fire("stall"), this.#stallMs) : undefined;
  }

  /** A chunk came (or the caller drained what was written): the gap starts again. */
  tick(): void {
    if (!this.#streaming || this.fired !== undefined) return;
    if (this.#timer === undefined) this.#timer = Number.isFinite(this.#stallMs) ? setTimeout(() => this.#fire("stall"), this.#stallMs) : undefined;
    else this.#timer.refresh();
  }

  /** The caller is slow to read: that is not the upstream stalling, so the clock stops until it drains. */
  pause(): void {
    if (!this.#streaming) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(which: "first_token" | "stall"): void {
    this.fired = which;
    this.#timer = undefined;
    this.signal.abort();
  }
}
