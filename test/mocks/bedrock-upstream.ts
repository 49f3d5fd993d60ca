/**
 * A local mock of AWS Bedrock Runtime's Converse API for gateway tests.
 *
 *   POST /model/{modelId}/converse          → Converse JSON
 *   POST /model/{modelId}/converse-stream   → application/vnd.amazon.eventstream
 *
 * Wire shapes follow the service model (aws-sdk-js-v3 client-bedrock-runtime:
 * models_0.ts, protocols/Aws_restJson1.ts) and the Bedrock API reference
 * (Converse, ConverseStream, ConverseStreamOutput, TokenUsage, StopReason):
 * errors are restJson1 (`x-amzn-ErrorType` header, `{"message": ...}` body);
 * stream frames are event-stream messages with `:message-type`, `:event-type`
 * (or `:exception-type`) and `:content-type` headers and JSON payloads that
 * carry Bedrock's `p` padding field.
 *
 * Every request's SigV4 signature is VERIFIED: the mock recomputes it with
 * SignatureV4 from the known credentials, over the headers the request says
 * it signed, the raw path and the raw body, and answers 403 like AWS
 * (InvalidSignatureException, UnrecognizedClientException, ...) when it does
 * not match. A request that gets past that proves the signing is right.
 *
 * Order of handling: body read and request recorded; signature checked (403);
 * route checked (404); body validated like Bedrock does (400
 * ValidationException); then one behavior is taken from `queue` (or
 * `fallback`). The checks before it consume no behavior.
 */
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { mockServer } from "./mock-server.ts";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type BedrockBehavior =
  | { kind: "ok"; delayMs?: number; /** Write the event stream in slices of this many bytes (frames split anywhere). */ splitBytes?: number }
  | { kind: "status"; status: number; errorType?: string; message?: string; retryAfterSeconds?: number }
  | { kind: "reset" }
  | { kind: "hang" }
  /** Streams: the first `events` frames, then the connection drops. JSON: half the body, then it drops. */
  | { kind: "stream-fail-after"; events: number }
  /** Streams: the first `after` frames (0: none), then an exception event, then the end. JSON: the matching error status. */
  | { kind: "stream-exception"; after?: number; exceptionType?: string; message?: string };

export interface RecordedBedrockRequest {
  method: string;
  /** The raw path, as sent (the model id percent-encoded). */
  path: string;
  modelId: string | null;
  operation: "converse" | "converse-stream" | null;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** "valid", or why the signature was refused. */
  signature: string;
}

export interface BedrockMock {
  /** The endpoint, as an account's base_url: http://127.0.0.1:PORT */
  url: string;
  name: string;
  requests: RecordedBedrockRequest[];
  queue: BedrockBehavior[];
  fallback: BedrockBehavior;
  close(): Promise<void>;
}

export interface BedrockMockOptions {
  name?: string;
  region?: string;
  /** The credentials the mock knows (by access key id). */
  credentials: AwsCredentials[];
  /** Text pieces per answer (one contentBlockDelta each). */
  chunks?: number;
  intervalMs?: number;
  /** Prompt-cache figures reported in every usage. */
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
  fallback?: BedrockBehavior;
}

// ---------------------------------------------------------------------------
// Event-stream encoding
// ---------------------------------------------------------------------------

const codec = new EventStreamCodec(toUtf8, fromUtf8);
/** Bedrock pads event payloads with a `p` field so their length does not give the text away. */
const PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export function encodeEvent(eventType: string, payload: object, pad = true): Buffer {
  const body = pad ? { ...payload, p: PADDING.slice(0, 1 + (JSON.stringify(payload).length % PADDING.length)) } : payload;
  return Buffer.from(
    codec.encode({
      headers: {
        ":event-type": { type: "string", value: eventType },
        ":content-type": { type: "string", value: "application/json" },
        ":message-type": { type: "string", value: "event" },
      },
      body: fromUtf8(JSON.stringify(body)),
    }),
  );
}

