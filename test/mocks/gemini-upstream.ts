/**
 * A local mock of Google's Gemini API (generativelanguage.googleapis.com) and
 * of Vertex AI's Gemini endpoints (REGION-aiplatform.googleapis.com), for
 * gateway integration tests. One server answers both path forms:
 *
 *   POST /v1beta/models/{model}:generateContent | :streamGenerateContent | :batchEmbedContents
 *        key in `x-goog-api-key` (or `?key=`)
 *   POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent
 *        | :streamGenerateContent | :predict
 *        `Authorization: Bearer <access token>`
 *
 * Shapes follow the REST reference (GenerateContentRequest/Response,
 * UsageMetadata, FinishReason, BatchEmbedContents, the text-embedding predict
 * schema) and Google's error body `{"error":{"code","message","status"}}`.
 * `streamGenerateContent?alt=sse` answers SSE events (`data: {...}\r\n\r\n`, no
 * `[DONE]`: the last event carries `finishReason` and the full usage); without
 * `alt=sse` it answers one JSON array, as the real API does. Like the real API it
 * refuses unknown fields (a body in OpenAI's shape gets a 400).
 *
 * Order of handling for every request:
 *   1. the body is read and the request is recorded in `requests`;
 *   2. the route is matched (404 otherwise);
 *   3. credentials are checked: Gemini 403 without a key / 400 API_KEY_INVALID
 *      with a wrong one; Vertex 401 UNAUTHENTICATED;
 *   4. one behavior is taken from `queue` (or `fallback` when it is empty) and
 *      applied; an `ok` request is then validated (400 INVALID_ARGUMENT).
 *      Steps 2 and 3 do not consume a behavior.
 *
 * Answers: the last user text echoed (`[name] you said: ...`); a functionCall
 * (with a thoughtSignature, as Gemini 3 sends) when tools are declared, function
 * calling is not NONE and the last turn is the user's; `[name] tool said: ...`
 * after function responses. JSON mode (`responseMimeType: application/json` with
 * `responseJsonSchema` or `responseSchema`) answers a JSON value of the schema,
 * as Gemini CLI's model router expects. Also `:countTokens` and `GET
 * /v1beta/models[/{model}]`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { mockServer } from "./mock-server.ts";
import { sampleOf } from "./sample-json.ts";

export type Behavior =
  /** `tool`: call this function with these args (when declared and the last turn is the user's). */
  | { kind: "ok"; delayMs?: number; tool?: { name: string; input: Record<string, unknown> } }
  | { kind: "status"; status: number; retryAfterSeconds?: number; body?: unknown }
  | { kind: "reset" }
  | { kind: "hang" }
  | { kind: "stream-fail-after"; chunks: number }
  | { kind: "stream-error-first" };

export interface RecordedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** Which API's path form it used, when it matched one. */
  api?: "gemini" | "vertex";
  model?: string;
  action?: string;
  project?: string;
  location?: string;
}

export interface GeminiMock {
  /** Origin, the base URL of both APIs: http://127.0.0.1:PORT */
  url: string;
  name: string;
  requests: RecordedRequest[];
  queue: Behavior[];
  fallback: Behavior;
  /** thoughtSignatures handed out with function calls. */
  signatures: Set<string>;
  /** Every generate answer sent: the JSON body, or the stream's events in order. */
  answers: { path: string; body?: any; events?: any[] }[];
  close(): Promise<void>;
}

export interface StartOptions {
  name?: string;
  stream?: { chunks?: number; intervalMs?: number };
  fallback?: Behavior;
  /** The only Gemini API key accepted; any non-empty key when absent. */
  apiKey?: string;
  /** The only Vertex access token accepted; any non-empty token when absent. */
  accessToken?: string;
  /** thoughtsTokenCount reported with each answer (Gemini 2.5 thinks by default); 0 leaves it out. */
  thoughtsTokens?: number;
  /** cachedContentTokenCount reported (implicit caching); 0 leaves it out. */
  cachedTokens?: number;
  /** Refuse a model turn whose first functionCall has no thoughtSignature (Gemini 3). Default true. */
  requireThoughtSignatures?: boolean;
}

// ---------------------------------------------------------------------------
// Google error bodies
// ---------------------------------------------------------------------------

const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "NOT_IMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

