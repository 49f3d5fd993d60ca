// Which surface answers a path. The server asks here first; the OpenAI chat,
// completions and embeddings paths it serves itself.
import { anthropicRoute } from "./anthropic-http.ts";
import { completionsRoute } from "./completions.ts";
import { geminiRoute } from "./gemini-http.ts";
import { responsesRoute } from "./responses-http.ts";
import type { SurfaceHandler } from "./surface.ts";

/** The handler for a method and path, or undefined when no surface here owns it. */
export function surfaceRoute(method: string, path: string): SurfaceHandler | undefined {
  if (path === "/anthropic" || path.startsWith("/anthropic/")) return anthropicRoute(method, path);
  if (path.startsWith("/v1/responses")) return responsesRoute(method, path);
  if (path === "/v1/completions") return completionsRoute(method);
  if (path.startsWith("/v1beta/") || path.startsWith("/v1alpha/") || path.startsWith("/gemini/") || path.includes(":")) return geminiRoute(method, path);
  return undefined;
}
