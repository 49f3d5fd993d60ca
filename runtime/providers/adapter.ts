// The seam every provider's wire format plugs into. The gateway speaks OpenAI's
// format to callers; an adapter turns a request into its provider's request
// and the provider's answer (JSON or stream) back into OpenAI's.
//
//   caller (OpenAI JSON) ─► request() ─► provider ─► response() / stream() ─► caller (OpenAI JSON / SSE)
//                                                 └► usage() for budgets and token limits
//
// Adapters are pure: no I/O, no state outside a StreamTranslator; the clock only
// for timestamps (`created`) and request signing.

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
  /** The upstream signalled an error in-stream. */
  error?: string;
}

/** Stateful: one per upstream stream. Input may be split anywhere. */
export interface StreamTranslator {
  push(bytes: Buffer): Translated;
  /** The upstream ended; `complete` is false when it ended before its own end marker. */
  end(): Translated & { complete: boolean };
}

export interface Adapter {
  /** Whether this wire format can serve the endpoint at all. */
  supports(endpoint: Endpoint): boolean;
  /** The upstream request for `model` (already resolved); may sign, hence a promise is allowed. */
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest | Promise<UpstreamRequest>;
  /** A successful JSON response in OpenAI's shape; undefined for OpenAI-format upstreams (sent as is). */
  response?(json: unknown, req: InboundRequest, model: string): unknown;
  /** A translator for streams; undefined for upstreams that stream OpenAI's SSE (relayed as is). */
  stream?(req: InboundRequest, model: string): StreamTranslator;
  /** Usage from a whole JSON response, or from one OpenAI SSE event's data. */
  usage(json: unknown): Usage | undefined;
  /** The human message inside an error body of this provider; the text itself when there is none. */
  errorMessage?(text: string): string;
  /** Statuses this provider uses for "try elsewhere" beyond the config's list (Anthropic's 529 overloaded). */
  retryableStatuses?: readonly number[];
  /**
   * Whether a 400 answer is this provider refusing the gateway's own credentials (the Gemini API
   * answers a bad key with 400 API_KEY_INVALID, not 401). Treated as a 401: the account fails, the
   * request fails over, and the text is never passed on.
   */
  rejectsCredentials?(text: string): boolean;
  /** How long a 429's body asks the gateway to wait (Google's RetryInfo), for providers that send no Retry-After. */
  retryAfterMs?(text: string): number | undefined;
}
