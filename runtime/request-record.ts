// One record per request: what the caller asked, which accounts were tried and
// what each answered, what it used and cost, how long it took. The gateway
// fills it as the request goes; when the response is over, every observer
// (metrics, access log, traces, the dashboard's ring) reads the same record.
// Nothing downstream re-derives any of it.
import type { ErrorType } from "./error-type.ts";

/** `gen_ai.operation.name` of the OpenTelemetry GenAI conventions. */
export type Operation = "chat" | "text_completion" | "embeddings" | "other";

export interface AttemptRecord {
  account: string;
  provider: string;
  /** The model sent upstream. */
  model: string;
  /** The upstream's HTTP status; null when none came (timeout, connection failure, refused before sending). */
  status: number | null;
  /** Null when this attempt answered the caller. */
  errorType: ErrorType | null;
  /** From the attempt's start to its outcome (for a stream: to its end). */
  ms: number;
}

export interface UsageRecord {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface RequestRecord {
  id: string;
  /** Epoch ms when the request arrived. */
  start: number;
  /** performance.now() when the request arrived: durations are measured from it. */
  startMono: number;
  method: string;
  path: string;
  operation: Operation;
  /** The model the caller asked for; null until the body is read. */
  model: string | null;
  /** The configured route id that served it (bounded by the config: a metric label may use it). */
  route: string | null;
  /** The virtual key's configured id; null on an open gateway or before auth. */
  keyId: string | null;
  stream: boolean;
  /** The status the caller got. */
  status: number;
  /** Null on success. */
  errorType: ErrorType | null;
  attempts: AttemptRecord[];
  /** The account, provider and upstream model of the attempt that answered. */
  account: string | null;
  provider: string | null;
  responseModel: string | null;
  usage: UsageRecord | null;
  /** What the answer cost in nano-USD, when the model is priced; null otherwise. */
  costNanoUsd: number | null;
  /** Streams: ms from arrival to the first byte of the answer sent to the caller. */
  ttftMs: number | null;
  durationMs: number;
  /** Time spent waiting on upstreams; `durationMs - upstreamMs` is what the gateway itself added. */
  upstreamMs: number;
  /** Only under `observability.log_bodies`: the caller's request and (unstreamed) answer, for the access log. */
  requestBody: string | null;
  responseBody: string | null;
  /** Set when tracing is on: starts an attempt's span and gives the `traceparent` to send upstream with it. */
  trace: TraceHandle | null;
}

export interface TraceHandle {
  traceparent(attempt: AttemptRecord): string | undefined;
}

export type RequestObserver = (record: RequestRecord) => void;

export function newRecord(id: string, method: string, path: string): RequestRecord {
  return {
    id,
    start: Date.now(),
    startMono: performance.now(),
    method,
    path,
    operation: "other",
    model: null,
    route: null,
    keyId: null,
    stream: false,
    status: 0,
    errorType: null,
    attempts: [],
    account: null,
    provider: null,
    responseModel: null,
    usage: null,
    costNanoUsd: null,
    ttftMs: null,
    durationMs: 0,
    upstreamMs: 0,
    requestBody: null,
    responseBody: null,
    trace: null,
  };
}
