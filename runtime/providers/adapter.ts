// The seam every provider's wire format plugs into. The gateway speaks OpenAI's
// format to callers; an adapter turns a request into its provider's request
// and the provider's answer back into OpenAI's.

export type Endpoint = "chat" | "completions" | "embeddings";

export interface InboundRequest {
  endpoint: Endpoint;
  /** The caller's body exactly as received. */
  raw: Buffer;
  /** The same body, parsed once. */
  json: Record<string, unknown>;
  stream: boolean;
  /** The gateway asks the upstream for streamed usage the caller did not ask for (and hides it again). */
  injectUsage?: boolean;
}

export interface UpstreamRequest {
  /** Path and query under the account's origin. */
  path: string;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** Tokens a response reports, for budgets and token limits. */
export interface Usage {
  input: number;
  output: number;
  cached: number;
}

export interface Adapter {
  /** Whether this wire format can serve the endpoint at all. */
  supports(endpoint: Endpoint): boolean;
  /** The upstream request; `model` is the model to send (already resolved). */
  request(req: InboundRequest, basePath: string, model: string, apiKey: string | null): UpstreamRequest;
  /** Usage from a whole JSON response body, or from one SSE event's data; undefined when it has none. */
  usage(json: unknown): Usage | undefined;
}
