// Google's Gemini API (generateContent, streamGenerateContent) for accounts
// that do not speak it: the request as chat completion parameters, the chat
// answer as a GenerateContentResponse (JSON, or SSE `data:` events of partial
// responses, the last with finishReason and usageMetadata). Field names follow
// the REST reference and the `@google/genai` types.
//
// Gemini → chat, field by field (the capability table):
//   contents (user / model), systemInstruction          messages (system first)
//   parts: text, inlineData (image, PDF, audio),         text, image_url, file, input_audio
//          fileData (http image)                         image_url
//   parts: functionCall / functionResponse               tool_calls / tool messages (ids paired by name and order)
//   tools.functionDeclarations (parameters in Google's   function tools (types lower-cased to JSON Schema)
//     Schema, or parametersJsonSchema)
//   toolConfig.functionCallingConfig AUTO|ANY|NONE       tool_choice auto | required (or the one allowed name) | none
//   generationConfig: temperature, topP, maxOutputTokens, temperature, top_p, max_tokens, stop, n,
//     stopSequences, candidateCount, presencePenalty,    presence_penalty, frequency_penalty, seed
//     frequencyPenalty, seed
//   generationConfig.responseMimeType application/json   response_format json_schema (with responseJsonSchema
//     (+ responseJsonSchema or responseSchema)             or responseSchema) or json_object
//   generationConfig.thinkingConfig.thinkingBudget /     reasoning_effort (budget <4k low, <16k medium, else high)
//     thinkingLevel
//   thought parts, thoughtSignature, includeThoughts,    dropped, named: Google's own reasoning and settings
//     safetySettings, labels
//   topK, cachedContent, responseModalities beyond TEXT, refused (400 unsupported_parameter) unless the route
//   other tools (googleSearch, codeExecution, …),       sets drop_unsupported_params
//   other parts (executableCode, …), …
import { randomUUID } from "node:crypto";
import type { ResponseSink } from "../gateway.ts";
import type { Carry } from "./carry.ts";
import { type ChatUsage, ChatSink, errorMessage, objectOf, withStreamUsage } from "./chat-sink.ts";
import { isObject, type Json } from "../json.ts";

export const TOP = new Set(["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "labels", "model"]);
const GENERATION = new Set([
  "temperature", "topP", "maxOutputTokens", "stopSequences", "candidateCount", "presencePenalty", "frequencyPenalty", "seed",
  "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig", "responseModalities",
]);

/** Google's Schema (upper-case types, OpenAPI subset) as JSON Schema. */
export function jsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(jsonSchema);
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "type" && typeof v === "string") out.type = v.toLowerCase();
    else if (k === "nullable") continue;
    else if (k === "properties" && isObject(v)) out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, jsonSchema(s)]));
    else if (k === "items" || k === "anyOf") out[k] = jsonSchema(v);
    else if (k !== "propertyOrdering") out[k] = v;
  }
  if (schema.nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  return out;
}

function effortOf(thinking: Json): string | undefined {
  if (typeof thinking.thinkingLevel === "string") return thinking.thinkingLevel.toLowerCase() === "low" ? "low" : "high";
  if (typeof thinking.thinkingBudget !== "number" || thinking.thinkingBudget < 0) return undefined;
  if (thinking.thinkingBudget === 0) return "minimal";
  return thinking.thinkingBudget < 4096 ? "low" : thinking.thinkingBudget < 16384 ? "medium" : "high";
}

interface Call {
  id: string;
  name: string;
}

