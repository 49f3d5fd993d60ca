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

//
// A request arrives on a surface (an inbound API) in that API's format. When the
// serving account's adapter speaks the same format, the request is relayed as it
// came (model and credentials aside) and so is the answer; otherwise the surface
// turns it into OpenAI chat (the hub every adapter translates from) and its sink
// turns the OpenAI answer back.
//
//   same format:  caller ─► relay() ─► upstream ─► caller, bytes untouched
//   other format: caller ─► surface.toChat ─► request() ─► upstream ─► response()/stream() ─► surface sink ─► caller

/** The API family a request or an upstream speaks. */
export type ApiFormat = "openai" | "anthropic" | "gemini";

/**
 * What the caller asked for, within its format: OpenAI's chat, completions,
 * embeddings and responses; Anthropic's messages and count_tokens; Gemini's
 * generate (generateContent and streamGenerateContent) and count_tokens.
 */
export type Endpoint = "chat" | "completions" | "embeddings" | "responses" | "messages" | "generate" | "count_tokens";

export interface InboundRequest {
  endpoint: Endpoint;
  /** The caller's body exactly as received. */
  raw: Buffer;
  /** The same body, parsed once, in the caller's format. */
  json: Record<string, unknown>;
  stream: boolean;
  /** The gateway needs streamed usage the caller did not ask for: ask upstream, and hide it from the caller. */
  injectUsage?: boolean;
  /** The model, when the caller's format names it outside the body (Gemini: in the path); `json.model` otherwise. */
  model?: string;
  /** The caller's format; OpenAI's when absent. */
  format?: ApiFormat;
  /** Headers of the caller's API that the provider defines (`anthropic-beta`, `openai-beta`, …), relayed with the body. */
  headers?: Record<string, string>;
  /** The most output tokens the request allows, when its format puts the cap elsewhere than `max_tokens`. */
  outputCap?: number;
  /** The route drops what the target format cannot carry (naming it) instead of refusing with a 400. */
  dropUnsupported?: boolean;
  /** Bound to the account that holds state it refers to (a stored response), with the model that account was sent. */
  affinity?: { account: string; model: string | null };
  /** Another method than POST, on a path under the endpoint's (`/{id}/input_items`): reading or deleting stored state. */
  method?: "GET" | "DELETE";
  subpath?: string;
  /** The request as OpenAI chat, for an account of another format; throws a 400 `unsupported_parameter` for what chat cannot carry. */
  toChat?(dropUnsupported: boolean): InboundRequest;
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
  /** POST when absent; GET and DELETE for stored state (a stored response, its input items). */
  method?: "GET" | "DELETE" | "POST";
  /** Path and query under the account's origin. */
  path: string;
  headers: Record<string, string>;
  body: Buffer | string;
  /** Fields of the caller's request the translation dropped (route's `drop_unsupported_params`, or no counterpart by design). */
  dropped?: string[];
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
  /** The API family the upstream speaks: a request in it is relayed, not translated. Null: no inbound API speaks it (Bedrock's Converse, Cohere's chat). */
  format: ApiFormat | null;
  /** Whether this wire format can serve the endpoint at all (an OpenAI-format endpoint, or one of its own format's). */
  supports(endpoint: Endpoint): boolean;
  /** The upstream request for `model` (already resolved); may sign, hence a promise is allowed. */
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest | Promise<UpstreamRequest>;
  /**
   * For a request already in this adapter's format (not OpenAI's): the caller's body as it came (the
   * model rewritten when the account pins another), the caller's provider headers, the account's
   * credentials. Absent where `request` itself relays (OpenAI-format upstreams).
   */
  relay?(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest;
  /** The upstream's own model list (GET), for routes that pass the caller's model through. */
  listModels?(account: AccountContext): UpstreamRequest;
  /** The model ids in that list's answer. */
  modelIds?(json: unknown): string[];
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
