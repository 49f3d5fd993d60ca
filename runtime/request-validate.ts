// Request bodies checked once, at the edge, per surface: every field the
// gateway or an adapter reads has the type it is read as, and every number is
// finite and in range, before any budget math or translation touches it. A
// malformed field answers 400 naming it (`param`), never a 500 from deep
// inside (`max_tokens: 0.5` once reached a BigInt conversion).
//
// Unknown fields pass: providers add parameters faster than gateways learn them.
//
//   surface body ─► ajv (first error) ─► pick the error a caller can act on ─► HttpError 400 { param }
import AjvModule, { type ErrorObject, type SchemaObject, type ValidateFunction } from "ajv";
import { badRequest, type HttpError } from "./errors.ts";

export type Surface = "chat" | "completions" | "embeddings" | "anthropic";

// Token counts enter budget math: bounded so a product never leaves integer range.
const TOKENS = { type: "integer", minimum: 1, maximum: 2_147_483_647, description: "a positive integer (at most 2147483647)" };
const FANOUT = { type: "integer", minimum: 1, maximum: 128, description: "an integer from 1 to 128" };
const NUMBER = { type: "number", description: "a number" };
const INTEGER = { type: "integer", description: "an integer" };
const STRING = { type: "string", description: "a string" };
const BOOLEAN = { type: "boolean", description: "true or false" };
const OBJECT = { type: "object", description: "an object" };
const MODEL = { type: "string", minLength: 1, description: "a model name" };
const STRINGS = { type: "array", items: STRING, description: "an array of strings" };
const OBJECTS = { type: "array", items: OBJECT, description: "an array of objects" };
const TOKEN_IDS = { type: "array", items: { type: "integer", minimum: 0, description: "a token id" }, description: "an array of token ids" };
const NULLABLE_TOKENS = { anyOf: [TOKENS, { type: "null" }], description: "a positive integer or null" };

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
  stream_options: { anyOf: [{ type: "object", properties: { include_usage: BOOLEAN } }, { type: "null" }], description: "an object or null" },
  user: STRING,
  n: FANOUT,
  temperature: { anyOf: [NUMBER, { type: "null" }], description: "a number or null" },
  top_p: { anyOf: [NUMBER, { type: "null" }], description: "a number or null" },
  presence_penalty: { anyOf: [NUMBER, { type: "null" }], description: "a number or null" },
  frequency_penalty: { anyOf: [NUMBER, { type: "null" }], description: "a number or null" },
  seed: { anyOf: [INTEGER, { type: "null" }], description: "an integer or null" },
  stop: { anyOf: [STRING, STRINGS, { type: "null" }], description: "a string, an array of strings, or null" },
  logit_bias: { anyOf: [{ type: "object", additionalProperties: NUMBER }, { type: "null" }], description: "an object of numbers, or null" },
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
    logprobs: { anyOf: [BOOLEAN, { type: "null" }], description: "true, false or null" },
    top_logprobs: { anyOf: [{ type: "integer", minimum: 0, maximum: 20 }, { type: "null" }], description: "an integer from 0 to 20, or null" },
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
    best_of: { anyOf: [FANOUT, { type: "null" }], description: "an integer from 1 to 128, or null" },
    echo: BOOLEAN,
    suffix: { anyOf: [STRING, { type: "null" }], description: "a string or null" },
    logprobs: { anyOf: [{ type: "integer", minimum: 0, maximum: 5 }, { type: "null" }], description: "an integer from 0 to 5, or null" },
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
          role: { enum: ["user", "assistant"], description: "`user` or `assistant`" },
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

const SCHEMAS: Record<Surface, SchemaObject> = { chat: CHAT, completions: COMPLETIONS, embeddings: EMBEDDINGS, anthropic: ANTHROPIC };

const Ajv = AjvModule as unknown as typeof AjvModule.default;
let ajv: InstanceType<typeof Ajv> | undefined;
const compiled = new Map<Surface, ValidateFunction>();

/** One surface's validator, compiled on first use (a gateway that never sees embeddings never compiles theirs). */
function validator(surface: Surface): ValidateFunction {
  let v = compiled.get(surface);
  if (v === undefined) {
    // strictNumbers refuses NaN and ±Infinity where a number goes: `1e400` parses to Infinity.
    ajv ??= new Ajv({ allErrors: false, verbose: true, strict: false, strictNumbers: true });
    v = ajv.compile(SCHEMAS[surface]);
    compiled.set(surface, v);
  }
  return v;
}