/** A GenerateContentRequest (model from the path) as chat completion parameters; what chat cannot carry is refused or named in `carry`. */
export function toChat(body: Json, model: string, stream: boolean, carry: Carry): Json {
  for (const key of Object.keys(body)) {
    if (!TOP.has(key)) carry.refuse(key);
    else if (key === "safetySettings" || key === "labels") carry.note(key);
  }
  const messages: Json[] = [];
  const system = isObject(body.systemInstruction) && Array.isArray(body.systemInstruction.parts) ? body.systemInstruction.parts : [];
  const systemText = system.map((p: Json) => (typeof p?.text === "string" ? p.text : "")).join("");
  if (systemText !== "") messages.push({ role: "system", content: systemText });
  /** Calls not yet answered, oldest first: a functionResponse answers the first one of its name. */
  const open: Call[] = [];
  const contents = Array.isArray(body.contents) ? body.contents : [];
  contents.forEach((c: Json, i: number) => {
    const parts = isObject(c) && Array.isArray(c.parts) ? (c.parts as Json[]) : [];
    const user: Json[] = [];
    let text = "";
    const calls: Json[] = [];
    parts.forEach((p, j) => {
      const param = `contents[${i}].parts[${j}]`;
      if (p.thoughtSignature !== undefined) carry.note("thoughtSignature");
      if (p.thought === true) return carry.note("thought");
      if (typeof p.text === "string") {
        if (c.role === "model") text += p.text;
        else user.push({ type: "text", text: p.text });
      } else if (isObject(p.inlineData)) {
        const { mimeType, data } = p.inlineData as { mimeType?: string; data?: string };
        const url = `data:${mimeType};base64,${data}`;
        if (String(mimeType).startsWith("image/")) user.push({ type: "image_url", image_url: { url } });
        else if (mimeType === "application/pdf") user.push({ type: "file", file: { file_data: url } });
        else if (mimeType === "audio/wav" || mimeType === "audio/mp3" || mimeType === "audio/mpeg") user.push({ type: "input_audio", input_audio: { data, format: mimeType === "audio/wav" ? "wav" : "mp3" } });
        else carry.refuse(`${param}.inlineData.mimeType`, `${String(mimeType)} has no chat form`);
      } else if (isObject(p.fileData) && String(p.fileData.mimeType ?? "image/").startsWith("image/") && /^https?:/.test(String(p.fileData.fileUri))) {
        user.push({ type: "image_url", image_url: { url: p.fileData.fileUri } });
      } else if (isObject(p.functionCall)) {
        const name = String(p.functionCall.name ?? "");
        const id = typeof p.functionCall.id === "string" ? p.functionCall.id : `call_${i}_${j}`;
        open.push({ id, name });
        calls.push({ id, type: "function", function: { name, arguments: JSON.stringify(p.functionCall.args ?? {}) } });
      } else if (isObject(p.functionResponse)) {
        const name = String(p.functionResponse.name ?? "");
        const at = typeof p.functionResponse.id === "string" ? open.findIndex((o) => o.id === (p.functionResponse as Json).id) : open.findIndex((o) => o.name === name);
        const id = at >= 0 ? open.splice(at, 1)[0].id : String(p.functionResponse.id ?? `call_${name}`);
        messages.push({ role: "tool", tool_call_id: id, content: JSON.stringify(p.functionResponse.response ?? {}) });
      } else {
        carry.refuse(`${param}`, "this kind of part has no chat form");
      }
    });
    if (c.role === "model") {
      if (text !== "" || calls.length > 0) messages.push({ role: "assistant", content: text === "" ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) });
    } else if (user.length > 0) {
      messages.push({ role: "user", content: user.every((u) => u.type === "text") ? user.map((u) => u.text).join("") : user });
    }
  });
  const out: Json = { model, messages };
  const tools: Json[] = [];
  (Array.isArray(body.tools) ? body.tools : []).forEach((t: Json, i: number) => {
    for (const key of Object.keys(t ?? {})) if (key !== "functionDeclarations") carry.refuse(`tools[${i}].${key}`, "only function declarations run outside Google");
    for (const f of Array.isArray(t?.functionDeclarations) ? (t.functionDeclarations as Json[]) : []) {
      const parameters = f.parametersJsonSchema ?? (f.parameters !== undefined ? jsonSchema(f.parameters) : { type: "object", properties: {} });
      tools.push({ type: "function", function: { name: f.name, ...(f.description !== undefined ? { description: f.description } : {}), parameters } });
    }
  });
  if (tools.length > 0) out.tools = tools;
  const calling = isObject(body.toolConfig) && isObject(body.toolConfig.functionCallingConfig) ? body.toolConfig.functionCallingConfig : undefined;
  if (calling !== undefined) {
    const allowed = Array.isArray(calling.allowedFunctionNames) ? calling.allowedFunctionNames : [];
    if (calling.mode === "NONE") out.tool_choice = "none";
    else if (calling.mode === "ANY" || calling.mode === "VALIDATED") out.tool_choice = allowed.length === 1 ? { type: "function", function: { name: allowed[0] } } : "required";
    else out.tool_choice = "auto";
  }
  const g = isObject(body.generationConfig) ? body.generationConfig : {};
  for (const key of Object.keys(g)) if (!GENERATION.has(key)) carry.refuse(`generationConfig.${key}`);
  const copy: [string, string][] = [["temperature", "temperature"], ["topP", "top_p"], ["maxOutputTokens", "max_tokens"], ["candidateCount", "n"], ["presencePenalty", "presence_penalty"], ["frequencyPenalty", "frequency_penalty"], ["seed", "seed"]];
  for (const [from, to] of copy) if (typeof g[from] === "number") out[to] = g[from];
  if (Array.isArray(g.stopSequences) && g.stopSequences.length > 0) out.stop = g.stopSequences;
  if (g.responseMimeType === "application/json") {
    const schema = g.responseJsonSchema ?? (g.responseSchema !== undefined ? jsonSchema(g.responseSchema) : undefined);
    out.response_format = schema === undefined ? { type: "json_object" } : { type: "json_schema", json_schema: { name: "response", schema } };
  } else if (g.responseMimeType !== undefined && g.responseMimeType !== "text/plain") carry.refuse("generationConfig.responseMimeType");
  if (Array.isArray(g.responseModalities) && g.responseModalities.some((m) => m !== "TEXT")) carry.refuse("generationConfig.responseModalities");
  if (isObject(g.thinkingConfig)) {
    const effort = effortOf(g.thinkingConfig);
    if (effort !== undefined) out.reasoning_effort = effort;
    if (g.thinkingConfig.includeThoughts === true) carry.note("generationConfig.thinkingConfig.includeThoughts");
  }
  return withStreamUsage(out, stream);
}