export function googleError(code: number, message: string, status = STATUS_NAMES[code] ?? (code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"), details?: unknown[]) {
  const error: Record<string, unknown> = { code, message, status };
  if (details !== undefined) error.details = details;
  return { error };
}

/** Default Google-shaped error body for an HTTP status. */
export function defaultErrorBody(code: number): ReturnType<typeof googleError> {
  switch (code) {
    case 400:
      return googleError(400, "Request contains an invalid argument.");
    case 401:
      return googleError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.");
    case 403:
      return googleError(403, "The caller does not have permission");
    case 404:
      return googleError(404, "Requested entity was not found.");
    case 429:
      return googleError(429, "You exceeded your current quota, please check your plan and billing details.", "RESOURCE_EXHAUSTED", [
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "20s" },
      ]);
    case 500:
      return googleError(500, "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting");
    case 503:
      return googleError(503, "The model is overloaded. Please try again later.");
    case 504:
      return googleError(504, "The request timed out. Please try again.");
    default:
      return googleError(code, code >= 500 ? `Upstream error (HTTP ${code}).` : `Request failed (HTTP ${code}).`);
  }
}

class Invalid extends Error {}

// ---------------------------------------------------------------------------
// Deterministic content helpers
// ---------------------------------------------------------------------------

function tokensForChars(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

/** At most `n` non-empty pieces (by code point) whose concatenation is `text`. */
function splitText(text: string, n: number): string[] {
  const cps = Array.from(text);
  const count = Math.max(1, Math.min(Math.floor(n) || 1, cps.length || 1));
  const out: string[] = [];
  const base = Math.floor(cps.length / count);
  const extra = cps.length % count;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push(cps.slice(at, at + len).join(""));
    at += len;
  }
  return out;
}

function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Deterministic vector; every value is k/1024 so it survives a float32 round trip exactly. */
export function embeddingFor(text: string, dims: number): number[] {
  const v: number[] = [];
  for (let i = 0; i < dims; i++) v.push(((fnv1a(text, i + 1) % 2001) - 1000) / 1024);
  return v;
}

let counter = 0;
function responseId(): string {
  counter += 1;
  return `mockResp${counter.toString(36).padStart(4, "0")}${Math.random().toString(36).slice(2, 10)}`;
}

// ---------------------------------------------------------------------------
// Request validation (the fields the REST reference names; unknown ones are refused)
// ---------------------------------------------------------------------------

const REQUEST_FIELDS = new Set(["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent", "labels"]);
const PART_FIELDS = new Set(["text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata"]);
const PART_DATA = ["text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"];
const GENERATION_FIELDS = new Set([
  "stopSequences",
  "responseMimeType",
  "responseSchema",
  "responseJsonSchema",
  "responseModalities",
  "candidateCount",
  "maxOutputTokens",
  "temperature",
  "topP",
  "topK",
  "seed",
  "presencePenalty",
  "frequencyPenalty",
  "responseLogprobs",
  "logprobs",
  "thinkingConfig",
  "mediaResolution",
]);
const DECLARATION_FIELDS = new Set(["name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"]);

function unknownName(name: string, at?: string): Invalid {
  return new Invalid(`Invalid JSON payload received. Unknown name "${name}"${at ? ` at '${at}'` : ""}: Cannot find field.`);
}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === "object" && !Array.isArray(v);

