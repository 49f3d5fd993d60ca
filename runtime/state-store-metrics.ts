// The shared state store on /metrics: whether it answers, how long its calls
// take, how many fail, and what waits for it. Registered on the gateway's
// registry by observability.ts when the store is shared (Redis, or the
// primary of `--workers N`); the embedded store has its own health on /readyz.
//
//   gwc_state_store_up{store}                     1 connected, 0 not
//   gwc_state_store_local_mode                    1 while Redis is away and `when_down: local` decides here
//   gwc_state_store_operation_seconds{operation}  histogram of each Redis script (take, settle, …)
//   gwc_state_store_errors_total{operation}       scripts that failed or timed out
//   gwc_state_store_pending                       settles and counts waiting for Redis to return
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { RedisStore } from "./state-store-redis.ts";
import { storeHealth, type SharedStoreHealth, type StateStore } from "./state-store.ts";

/** A loopback round trip is ~0.1 ms; the command timeout is 1 s. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Adds the store's series to `registry`; nothing when the store is the embedded one. */
export function registerStateStoreMetrics(registry: Registry, store: StateStore | undefined): void {
  const health = store === undefined ? undefined : (storeHealth(store) as SharedStoreHealth | undefined);
  if (store === undefined || health?.store === undefined) return;
  const registers = [registry];
  const shared = () => storeHealth(store) as SharedStoreHealth;
  new Gauge({
    name: "gwc_state_store_up",
    help: "1 while the shared state store (Redis, or the primary process of --workers) answers, 0 while it does not.",
    labelNames: ["store"],
    registers,
    collect() {
      const h = shared();
      this.set({ store: h.store }, h.connected ? 1 : 0);
    },
  });
  if (!(store instanceof RedisStore)) return;
  new Gauge({
    name: "gwc_state_store_local_mode",
    help: "1 while Redis is away and governed requests are decided on this instance's local share (when_down: local).",
    registers,
    collect() {
      const h = shared();
      this.set(!h.connected && h.whenDown === "local" ? 1 : 0);
    },
  });
  new Gauge({
    name: "gwc_state_store_pending",
    help: "Settlements and forced counts waiting for Redis to come back.",
    registers,
    collect() {
      this.set(store.pending);
    },
  });
  const seconds = new Histogram({ name: "gwc_state_store_operation_seconds", help: "Duration of each Redis script, by operation.", labelNames: ["operation"], buckets: BUCKETS, registers });
  const errors = new Counter({ name: "gwc_state_store_errors_total", help: "Redis scripts that failed or timed out, by operation.", labelNames: ["operation"], registers });
  // Children bound once per operation: the per-call cost is one map lookup and one observe.
  const bound = new Map<string, { seconds: { observe(v: number): void }; errors: { inc(): void } }>();
  store.observe = (op, s, failed) => {
    let b = bound.get(op);
    if (b === undefined) bound.set(op, (b = { seconds: seconds.labels({ operation: op }), errors: errors.labels({ operation: op }) }));
    b.seconds.observe(s);
    if (failed) b.errors.inc();
  };
}
