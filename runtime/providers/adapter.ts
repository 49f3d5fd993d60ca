// The seam every provider's wire format plugs into. The gateway speaks OpenAI's
// format to callers; an adapter turns a request into its provider's request
// and the provider's answer (JSON or stream) back into OpenAI's.
//
//   caller (OpenAI JSON) ─► request() ─► provider ─► response() / stream() ─► caller (OpenAI JSON / SSE)
//                                                 ├► usage() for budgets and token limits
//                                                 └► classify() for every failure: one error_type
//
// Adapters are pure: no I/O, no state outside a StreamTranslator; the clock only
// for timestamps (`created`) and request signing.
import type { ErrorType } from "../error-type.ts";
import type { Classified, UpstreamHeaders } from "./classify.ts";

export type Endpoint = "chat" | "completions" | "embeddings";

export interface InboundRequest {
  endpoint: Endpoint;
  /** The caller's body exactly as received. */
  raw: Buffer;
  /** The same body, parsed once. OpenAI's request shape. */
  json: Record<string, unknown>;
  stream: boolean;
  /** The gateway needs streamed usage the caller did not ask for: ask upstream, and hide it from the caller. */
  injectUsage?: boolean;
}

/** What an adapter knows of the account it sends to; resolved once at start-up. */
export interface AccountContext {
  /** The account's base URL, no trailing slash (e.g. `https://api.openai.com/v1`). */
  baseUrl: string;
  /** Its path part, no trailing slash (e.g. `/v1`); upstream paths are built on it. */
  basePath: string;
  apiKey: string | null;
  /** Provider settings (`region`, `project`, `api_version`, AWS key id and session token). */
  options: Readonly<Record<string, string>>;
}

export interface UpstreamRequest {
  /** Path and query under the account's origin. */
  path: string;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** Tokens a response reports, for budgets and token limits. */
export interface Usage {
  /** All input tokens, cached and cache-written ones included. */
  input: number;
  output: number;
  /** Input tokens read from the provider's prompt cache. */
  cached: number;
  /** Input tokens written to the provider's prompt cache, billed above the input price (Anthropic, Bedrock). */
  cacheWrite?: number;
}

/** What a slice of an upstream stream became in OpenAI's terms. */
export interface Translated {
  /** `chat.completion.chunk` (or `text_completion`) objects to send, in order. */
  chunks: object[];
  usage?: Usage;
  /** The upstream signalled an error in-stream: its words, and what it was (the adapter's classify()). */
  error?: string;
  errorType?: ErrorType;
  retryAfterMs?: number;
}

/** Stateful: one per upstream stream. Input may be split anywhere. */
export interface StreamTranslator {
  /** Throws EventTooLarge (runtime/providers/sse.ts) once one event passes the bound: the stream is failed, not buffered. */
  push(bytes: Buffer): Translated;
  /** The upstream ended; `complete` is false when it ended before its own end marker. */
  end(): Translated & { complete: boolean };
}

export interface Adapter {
  /** Whether this wire format can serve the endpoint at all. */
  supports(endpoint: Endpoint): boolean;
  /** The upstream request for `model` (already resolved); may sign, hence a promise is allowed. */
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest | Promise<UpstreamRequest>;
  /**
   * A successful JSON response in OpenAI's shape, or undefined (or a throw) when the body is not
   * this provider's answer: the account then failed (server_error). Absent for OpenAI-format
   * upstreams, whose answers are relayed as they came.
   */
  response?(json: unknown, req: InboundRequest, model: string): unknown;
  /**
   * A translator for streams; undefined for upstreams that stream OpenAI's SSE (relayed as is).
   * One event (or frame) larger than `maxEventBytes` is an error, not a buffer that grows.
   */
  stream?(req: InboundRequest, model: string, maxEventBytes?: number): StreamTranslator;
  /** Usage from a whole JSON response, or from one OpenAI SSE event's data. */
  usage(json: unknown): Usage | undefined;
  /**
   * What a failed answer means, in the one error vocabulary, with the wait the provider asked
   * for and its message. `status` is 2xx for an error carried inside a successful answer (a JSON
   * error object, an SSE error event). Never throws, whatever the body.
   */
  classify(status: number, headers: UpstreamHeaders, body: string): Classified;
}