export function encodeException(exceptionType: string, message: string): Buffer {
  return Buffer.from(
    codec.encode({
      headers: {
        ":exception-type": { type: "string", value: exceptionType },
        ":content-type": { type: "string", value: "application/json" },
        ":message-type": { type: "string", value: "exception" },
      },
      body: fromUtf8(JSON.stringify({ message })),
    }),
  );
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const ERRORS: Record<number, [string, string]> = {
  400: ["ValidationException", "Malformed input request, please reformat your input and try again."],
  403: ["AccessDeniedException", "You don't have access to the model with the specified model ID."],
  404: ["ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."],
  408: ["ModelTimeoutException", "Model has timed out in processing the request. Try your request again."],
  424: ["ModelErrorException", "The model encountered an error processing the request. Try your request again."],
  429: ["ThrottlingException", "Too many requests, please wait before trying again."],
  500: ["InternalServerException", "The system encountered an unexpected error during processing. Try your request again."],
  503: ["ServiceUnavailableException", "Bedrock is unable to process your request."],
};

export function defaultBedrockError(status: number): { type: string; message: string } {
  const [type, message] = ERRORS[status] ?? (status >= 500 ? ERRORS[500] : ERRORS[400]);
  return { type, message };
}

/** Stream exception types (ConverseStreamOutput members) and their HTTP equivalents. */
const EXCEPTION_STATUS: Record<string, number> = {
  internalServerException: 500,
  modelStreamErrorException: 424,
  validationException: 400,
  throttlingException: 429,
  serviceUnavailableException: 503,
};

class Refusal {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly message: string,
  ) {}
}

// ---------------------------------------------------------------------------
// SigV4 verification
// ---------------------------------------------------------------------------

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9\-;]+),\s*Signature=([0-9a-f]{64})$/;
const MAX_SKEW_MS = 5 * 60 * 1000;

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(",") : v;
}

/**
 * Checks a request's SigV4 signature the way AWS does: recomputes it with the
 * secret of the access key it names and compares. Undefined when it is valid.
 */