const FINISH: Record<string, string> = { stop: "STOP", length: "MAX_TOKENS", content_filter: "SAFETY", tool_calls: "STOP", function_call: "STOP" };

function usageMetadata(u: ChatUsage | undefined): Json | undefined {
  if (u === undefined) return undefined;
  const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
  const out: Json = {
    promptTokenCount: u.prompt_tokens ?? 0,
    candidatesTokenCount: (u.completion_tokens ?? 0) - reasoning,
    totalTokenCount: (u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0),
  };
  if (reasoning > 0) out.thoughtsTokenCount = reasoning;
  const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  if (cached > 0) out.cachedContentTokenCount = cached;
  return out;
}

function argsOf(text: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return {};
  }
}

/** An OpenAI chat completion as a GenerateContentResponse. */
export function fromChat(c: Json, model: string): Json {
  const candidates = ((c.choices as Json[] | undefined) ?? []).map((choice, i) => {
    const message = (choice.message ?? {}) as { content?: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[] };
    const parts: Json[] = [];
    if (message.content) parts.push({ text: message.content });
    for (const t of message.tool_calls ?? []) parts.push({ functionCall: { id: t.id, name: t.function.name, args: argsOf(t.function.arguments) } });
    return { content: { role: "model", parts }, finishReason: FINISH[String(choice.finish_reason)] ?? "STOP", index: typeof choice.index === "number" ? choice.index : i };
  });
  const usage = usageMetadata(c.usage as ChatUsage | undefined);
  return { candidates, ...(usage !== undefined ? { usageMetadata: usage } : {}), modelVersion: String(c.model ?? model), responseId: String(c.id ?? randomUUID()) };
}

