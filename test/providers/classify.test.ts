// One error vocabulary (issue #12): every provider's failure, read once at the
// adapter's edge, becomes one error_type. A table per provider, with bodies as
// each provider sends them (OpenAI's ErrorObject, Anthropic's ErrorResponse,
// google.rpc.Status with its details, Bedrock's restJson1 exceptions, Cohere's
// {id,message}, Azure's content filter and API Management shapes), the waits
// each one asks for, in-stream error events of every streaming format, and a
// property: classify never throws and always answers a member of the vocabulary.
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_TYPES, isErrorType, type ErrorType } from "../../runtime/error-type.ts";
import type { Adapter } from "../../runtime/providers/adapter.ts";
import { anthropicStream } from "../../runtime/providers/anthropic.ts";
import { azureAdapter } from "../../runtime/providers/azure.ts";
import { bedrockAdapter, ConverseStreamTranslator } from "../../runtime/providers/bedrock.ts";
import { goDuration, retryAfterOf, type UpstreamHeaders } from "../../runtime/providers/classify.ts";
import { cohereAdapter, CohereStream } from "../../runtime/providers/cohere.ts";
import { geminiAdapter, GeminiStreamTranslator } from "../../runtime/providers/gemini.ts";
import { anthropicAdapter } from "../../runtime/providers/anthropic.ts";
import { openaiAdapter } from "../../runtime/providers/openai.ts";
import { vertexAdapter } from "../../runtime/providers/vertex.ts";

type Row = [name: string, status: number, headers: UpstreamHeaders, body: unknown, errorType: ErrorType, retryAfterMs?: number];

const text = (body: unknown) => (typeof body === "string" ? body : JSON.stringify(body));

function table(adapter: Adapter, rows: Row[]) {
  it.each(rows)("%s", (_, status, headers, body, errorType, retryAfterMs) => {
    const c = adapter.classify(status, headers, text(body));
    expect(c.errorType).toBe(errorType);
    expect(c.retryAfterMs).toBe(retryAfterMs);
    expect(c.message).not.toBe("");
  });
}

const oai = (message: string, type: string, code: string | null, extra: object = {}) => ({ error: { message, type, param: null, code, ...extra } });

