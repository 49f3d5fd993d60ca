import type { AccountContext, Adapter, InboundRequest, UpstreamRequest } from "./adapter.ts";
import { classifyOpenAI, tidy } from "./classify.ts";
import { OPENAI_PATHS, openaiAdapter } from "./openai.ts";

/**
 * Azure OpenAI (dated API versions, the `AzureOpenAI` client's convention).
 *
 *   POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version={api_version}
 *   api-key: <key>
 *
 * The account's base URL is the resource endpoint (`https://{resource}.openai.azure.com`);
 * one that already ends in `/openai` (the SDK's `baseURL` form) is accepted too.
 * The deployment is the model the gateway resolved (the account's `model`).
 *
 * Bodies, responses and streams are OpenAI's: they are relayed, not translated.
 * The body keeps its `model` as the `AzureOpenAI` SDK sends it (the service
 * routes by the deployment in the path and ignores the field); it is only
 * re-serialised when the gateway must ask for streamed usage.
 */
export const azureAdapter: Adapter = {
  format: "openai",
  supports: openaiAdapter.supports,
  request(req: InboundRequest, account: AccountContext, model: string): UpstreamRequest {
    const headers: Record<string, string> = { ...req.headers, "content-type": "application/json", accept: req.stream ? "text/event-stream" : "application/json", "accept-encoding": "identity" };
    if (account.apiKey !== null) headers["api-key"] = account.apiKey;
    const version = account.options.api_version;
    const root = account.basePath.endsWith("/openai") ? account.basePath : `${account.basePath}/openai`;
    const query = version === undefined || version === "" ? "" : `?api-version=${encodeURIComponent(version)}`;
    // The Responses API is not per deployment: the model (the deployment's name) travels in the body.
    if (req.endpoint === "responses") {
      const body = req.json.model === model ? req.raw : JSON.stringify({ ...req.json, model });
      const sub = req.subpath ?? "";
      // A subpath may bring its own query (input_items?limit=…): the api-version joins it.
      const path = `${root}/responses${sub}${query === "" ? "" : sub.includes("?") ? `&${query.slice(1)}` : query}`;
      return { method: req.method, path, headers, body };
    }
    const path = `${root}/deployments/${encodeURIComponent(model)}${OPENAI_PATHS[req.endpoint]}${query}`;
    const body = req.injectUsage
      ? JSON.stringify({ ...req.json, stream_options: { ...(req.json.stream_options as object | undefined), include_usage: true } })
      : req.raw;
    return { path, headers, body };
  },
  usage: openaiAdapter.usage,
  // OpenAI's codes (content_filter with innererror ResponsibleAIPolicyViolation, context_length_exceeded),
  // with Azure's message, which names the inner code, and its API Management front's shape.
  classify: (status, headers, body) => ({ ...classifyOpenAI(status, headers, body), message: tidy(azureErrorMessage(body)) }),
};

/**
 * The message of an Azure error body. Azure OpenAI answers
 * `{"error":{"code","message","innererror"?}}`; its API Management front
 * (quota, keys) answers `{"statusCode":429,"message":"..."}`.
 */
export function azureErrorMessage(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  if (parsed === null || typeof parsed !== "object") return text;
  const body = parsed as { error?: unknown; message?: unknown };
  if (body.error !== null && typeof body.error === "object") {
    const e = body.error as { message?: unknown; code?: unknown; innererror?: { code?: unknown } | null };
    if (typeof e.message === "string" && e.message !== "") {
      const inner = typeof e.innererror?.code === "string" ? ` (${e.innererror.code})` : "";
      return e.message + inner;
    }
    if (typeof e.code === "string") return e.code;
  }
  if (typeof body.error === "string") return body.error;
  if (typeof body.message === "string") return body.message;
  return text;
}
