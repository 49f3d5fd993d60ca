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
}

export interface UpstreamRequest {
  /** Path and query under the account's origin. */
  path: string;
  headers: Record<string, string>;
  body: Buffer | string;
}

export interface Adapter {
  /** Whether this wire format can serve the endpoint at all. */
  supports(endpoint: Endpoint): boolean;
  /** The upstream request; `model` is the model to send (already resolved). */
  request(req: InboundRequest, basePath: string, model: string, apiKey: string | null): UpstreamRequest;
}