const STATUS: Record<number, string> = { 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED" };

/** An error in Google's shape (`google.rpc.Status` as JSON). */
export function googleError(status: number, message: string): Json {
  return { error: { code: status, message, status: STATUS[status] ?? (status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION") } };
}

/**
 * Stands where the gateway writes an OpenAI chat answer and writes Gemini's
 * instead: a JSON body whole; a stream as `data:` events of partial responses
 * (text as it comes; function calls whole, with the finishReason and usage, in
 * the last event, as Gemini streams them).
 */
export class GeminiSink extends ChatSink {
  #id = "";
  #modelVersion: string;
  #calls = new Map<number, Map<number, { id: string; name: string; args: string }>>();
  #finish = new Map<number, string>();
  #usage: ChatUsage | undefined;

  constructor(res: ResponseSink, model: string, forms: { headers(): Record<string, string> }) {
    super(res, forms, { json: "application/json; charset=UTF-8", stream: "text/event-stream" });
    this.#modelVersion = model;
  }

  protected answer(chat: Json): unknown {
    return fromChat(chat, this.#modelVersion);
  }

  protected error(status: number, parsed: Json | undefined): unknown {
    return googleError(status, errorMessage(parsed));
  }

  protected event(data: string): boolean {
    if (data === "[DONE]") return this.#complete();
    const c = objectOf(data);
    return c === undefined || this.#chunk(c);
  }

  #send(candidates: Json[], usage?: Json): boolean {
    const event: Json = { candidates, ...(usage !== undefined ? { usageMetadata: usage } : {}), modelVersion: this.#modelVersion, responseId: this.#id };
    return this.res.write(`data: ${JSON.stringify(event)}\r\n\r\n`);
  }

  #chunk(c: Json): boolean {
    if (c.error !== undefined) return this.res.write(`data: ${JSON.stringify(googleError(502, String((c.error as Json).message ?? "The upstream failed.")))}\r\n\r\n`);
    if (this.#id === "") this.#id = String(c.id ?? randomUUID());
    if (typeof c.model === "string") this.#modelVersion = c.model;
    if (isObject(c.usage)) this.#usage = c.usage as ChatUsage;
    let ok = true;
    for (const choice of (c.choices as Json[] | undefined) ?? []) {
      const index = typeof choice.index === "number" ? choice.index : 0;
      const delta = (choice.delta ?? {}) as { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
      if (delta.content) ok = this.#send([{ content: { role: "model", parts: [{ text: delta.content }] }, index }]);
      for (const t of delta.tool_calls ?? []) {
        let calls = this.#calls.get(index);
        if (calls === undefined) this.#calls.set(index, (calls = new Map()));
        let call = calls.get(t.index);
        if (call === undefined) calls.set(t.index, (call = { id: t.id ?? "", name: t.function?.name ?? "", args: "" }));
        call.args += t.function?.arguments ?? "";
      }
      if (typeof choice.finish_reason === "string") this.#finish.set(index, choice.finish_reason);
    }
    return ok;
  }

  /** The last event: each candidate's function calls and finishReason, and the usage. */
  #complete(): boolean {
    const indexes = new Set([...this.#finish.keys(), ...this.#calls.keys()]);
    if (indexes.size === 0) indexes.add(0);
    const candidates = [...indexes].map((index) => ({
      content: { role: "model", parts: [...(this.#calls.get(index)?.values() ?? [])].map((t) => ({ functionCall: { id: t.id, name: t.name, args: argsOf(t.args) } })) },
      finishReason: FINISH[this.#finish.get(index) ?? "stop"] ?? "STOP",
      index,
    }));
    return this.#send(candidates, usageMetadata(this.#usage));
  }
}
