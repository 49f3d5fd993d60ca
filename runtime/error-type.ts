// The one closed vocabulary of what went wrong. An upstream failure is
// classified into it once, at the adapter's edge; the attempt policy
// (`failover_on`), the metrics' `error_type` label, the access log and the
// dashboard all read this value and nothing else (no status codes, no
// message text downstream).

export const ERROR_TYPES = [
  "rate_limited",
  "budget_exceeded",
  "auth",
  "invalid_request",
  "not_found",
  "context_length_exceeded",
  "content_filter",
  "timeout",
  "connection_error",
  "server_error",
  "overloaded",
  "stream_interrupted",
  "pool_full",
  "cancelled",
  "state_unavailable",
] as const;

export type ErrorType = (typeof ERROR_TYPES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_TYPES);

export function isErrorType(value: unknown): value is ErrorType {
  return typeof value === "string" && KNOWN.has(value);
}

/**
 * What an HTTP status says on its own, before a provider's body refines it
 * (an OpenAI `code`, an Anthropic error `type`, a Gemini `status`).
 */
export function errorTypeOfStatus(status: number): ErrorType {
  if (status === 429) return "rate_limited";
  if (status === 401 || status === 403) return "auth";
  if (status === 402) return "budget_exceeded";
  if (status === 404) return "not_found";
  if (status === 408 || status === 504) return "timeout";
  if (status === 529 || status === 503) return "overloaded";
  if (status >= 500) return "server_error";
  return "invalid_request";
}
