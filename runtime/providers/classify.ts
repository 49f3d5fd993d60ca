// Reading a provider's failure once, at the adapter's edge, into the one
// closed vocabulary (runtime/error-type.ts). Everything downstream — the
// attempt loop, breakers, metrics, logs — reads the classification, never the
// status code or the message text again.
//
//   status + headers + body ─► classify() ─► { errorType, retryAfterMs?, message }
//
// `status` is 200 (any 2xx) for an error that came inside a successful answer:
// a JSON body that is an error object, or an SSE error event.
import { errorTypeOfStatus, type ErrorType } from "../error-type.ts";
import { isObject, type Json } from "../json.ts";

export type UpstreamHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface Classified {
  errorType: ErrorType;
  /** How long the provider asked the gateway to wait before trying this account again. */
  retryAfterMs?: number;
  /**
   * The provider's own words on one line, whole: not yet scrubbed of secrets, so not yet
   * shortened either (a key cut in half could not be found). Scrubber.say() does both.
   */
  message: string;
}

/** The status's own meaning, for a provider's answer: 2xx carrying an error is the upstream failing, 402 is the account's quota. */
export function statusType(status: number): ErrorType {
  if (status < 300) return "server_error";
  // A provider's 402 (Cohere: payment required) is the account out of credit, not a gateway budget.
  if (status === 402) return "rate_limited";
  // 499: the provider saw the request cancelled (Cohere documents it).
  if (status === 499) return "cancelled";
  return errorTypeOfStatus(status);
}

/** Whitespace folded to one line. */
export function tidy(text: string): string {
  return text.replace(/\s+/g, " ").trim() || "no message";
}

