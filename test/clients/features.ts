import { it } from "vitest";

/**
 * What the gateway on this branch serves yet, for the client scenarios that
 * need it. A test that needs a feature not landed runs as `it.fails`: expected
 * to fail now, and reported as a failure the moment the feature works — so
 * whoever lands a feature sets its flag here, and the tests turn into plain ones.
 */
export const LANDED = {
  /** `/anthropic/v1/messages` relayed as is to Anthropic accounts (body, anthropic-* headers, answer, usage), `count_tokens`, HEAD. */
  anthropicPassthrough: true,
  /** `GET /anthropic/v1/models` listing what an Anthropic account serves on a catch-all route. */
  anthropicModelList: true,
  /** `POST /v1/responses` (and GET/DELETE, `previous_response_id`): passthrough to OpenAI, translated for others. */
  responsesApi: true,
  /** A field another format cannot carry: 400 `unsupported_parameter` by name, or dropped under `drop_unsupported_params`. */
  unsupportedParams: true,
  /** Chat `response_format` json_schema carried to Anthropic as structured output (not dropped). */
  structuredOutputToAnthropic: true,
  /** `/v1beta/models/{m}:generateContent | :streamGenerateContent | :countTokens`. */
  geminiApi: true,
  /** Google's `x-goog-*` request headers (x-goog-api-client, ...) relayed on the Gemini passthrough, as `anthropic-*` are. */
  googHeaders: true,
};

export type Feature = keyof typeof LANDED;

/** `it` when every feature named has landed, else `it.fails` (the test names what it waits for). */
export function needs(...features: Feature[]): typeof it | typeof it.fails {
  return features.every((f) => LANDED[f]) ? it : it.fails;
}
