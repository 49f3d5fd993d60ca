// Reading an answer the gateway relays untouched: where its usage is and what
// ends its stream, per API. Governance reads usage in the native format — input,
// cache writes and cache reads apart — so budgets price each at its own rate.
//
//   API / endpoint          usage (JSON answer)                 stream ends at
//   openai chat, legacy     usage.prompt_tokens (+ cached)      data: [DONE]
//   openai responses        response.usage.input_tokens (…)     response.completed | .incomplete | .failed
//   anthropic messages      usage.input_tokens + cache_*        message_stop
//   gemini generate         usageMetadata.promptTokenCount …    an event with a finishReason
//   count_tokens (both)     nothing to bill: zero               (JSON only)
import { usageOf as anthropicUsage } from "../providers/anthropic.ts";
import type { ApiFormat, Endpoint, Usage } from "../providers/adapter.ts";
import { usageOf as geminiUsage } from "../providers/gemini.ts";
import { openaiAdapter } from "../providers/openai.ts";
import { isObject, type Json } from "../json.ts";

export interface Dialect {
  /** Usage of a whole JSON answer. */
  usage(json: unknown): Usage | undefined;
  /** A cheap test that an SSE event's data may carry usage (parsed only then). */
  mayCarryUsage: RegExp;
  /** Usage an event's parsed data carries, given what earlier events said (Anthropic splits it over two). */
  eventUsage(json: unknown, before: Usage | undefined): Usage | undefined;
  /** Whether an event's data completes the stream. */
  ends(data: string): boolean;
  /** The data of an error event that tells the caller, in this API's terms, that the stream broke. */
  interrupted(message: string): string;
}

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

const FREE: Usage = { input: 0, output: 0, cached: 0 };

function openaiInterrupted(message: string): string {
  return `data: ${JSON.stringify({ error: { message, type: "upstream_error", code: "stream_interrupted", param: null } })}\n\n`;
}

const chat: Dialect = {
  usage: openaiAdapter.usage,
  mayCarryUsage: /"usage"\s*:\s*\{/,
  eventUsage: (json) => openaiAdapter.usage(json),
  ends: (data) => data === "[DONE]",
  interrupted: openaiInterrupted,
};

/** The Responses API's usage object (input includes cached; cache writes where reported). */
export function responsesUsage(u: unknown): Usage | undefined {
  if (!isObject(u) || typeof u.input_tokens !== "number") return undefined;
  const details = isObject(u.input_tokens_details) ? u.input_tokens_details : {};
  const cacheWrite = num(details.cache_write_tokens);
  return { input: u.input_tokens, output: num(u.output_tokens), cached: num(details.cached_tokens), ...(cacheWrite > 0 ? { cacheWrite } : {}) };
}

const RESPONSES_END = /"type"\s*:\s*"response\.(?:completed|incomplete|failed)"/;

const responses: Dialect = {
  usage: (json) => (isObject(json) ? responsesUsage(json.usage) : undefined),
  mayCarryUsage: RESPONSES_END,
  eventUsage: (json) => (isObject(json) && isObject(json.response) ? responsesUsage(json.response.usage) : undefined),
  ends: (data) => data === "[DONE]" || RESPONSES_END.test(data),
  interrupted: (message) => `event: error\ndata: ${JSON.stringify({ type: "error", code: "stream_interrupted", message, param: null, sequence_number: 0 })}\n\n`,
};

const MESSAGE_STOP = /"type"\s*:\s*"message_stop"/;

const messages: Dialect = {
  usage: (json) => (isObject(json) ? anthropicUsage(json.usage) : undefined),
  mayCarryUsage: /"usage"\s*:\s*\{/,
  eventUsage(json, before) {
    if (!isObject(json)) return undefined;
    // message_start carries the input side (and output 1); message_delta the cumulative output, its input fields possibly absent.
    const raw = json.type === "message_start" && isObject(json.message) ? json.message.usage : json.usage;
    if (!isObject(raw)) return undefined;
    const cached = typeof raw.cache_read_input_tokens === "number" ? raw.cache_read_input_tokens : (before?.cached ?? 0);
    const cacheWrite = typeof raw.cache_creation_input_tokens === "number" ? raw.cache_creation_input_tokens : (before?.cacheWrite ?? 0);
    const plain = typeof raw.input_tokens === "number" ? raw.input_tokens : before === undefined ? 0 : before.input - before.cached - (before.cacheWrite ?? 0);
    return { input: plain + cached + cacheWrite, output: typeof raw.output_tokens === "number" ? raw.output_tokens : (before?.output ?? 0), cached, cacheWrite };
  },
  ends: (data) => MESSAGE_STOP.test(data),
  interrupted: (message) => `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`,
};

const generate: Dialect = {
  usage: (json) => (isObject(json) ? geminiUsage(json.usageMetadata) : undefined),
  mayCarryUsage: /"usageMetadata"\s*:\s*\{/,
  eventUsage: (json) => (isObject(json) ? geminiUsage(json.usageMetadata) : undefined),
  ends: (data) => data.includes('"finishReason"'),
  interrupted: (message) => `data: ${JSON.stringify({ error: { code: 502, message, status: "UNAVAILABLE" } })}\n\n`,
};

const counting: Dialect = { ...chat, usage: () => FREE };

/** How to read a relayed answer of `format`'s `endpoint`; reading stored state (`method` GET or DELETE) bills nothing. */
export function dialectOf(format: ApiFormat, endpoint: Endpoint, method?: string): Dialect {
  if (endpoint === "count_tokens" || method !== undefined) return counting;
  if (format === "anthropic") return messages;
  if (format === "gemini") return generate;
  return endpoint === "responses" ? responses : chat;
}