/** The body as a JSON object (the first element of an array, as Google streams send errors); undefined otherwise. */
export function jsonObject(text: string): Json | undefined {
  const start = text.trimStart()[0];
  if (start !== "{" && start !== "[") return undefined;
  try {
    let parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) parsed = parsed[0];
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

// Messages that say "the prompt does not fit this model" in every provider's words:
// OpenAI "maximum context length is", Anthropic "prompt is too long", Gemini "input
// token count (…) exceeds the maximum number of tokens", Bedrock "Input is too long
// for requested model", Cohere "too many tokens", Mistral/vLLM "context length".
const CONTEXT_LENGTH = /maximum context length|context[ _-]length|context window|prompt is too long|input is too long|too many (?:input )?tokens|exceeds the maximum number of tokens|token count .{0,40}exceeds/i;

/** Whether an invalid request is, by its words, a prompt too long for this model (another model may take it). */
export function saysContextLength(message: string): boolean {
  return CONTEXT_LENGTH.test(message);
}

// Messages that say the account (not the request) is out of credit: OpenAI "exceeded
// your current quota", Anthropic "credit balance is too low", spend limits.
const ACCOUNT_QUOTA = /exceeded your current quota|credit balance is too low|spend(?:ing)? limit|billing/i;

/**
 * How long to wait, from the headers: `retry-after-ms` (OpenAI, Azure), then
 * `retry-after` (seconds or an HTTP date), then OpenAI's
 * `x-ratelimit-reset-requests`/`-tokens` ("1s", "6m0s", "20ms") for whichever
 * limit is spent (the later of the two when both are, the sooner when neither says).
 */
export function retryAfterOf(headers: UpstreamHeaders, now = Date.now()): number | undefined {
  const ms = Number(first(headers["retry-after-ms"]));
  if (first(headers["retry-after-ms"]) !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const after = parseRetryAfter(first(headers["retry-after"]), now);
  if (after !== undefined) return after;
  const requests = goDuration(first(headers["x-ratelimit-reset-requests"]));
  const tokens = goDuration(first(headers["x-ratelimit-reset-tokens"]));
  if (requests === undefined || tokens === undefined) return requests ?? tokens;
  const spentRequests = first(headers["x-ratelimit-remaining-requests"]) === "0";
  const spentTokens = first(headers["x-ratelimit-remaining-tokens"]) === "0";
  if (spentRequests && !spentTokens) return requests;
  if (spentTokens && !spentRequests) return tokens;
  return spentRequests ? Math.max(requests, tokens) : Math.min(requests, tokens);
}

/** `Retry-After`: delay-seconds or an HTTP date, in milliseconds from `now`. */
export function parseRetryAfter(text: string | undefined, now = Date.now()): number | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, "µs": 0.001, ns: 0.000001 };

/** A Go duration as OpenAI's rate-limit headers spell it ("1s", "6m0s", "1h2m3.5s", "20ms"), in milliseconds. */
export function goDuration(text: string | undefined): number | undefined {
  if (text === undefined || !/^(?:\d+(?:\.\d+)?(?:h|ms|m|s|us|µs|ns))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) total += Number(n) * UNIT_MS[unit];
  return Math.round(total);
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The retry-after, kept only where waiting makes sense (rate limits, overload). */
export function withWait(errorType: ErrorType, message: string, wait: number | undefined): Classified {
  return wait !== undefined && (errorType === "rate_limited" || errorType === "overloaded") ? { errorType, message, retryAfterMs: wait } : { errorType, message };
}

/**
 * OpenAI's error shape, `{"error":{"message","type","param","code"}}`, which
 * every OpenAI-compatible provider (Azure, Groq, Mistral, DeepSeek, vLLM, …)
 * sends too. The status says most; `code` and `type` refine it:
 *
 *   context_length_exceeded                       → context_length_exceeded
 *   content_filter, content_policy_violation,
 *     innererror ResponsibleAIPolicyViolation      → content_filter
 *   insufficient_quota (429)                       → rate_limited, no wait: the account is out of
 *                                                    credit; another account can serve, waiting cannot
 *   rate_limit_exceeded                            → rate_limited
 *   invalid_api_key, authentication_error          → auth
 *   model_not_found                                → not_found
 */
export function classifyOpenAI(status: number, headers: UpstreamHeaders, body: string): Classified {
  const json = jsonObject(body);
  const error = json?.error;
  const e = isObject(error) ? error : {};
  const message = tidy(str(e.message) ?? str(error) ?? str(json?.message) ?? body);
  const code = str(e.code)?.toLowerCase();
  const type = str(e.type)?.toLowerCase();
  const inner = isObject(e.innererror) ? str(e.innererror.code) : undefined;
  let errorType = statusType(status);
  if (code === "context_length_exceeded" || type === "context_length_exceeded") errorType = "context_length_exceeded";
  else if (code === "content_filter" || code === "content_policy_violation" || inner === "ResponsibleAIPolicyViolation") errorType = "content_filter";
  else if (code === "insufficient_quota" || type === "insufficient_quota") return { errorType: "rate_limited", message };
  else if (code === "rate_limit_exceeded") errorType = "rate_limited";
  else if (code === "invalid_api_key" || type === "authentication_error") errorType = "auth";
  else if (code === "model_not_found") errorType = "not_found";
  else if (errorType === "invalid_request" && saysContextLength(message)) errorType = "context_length_exceeded";
  else if (errorType === "invalid_request" && ACCOUNT_QUOTA.test(message)) return { errorType: "rate_limited", message };
  return withWait(errorType, message, retryAfterOf(headers));
}

/**
 * Anthropic's `{"type":"error","error":{"type","message"}}` (HTTP bodies and
 * `event: error` in streams alike), by its error type:
 *
 *   overloaded_error (529)            → overloaded
 *   rate_limit_error (429)            → rate_limited
 *   authentication_error, permission_error → auth
 *   not_found_error                   → not_found
 *   api_error (500)                   → server_error
 *   timeout_error                     → timeout
 *   billing_error, "credit balance is too low" → rate_limited (the account is out of credit)
 *   invalid_request_error "prompt is too long: N tokens > M maximum" → context_length_exceeded
 *   invalid_request_error, request_too_large → invalid_request
 */
export function classifyAnthropic(status: number, headers: UpstreamHeaders, body: string): Classified {
  const json = jsonObject(body);
  const error = isObject(json?.error) ? json.error : {};
  const message = tidy(str(error.message) ?? body);
  const type = str(error.type);
  let errorType = ANTHROPIC_TYPES.get(type ?? "") ?? statusType(status);
  if (type === "billing_error") return { errorType: "rate_limited", message };
  if (errorType === "invalid_request" && saysContextLength(message)) errorType = "context_length_exceeded";
  else if (errorType === "invalid_request" && ACCOUNT_QUOTA.test(message)) return { errorType: "rate_limited", message };
  return withWait(errorType, message, retryAfterOf(headers));
}

const ANTHROPIC_TYPES: ReadonlyMap<string, ErrorType> = new Map<string, ErrorType>([
  ["overloaded_error", "overloaded"],
  ["rate_limit_error", "rate_limited"],
  ["authentication_error", "auth"],
  ["permission_error", "auth"],
  ["not_found_error", "not_found"],
  ["api_error", "server_error"],
  ["timeout_error", "timeout"],
  ["invalid_request_error", "invalid_request"],
  ["request_too_large", "invalid_request"],
]);

/**
 * Google's `{"error":{"code","message","status","details"}}` (the Gemini API and
 * Vertex AI; streams send it as a one-element array), by its canonical status:
 *
 *   RESOURCE_EXHAUSTED                    → rate_limited, waiting its RetryInfo `retryDelay` ("37s")
 *   UNAVAILABLE                           → overloaded
 *   DEADLINE_EXCEEDED                     → timeout
 *   UNAUTHENTICATED, PERMISSION_DENIED,
 *     INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID → auth (the gateway's key)
 *   NOT_FOUND                             → not_found
 *   INTERNAL, UNKNOWN, DATA_LOSS          → server_error
 *   INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE → invalid_request, or
 *     context_length_exceeded for "input token count (N) exceeds the maximum number of tokens allowed (M)"
 *   CANCELLED                             → cancelled
 */
export function classifyGoogle(status: number, headers: UpstreamHeaders, body: string): Classified {
  const json = jsonObject(body);
  const error = isObject(json?.error) ? json.error : {};
  const message = tidy(str(error.message) ?? str(error.status) ?? body);
  const details = Array.isArray(error.details) ? error.details.filter(isObject) : [];
  let errorType = GOOGLE_STATUSES.get(str(error.status) ?? "") ?? (typeof error.code === "number" && status < 300 ? statusType(error.code) : statusType(status));
  if (details.some((d) => d.reason === "API_KEY_INVALID")) errorType = "auth";
  else if (errorType === "invalid_request" && saysContextLength(message)) errorType = "context_length_exceeded";
  return withWait(errorType, message, retryAfterOf(headers) ?? retryDelay(details));
}

const GOOGLE_STATUSES: ReadonlyMap<string, ErrorType> = new Map<string, ErrorType>([
  ["RESOURCE_EXHAUSTED", "rate_limited"],
  ["UNAVAILABLE", "overloaded"],
  ["DEADLINE_EXCEEDED", "timeout"],
  ["UNAUTHENTICATED", "auth"],
  ["PERMISSION_DENIED", "auth"],
  ["NOT_FOUND", "not_found"],
  ["INTERNAL", "server_error"],
  ["UNKNOWN", "server_error"],
  ["DATA_LOSS", "server_error"],
  ["INVALID_ARGUMENT", "invalid_request"],
  ["FAILED_PRECONDITION", "invalid_request"],
  ["OUT_OF_RANGE", "invalid_request"],
  ["CANCELLED", "cancelled"],
]);

/** The `retryDelay` of a google.rpc.RetryInfo detail ("37s", "1.5s"), in milliseconds. */
function retryDelay(details: Json[]): number | undefined {
  for (const d of details) {
    const m = typeof d.retryDelay === "string" ? /^(\d+(?:\.\d+)?)s$/.exec(d.retryDelay) : null;
    if (m !== null && String(d["@type"]).endsWith("google.rpc.RetryInfo")) return Math.round(Number(m[1]) * 1000);
  }
  return undefined;
}

/**
 * AWS Bedrock (restJson1): the exception in `x-amzn-ErrorType`
 * ("ThrottlingException:http://internal.amazon.com/…") or the body's `__type`,
 * the words in `message` (`Message` from IAM). Stream exception frames name it
 * in lower camel case (`throttlingException`); both spellings are read.
 *
 *   ThrottlingException, ServiceQuotaExceededException → rate_limited
 *   ServiceUnavailableException, ModelNotReadyException → overloaded (the model is loading or busy)
 *   ModelTimeoutException (408)                         → timeout
 *   InternalServerException, ModelErrorException (424), ModelStreamErrorException → server_error
 *   AccessDeniedException, UnrecognizedClient…, signature/token exceptions → auth
 *   ResourceNotFoundException                           → not_found
 *   ValidationException                                 → invalid_request, or
 *     context_length_exceeded for "Input is too long for requested model"
 */
export function classifyBedrock(status: number, headers: UpstreamHeaders, body: string): Classified {
  const json = jsonObject(body);
  const message = tidy(str(json?.message) ?? str(json?.Message) ?? body);
  const named = first(headers["x-amzn-errortype"]) ?? str(json?.__type) ?? "";
  // "ThrottlingException:http://…" or "com.amazon.coral.service#ThrottlingException".
  const exception = named.split(":")[0].split("#").pop()!.toLowerCase();
  let errorType = BEDROCK_EXCEPTIONS.get(exception) ?? statusType(status);
  if (errorType === "invalid_request" && saysContextLength(message)) errorType = "context_length_exceeded";
  return withWait(errorType, message, retryAfterOf(headers));
}

const BEDROCK_EXCEPTIONS: ReadonlyMap<string, ErrorType> = new Map<string, ErrorType>([
  ["throttlingexception", "rate_limited"],
  ["servicequotaexceededexception", "rate_limited"],
  ["serviceunavailableexception", "overloaded"],
  ["modelnotreadyexception", "overloaded"],
  ["modeltimeoutexception", "timeout"],
  ["internalserverexception", "server_error"],
  ["internalfailure", "server_error"],
  ["modelerrorexception", "server_error"],
  ["modelstreamerrorexception", "server_error"],
  ["accessdeniedexception", "auth"],
  ["unrecognizedclientexception", "auth"],
  ["invalidsignatureexception", "auth"],
  ["incompletesignature", "auth"],
  ["missingauthenticationtokenexception", "auth"],
  ["expiredtokenexception", "auth"],
  ["resourcenotfoundexception", "not_found"],
  ["validationexception", "invalid_request"],
]);

/**
 * Cohere's `{"id","message"}` by status (its documented 400, 401, 402, 404,
 * 429, 499, 500), with "too many tokens: …" as context_length_exceeded and
 * 402 (payment required) as the account's quota. OpenAI-shaped bodies from
 * Cohere's compatibility API are read as OpenAI's.
 */
export function classifyCohere(status: number, headers: UpstreamHeaders, body: string): Classified {
  const json = jsonObject(body);
  if (isObject(json?.error)) return classifyOpenAI(status, headers, body);
  const message = tidy(str(json?.message) ?? str(json?.error) ?? body);
  let errorType = statusType(status);
  if (errorType === "invalid_request" && saysContextLength(message)) errorType = "context_length_exceeded";
  return withWait(errorType, message, retryAfterOf(headers));
}

/** A classified in-stream error as a translator reports it. */
export function streamError(c: Classified): { error: string; errorType: ErrorType; retryAfterMs?: number } {
  return c.retryAfterMs === undefined ? { error: c.message, errorType: c.errorType } : { error: c.message, errorType: c.errorType, retryAfterMs: c.retryAfterMs };
}
