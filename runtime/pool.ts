import { Pool } from "undici";
import type { CallerSignal } from "./caller-signal.ts";
import type { PlanPool } from "./plan.ts";

/** The pool could not take the request; `terminal` (policy `drop`) means do not fail over. */
export class PoolBusyError extends Error {
  constructor(
    readonly pool: string,
    readonly terminal: boolean,
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  grant: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One provider's own worker pool: an undici Pool of `maxConnections`, and in
 * front of it our bounded FIFO, so one slow provider fills only its own queue.
 *
 *   active < max        → go now (no allocation on this path)
 *   queue < queueSize   → wait in line for a connection
 *   both full           → drop: refuse the request outright
 *                         error: fail this attempt at once, so failover moves on
 *                         block: wait up to queue_timeout, then fail the attempt
 *
 * We never hand undici more than `maxConnections` requests, so its own
 * (unbounded) queue stays empty and ours is the only one.
 */
export class ProviderPool {
  readonly dispatcher: Pool;
  #active = 0;
  #waiting: (Waiter | undefined)[] = [];
  #head = 0;

  constructor(
    readonly config: PlanPool,
    origin: string,
  ) {
    this.dispatcher = new Pool(origin, {
      connections: config.maxConnections,
      pipelining: 1,
      headersTimeout: config.requestTimeoutMs,
      bodyTimeout: config.requestTimeoutMs,
    });
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#waiting.length - this.#head;
  }

  /** Resolves (or returns undefined at once) when the caller may send; call release() after. */
  acquire(signal: CallerSignal): Promise<void> | undefined {
    const c = this.config;
    if (this.#active < c.maxConnections) {
      this.#active++;
      return undefined;
    }
    const full = this.queued >= c.queueSize;
    if (full && c.backpressure === "drop") {
      throw new PoolBusyError(c.id, true, `the ${c.provider} pool is full (${c.maxConnections} connections busy, ${c.queueSize} queued) and drops new requests`);
    }
    if (full && c.backpressure === "error") {
      throw new PoolBusyError(c.id, false, `the ${c.provider} pool is full (${c.maxConnections} connections busy, ${c.queueSize} queued)`);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { grant: resolve, reject, timer: undefined };
      const leave = (e: Error) => {
        const i = this.#waiting.indexOf(waiter, this.#head);
        if (i >= 0) this.#waiting[i] = undefined;
        clearTimeout(waiter.timer);
        signal.removeListener("abort", onAbort);
        reject(e);
      };
      const onAbort = () => leave(new PoolBusyError(c.id, true, "the caller went away while queued"));
      if (full) {
        waiter.timer = setTimeout(
          () => leave(new PoolBusyError(c.id, false, `the ${c.provider} pool stayed full for ${c.queueTimeoutMs} ms`)),
          c.queueTimeoutMs,
        );
      }
      waiter.grant = () => {
        clearTimeout(waiter.timer);
        signal.removeListener("abort", onAbort);
        resolve();
      };
      signal.once("abort", onAbort);
      this.#waiting.push(waiter);
    });
  }

  /** Hands the connection slot to the next in line, or frees it. */
  release(): void {
    while (this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head];
      this.#waiting[this.#head++] = undefined;
      if (next !== undefined) {
        this.#compact();
        next.grant();
        return;
      }
    }
    this.#compact();
    this.#active--;
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  #compact(): void {
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
  }
}