/** A malformed field, as the surface names it: `messages[0].content` (OpenAI) or `messages.0.content` (Anthropic). */
export interface FieldProblem {
  /** The field, in OpenAI's notation. */
  param: string;
  /** The same field as Anthropic's error messages name it. */
  dotted: string;
  message: string;
  code: string;
}

/** Undefined when the body is well-formed for the surface; else its first malformed field. */
export function findProblem(surface: Surface, body: Record<string, unknown>): FieldProblem | undefined {
  const validate = validator(surface);
  if (validate(body)) return undefined;
  return describe(pick(validate.errors ?? []));
}

/** Throws a 400 naming the first malformed field. */
export function validateRequest(surface: Surface, body: Record<string, unknown>): void {
  const problem = findProblem(surface, body);
  if (problem !== undefined) throw problemError(problem);
}

export function problemError(p: FieldProblem): HttpError {
  return badRequest(p.message, p.code, p.param);
}

/**
 * The error a caller can act on. ajv reports the failing `anyOf` last, after
 * each branch's own error; when exactly one branch has the value's JSON type
 * (an array where "a string or an array of parts" was wanted), the problem is
 * inside that branch, so descend into it.
 */
function pick(all: ErrorObject[]): ErrorObject {
  // An `if`/`then` failure is reported twice: its `then`'s own error, then "must match then"; keep the first.
  const errors = all.filter((x) => x.keyword !== "if");
  let e = errors[errors.length - 1];
  while (e.keyword === "anyOf") {
    const branches = e.schema as { type?: string | string[] }[];
    const matching = branches.flatMap((b, i) => (typeMatches(b.type, e.data) ? [i] : []));
    if (matching.length !== 1) break;
    const prefix = `${e.schemaPath}/${matching[0]}/`;
    const inner = errors.filter((x) => x.schemaPath.startsWith(prefix));
    if (inner.length === 0) break;
    e = inner[inner.length - 1];
  }
  return e;
}

function typeMatches(type: string | string[] | undefined, data: unknown): boolean {
  if (type === undefined) return false;
  const kind = kindOf(data);
  return (Array.isArray(type) ? type : [type]).some((t) => t === kind || (t === "number" && kind === "integer") || (t === "integer" && kind === "number"));
}

function kindOf(data: unknown): string {
  if (data === null) return "null";
  if (Array.isArray(data)) return "array";
  if (typeof data === "number") return Number.isInteger(data) ? "integer" : "number";
  return typeof data;
}

/** What a caller reads: the value's kind, never the value itself when it is large. */
function shown(data: unknown): string {
  if (typeof data === "number") return Number.isFinite(data) ? String(data) : "a number out of range";
  const kind = kindOf(data);
  return kind === "integer" || kind === "number" ? kind : kind === "object" ? "an object" : kind === "array" ? "an array" : kind === "null" ? "null" : `a ${kind}`;
}

function describe(e: ErrorObject): FieldProblem {
  const segments = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (e.keyword === "required") segments.push((e.params as { missingProperty: string }).missingProperty);
  const param = segments.reduce((p, s) => (/^\d+$/.test(s) ? `${p}[${s}]` : p === "" ? s : `${p}.${s}`), "");
  const dotted = segments.join(".");
  const field = param === "" ? "the request body" : `'${param}'`;
  const expected = (e.parentSchema as { description?: string } | undefined)?.description ?? `valid (${e.message})`;
  if (e.keyword === "required") {
    return { param, dotted, code: "missing_required_parameter", message: `Missing required parameter: ${field}.` };
  }
  if (e.keyword === "type" || e.keyword === "anyOf") {
    // 0.5 where an integer goes is a type problem in OpenAI's words too ("got a decimal number").
    const got = typeof e.data === "number" && Number.isFinite(e.data) && !Number.isInteger(e.data) ? "a decimal number" : shown(e.data);
    return { param, dotted, code: "invalid_type", message: `Invalid type for ${field}: expected ${expected}, but got ${got} instead.` };
  }
  return { param, dotted, code: "invalid_value", message: `Invalid value for ${field}: expected ${expected}, but got ${shown(e.data)} instead.` };
}

/** The problem as Anthropic's API words it: the dotted field, a colon, what is wrong. */
export function anthropicMessage(p: FieldProblem): string {
  if (p.dotted === "") return p.message;
  return p.code === "missing_required_parameter" ? `${p.dotted}: Field required` : `${p.dotted}: ${p.message}`;
}
