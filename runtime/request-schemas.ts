// What a well-formed request body is, per surface, as JSON Schema: the fields
// the gateway or an adapter reads, with the types they are read as. Plain data:
// compiler/gen-request-validators.ts compiles it, once, into
// runtime/request-validators.generated.mjs (ajv standalone code), so the
// gateway bundle carries the checks but not ajv. Every schema a caller can
// fail carries a `description`: it is what the error says was expected.

export type Surface = "chat" | "completions" | "embeddings" | "anthropic";

// Token counts enter budget math: bounded so a product never leaves integer range.
const TOKENS = { type: "integer", minimum: 1, maximum: 2_147_483_647, description: "a positive integer (at most 2147483647)" };
const FANOUT = { type: "integer", minimum: 1, maximum: 128, description: "an integer from 1 to 128" };
const NUMBER = { type: "number", description: "a number" };
const STRING = { type: "string", description: "a string" };
const BOOLEAN = { type: "boolean", description: "true or false" };
const OBJECT = { type: "object", description: "an object" };
const MODEL = { type: "string", pattern: "^[\\s\\S]", description: "a model name" };
const STRINGS = { type: "array", items: STRING, description: "an array of strings" };
const OBJECTS = { type: "array", items: OBJECT, description: "an array of objects" };
const TOKEN_IDS = { type: "array", items: { type: "integer", minimum: 0, description: "a token id" }, description: "an array of token ids" };
const NULLABLE_TOKENS = { ...TOKENS, type: ["integer", "null"], description: "a positive integer (at most 2147483647) or null" };
/** A number or null; `type` lists compile far smaller than an `anyOf` with null. */
const nullable = (type: string, description: string, more: object = {}) => ({ type: [type, "null"], ...more, description });

// A part of an OpenAI message's content: every part is an object naming its type.
const OPENAI_PART = { type: "object", required: ["type"], properties: { type: STRING }, description: "a content part (an object with a `type`)" };
const OPENAI_MESSAGE = {
  type: "object",
  required: ["role"],
  properties: {
    role: STRING,
    content: { anyOf: [STRING, { type: "array", items: OPENAI_PART }, { type: "null" }], description: "a string, an array of content parts, or null" },
    name: STRING,
    tool_calls: OBJECTS,
    tool_call_id: STRING,
  },
  description: "a message object with a `role`",
};

/** Fields the OpenAI surfaces share. */
const OPENAI_COMMON = {
  model: MODEL,
  stream: BOOLEAN,
  stream_options: nullable("object", "an object or null", { properties: { include_usage: BOOLEAN } }),
  user: STRING,
  n: FANOUT,
  temperature: nullable("number", "a number or null"),
  top_p: nullable("number", "a number or null"),
  presence_penalty: nullable("number", "a number or null"),
  frequency_penalty: nullable("number", "a number or null"),
  seed: nullable("integer", "an integer or null"),
  stop: { anyOf: [STRING, STRINGS, { type: "null" }], description: "a string, an array of strings, or null" },
  logit_bias: nullable("object", "an object of numbers, or null", { additionalProperties: NUMBER }),
};

const CHAT = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...OPENAI_COMMON,
    messages: { type: "array", items: OPENAI_MESSAGE, description: "an array of messages" },
    max_tokens: NULLABLE_TOKENS,
    max_completion_tokens: NULLABLE_TOKENS,
    tools: OBJECTS,
    tool_choice: { anyOf: [STRING, OBJECT], description: "a string or an object" },
    parallel_tool_calls: BOOLEAN,
    response_format: OBJECT,
    logprobs: nullable("boolean", "true, false or null"),
    top_logprobs: nullable("integer", "an integer from 0 to 20, or null", { minimum: 0, maximum: 20 }),
  },
};

const PROMPT = { anyOf: [STRING, STRINGS, TOKEN_IDS, { type: "array", items: TOKEN_IDS }], description: "a string, an array of strings, an array of token ids, or an array of those" };

const COMPLETIONS = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...OPENAI_COMMON,
    prompt: PROMPT,
    max_tokens: NULLABLE_TOKENS,
    best_of: nullable("integer", "an integer from 1 to 128, or null", { minimum: 1, maximum: 128 }),
    echo: BOOLEAN,
    suffix: nullable("string", "a string or null"),
    logprobs: nullable("integer", "an integer from 0 to 5, or null", { minimum: 0, maximum: 5 }),
  },
};

const EMBEDDINGS = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: MODEL,
    input: PROMPT,
    dimensions: TOKENS,
    encoding_format: { enum: ["float", "base64"], description: "`float` or `base64`" },
    user: STRING,
  },
};

// Anthropic's content blocks: what each type needs, as Anthropic's API requires it.
const block = (type: string, required: string[], properties: object) => ({
  if: { properties: { type: { const: type } }, required: ["type"] },
  then: { required, properties },
});
const ANTHROPIC_BLOCK = {
  type: "object",
  required: ["type"],
  properties: { type: STRING },
  allOf: [
    block("text", ["text"], { text: STRING }),
    block("image", ["source"], { source: { type: "object", required: ["type"], properties: { type: STRING, media_type: STRING, data: STRING, url: STRING }, description: "an image source object" } }),
    block("tool_use", ["id", "name"], { id: STRING, name: STRING, input: OBJECT }),
    block("tool_result", ["tool_use_id"], { tool_use_id: STRING, content: { anyOf: [STRING, OBJECTS], description: "a string or an array of content blocks" } }),
  ],
  description: "a content block (an object with a `type`)",
};

const ANTHROPIC = {
  type: "object",
  required: ["model", "max_tokens", "messages"],
  properties: {
    model: MODEL,
    max_tokens: TOKENS,
    messages: {
      type: "array",
      items: {
        type: "object",
        required: ["role", "content"],
        properties: {
          // `system` turns mid-conversation: Claude Code sends them under Anthropic's mid-conversation-system beta.
          role: { enum: ["user", "assistant", "system"], description: "`user`, `assistant` or `system`" },
          content: { anyOf: [STRING, { type: "array", items: ANTHROPIC_BLOCK }], description: "a string or an array of content blocks" },
        },
        description: "a message object",
      },
      description: "an array of messages",
    },
    system: { anyOf: [STRING, { type: "array", items: { type: "object", required: ["type", "text"], properties: { type: STRING, text: STRING } } }], description: "a string or an array of text blocks" },
    temperature: NUMBER,
    top_p: NUMBER,
    top_k: { type: "integer", minimum: 0, description: "a non-negative integer" },
    stop_sequences: STRINGS,
    stream: BOOLEAN,
    metadata: OBJECT,
    tools: { type: "array", items: { type: "object", required: ["name"], properties: { name: STRING, description: STRING, input_schema: OBJECT } }, description: "an array of tool definitions" },
    tool_choice: { type: "object", required: ["type"], properties: { type: { enum: ["auto", "any", "tool", "none"], description: "`auto`, `any`, `tool` or `none`" }, name: STRING }, description: "an object with a `type`" },
  },
};

export const SCHEMAS: Record<Surface, object> = { chat: CHAT, completions: COMPLETIONS, embeddings: EMBEDDINGS, anthropic: ANTHROPIC };
