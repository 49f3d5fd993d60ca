// What the dashboard shows of the last minutes, kept in bounded memory: a ring
// of the last requests, and 10-second buckets for the last 15 minutes. Every
// number is read from the request record (runtime/request-record.ts), the same
// source the metrics and the access log use. Keys of every map are configured
// ids (routes, accounts) or error_type values, so memory is bounded by the config.
//
//   buckets: [ b0 b1 … b89 ]   ring, BUCKET_MS each; bucket i covers
//            t ∈ [start_i, start_i + BUCKET_MS); a stale slot is reset on reuse
import type { ErrorType } from "./error-type.ts";
import type { RequestRecord } from "./request-record.ts";

export const BUCKET_MS = 10_000;
export const BUCKETS = 90; // 15 minutes
export const RECENT = 200;
/** Live shares and per-account figures cover this many recent buckets (5 minutes). */
export const WINDOW_BUCKETS = 30;

/** Log-scale latency histogram: bin i holds durations up to EDGES[i] ms. */
const EDGES = Array.from({ length: 32 }, (_, i) => Math.round(2 ** (i / 2)));

export class Histogram {
  readonly bins = new Uint32Array(EDGES.length + 1);
  count = 0;

  add(ms: number): void {
    let i = 0;
    while (i < EDGES.length && ms > EDGES[i]) i++;
    this.bins[i]++;
    this.count++;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < this.bins.length; i++) this.bins[i] += other.bins[i];
    this.count += other.count;
  }

  /** The upper edge of the bin holding quantile q (ms); null when empty. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    let seen = 0;
    const rank = Math.ceil(q * this.count);
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i];
      if (seen >= rank) return i < EDGES.length ? EDGES[i] : Infinity;
    }
    return null;
  }
}

export interface AccountFigures {
  attempts: number;
  ok: number;
  errors: Map<ErrorType, number>;
  latency: Histogram;
  ttft: Histogram;
}

interface Bucket {
  start: number;
  requests: number;
  errors: Map<ErrorType, number>;
  latency: Histogram;
  spendNano: number;
  accounts: Map<string, AccountFigures>;
  /** route → account → requests it served. */
  served: Map<string, Map<string, number>>;
}

export interface RecentRequest {
  id: string;
  time: number;
  status: number;
  model: string | null;
  route: string | null;
  keyId: string | null;
  account: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  costUsd: number | null;
  ms: number;
  ttftMs: number | null;
  errorType: ErrorType | null;
  attempts: { account: string; status: number | null; errorType: ErrorType | null; ms: number }[];
}

export interface SeriesPoint {
  t: number;
  requests: number;
  errors: Partial<Record<ErrorType, number>>;
  p95Ms: number | null;
  spendUsd: number;
}

function emptyFigures(): AccountFigures {
  return { attempts: 0, ok: 0, errors: new Map(), latency: new Histogram(), ttft: new Histogram() };
}

