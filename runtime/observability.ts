// Wires metrics, the access log and traces to a runtime, from the plan and the
// environment: each is an observer of the RequestRecord (request-record.ts).
// start.ts calls this for the gateway process; tests call it on their own.
import type { Logger } from "pino";
import type { Gateway, Runtime } from "./gateway.ts";
import { accessLog, event } from "./log.ts";
import { GatewayMetrics } from "./metrics.ts";
import type { RequestObserver, RequestRecord } from "./request-record.ts";
import { registerStateStoreMetrics } from "./state-store-metrics.ts";

export interface ObservabilityOptions {
  /** The gateway serving now (it changes on reload). */
  current: () => Gateway;
  /** The process's logger (log.ts `configureLog`); without one there is no access log. */
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

/**
 * Metrics and the access log as the plan asks, at once; tracing (when the
 * OTLP variables are set) once its SDK has loaded. Settings are read at
 * start: a reload changes the log level, not whether metrics are served.
 */
export async function installObservability(runtime: Runtime, options: ObservabilityOptions): Promise<void> {
  const plan = options.current().plan;
  const batch = new ObserverBatch();
  if (plan.observability.metrics) {
    const metrics = new GatewayMetrics(runtime, { current: options.current, perKey: plan.observability.perKeyMetrics, settle: batch.flush });
    metrics.configLoaded(plan);
    runtime.metrics = metrics;
    batch.observers.push(metrics.observe);
    registerStateStoreMetrics(metrics.registry, runtime.store);
  }
  if (plan.server.accessLog && options.logger !== undefined) batch.observers.push(accessLog());
  const env = options.env ?? process.env;
  if (tracingConfigured(env)) {
    // Loaded only now: without the variables none of the OpenTelemetry SDK is evaluated.
    const { startTracing } = await import("./tracing.ts");
    const tracing = startTracing(env);
    runtime.tracing = tracing;
    batch.observers.push((r) => tracing.observe(r));
  }
  if (batch.observers.length > 0) runtime.observers.push(batch.observe);
}

/**
 * Runs metrics, the access log and traces over finished requests together,
 * once per turn of the event loop, instead of one request at a time on its
 * response's 'close'. The work is the same; done in a run it stays in the
 * CPU's caches (under load, a turn ends several responses), and it no longer
 * sits between a response and the next request on its connection.
 * bench/README.md, item 8, has the figures.
 *
 * Nothing is lost: a scrape of /metrics runs what is pending first, and so
 * does the process's exit, before the log's last flush (log.ts).
 */
class ObserverBatch {
  readonly observers: RequestObserver[] = [];
  #pending: RequestRecord[] = [];
  #scheduled = false;

  constructor() {
    // Before log.ts's own 'exit' listener, which writes out what is buffered.
    process.prependListener("exit", this.flush);
  }

  readonly observe = (record: RequestRecord): void => {
    this.#pending.push(record);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.flush);
    }
  };

  readonly flush = (): void => {
    this.#scheduled = false;
    const records = this.#pending;
    if (records.length === 0) return;
    this.#pending = [];
    for (const observe of this.observers) {
      for (const record of records) {
        try {
          observe(record);
        } catch (e) {
          event("observer_failed", { req_id: record.id, error: (e as Error)?.message ?? String(e) }, `an observer failed on request ${record.id}`, "error");
        }
      }
    }
  };
}

export function tracingConfigured(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== "true";
}