function validateGenerate(body: any, requireSignatures: boolean, signatures: Set<string>): void {
  if (!isObject(body)) throw new Invalid("Invalid JSON payload received. Expected an object.");
  for (const k of Object.keys(body)) if (!REQUEST_FIELDS.has(k)) throw unknownName(k);
  if (!Array.isArray(body.contents) || body.contents.length === 0) throw new Invalid("* GenerateContentRequest.contents: contents is not specified\n");
  const checkParts = (parts: unknown, at: string) => {
    if (!Array.isArray(parts) || parts.length === 0) throw new Invalid(`* GenerateContentRequest.${at}.parts: contents.parts must not be empty.\n`);
    parts.forEach((p, j) => {
      if (!isObject(p)) throw new Invalid(`Invalid value at '${at}.parts[${j}]'`);
      for (const k of Object.keys(p)) if (!PART_FIELDS.has(k)) throw unknownName(k, `${at}.parts[${j}]`);
      const data = PART_DATA.filter((k) => p[k] !== undefined);
      if (data.length !== 1) throw new Invalid(`* GenerateContentRequest.${at}.parts[${j}].data: required oneof field 'data' must have one initialized field\n`);
      if (p.text !== undefined && typeof p.text !== "string") throw new Invalid(`Invalid value at '${at}.parts[${j}].text' (TYPE_STRING)`);
      if (p.inlineData !== undefined && (typeof p.inlineData.mimeType !== "string" || typeof p.inlineData.data !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(p.inlineData.data))) {
        throw new Invalid(`Invalid value at '${at}.parts[${j}].inline_data.data' (TYPE_BYTES), Base64 decoding failed`);
      }
      if (p.fileData !== undefined && typeof p.fileData.fileUri !== "string") throw new Invalid(`* GenerateContentRequest.${at}.parts[${j}].file_data.file_uri: file_uri is required\n`);
      if (p.functionCall !== undefined && (typeof p.functionCall.name !== "string" || (p.functionCall.args !== undefined && !isObject(p.functionCall.args)))) {
        throw new Invalid(`Invalid value at '${at}.parts[${j}].function_call.args' (type.googleapis.com/google.protobuf.Struct)`);
      }
      if (p.functionResponse !== undefined && (typeof p.functionResponse.name !== "string" || !isObject(p.functionResponse.response))) {
        throw new Invalid(`Invalid value at '${at}.parts[${j}].function_response.response' (type.googleapis.com/google.protobuf.Struct), ${JSON.stringify(p.functionResponse.response)}`);
      }
      if (p.thoughtSignature !== undefined && typeof p.thoughtSignature !== "string") throw new Invalid(`Invalid value at '${at}.parts[${j}].thought_signature' (TYPE_BYTES)`);
    });
  };
  if (body.systemInstruction !== undefined) {
    if (!isObject(body.systemInstruction)) throw new Invalid("Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)");
    checkParts(body.systemInstruction.parts, "systemInstruction");
  }
  let previous: any;
  body.contents.forEach((c: any, i: number) => {
    if (!isObject(c)) throw new Invalid(`Invalid value at 'contents[${i}]'`);
    for (const k of Object.keys(c)) if (k !== "role" && k !== "parts") throw unknownName(k, `contents[${i}]`);
    if (c.role !== undefined && c.role !== "user" && c.role !== "model") throw new Invalid("Please use a valid role: user, model.");
    checkParts(c.parts, `contents[${i}]`);
    const calls = c.parts.filter((p: any) => p.functionCall !== undefined);
    if (c.role === "model" && calls.length > 0) {
      const sig = calls[0].thoughtSignature;
      if (sig === undefined && requireSignatures) {
        throw new Invalid(`Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`${calls[0].functionCall.name}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`);
      }
      for (const p of calls) {
        if (p.thoughtSignature !== undefined && p.thoughtSignature !== "skip_thought_signature_validator" && !signatures.has(p.thoughtSignature)) {
          throw new Invalid(`Corrupted thought signature.`);
        }
      }
    }
    const responses = c.parts.filter((p: any) => p.functionResponse !== undefined);
    if (responses.length > 0) {
      const made = previous?.role === "model" ? previous.parts.filter((p: any) => p.functionCall !== undefined) : [];
      if (made.length !== responses.length) {
        throw new Invalid("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.");
      }
      const names = made.map((p: any) => p.functionCall.name).sort();
      const answered = responses.map((p: any) => p.functionResponse.name).sort();
      if (JSON.stringify(names) !== JSON.stringify(answered)) throw new Invalid("Please ensure that function response turn comes immediately after a function call turn, with the names of the calls.");
    }
    previous = c;
  });
  const declared = new Set<string>();
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw new Invalid("Invalid value at 'tools'");
    body.tools.forEach((t: any, i: number) => {
      if (!isObject(t)) throw new Invalid(`Invalid value at 'tools[${i}]'`);
      for (const k of Object.keys(t)) if (!["functionDeclarations", "codeExecution", "googleSearch", "urlContext"].includes(k)) throw unknownName(k, `tools[${i}]`);
      (t.functionDeclarations ?? []).forEach((d: any, j: number) => {
        for (const k of Object.keys(d ?? {})) if (!DECLARATION_FIELDS.has(k)) throw unknownName(k, `tools[${i}].function_declarations[${j}]`);
        if (typeof d?.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/.test(d.name)) throw new Invalid(`* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name.\n`);
        if (d.parameters !== undefined && d.parametersJsonSchema !== undefined) throw new Invalid(`* GenerateContentRequest.tools[${i}].function_declarations[${j}]: parameters and parameters_json_schema are mutually exclusive.\n`);
        declared.add(d.name);
      });
    });
  }
  const fcc = body.toolConfig?.functionCallingConfig;
  if (body.toolConfig !== undefined) {
    if (!isObject(body.toolConfig) || Object.keys(body.toolConfig).some((k) => k !== "functionCallingConfig" && k !== "retrievalConfig")) throw new Invalid("Invalid value at 'tool_config'");
    if (fcc !== undefined) {
      if (fcc.mode !== undefined && !["AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"].includes(fcc.mode)) throw new Invalid(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "${fcc.mode}"`);
      if (fcc.allowedFunctionNames !== undefined) {
        if (fcc.mode !== "ANY" && fcc.mode !== "VALIDATED") throw new Invalid("* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: allowed_function_names is only allowed when function calling mode is ANY.\n");
        for (const n of fcc.allowedFunctionNames) if (!declared.has(n)) throw new Invalid(`* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: ${n} is not a declared function.\n`);
      }
    }
  }
  if (body.generationConfig !== undefined) {
    if (!isObject(body.generationConfig)) throw new Invalid("Invalid value at 'generation_config'");
    for (const k of Object.keys(body.generationConfig)) if (!GENERATION_FIELDS.has(k)) throw unknownName(k, "generation_config");
    const g = body.generationConfig;
    if (g.responseJsonSchema !== undefined && g.responseMimeType !== "application/json") throw new Invalid("* GenerateContentRequest.generation_config.response_mime_type: must be application/json when response_json_schema is set.\n");
    if (g.stopSequences !== undefined && (!Array.isArray(g.stopSequences) || g.stopSequences.length > 5)) throw new Invalid("* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences.\n");
  }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

interface Route {
  api: "gemini" | "vertex";
  model: string;
  action: string;
  project?: string;
  location?: string;
}

const GEMINI_ROUTE = /^\/(v1beta|v1)\/models\/([^/:]+):([A-Za-z]+)$/;
const VERTEX_ROUTE = /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):([A-Za-z]+)$/;
const GEMINI_ACTIONS = ["generateContent", "streamGenerateContent", "batchEmbedContents", "countTokens"];
const MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3.5-flash-lite"];

/** GET /v1beta/models and /v1beta/models/{model}: the API's Model resources. */
function modelsAnswer(path: string): { status: number; body: unknown } | null {
  const model = (id: string) => ({
    name: `models/${id}`,
    version: "001",
    displayName: id,
    description: `Mock ${id}`,
    inputTokenLimit: 1048576,
    outputTokenLimit: 65536,
    supportedGenerationMethods: ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
    thinking: true,
  });
  if (/^\/(v1beta|v1)\/models$/.test(path)) return { status: 200, body: { models: MODELS.map(model) } };
  const m = /^\/(v1beta|v1)\/models\/([^/:]+)$/.exec(path);
  if (!m) return null;
  return MODELS.includes(m[2]) ? { status: 200, body: model(m[2]) } : { status: 404, body: googleError(404, `models/${m[2]} is not found for API version ${m[1]}, or is not supported for generateContent.`) };
}
const VERTEX_ACTIONS = ["generateContent", "streamGenerateContent", "predict"];

function routeOf(method: string, path: string): Route | null {
  if (method !== "POST") return null;
  let m = GEMINI_ROUTE.exec(path);
  if (m && GEMINI_ACTIONS.includes(m[3])) return { api: "gemini", model: decodeURIComponent(m[2]), action: m[3] };
  m = VERTEX_ROUTE.exec(path);
  if (m && VERTEX_ACTIONS.includes(m[5])) {
    return { api: "vertex", project: decodeURIComponent(m[2]), location: decodeURIComponent(m[3]), model: decodeURIComponent(m[4]), action: m[5] };
  }
  return null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

/** Text of the parts that carry text. */
function partsText(parts: any[] | undefined): string {
  return (parts ?? []).map((p) => (typeof p?.text === "string" ? p.text : "")).join("");
}

export function startGeminiUpstream(opts: StartOptions = {}): Promise<GeminiMock> {
  const name = opts.name ?? "gemini";
  const streamChunks = Math.max(1, Math.floor(opts.stream?.chunks ?? 4));
  const intervalMs = Math.max(0, opts.stream?.intervalMs ?? 0);
  const thoughts = Math.max(0, opts.thoughtsTokens ?? 0);
  const cached = Math.max(0, opts.cachedTokens ?? 0);
  const requireSignatures = opts.requireThoughtSignatures ?? true;
  const srv = mockServer();
  const { server, sleep, gone } = srv;
  let signatureCount = 0;

  const mock: GeminiMock = {
    url: "",
    name,
    requests: [],
    queue: [],
    fallback: opts.fallback ?? { kind: "ok" },
    signatures: new Set(),
    answers: [],
    close: srv.close,
  };

  function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
    if (gone(res)) return;
    const text = typeof body === "string" ? body : JSON.stringify(body, null, 2);
    res.writeHead(status, {
      "content-type": "application/json; charset=UTF-8",
      "content-length": String(Buffer.byteLength(text)),
      "x-mock-upstream": name,
      ...extra,
    });
    res.end(text);
  }

  function startSse(res: ServerResponse): boolean {
    if (gone(res)) return false;
    res.writeHead(200, { "content-type": "text/event-stream", "x-mock-upstream": name });
    res.flushHeaders();
    return true;
  }

  function sse(res: ServerResponse, data: unknown): boolean {
    if (gone(res)) return false;
    res.write(`data: ${JSON.stringify(data)}\r\n\r\n`);
    return true;
  }

  // ---- answers -------------------------------------------------------------

  interface Plan {
    parts: any[][];
    finishReason: string;
    promptTokens: number;
    candidateTokens: number;
    id: string;
    model: string;
    vertex: boolean;
  }

  function plan(body: any, route: Route, scripted?: { name: string; input: Record<string, unknown> }): Plan {
    const contents: any[] = body.contents;
    let chars = partsText(body.systemInstruction?.parts).length;
    let media = 0;
    for (const c of contents) {
      chars += partsText(c.parts).length;
      for (const p of c.parts) {
        if (p.inlineData || p.fileData) media += 258;
        if (p.functionCall) chars += JSON.stringify(p.functionCall).length;
        if (p.functionResponse) chars += JSON.stringify(p.functionResponse).length;
      }
    }
    const promptTokens = tokensForChars(chars) + media;
    const base = { promptTokens, id: responseId(), model: route.model, vertex: route.api === "vertex" };
    const last = contents[contents.length - 1];
    const responses = last.parts.filter((p: any) => p.functionResponse);
    const declarations: any[] = (body.tools ?? []).flatMap((t: any) => t.functionDeclarations ?? []);
    const fcc = body.toolConfig?.functionCallingConfig;

    if (last.role !== "model" && responses.length === 0 && declarations.length > 0 && fcc?.mode !== "NONE") {
      const wanted = fcc?.allowedFunctionNames?.[0] ?? scripted?.name;
      const decl = declarations.find((d) => d.name === wanted) ?? declarations[0];
      const schema = decl.parametersJsonSchema ?? decl.parameters ?? {};
      let args: Record<string, unknown> = {};
      if (scripted && scripted.name === decl.name) args = scripted.input;
      else {
        for (const key of schema.required ?? []) {
          const type = String(schema.properties?.[key]?.type ?? "string").toLowerCase();
          args[key] = type === "string" ? partsText(last.parts) : type === "integer" || type === "number" ? 1 : type === "boolean" ? true : null;
        }
      }
      signatureCount += 1;
      const signature = Buffer.from(`${name}:sig:${signatureCount}`).toString("base64");
      mock.signatures.add(signature);
      return { ...base, parts: [[{ functionCall: { name: decl.name, args }, thoughtSignature: signature }]], finishReason: "STOP", candidateTokens: 1 };
    }

    const userText = partsText([...contents].reverse().find((c) => c.role !== "model")?.parts);
    const g = body.generationConfig;
    const schema = g?.responseJsonSchema ?? g?.responseSchema;
    const text = g?.responseMimeType === "application/json" && schema
      ? JSON.stringify(sampleOf(schema, userText))
      : responses.length > 0
        ? `[${name}] tool said: ${responses.map((p: any) => JSON.stringify(p.functionResponse.response)).join(" ")}`
        : `[${name}] you said: ${userText}`;
    let pieces = splitText(text, streamChunks);
    let finishReason = "STOP";
    const max = body.generationConfig?.maxOutputTokens;
    if (typeof max === "number" && max < pieces.length) {
      pieces = pieces.slice(0, Math.max(1, max));
      finishReason = "MAX_TOKENS";
    }
    return { ...base, parts: pieces.map((t) => [{ text: t }]), finishReason, candidateTokens: pieces.length };
  }

  function usage(p: Plan, candidates: number, final: boolean) {
    const u: Record<string, unknown> = { promptTokenCount: p.promptTokens };
    if (final || candidates > 0) u.candidatesTokenCount = candidates;
    const thinking = final ? thoughts : 0;
    u.totalTokenCount = p.promptTokens + candidates + thinking;
    if (cached > 0) u.cachedContentTokenCount = Math.min(cached, p.promptTokens);
    u.promptTokensDetails = [{ modality: "TEXT", tokenCount: p.promptTokens }];
    if (thinking > 0) u.thoughtsTokenCount = thinking;
    if (p.vertex) u.trafficType = "ON_DEMAND";
    return u;
  }

  function envelope(p: Plan, candidate: Record<string, unknown>, usageMetadata: unknown) {
    const r: Record<string, unknown> = { candidates: [candidate], usageMetadata, modelVersion: p.model };
    if (p.vertex) r.createTime = new Date().toISOString();
    r.responseId = p.id;
    return r;
  }

  function whole(p: Plan) {
    return envelope(p, { content: { parts: p.parts.flat(), role: "model" }, finishReason: p.finishReason, index: 0 }, usage(p, p.candidateTokens, true));
  }

  /** Stream events; only the last carries finishReason (and the thinking tokens). */
  function events(p: Plan) {
    return p.parts.map((parts, i) => {
      const final = i === p.parts.length - 1;
      const candidate: Record<string, unknown> = { content: { parts, role: "model" } };
      if (final) candidate.finishReason = p.finishReason;
      candidate.index = 0;
      return envelope(p, candidate, usage(p, final ? p.candidateTokens : i + 1, final));
    });
  }

  function embed(body: any, route: Route): { status: number; body: unknown } {
    if (route.action === "batchEmbedContents") {
      if (!isObject(body) || !Array.isArray(body.requests) || body.requests.length === 0) return { status: 400, body: googleError(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n") };
      const want = `models/${route.model}`;
      const embeddings = [];
      for (const [i, r] of body.requests.entries()) {
        if (r?.model !== want) return { status: 400, body: googleError(400, `* BatchEmbedContentsRequest.requests[${i}].model: model must be '${want}', the model of the request URL.\n`) };
        const text = partsText(r.content?.parts);
        embeddings.push({ values: embeddingFor(text, r.outputDimensionality ?? 8) });
      }
      return { status: 200, body: { embeddings } };
    }
    if (!isObject(body) || !Array.isArray(body.instances) || body.instances.length === 0) return { status: 400, body: googleError(400, "Invalid JSON payload: instances is required.") };
    const dims = body.parameters?.outputDimensionality ?? 8;
    let characters = 0;
    const predictions = body.instances.map((inst: any) => {
      const text = String(inst?.content ?? "");
      characters += text.length;
      return { embeddings: { statistics: { truncated: false, token_count: tokensForChars(text.length) }, values: embeddingFor(text, dims) } };
    });
    return { status: 200, body: { predictions, metadata: { billableCharacterCount: characters } } };
  }

  // ---- request handling ----------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    const raw = await readBody(req).catch(() => "");
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let body: any = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const route = routeOf(method, url.pathname);
    mock.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, body, ...(route ?? {}) });
    const listed = method === "GET" ? modelsAnswer(url.pathname) : null;
    if (listed) return sendJson(res, listed.status, listed.body);
    if (route === null) return sendJson(res, 404, googleError(404, `Method not found: ${method} ${url.pathname}`));

    if (route.api === "gemini") {
      const header = req.headers["x-goog-api-key"];
      const key = typeof header === "string" ? header : url.searchParams.get("key") ?? undefined;
      if (!key) {
        return sendJson(res, 403, googleError(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", "PERMISSION_DENIED"));
      }
      if (opts.apiKey !== undefined && key !== opts.apiKey) {
        return sendJson(res, 400, googleError(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } },
        ]));
      }
    } else {
      const auth = req.headers.authorization;
      const token = typeof auth === "string" ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined;
      if (!token) {
        return sendJson(res, 401, googleError(401, "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "UNAUTHENTICATED"));
      }
      if (opts.accessToken !== undefined && token !== opts.accessToken) {
        return sendJson(res, 401, googleError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "UNAUTHENTICATED"));
      }
    }

    const behavior: Behavior = mock.queue.length > 0 ? mock.queue.shift()! : mock.fallback;
    const streaming = route.action === "streamGenerateContent";
    const sseMode = streaming && url.searchParams.get("alt") === "sse";

    switch (behavior.kind) {
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return;
      case "status": {
        const extra: Record<string, string> = {};
        if (behavior.retryAfterSeconds !== undefined) extra["retry-after"] = String(behavior.retryAfterSeconds);
        return sendJson(res, behavior.status, behavior.body !== undefined ? behavior.body : defaultErrorBody(behavior.status), extra);
      }
      case "stream-error-first": {
        const err = defaultErrorBody(500);
        if (!sseMode) return sendJson(res, 500, err);
        if (!startSse(res)) return;
        sse(res, err);
        res.end();
        return;
      }
      default:
        break;
    }

    if (behavior.kind === "ok" && behavior.delayMs) await sleep(behavior.delayMs);
    if (gone(res)) return;

    if (route.action === "countTokens") {
      const request = body?.generateContentRequest ?? body;
      const chars = JSON.stringify([request?.systemInstruction ?? null, request?.contents ?? [], request?.tools ?? []]).length;
      return sendJson(res, 200, { totalTokens: tokensForChars(chars), promptTokensDetails: [{ modality: "TEXT", tokenCount: tokensForChars(chars) }] });
    }
    if (route.action === "batchEmbedContents" || route.action === "predict") {
      const answer = embed(body, route);
      return sendJson(res, answer.status, answer.body);
    }
    try {
      validateGenerate(body, requireSignatures, mock.signatures);
    } catch (e) {
      if (e instanceof Invalid) return sendJson(res, 400, googleError(400, e.message));
      throw e;
    }
    const p = plan(body, route, behavior.kind === "ok" ? behavior.tool : undefined);

    if (behavior.kind === "stream-fail-after") {
      if (!sseMode) {
        // Start the JSON body, then cut it.
        const text = JSON.stringify(streaming ? events(p) : whole(p));
        res.writeHead(200, { "content-type": "application/json; charset=UTF-8", "x-mock-upstream": name });
        res.write(text.slice(0, Math.floor(text.length / 2)));
        await sleep(5);
        res.socket?.destroy();
        return;
      }
      if (!startSse(res)) return;
      const all = events(p);
      const n = Math.max(0, Math.floor(behavior.chunks));
      const sent = all.slice(0, Math.min(n, all.length)).map((e, i) => {
        if (i < all.length - 1) return e;
        // Never the finishing event: the stream breaks before the end.
        const c = { ...(e.candidates as any[])[0] };
        delete c.finishReason;
        return { ...e, candidates: [c], usageMetadata: usage(p, i + 1, false) };
      });
      for (let i = 0; i < sent.length; i++) {
        if (i > 0 && intervalMs > 0) await sleep(intervalMs);
        if (!sse(res, sent[i])) return;
      }
      await sleep(Math.max(intervalMs, 25));
      res.socket?.destroy();
      return;
    }

    if (!streaming) {
      const answer = whole(p);
      mock.answers.push({ path: url.pathname, body: answer });
      return sendJson(res, 200, answer);
    }
    const all = events(p);
    mock.answers.push({ path: url.pathname, events: all });
    if (!sseMode) return sendJson(res, 200, all);
    if (!startSse(res)) return;
    for (let i = 0; i < all.length; i++) {
      if (i > 0 && intervalMs > 0) await sleep(intervalMs);
      if (!sse(res, all[i])) return;
    }
    res.end();
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!gone(res) && !res.headersSent) sendJson(res, 500, defaultErrorBody(500));
      else res.socket?.destroy();
    });
  });

  return srv.listen().then((port) => {
    mock.url = `http://127.0.0.1:${port}`;
    return mock;
  });
}