export class LiveStats {
  readonly #buckets: Bucket[] = [];
  readonly #recent: (RecentRequest | undefined)[] = new Array(RECENT);
  #next = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A request observer: one record in, a few counters up. Only model requests count (not health checks, not the dashboard's own polls). */
  observe = (r: RequestRecord): void => {
    if (r.operation === "other") return;
    const b = this.#bucket(r.start);
    b.requests++;
    if (r.errorType !== null) b.errors.set(r.errorType, (b.errors.get(r.errorType) ?? 0) + 1);
    b.latency.add(r.durationMs);
    if (r.costNanoUsd !== null) b.spendNano += r.costNanoUsd;
    for (const a of r.attempts) {
      let f = b.accounts.get(a.account);
      if (f === undefined) b.accounts.set(a.account, (f = emptyFigures()));
      f.attempts++;
      if (a.errorType === null) {
        f.ok++;
        f.latency.add(a.ms);
        if (r.ttftMs !== null && a.account === r.account) f.ttft.add(r.ttftMs);
      } else {
        f.errors.set(a.errorType, (f.errors.get(a.errorType) ?? 0) + 1);
      }
    }
    if (r.route !== null && r.account !== null && r.status < 400) {
      let m = b.served.get(r.route);
      if (m === undefined) b.served.set(r.route, (m = new Map()));
      m.set(r.account, (m.get(r.account) ?? 0) + 1);
    }
    this.#recent[this.#next++ % RECENT] = {
      id: r.id,
      time: r.start,
      status: r.status,
      model: r.model,
      route: r.route,
      keyId: r.keyId,
      account: r.account,
      inputTokens: r.usage?.inputTokens ?? null,
      outputTokens: r.usage?.outputTokens ?? null,
      costUsd: r.costNanoUsd === null ? null : r.costNanoUsd / 1e9,
      ms: round(r.durationMs),
      ttftMs: r.ttftMs === null ? null : round(r.ttftMs),
      errorType: r.errorType,
      attempts: r.attempts.map((a) => ({ account: a.account, status: a.status, errorType: a.errorType, ms: round(a.ms) })),
    };
  };

  /** The last requests, newest first. */
  recent(): RecentRequest[] {
    const out: RecentRequest[] = [];
    for (let i = 1; i <= RECENT; i++) {
      const r = this.#recent[(this.#next - i + RECENT * 2) % RECENT];
      if (r === undefined || this.#next - i < 0) break;
      out.push(r);
    }
    return out;
  }

  /** One point per bucket for the last 15 minutes, oldest first; empty buckets included so charts keep time. */
  series(): SeriesPoint[] {
    const current = this.#startOf(this.now());
    const out: SeriesPoint[] = [];
    for (let t = current - (BUCKETS - 1) * BUCKET_MS; t <= current; t += BUCKET_MS) {
      const b = this.#live(t);
      out.push({
        t,
        requests: b?.requests ?? 0,
        errors: b === undefined ? {} : Object.fromEntries(b.errors),
        p95Ms: b?.latency.quantile(0.95) ?? null,
        spendUsd: (b?.spendNano ?? 0) / 1e9,
      });
    }
    return out;
  }

  /** Per account over the last WINDOW_BUCKETS buckets. */
  accounts(): Map<string, AccountFigures> {
    const out = new Map<string, AccountFigures>();
    for (const b of this.#window()) {
      for (const [id, f] of b.accounts) {
        let sum = out.get(id);
        if (sum === undefined) out.set(id, (sum = emptyFigures()));
        sum.attempts += f.attempts;
        sum.ok += f.ok;
        for (const [t, n] of f.errors) sum.errors.set(t, (sum.errors.get(t) ?? 0) + n);
        sum.latency.merge(f.latency);
        sum.ttft.merge(f.ttft);
      }
    }
    return out;
  }

  /** route → account → requests served, over the last WINDOW_BUCKETS buckets. */
  served(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    for (const b of this.#window()) {
      for (const [route, m] of b.served) {
        let sum = out.get(route);
        if (sum === undefined) out.set(route, (sum = new Map()));
        for (const [account, n] of m) sum.set(account, (sum.get(account) ?? 0) + n);
      }
    }
    return out;
  }

  *#window(): Generator<Bucket> {
    const current = this.#startOf(this.now());
    for (let i = 0; i < WINDOW_BUCKETS; i++) {
      const b = this.#live(current - i * BUCKET_MS);
      if (b !== undefined) yield b;
    }
  }

  #startOf(t: number): number {
    return t - (t % BUCKET_MS);
  }

  #live(start: number): Bucket | undefined {
    const b = this.#buckets[(start / BUCKET_MS) % BUCKETS];
    return b !== undefined && b.start === start ? b : undefined;
  }

  #bucket(t: number): Bucket {
    const start = this.#startOf(t);
    const slot = (start / BUCKET_MS) % BUCKETS;
    let b = this.#buckets[slot];
    if (b === undefined || b.start !== start) {
      b = { start, requests: 0, errors: new Map(), latency: new Histogram(), spendNano: 0, accounts: new Map(), served: new Map() };
      this.#buckets[slot] = b;
    }
    return b;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
