// The types the attempt loop (gateway.ts) and the stream relay share, in a
// module of their own so neither imports the other.
import type { CallerSignal } from "./caller-signal.ts";
import type { ErrorType } from "./error-type.ts";
import type { Admission } from "./governance.ts";
import type { HttpError } from "./errors.ts";
import type { AccountHealth } from "./health.ts";
import type { ProviderPool } from "./pool.ts";
import type { AccountContext, Adapter, InboundRequest } from "./providers/adapter.ts";
import type { RequestRecord } from "./request-record.ts";
import type { Scrubber } from "./scrub.ts";

export interface AccountRuntime {
  id: string;
  provider: string;
  adapter: Adapter | undefined;
  pool: ProviderPool;
  context: AccountContext;
  /** The account's breaker for requests that send the account's own or the caller's model. */
  health: AccountHealth;
  edge: Edge;
}

/** How the gateway reads upstream answers, from the plan: one per load, shared by its accounts. */
export interface Edge {
  /** Applied to every upstream text before a caller, a log line or a metric sees it. */
  scrub: Scrubber;
  maxEventBytes: number;
  maxUpstreamBodyBytes: number;
}

/** What one try at one account came to, when it did not answer the caller. */
export interface Failure {
  account: string;
  errorType: ErrorType;
  status?: number;
  retryAfterMs?: number;
  reason: string;
  /** The account's format cannot carry something the caller sent (a 400 when no account could). */
  refusal?: HttpError;
}

/** Where an answer is written: a ServerResponse, or a sink that translates it (the Anthropic endpoint). */
export interface ResponseSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string | Buffer): boolean;
  end(chunk?: string | Buffer): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
  destroy(): void;
}

/** What one request carries through its attempts. */
export interface RequestContext {
  req: InboundRequest;
  model: string;
  vk: number;
  /** Where an OpenAI-shaped answer goes: the caller, or the surface's sink that turns it into the caller's format. */
  res: ResponseSink;
  /** Where an answer already in the caller's format goes (a relayed one). */
  direct: ResponseSink;
  /** Ends a relayed stream the caller is reading with its own API's error event; unset while none is under way. */
  interrupt?: (message: string, code: string) => void;
  requestId: string;
  /** What this request did, for metrics, logs, traces and the dashboard. */
  record: RequestRecord;
  signal: CallerSignal;
  /** Rate-limit headers for the caller. */
  headers: Record<string, string>;
  /** What admission left for the first attempt to take (see Governance.take). */
  admission: Admission;
  /** After a budget reroute: the key's own budget no longer applies. */
  rerouted: boolean;
  /** The caller's own deadline (`x-gwc-deadline-ms`), in ms from arrival; the route's caps it. */
  deadlineMs?: number;
}

/** Limits one stream attempt runs under, from the route's policy and the deadline left. */
export interface StreamTimeouts {
  firstTokenMs: number;
  stallMs: number;
}