export async function verifySignature(
  req: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: Buffer },
  known: AwsCredentials[],
  region: string,
  now: Date = new Date(),
): Promise<Refusal | undefined> {
  const auth = headerValue(req.headers.authorization);
  if (auth === undefined) return new Refusal(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
  const m = AUTH.exec(auth);
  if (m === null) return new Refusal(403, "IncompleteSignatureException", `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${auth.split(" ")[0]}`);
  const [, keyId, day, scopeRegion, service, signedList, signature] = m;
  const creds = known.find((c) => c.accessKeyId === keyId);
  if (creds === undefined) return new Refusal(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
  if (service !== "bedrock") return new Refusal(403, "InvalidSignatureException", `Credential should be scoped to correct service: 'bedrock'.`);
  if (scopeRegion !== region) return new Refusal(403, "InvalidSignatureException", `Credential should be scoped to a valid region.`);
  const signed = signedList.split(";");
  if (!signed.includes("host")) return new Refusal(403, "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  const amzDate = headerValue(req.headers["x-amz-date"]);
  const d = amzDate === undefined ? null : /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (d === null || !signed.includes("x-amz-date")) return new Refusal(403, "IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  const date = new Date(Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6]));
  if (amzDate!.slice(0, 8) !== day) return new Refusal(403, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.");
  if (Math.abs(now.getTime() - date.getTime()) > MAX_SKEW_MS) {
    return new Refusal(403, "InvalidSignatureException", `Signature expired: ${amzDate} is now earlier than ${new Date(now.getTime() - MAX_SKEW_MS).toISOString()}.`);
  }
  if (creds.sessionToken !== undefined && (headerValue(req.headers["x-amz-security-token"]) !== creds.sessionToken || !signed.includes("x-amz-security-token"))) {
    return new Refusal(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
  }
  const contentSha = headerValue(req.headers["x-amz-content-sha256"]);
  if (contentSha !== undefined && contentSha !== createHash("sha256").update(req.body).digest("hex")) {
    return new Refusal(403, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const value = headerValue(req.headers[name]);
    if (value === undefined) return new Refusal(403, "InvalidSignatureException", `The request signature we calculated does not match the signature you provided (signed header '${name}' is missing).`);
    headers[name] = value;
  }
  const [rawPath, rawQuery = ""] = req.path.split("?");
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawQuery)) query[k] = v;
  const signer = new SignatureV4({
    service: "bedrock",
    region,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken },
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: signed.includes("x-amz-content-sha256"),
  });
  const expected = await signer.sign(
    { method: req.method, protocol: "http:", hostname: headers.host.split(":")[0], path: rawPath, query, headers, body: req.body },
    { signingDate: date },
  );
  const want = /Signature=([0-9a-f]{64})$/.exec(expected.headers.authorization)?.[1];
  const wantSigned = /SignedHeaders=([^,]+),/.exec(expected.headers.authorization)?.[1];
  if (want !== signature || wantSigned !== signedList) {
    return new Refusal(
      403,
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Validation, as Bedrock does it before the model sees anything
// ---------------------------------------------------------------------------

const BLOCK_KINDS = ["text", "image", "document", "toolUse", "toolResult", "reasoningContent", "cachePoint", "guardContent", "video"];

function validate(body: any): string | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return "Malformed input request, please reformat your input and try again.";
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
  if (body.system !== undefined) {
    if (!Array.isArray(body.system)) return "1 validation error detected: Value at 'system' failed to satisfy constraint: Member must be a list";
    for (const [i, s] of body.system.entries()) {
      if (typeof s?.text !== "string" && s?.cachePoint === undefined && s?.guardContent === undefined) return `The system block at system.${i} is not a valid SystemContentBlock.`;
      if (typeof s.text === "string" && s.text.trim() === "") return `The text field in the SystemContentBlock object at system.${i} is blank. Add text to the text field, and try again.`;
    }
  }
  let usesTools = false;
  for (const [i, m] of messages.entries()) {
    if (m?.role !== "user" && m?.role !== "assistant") return `1 validation error detected: Value '${m?.role}' at 'messages.${i + 1}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`;
    if (i === 0 && m.role !== "user") return "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
    if (i > 0 && messages[i - 1].role === m.role) return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.";
    if (!Array.isArray(m.content) || m.content.length === 0) return `The content field in the Message object at messages.${i} is empty. Add a ContentBlock object to the content field and try again.`;
    for (const [j, b] of m.content.entries()) {
      const keys = Object.keys(b ?? {});
      if (keys.length !== 1 || !BLOCK_KINDS.includes(keys[0])) return `The ContentBlock object at messages.${i}.content.${j} must set exactly one of: ${BLOCK_KINDS.join(", ")}.`;
      if (keys[0] === "text" && (typeof b.text !== "string" || b.text.trim() === "")) return `The text field in the ContentBlock object at messages.${i}.content.${j} is blank. Add text to the text field, and try again.`;
      if (keys[0] === "image") {
        if (!["png", "jpeg", "gif", "webp"].includes(b.image?.format)) return `The format field in the ImageBlock object at messages.${i}.content.${j} must be png, jpeg, gif or webp.`;
        const bytes = b.image?.source?.bytes;
        if (typeof bytes !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(bytes) || bytes.length % 4 !== 0) return `The bytes in the ImageBlock object at messages.${i}.content.${j} are not valid base64.`;
      }
      if (keys[0] === "toolUse") {
        usesTools = true;
        if (m.role !== "assistant") return `messages.${i}.content.${j}: toolUse blocks belong to assistant messages.`;
        if (typeof b.toolUse?.toolUseId !== "string" || typeof b.toolUse?.name !== "string" || typeof b.toolUse?.input !== "object") return `The toolUse block at messages.${i}.content.${j} needs toolUseId, name and a JSON input.`;
      }
      if (keys[0] === "toolResult") {
        usesTools = true;
        if (m.role !== "user") return `messages.${i}.content.${j}: toolResult blocks belong to user messages.`;
        const id = b.toolResult?.toolUseId;
        const prev = messages[i - 1];
        const matched = prev?.role === "assistant" && prev.content.some((p: any) => p?.toolUse?.toolUseId === id);
        if (!matched) return `messages.${i}.content.${j}: the toolResult's toolUseId '${id}' does not match any toolUse block in the previous assistant message.`;
        if (!Array.isArray(b.toolResult.content)) return `The content of the toolResult block at messages.${i}.content.${j} must be a list.`;
      }
    }
  }
  if (usesTools && body.toolConfig === undefined) return "The toolConfig field must be defined when using toolUse and toolResult content blocks.";
  if (body.toolConfig !== undefined) {
    const tools = body.toolConfig.tools;
    if (!Array.isArray(tools) || tools.length === 0) return "1 validation error detected: Value at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1";
    for (const [k, t] of tools.entries()) {
      const spec = t?.toolSpec;
      if (typeof spec?.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(spec.name)) return `1 validation error detected: Value at 'toolConfig.tools.${k + 1}.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+`;
      if (spec.inputSchema?.json === null || typeof spec.inputSchema?.json !== "object") return `The inputSchema of toolConfig.tools.${k} must be {"json": <JSON schema>}.`;
    }
    const choice = body.toolConfig.toolChoice;
    if (choice !== undefined && Object.keys(choice).length !== 1) return "toolConfig.toolChoice must set exactly one of auto, any, tool.";
  }
  const inference = body.inferenceConfig;
  if (inference !== undefined) {
    if (inference.maxTokens !== undefined && !(Number.isInteger(inference.maxTokens) && inference.maxTokens >= 1)) return "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1";
    if (inference.stopSequences !== undefined && !Array.isArray(inference.stopSequences)) return "inferenceConfig.stopSequences must be a list of strings.";
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

interface Answer {
  blocks: ({ text: string; pieces: string[] } | { toolUse: { toolUseId: string; name: string; input: object } })[];
  stopReason: string;
  usage: Record<string, number>;
}

function splitText(text: string, n: number): string[] {
  const cps = Array.from(text);
  const count = Math.max(1, Math.min(n, cps.length || 1));
  const out: string[] = [];
  const base = Math.floor(cps.length / count);
  const extra = cps.length % count;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push(cps.slice(at, at + len).join(""));
    at += len;
  }
  return out.filter((p) => p !== "");
}

function blockText(b: any): string {
  if (typeof b?.text === "string") return b.text;
  if (b?.toolResult) return (b.toolResult.content ?? []).map((c: any) => (typeof c?.text === "string" ? c.text : JSON.stringify(c?.json ?? ""))).join("");
  return "";
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

export function startBedrockUpstream(opts: BedrockMockOptions): Promise<BedrockMock> {
  const name = opts.name ?? "bedrock";
  const region = opts.region ?? "us-west-2";
  const chunks = Math.max(1, Math.floor(opts.chunks ?? 4));
  const intervalMs = Math.max(0, opts.intervalMs ?? 0);
  const srv = mockServer();
  const { server, sleep, gone } = srv;
  const mock: BedrockMock = {
    url: "",
    name,
    requests: [],
    queue: [],
    fallback: opts.fallback ?? { kind: "ok" },
    close: srv.close,
  };
  function sendError(res: ServerResponse, status: number, type: string, message: string, extra: Record<string, string> = {}) {
    if (gone(res)) return;
    const text = JSON.stringify({ message });
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      "x-amzn-requestid": randomUUID(),
      "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      "x-mock-upstream": name,
      ...extra,
    });
    res.end(text);
  }

  function answer(body: any): Answer {
    const messages: any[] = body.messages;
    const systemText = (body.system ?? []).map((s: any) => s?.text ?? "").join(" ");
    let chars = systemText.length;
    for (const m of messages) for (const b of m.content) chars += blockText(b).length;
    const inputTokens = Math.max(1, Math.ceil(chars / 4));
    const last = messages.at(-1);
    const results = last.role === "user" ? last.content.filter((b: any) => b.toolResult) : [];
    const tools: any[] = body.toolConfig?.tools ?? [];
    const lastText = last.role === "user" ? last.content.filter((b: any) => typeof b.text === "string").map((b: any) => b.text).join(" ") : "";
    const cache = { cacheRead: opts.cacheReadInputTokens ?? 0, cacheWrite: opts.cacheWriteInputTokens ?? 0 };
    const usage = (output: number) => {
      const u: Record<string, number> = { inputTokens, outputTokens: output, totalTokens: inputTokens + output + cache.cacheRead + cache.cacheWrite };
      if (opts.cacheReadInputTokens !== undefined) u.cacheReadInputTokens = cache.cacheRead;
      if (opts.cacheWriteInputTokens !== undefined) u.cacheWriteInputTokens = cache.cacheWrite;
      return u;
    };

    if (results.length === 0 && tools.length > 0 && last.role === "user") {
      const wanted = body.toolConfig.toolChoice?.tool?.name;
      const tool = tools.find((t) => t.toolSpec.name === wanted) ?? tools[0];
      const input: Record<string, unknown> = {};
      for (const [prop, schema] of Object.entries<any>(tool.toolSpec.inputSchema.json.properties ?? {})) {
        input[prop] = schema?.type === "number" || schema?.type === "integer" ? 1 : schema?.type === "boolean" ? true : lastText;
      }
      const preamble = `[${name}] calling ${tool.toolSpec.name}`;
      return {
        blocks: [{ text: preamble, pieces: splitText(preamble, 2) }, { toolUse: { toolUseId: `tooluse_${randomUUID().replace(/-/g, "").slice(0, 22)}`, name: tool.toolSpec.name, input } }],
        stopReason: "tool_use",
        usage: usage(8),
      };
    }

    let text =
      results.length > 0
        ? `[${name}] tool results: ${results.map((b: any) => `${b.toolResult.toolUseId}=${blockText(b)}`).join("; ")}`
        : `[${name}] ${systemText ? `(system: ${systemText}) ` : ""}you said: ${lastText}`;
    let stopReason = "end_turn";
    for (const stop of body.inferenceConfig?.stopSequences ?? []) {
      const at = text.indexOf(stop);
      if (stop !== "" && at >= 0) {
        text = text.slice(0, at);
        stopReason = "stop_sequence";
      }
    }
    let pieces = splitText(text, chunks);
    const max = body.inferenceConfig?.maxTokens;
    if (typeof max === "number" && max < pieces.length) {
      pieces = pieces.slice(0, max);
      stopReason = "max_tokens";
    }
    return { blocks: [{ text: pieces.join(""), pieces }], stopReason, usage: usage(pieces.length) };
  }

  function converseJson(a: Answer): object {
    const content = a.blocks.map((b) => ("toolUse" in b ? { toolUse: b.toolUse } : { text: b.text }));
    return { output: { message: { role: "assistant", content } }, stopReason: a.stopReason, usage: a.usage, metrics: { latencyMs: 42 } };
  }

  function streamFrames(a: Answer): Buffer[] {
    const frames = [encodeEvent("messageStart", { role: "assistant" })];
    a.blocks.forEach((b, contentBlockIndex) => {
      if ("toolUse" in b) {
        frames.push(encodeEvent("contentBlockStart", { start: { toolUse: { toolUseId: b.toolUse.toolUseId, name: b.toolUse.name } }, contentBlockIndex }));
        const json = JSON.stringify(b.toolUse.input);
        const cut = Math.floor(json.length / 2);
        for (const input of [json.slice(0, cut), json.slice(cut)]) frames.push(encodeEvent("contentBlockDelta", { delta: { toolUse: { input } }, contentBlockIndex }));
      } else {
        for (const text of b.pieces) frames.push(encodeEvent("contentBlockDelta", { delta: { text }, contentBlockIndex }));
      }
      frames.push(encodeEvent("contentBlockStop", { contentBlockIndex }));
    });
    frames.push(encodeEvent("messageStop", { stopReason: a.stopReason }));
    frames.push(encodeEvent("metadata", { usage: a.usage, metrics: { latencyMs: 42 } }));
    return frames;
  }

  function startStream(res: ServerResponse): boolean {
    if (gone(res)) return false;
    res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": randomUUID(), "x-mock-upstream": name });
    res.flushHeaders();
    return true;
  }

  async function writeFrames(res: ServerResponse, frames: Buffer[], splitBytes?: number): Promise<boolean> {
    if (splitBytes !== undefined && splitBytes > 0) {
      const all = Buffer.concat(frames);
      for (let at = 0; at < all.length; at += splitBytes) {
        if (gone(res)) return false;
        res.write(all.subarray(at, at + splitBytes));
        if (intervalMs > 0) await sleep(intervalMs);
      }
      return true;
    }
    for (let i = 0; i < frames.length; i++) {
      if (i > 0 && intervalMs > 0) await sleep(intervalMs);
      if (gone(res)) return false;
      res.write(frames[i]);
    }
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts);
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const route = /^\/model\/([^/?]+)\/(converse|converse-stream)(?:\?.*)?$/.exec(path);
    let body: any;
    try {
      body = raw.length > 0 ? JSON.parse(raw.toString("utf8")) : undefined;
    } catch {
      body = raw.toString("utf8");
    }
    const record: RecordedBedrockRequest = {
      method,
      path,
      modelId: route ? decodeURIComponent(route[1]) : null,
      operation: route ? (route[2] as "converse" | "converse-stream") : null,
      headers: { ...req.headers },
      body,
      signature: "valid",
    };
    mock.requests.push(record);

    const refusal = await verifySignature({ method, path, headers: req.headers, body: raw }, opts.credentials, region);
    if (refusal !== undefined) {
      record.signature = `${refusal.type}: ${refusal.message}`;
      return sendError(res, refusal.status, refusal.type, refusal.message);
    }
    if (method !== "POST" || route === null) return sendError(res, 404, "UnknownOperationException", `Unknown operation ${method} ${path.split("?")[0]}`);
    const invalid = validate(body);
    if (invalid !== undefined) return sendError(res, 400, "ValidationException", invalid);

    const streaming = route[2] === "converse-stream";
    const behavior = mock.queue.length > 0 ? mock.queue.shift()! : mock.fallback;
    switch (behavior.kind) {
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return;
      case "status": {
        const d = defaultBedrockError(behavior.status);
        const extra: Record<string, string> = {};
        if (behavior.retryAfterSeconds !== undefined) extra["retry-after"] = String(behavior.retryAfterSeconds);
        return sendError(res, behavior.status, behavior.errorType ?? d.type, behavior.message ?? d.message, extra);
      }
      case "stream-exception": {
        const type = behavior.exceptionType ?? "throttlingException";
        const message = behavior.message ?? defaultBedrockError(EXCEPTION_STATUS[type] ?? 500).message;
        if (!streaming) {
          const status = EXCEPTION_STATUS[type] ?? 500;
          return sendError(res, status, type.charAt(0).toUpperCase() + type.slice(1), message);
        }
        if (!startStream(res)) return;
        const frames = streamFrames(answer(body)).slice(0, Math.max(0, behavior.after ?? 0));
        if (!(await writeFrames(res, [...frames, encodeException(type, message)]))) return;
        res.end();
        return;
      }
      case "stream-fail-after": {
        const a = answer(body);
        if (!streaming) {
          if (gone(res)) return;
          const text = JSON.stringify(converseJson(a));
          res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), "x-amzn-requestid": randomUUID() });
          res.write(text.slice(0, Math.floor(text.length / 2)));
          await sleep(5);
          res.socket?.destroy();
          return;
        }
        if (!startStream(res)) return;
        await writeFrames(res, streamFrames(a).slice(0, Math.max(0, behavior.events)));
        await sleep(Math.max(intervalMs, 25));
        res.socket?.destroy();
        return;
      }
      case "ok": {
        if (behavior.delayMs) await sleep(behavior.delayMs);
        if (gone(res)) return;
        const a = answer(body);
        if (!streaming) {
          const text = JSON.stringify(converseJson(a));
          res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), "x-amzn-requestid": randomUUID(), "x-mock-upstream": name });
          res.end(text);
          return;
        }
        if (!startStream(res)) return;
        if (!(await writeFrames(res, streamFrames(a), behavior.splitBytes))) return;
        res.end();
        return;
      }
    }
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!gone(res) && !res.headersSent) sendError(res, 500, "InternalServerException", defaultBedrockError(500).message);
      else res.socket?.destroy();
    });
  });

  return srv.listen().then((port) => {
    mock.url = `http://127.0.0.1:${port}`;
    return mock;
  });
}