describe("OpenAI (and every OpenAI-compatible provider)", () => {
  table(openaiAdapter, [
    ["context_length_exceeded", 400, {}, oai("This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.", "invalid_request_error", "context_length_exceeded"), "context_length_exceeded"],
    ["context length in words only (vLLM, Mistral)", 400, {}, oai("This model's maximum context length is 32768 tokens", "BadRequestError", null), "context_length_exceeded"],
    ["content_filter", 400, {}, oai("The response was filtered", "invalid_request_error", "content_filter"), "content_filter"],
    ["content_policy_violation", 400, {}, oai("Your request was rejected as a result of our safety system.", "invalid_request_error", "content_policy_violation"), "content_filter"],
    ["insufficient_quota: the account is out of credit, no wait", 429, { "retry-after": "20" }, oai("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota"), "rate_limited"],
    ["rate_limit_exceeded with retry-after-ms", 429, { "retry-after-ms": "1500", "retry-after": "2" }, oai("Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded"), "rate_limited", 1500],
    ["rate_limit_exceeded with Retry-After seconds", 429, { "retry-after": "7" }, oai("Rate limit reached", "tokens", "rate_limit_exceeded"), "rate_limited", 7000],
    ["429 with only x-ratelimit-reset-tokens spent (6m0s)", 429, { "x-ratelimit-remaining-requests": "10", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s" }, oai("Rate limit reached", "tokens", "rate_limit_exceeded"), "rate_limited", 360_000],
    ["429 with x-ratelimit-reset-requests spent (1s)", 429, { "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s" }, oai("Rate limit reached", "requests", "rate_limit_exceeded"), "rate_limited", 1000],
    ["invalid_api_key", 401, {}, oai("Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"), "auth"],
    ["403 region", 403, {}, oai("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"), "auth"],
    ["model_not_found", 404, {}, oai("The model `gpt-9` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"), "not_found"],
    ["a plain 400", 400, {}, oai("Missing required parameter: 'messages'.", "invalid_request_error", "missing_required_parameter"), "invalid_request"],
    ["500", 500, {}, oai("The server had an error while processing your request.", "server_error", null), "server_error"],
    ["503 overloaded, retry-after kept", 503, { "retry-after": "3" }, oai("That model is currently overloaded with other requests.", "server_error", null), "overloaded", 3000],
    ["504 from a proxy, HTML", 504, {}, "<html><body>504 Gateway Time-out</body></html>", "timeout"],
    ["an error object under a 200", 200, {}, oai("The server had an error while processing your request.", "server_error", null), "server_error"],
    ["a 200 that is not JSON", 200, {}, "<html>oops</html>", "server_error"],
  ]);
});

describe("Azure OpenAI", () => {
  table(azureAdapter, [
    ["content_filter with ResponsibleAIPolicyViolation", 400, {}, { error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", type: null, param: "prompt", code: "content_filter", status: 400, innererror: { code: "ResponsibleAIPolicyViolation", content_filter_result: { hate: { filtered: true, severity: "high" } } } } }, "content_filter"],
    ["API Management 429 with retry-after-ms", 429, { "retry-after-ms": "1000", "retry-after": "1" }, { statusCode: 429, message: "Rate limit is exceeded. Try again in 1 seconds." }, "rate_limited", 1000],
    ["token rate limit, code \"429\"", 429, { "retry-after": "6" }, { error: { code: "429", message: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 6 seconds." } }, "rate_limited", 6000],
    ["context_length_exceeded", 400, {}, { error: { message: "This model's maximum context length is 8192 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } }, "context_length_exceeded"],
    ["DeploymentNotFound", 404, {}, { error: { code: "DeploymentNotFound", message: "The API deployment for this resource does not exist." } }, "not_found"],
    ["401 bad subscription key (API Management)", 401, {}, { statusCode: 401, message: "Access denied due to invalid subscription key or wrong API endpoint." }, "auth"],
  ]);
  it("names the inner code in its message", () => {
    const c = azureAdapter.classify(400, {}, JSON.stringify({ error: { message: "filtered", code: "content_filter", innererror: { code: "ResponsibleAIPolicyViolation" } } }));
    expect(c.message).toBe("filtered (ResponsibleAIPolicyViolation)");
  });
});

const ant = (type: string, message: string) => ({ type: "error", error: { type, message }, request_id: "req_011CSHoEeqs5C35K2UUqR7Fy" });

describe("Anthropic", () => {
  table(anthropicAdapter, [
    ["overloaded_error (529)", 529, {}, ant("overloaded_error", "Overloaded"), "overloaded"],
    ["overloaded_error with retry-after", 529, { "retry-after": "4" }, ant("overloaded_error", "Overloaded"), "overloaded", 4000],
    ["rate_limit_error with retry-after", 429, { "retry-after": "12" }, ant("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), "rate_limited", 12000],
    ["invalid_request_error: prompt is too long", 400, {}, ant("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"), "context_length_exceeded"],
    ["invalid_request_error", 400, {}, ant("invalid_request_error", "max_tokens: Field required"), "invalid_request"],
    ["invalid_request_error: credit balance too low", 400, {}, ant("invalid_request_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."), "rate_limited"],
    ["authentication_error", 401, {}, ant("authentication_error", "invalid x-api-key"), "auth"],
    ["permission_error", 403, {}, ant("permission_error", "Your API key does not have permission to use the specified resource."), "auth"],
    ["not_found_error", 404, {}, ant("not_found_error", "model: claude-9"), "not_found"],
    ["request_too_large (413)", 413, {}, ant("request_too_large", "Request exceeds the maximum allowed number of bytes."), "invalid_request"],
    ["api_error (500)", 500, {}, ant("api_error", "Internal server error"), "server_error"],
    ["billing_error (402)", 402, {}, ant("billing_error", "Your account has a billing issue."), "rate_limited"],
    ["timeout_error (504)", 504, {}, ant("timeout_error", "Request timed out"), "timeout"],
    ["Cloudflare HTML 502", 502, {}, "<html><head><title>502 Bad Gateway</title></head></html>", "server_error"],
  ]);
});

const gerr = (code: number, status: string, message: string, details?: object[]) => ({ error: { code, message, status, ...(details ? { details } : {}) } });
const googleRows: Row[] = [
  ["RESOURCE_EXHAUSTED with RetryInfo retryDelay", 429, {}, gerr(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [{ "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [] }, { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "37s" }]), "rate_limited", 37_000],
  ["RESOURCE_EXHAUSTED, fractional retryDelay", 429, {}, gerr(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1.5s" }]), "rate_limited", 1500],
  ["INVALID_ARGUMENT", 400, {}, gerr(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\"."), "invalid_request"],
  ["INVALID_ARGUMENT: input token count over the limit", 400, {}, gerr(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."), "context_length_exceeded"],
  ["INVALID_ARGUMENT with API_KEY_INVALID (the gateway's key)", 400, {}, gerr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com" }]), "auth"],
  ["PERMISSION_DENIED", 403, {}, gerr(403, "PERMISSION_DENIED", "Permission denied on resource project x."), "auth"],
  ["UNAUTHENTICATED", 401, {}, gerr(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), "auth"],
  ["NOT_FOUND", 404, {}, gerr(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta."), "not_found"],
  ["UNAVAILABLE", 503, {}, gerr(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), "overloaded"],
  ["DEADLINE_EXCEEDED", 504, {}, gerr(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), "timeout"],
  ["INTERNAL", 500, {}, gerr(500, "INTERNAL", "An internal error has occurred."), "server_error"],
  ["FAILED_PRECONDITION", 400, {}, gerr(400, "FAILED_PRECONDITION", "User location is not supported for the API use."), "invalid_request"],
  ["an error array under a 200 (as streams send it)", 200, {}, [gerr(503, "UNAVAILABLE", "overloaded")], "overloaded"],
];

describe("Gemini API", () => table(geminiAdapter, googleRows));
describe("Vertex AI", () =>
  table(vertexAdapter, [
    ...googleRows,
    ["quota, Retry-After header", 429, { "retry-after": "5" }, gerr(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model."), "rate_limited", 5000],
  ]));

const amzn = (type: string) => ({ "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
describe("AWS Bedrock", () => {
  table(bedrockAdapter, [
    ["ThrottlingException", 429, amzn("ThrottlingException"), { message: "Too many requests, please wait before trying again." }, "rate_limited"],
    ["ServiceQuotaExceededException", 400, amzn("ServiceQuotaExceededException"), { message: "Your request exceeds the service quota for your account." }, "rate_limited"],
    ["ModelTimeoutException (408)", 408, amzn("ModelTimeoutException"), { message: "Model has timed out in processing the request." }, "timeout"],
    ["ServiceUnavailableException", 503, amzn("ServiceUnavailableException"), { message: "Service is unavailable." }, "overloaded"],
    ["ModelNotReadyException", 429, amzn("ModelNotReadyException"), { message: "Model is not ready to serve inference requests." }, "overloaded"],
    ["ModelErrorException (424)", 424, amzn("ModelErrorException"), { message: "The model failed." }, "server_error"],
    ["InternalServerException", 500, amzn("InternalServerException"), { message: "Internal server error" }, "server_error"],
    ["ValidationException", 400, amzn("ValidationException"), { message: "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint" }, "invalid_request"],
    ["ValidationException: Input is too long", 400, amzn("ValidationException"), { message: "Input is too long for requested model." }, "context_length_exceeded"],
    ["AccessDeniedException (IAM's Message)", 403, amzn("AccessDeniedException"), { Message: "User: arn:aws:iam::1:user/x is not authorized to perform: bedrock:InvokeModel" }, "auth"],
    ["UnrecognizedClientException", 403, amzn("UnrecognizedClientException"), { message: "The security token included in the request is invalid." }, "auth"],
    ["ResourceNotFoundException", 404, amzn("ResourceNotFoundException"), { message: "Could not resolve the foundation model." }, "not_found"],
    ["the type in the body's __type", 400, {}, { __type: "com.amazon.coral.validate#ValidationException", message: "Input is too long for requested model." }, "context_length_exceeded"],
  ]);
});

describe("Cohere", () => {
  table(cohereAdapter, [
    ["400 too many tokens", 400, {}, { id: "a", message: "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292. Try using a shorter prompt, or enabling prompt truncating." }, "context_length_exceeded"],
    ["400 invalid request", 400, {}, { id: "a", message: "invalid request: message must be at least 1 token long or tool results must be specified." }, "invalid_request"],
    ["401 invalid api token", 401, {}, { id: "a", message: "invalid api token" }, "auth"],
    ["402 payment required", 402, {}, { id: "a", message: "Please add a payment method." }, "rate_limited"],
    ["404", 404, {}, { id: "a", message: "model 'command-x' not found" }, "not_found"],
    ["429 trial key", 429, { "retry-after": "60" }, { id: "a", message: "You are using a Trial key, which is limited to 10 API calls / minute." }, "rate_limited", 60_000],
    ["499 cancelled", 499, {}, { id: "a", message: "request cancelled by the user" }, "cancelled"],
    ["500", 500, {}, { id: "a", message: "internal server error, this has been reported to our developers" }, "server_error"],
    ["503", 503, {}, "upstream connect error or disconnect/reset before headers", "overloaded"],
  ]);
});

describe("waits", () => {
  it("reads OpenAI's Go durations", () => {
    expect(goDuration("1s")).toBe(1000);
    expect(goDuration("6m0s")).toBe(360_000);
    expect(goDuration("1h2m3.5s")).toBe(3_723_500);
    expect(goDuration("20ms")).toBe(20);
    expect(goDuration("soon")).toBeUndefined();
  });
  it("reads Retry-After as an HTTP date", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterOf({ "retry-after": "Thu, 01 Jan 2026 00:00:09 GMT" }, now)).toBe(9000);
  });
  it("keeps a wait only for rate limits and overload", () => {
    expect(openaiAdapter.classify(400, { "retry-after": "5" }, "{}").retryAfterMs).toBeUndefined();
    expect(openaiAdapter.classify(500, { "retry-after": "5" }, "{}").retryAfterMs).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------
// In-stream error events, one per streaming format
// ---------------------------------------------------------------------------

describe("stream error events", () => {
  it("OpenAI: a `data: {\"error\":…}` event is read by the same classify", () => {
    const data = JSON.stringify(oai("The server is overloaded", "server_error", "rate_limit_exceeded"));
    expect(openaiAdapter.classify(200, {}, data).errorType).toBe("rate_limited");
  });

  it("Anthropic: `event: error` with overloaded_error is an overload", () => {
    const t = anthropicStream("m", 0);
    const r = t.push(Buffer.from(`event: error\ndata: ${JSON.stringify(ant("overloaded_error", "Overloaded"))}\n\n`));
    expect(r).toMatchObject({ error: "Overloaded", errorType: "overloaded" });
  });

  it("Gemini: an error event with its google.rpc status (and retryDelay)", () => {
    const t = new GeminiStreamTranslator("m");
    const body = gerr(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "2s" }]);
    expect(t.push(Buffer.from(`data: ${JSON.stringify(body)}\r\n\r\n`))).toMatchObject({ errorType: "rate_limited", retryAfterMs: 2000 });
    const u = new GeminiStreamTranslator("m");
    expect(u.push(Buffer.from(`data: ${JSON.stringify(gerr(503, "UNAVAILABLE", "The model is overloaded."))}\n\n`)).errorType).toBe("overloaded");
  });

  it.each([
    ["throttlingException", "rate_limited"],
    ["modelStreamErrorException", "server_error"],
    ["serviceUnavailableException", "overloaded"],
    ["validationException", "invalid_request"],
    ["internalServerException", "server_error"],
  ] as const)("Bedrock: an exception frame %s", (exception, errorType) => {
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const frame = codec.encode({
      headers: { ":message-type": { type: "string", value: "exception" }, ":exception-type": { type: "string", value: exception }, ":content-type": { type: "string", value: "application/json" } },
      body: fromUtf8(JSON.stringify({ message: "it failed" })),
    });
    const r = new ConverseStreamTranslator("m").push(Buffer.from(frame));
    expect(r.errorType).toBe(errorType);
    expect(r.error).toBe(`${exception}: it failed`);
  });

  it.each([
    ["ERROR", "server_error"],
    ["ERROR_TOXIC", "content_filter"],
    ["ERROR_LIMIT", "context_length_exceeded"],
  ] as const)("Cohere: message-end with finish_reason %s", (reason, errorType) => {
    const t = new CohereStream("m", 0);
    const r = t.push(Buffer.from(`event: message-end\ndata: ${JSON.stringify({ type: "message-end", delta: { finish_reason: reason } })}\n\n`));
    expect(r.errorType).toBe(errorType);
  });
});

// ---------------------------------------------------------------------------
// The property: total, and closed
// ---------------------------------------------------------------------------

const ADAPTERS: [string, Adapter][] = [
  ["openai", openaiAdapter],
  ["azure", azureAdapter],
  ["anthropic", anthropicAdapter],
  ["gemini", geminiAdapter],
  ["vertex", vertexAdapter],
  ["bedrock", bedrockAdapter],
  ["cohere", cohereAdapter],
];

/** Bodies near each provider's shape, with any value in every slot. */
const body = fc.oneof(
  fc.string(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.record({ error: fc.oneof(fc.jsonValue(), fc.record({ message: fc.jsonValue(), type: fc.jsonValue(), code: fc.jsonValue(), status: fc.jsonValue(), details: fc.jsonValue(), innererror: fc.jsonValue() }, { requiredKeys: [] })) }).map((v) => JSON.stringify(v)),
  fc.record({ type: fc.constant("error"), error: fc.record({ type: fc.oneof(fc.string(), fc.constantFrom("overloaded_error", "__proto__", "constructor", "toString")), message: fc.jsonValue() }) }).map((v) => JSON.stringify(v)),
  fc.record({ __type: fc.oneof(fc.string(), fc.constantFrom("toString", "__proto__", "a#b:c")), message: fc.jsonValue(), Message: fc.jsonValue() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.array(fc.record({ error: fc.jsonValue() })).map((v) => JSON.stringify(v)),
);
const headerValue = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 2 }), fc.constant(undefined));
const headers = fc.dictionary(fc.constantFrom("retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens", "x-amzn-errortype", "constructor", "__proto__"), headerValue);

describe("classify, for any status, headers and body", () => {
  it.each(ADAPTERS)("%s: never throws, answers a member of the vocabulary, a non-negative wait and a one-line message", (_, adapter) => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), headers, body, (status, h, b) => {
        const c = adapter.classify(status, h, b);
        expect(isErrorType(c.errorType)).toBe(true);
        expect(ERROR_TYPES).toContain(c.errorType);
        if (c.retryAfterMs !== undefined) expect(c.retryAfterMs).toBeGreaterThanOrEqual(0);
        expect(typeof c.message).toBe("string");
        expect(c.message).not.toMatch(/\n/);
      }),
      { numRuns: 500 },
    );
  });
});
