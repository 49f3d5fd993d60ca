import type { AccountContext, Adapter, Endpoint, InboundRequest, UpstreamRequest, Usage } from "./adapter.ts";
import { classifyOpenAI } from "./classify.ts";
import { isObject } from "../json.ts";

const PATHS: Partial<Record<Endpoint, string>> = {
  chat: "/chat/completions",
  completions: "/completions",
  embeddings: "/embeddings",
  responses: "/responses",
};

/**
 * OpenAI's own wire format, shared by every OpenAI-compatible provider: the
 * request goes through as it came, re-serialised only when the model changes.
 */
export const openaiAdapter: Adapter = {
  format: "openai",
  supports: (endpoint) => PATHS[endpoint] !== undefined,
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
    const headers: Record<string, string> = { ...req.headers, "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json", "accept-encoding": "identity" };
    if (account.apiKey !== null) headers.authorization = `Bearer ${account.apiKey}`;
    const body = req.json.model === model && !req.injectUsage ? req.raw : JSON.stringify(withModel(req, model));
    return { method: req.method, path: account.basePath + PATHS[req.endpoint]! + (req.subpath ?? ""), headers, body };
  },
  listModels(account: AccountContext): UpstreamRequest {
    return { method: "GET", path: `${account.basePath}/models`, headers: account.apiKey === null ? {} : { authorization: `Bearer ${account.apiKey}` }, body: "" };
  },
  modelIds: (json) => idsOf((json as { data?: unknown } | null)?.data, "id"),
  usage(json: unknown): Usage | undefined {
    const u = (json as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; prompt_tokens_details?: { cached_tokens?: unknown } | null } | null })?.usage;
    if (u == null || typeof u.prompt_tokens !== "number") return undefined;
    return {
      input: u.prompt_tokens,
      output: typeof u.completion_tokens === "number" ? u.completion_tokens : 0,
      cached: typeof u.prompt_tokens_details?.cached_tokens === "number" ? u.prompt_tokens_details.cached_tokens : 0,
    };
  },
  classify: classifyOpenAI,
};

/**
 * Whether a parsed 2xx body is an OpenAI answer for the endpoint: a list of
 * choices (chat, completions) or of embeddings. Anything else (an HTML page
 * parsed by luck, `{}`, an error object under a 200) is the upstream failing.
 */
export function isOpenAIAnswer(json: unknown, endpoint: Endpoint): boolean {
  if (!isObject(json) || json.error != null) return false;
  return Array.isArray(endpoint === "embeddings" ? json.data : json.choices);
}

export const OPENAI_PATHS = PATHS;

/** The string `key` of each object in a list answer (`data[].id`, `models[].name`). */
export function idsOf(list: unknown, key: string): string[] {
  return Array.isArray(list) ? list.map((m) => (m as Record<string, unknown> | null)?.[key]).filter((id): id is string => typeof id === "string") : [];
}

/** The body with the upstream model, and with streamed usage asked for when the gateway needs it. */
function withModel(req: InboundRequest, model: string): Record<string, unknown> {
  const body: Record<string, unknown> = { ...req.json, model };
  if (req.injectUsage) body.stream_options = { ...(req.json.stream_options as object | undefined), include_usage: true };
  return body;
}
