import type { Adapter, Endpoint, InboundRequest, UpstreamRequest } from "./adapter.ts";

const PATHS: Record<Endpoint, string> = {
  chat: "/chat/completions",
  completions: "/completions",
  embeddings: "/embeddings",
};

/**
 * OpenAI's own wire format, shared by every OpenAI-compatible provider: the
 * request goes through as it came, re-serialised only when the model changes.
 */
export const openaiAdapter: Adapter = {
  supports: () => true,
  request(req: InboundRequest, basePath: string, model: string, apiKey: string | null): UpstreamRequest {
    const headers: Record<string, string> = { "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json" };
    if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
    const body = req.json.model === model ? req.raw : JSON.stringify({ ...req.json, model });
    return { path: basePath + PATHS[req.endpoint], headers, body };
  },
};
