// Wires metrics, the access log and traces to a runtime, from the plan and the
// environment: each is an observer of the RequestRecord (request-record.ts).
// start.ts calls this for the gateway process; tests call it on their own.
import type { Logger } from "pino";
import type { Gateway, Runtime } from "./gateway.ts";
import { accessLog } from "./log.ts";
import { GatewayMetrics } from "./metrics.ts";
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
  if (plan.observability.metrics) {
    const metrics = new GatewayMetrics(runtime, { current: options.current, perKey: plan.observability.perKeyMetrics });
    metrics.configLoaded(plan);
    runtime.metrics = metrics;
    runtime.observers.push(metrics.observe);
    registerStateStoreMetrics(metrics.registry, runtime.store);
  }
  if (plan.server.accessLog && options.logger !== undefined) runtime.observers.push(accessLog());
  const env = options.env ?? process.env;
  if (tracingConfigured(env)) {
    // Loaded only now: without the variables none of the OpenTelemetry SDK is evaluated.
    const { startTracing } = await import("./tracing.ts");
    const tracing = startTracing(env);
    runtime.tracing = tracing;
    runtime.observers.push((r) => tracing.observe(r));
  }
}

export function tracingConfigured(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== "true";
}
