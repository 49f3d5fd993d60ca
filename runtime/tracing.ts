// OTLP traces with the OpenTelemetry JS SDK. start.ts imports this module
// only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set, so without them none of the SDK is evaluated and the request path
// carries no tracing at all.
//
//   request arrives   begin(): the request span starts, child of the caller's
//                     W3C `traceparent` when it sent one
//   attempt sends     record.trace.traceparent(attempt): the attempt's span
//                     starts, and its context goes upstream as `traceparent`
//   response is over  observe(record): names, attributes and end times come
//                     from the RequestRecord, nothing is measured twice
//
// The exporter speaks OTLP/HTTP (JSON) and reads the standard OTEL_* variables
// (endpoint, headers, timeout); `OTEL_SERVICE_NAME` names the service (default gwc).
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Context, type Span, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { IncomingHttpHeaders } from "node:http";
import type { AttemptRecord, RequestRecord, TraceHandle } from "./request-record.ts";

/** What the runtime holds while tracing is on. */
export interface Tracing {
  /** A request arrived: start its span; the handle goes on its record. */
  begin(headers: IncomingHttpHeaders, record: RequestRecord): TraceHandle;
  /** The response is over: end the request's spans (a RequestObserver). */
  observe(record: RequestRecord): void;
  /** Sends what is buffered and stops (on drain). */
  shutdown(): Promise<void>;
}

/** The span state a request carries; the handle's one method is what the gateway calls. */
class RequestTrace implements TraceHandle {
  readonly attempts = new Map<AttemptRecord, { span: Span; start: number }>();

  constructor(
    private readonly tracer: Tracer,
    private readonly propagator: W3CTraceContextPropagator,
    readonly span: Span,
    readonly context: Context,
  ) {}

  traceparent(attempt: AttemptRecord): string | undefined {
    const start = Date.now();
    const span = this.tracer.startSpan(`attempt ${attempt.account}`, { kind: SpanKind.CLIENT, startTime: start }, this.context);
    this.attempts.set(attempt, { span, start });
    const carrier: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(this.context, span), carrier, defaultTextMapSetter);
    return carrier.traceparent;
  }
}

export function startTracing(env: NodeJS.ProcessEnv = process.env): Tracing {
  // The signal's own variable is the whole URL; the general one is a base that gets /v1/traces (the OTLP spec's rule).
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, "");
  const exporter = new OTLPTraceExporter({ url: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || `${base}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || "gwc" }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("gwc");
  const propagator = new W3CTraceContextPropagator();
  return {
    begin(headers, record) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const span = tracer.startSpan(record.path, { kind: SpanKind.SERVER, startTime: record.start }, parent);
      return new RequestTrace(tracer, propagator, span, trace.setSpan(parent, span));
    },
    observe(r) {
      if (!(r.trace instanceof RequestTrace)) return;
      const end = r.start + r.durationMs;
      for (const a of r.attempts) {
        // An attempt refused before anything was sent (a full pool) never asked for a traceparent.
        const started = r.trace.attempts.get(a) ?? { span: tracer.startSpan(`attempt ${a.account}`, { kind: SpanKind.CLIENT, startTime: end - a.ms }, r.trace.context), start: end - a.ms };
        const s = started.span;
        s.updateName(`${r.operation} ${a.model}`);
        s.setAttributes({ "gen_ai.operation.name": r.operation, "gen_ai.provider.name": a.provider, "gen_ai.request.model": a.model, "gwc.account": a.account });
        if (a.status !== null) s.setAttribute("http.response.status_code", a.status);
        if (a.errorType !== null) {
          s.setAttribute("error.type", a.errorType);
          s.setStatus({ code: SpanStatusCode.ERROR });
        }
        s.end(Math.max(started.start, Math.min(end, started.start + a.ms)));
      }
      const span = r.trace.span;
      span.updateName(`${r.operation} ${r.model ?? ""}`.trimEnd());
      span.setAttributes({ "gen_ai.operation.name": r.operation, "http.request.method": r.method, "url.path": r.path, "http.response.status_code": r.status });
      if (r.model !== null) span.setAttribute("gen_ai.request.model", r.model);
      if (r.provider !== null) span.setAttribute("gen_ai.provider.name", r.provider);
      if (r.responseModel !== null) span.setAttribute("gen_ai.response.model", r.responseModel);
      if (r.route !== null) span.setAttribute("gwc.route", r.route);
      if (r.usage !== null) span.setAttributes({ "gen_ai.usage.input_tokens": r.usage.inputTokens, "gen_ai.usage.output_tokens": r.usage.outputTokens });
      if (r.errorType !== null) {
        span.setAttribute("error.type", r.errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end(end);
    },
    shutdown: () => provider.shutdown(),
  };
}
