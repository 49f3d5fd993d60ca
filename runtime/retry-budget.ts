// Envoy's retry budget, per account: retries may be at most `ratio` of the
// account's first attempts over the last RETRY_WINDOW_MS (plus one per window,
// so a lone request can still retry). A failing provider never gets a retry
// storm: its traffic stays within (1 + ratio) x its first attempts, plus one.
//
//   buckets (1 s each, ring of 10):  [f r][f r][f r] … [f r]
//   a bucket older than the window is reset before it is reused

export const RETRY_WINDOW_MS = 10_000;
const BUCKETS = 10;
const BUCKET_MS = RETRY_WINDOW_MS / BUCKETS;

export class RetryBudget {
  readonly #firsts = new Uint32Array(BUCKETS);
  readonly #retries = new Uint32Array(BUCKETS);
  readonly #epochs = new Float64Array(BUCKETS).fill(-1);

  #slot(now: number): number {
    const epoch = Math.floor(now / BUCKET_MS);
    const slot = epoch % BUCKETS;
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch;
      this.#firsts[slot] = 0;
      this.#retries[slot] = 0;
    }
    return slot;
  }

  /** A first attempt at this account. */
  first(now: number): void {
    this.#firsts[this.#slot(now)]++;
  }

  /** Whether one more retry fits the budget now. */
  allows(now: number, ratio: number): boolean {
    const { firsts, retries } = this.counts(now);
    return retries + 1 <= ratio * firsts + 1;
  }

  /** A retry at this account (call only when `allows`). */
  retry(now: number): void {
    this.#retries[this.#slot(now)]++;
  }

  /** First attempts and retries over the window ending now. */
  counts(now: number): { firsts: number; retries: number } {
    const epoch = Math.floor(now / BUCKET_MS);
    let firsts = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.#epochs[i] > epoch - BUCKETS) {
        firsts += this.#firsts[i];
        retries += this.#retries[i];
      }
    }
    return { firsts, retries };
  }
}
