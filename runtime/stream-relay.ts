// Relaying an upstream stream to the caller, for both kinds of upstream:
// OpenAI's own SSE (relayed event by event) and other wire formats (through the
// adapter's translator). Both keep the same promise: nothing is sent before the
// first event, so an opening error can still fail over; after that, a stream
// that breaks or ends early ends with an error event, never `[DONE]`.
import type { AccountRuntime, Failure, RequestContext } from "./gateway.ts";
import { isTimeout, parseJson, upstreamMessage } from "./upstream.ts";
import type { StreamTranslator, Usage } from "./providers/adapter.ts";
import type { Dialect } from "./surfaces/dialects.ts";

type UpstreamBody = AsyncIterable<Buffer> & { destroy(): void };

/** How a stream ended: failed before anything was sent (fail over), or sent, with its usage; `interrupted` when it ended with an error event. */
export interface Streamed {
  failure?: Failure;
  usage?: Usage;
  interrupted?: boolean;
}

/**
 * Streams another wire format as OpenAI's SSE through the adapter's
 * translator, with the same rules as a relay: nothing is sent until the
 * first chunk (an opening error fails over), and a stream that breaks or
 * ends early ends with an error event, never `[DONE]`.
 */
export async function translateStream(
  body: UpstreamBody,
  acct: AccountRuntime,
  ctx: RequestContext,
  model: string,
  commit: () => void,
): Promise<Streamed> {
  const { res } = ctx;
  const translator = acct.adapter!.stream!(ctx.req, model);
  const wantsUsage = (ctx.req.json.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  const chunks = body[Symbol.asyncIterator]();
  let usage: Usage | undefined;
  let last: Record<string, unknown> | undefined;
  const events = (t: { chunks: object[]; usage?: Usage }) => {
    usage = t.usage ?? usage;
    last = (t.chunks.at(-1) as Record<string, unknown> | undefined) ?? last;
    return t.chunks.map((c) => `data: ${JSON.stringify(wantsUsage ? { ...c, usage: null } : c)}\n\n`).join("");
  };
  let head = "";
  let ended: (ReturnType<StreamTranslator["end"]>) | undefined;
  while (head === "") {
    const next = await chunks.next();
    const t = next.done ? (ended = translator.end()) : translator.push(next.value);
    if (t.error !== undefined && head === "") {
      body.destroy();
      acct.health.failure();
      return { failure: { account: acct.id, status: 200, reason: `the stream opened with an error: ${upstreamMessage(t.error)}` } };
    }
    head = events(t);
    if (next.done) break;
  }
  if (head === "") {
    acct.health.failure();
    return { failure: { account: acct.id, status: 200, reason: "the stream ended before its first event" } };
  }
  commit();
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": ctx.requestId, "x-gwc-account": acct.id, ...ctx.headers });
  const write = async (text: string) => {
    if (text !== "" && !res.write(text)) await new Promise<void>((ok) => {
      res.once("drain", ok);
      res.once("close", ok);
    });
  };
  let failure: string | undefined;
  try {
    await write(head);
    while (ended === undefined && !res.destroyed) {
      const next = await chunks.next();
      const t = next.done ? (ended = translator.end()) : translator.push(next.value);
      await write(events(t));
      if (t.error !== undefined) failure = `the upstream reported an error mid-stream: ${t.error}`;
      if (failure !== undefined) break;
    }
    if (failure === undefined && ended !== undefined && !ended.complete) failure = "the upstream ended the stream before it finished";
  } catch (e) {
    failure = isTimeout(e) ? `the upstream stalled for ${acct.pool.config.requestTimeoutMs} ms` : "the upstream connection broke mid-stream";
  }
  if (failure !== undefined) {
    body.destroy();
    acct.health.failure();
    const event = { error: { message: `${failure} (account ${acct.id}); the answer is incomplete.`, type: "upstream_error", code: "stream_interrupted", param: null } };
    res.end(`data: ${JSON.stringify(event)}\n\n`);
    return { usage, interrupted: true };
  }
  if (wantsUsage && usage !== undefined && last !== undefined) {
    const u = {
      prompt_tokens: usage.input,
      completion_tokens: usage.output,
      total_tokens: usage.input + usage.output,
      prompt_tokens_details: { cached_tokens: usage.cached, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    await write(`data: ${JSON.stringify({ ...last, choices: [], usage: u })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
  return { usage };
}

/**
 * Relays an SSE stream event by event, in any API's format (the dialect says
 * where its usage is and which event completes it). The first event is read
 * before anything is sent, so an upstream that opens with an error still
 * fails over; after that, a broken or truncated stream ends with an error
 * event in the caller's API, never its end marker. Usage is read from the
 * events as they pass; when the gateway asked for it on the caller's behalf,
 * the usage-only event is withheld so the caller sees the stream it asked for.
 */
export async function relayStream(
  body: UpstreamBody,
  acct: AccountRuntime,
  ctx: RequestContext,
  injected: boolean,
  commit: () => void,
  dialect: Dialect,
): Promise<Streamed> {
  const { res } = ctx;
  const chunks = body[Symbol.asyncIterator]();
  let pending = "";
  let usage: Usage | undefined;
  let done = false;
  // One decoder for the whole stream: a character split across reads stays whole.
  const decoder = new TextDecoder();
  /** Appends a read, with line ends as `\n` (SSE allows `\r\n` and `\r`); a trailing `\r` waits for the next read. */
  let heldCr = false;
  // Unless events must be withheld, the caller gets the upstream's own bytes, cut at event boundaries
  // only (so an error event the gateway adds never lands inside one); `pending` is for reading them.
  const exact = !injected;
  let held: Buffer | undefined;
  const append = (bytes: Buffer | undefined) => {
    if (exact && bytes !== undefined) held = held === undefined ? bytes : Buffer.concat([held, bytes]);
    let text = (heldCr ? "\r" : "") + (bytes === undefined ? decoder.decode() : decoder.decode(bytes, { stream: true }));
    heldCr = bytes !== undefined && text.endsWith("\r");
    if (heldCr) text = text.slice(0, -1);
    pending += text.replace(/\r\n?/g, "\n");
  };
  /** Complete events in `pending`, as text to forward (each with its blank line). */
  const takeEvents = (): string | Buffer => {
    const end = pending.lastIndexOf("\n\n");
    if (end < 0) return "";
    const complete = pending.slice(0, end + 2);
    pending = pending.slice(end + 2);
    let out = "";
    for (const event of complete.split("\n\n")) {
      if (event === "") continue;
      const data = sseData(event);
      if (dialect.ends(data)) done = true;
      if (dialect.mayCarryUsage.test(data)) {
        const json = parseJson(data);
        usage = dialect.eventUsage(json, usage) ?? usage;
        if (injected && (json as { choices?: unknown[] } | undefined)?.choices?.length === 0) continue;
      }
      if (!exact) out += event + "\n\n";
    }
    return exact ? completeBytes() : out;
  };
  /** The held upstream bytes up to the last event boundary (a blank line in any of SSE's line ends). */
  const completeBytes = (): Buffer | string => {
    if (held === undefined) return "";
    const end = lastBoundary(held);
    if (end < 0) return "";
    const out = held.subarray(0, end);
    held = end === held.length ? undefined : held.subarray(end);
    return out;
  };

  while (!pending.includes("\n\n")) {
    const next = await chunks.next();
    append(next.done ? undefined : next.value);
    if (next.done) break;
  }
  const firstError = pending === "" ? "the stream ended before its first event" : sseError(pending.slice(0, pending.indexOf("\n\n") >>> 0));
  if (firstError !== undefined) {
    body.destroy();
    acct.health.failure();
    return { failure: { account: acct.id, status: 200, reason: firstError } };
  }
  commit();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-request-id": ctx.requestId,
    "x-gwc-account": acct.id,
    ...ctx.headers,
  });
  const write = async (text: string | Buffer) => {
    if (text.length > 0 && !res.write(text)) await new Promise<void>((ok) => {
      res.once("drain", ok);
      res.once("close", ok);
    });
  };
  let failure: string | undefined;
  try {
    await write(takeEvents());
    for (let next = await chunks.next(); !next.done && !res.destroyed; next = await chunks.next()) {
      append(next.value);
      await write(takeEvents());
    }
    append(undefined);
    await write(takeEvents());
    if (!done && !res.destroyed) failure = "the upstream ended the stream before it finished";
  } catch (e) {
    failure = isTimeout(e) ? `the upstream stalled for ${acct.pool.config.requestTimeoutMs} ms` : "the upstream connection broke mid-stream";
  }
  if (failure !== undefined) {
    acct.health.failure();
    res.end(dialect.interrupted(`${failure} (account ${acct.id}); the answer is incomplete.`));
  } else {
    res.end();
  }
  return { usage, interrupted: failure !== undefined };
}

const LF2 = Buffer.from("\n\n");
const CRLF2 = Buffer.from("\r\n\r\n");
const CR2 = Buffer.from("\r\r");

/** The index just past the last blank line in `bytes`, or -1. */
function lastBoundary(bytes: Buffer): number {
  const lf = bytes.lastIndexOf(LF2);
  const crlf = bytes.lastIndexOf(CRLF2);
  const cr = bytes.lastIndexOf(CR2);
  return Math.max(lf < 0 ? -1 : lf + 2, crlf < 0 ? -1 : crlf + 4, cr < 0 || bytes[cr + 2] === 0x0a ? -1 : cr + 2);
}

/** An SSE event's data lines, joined. */
function sseData(event: string): string {
  return event
    .split("\n")
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
}

/** The error message carried by an SSE event, if it is an error event. */
function sseError(event: string): string | undefined {
  const data = sseData(event);
  // Parsed only when it could be one: this sits between the first chunk and the caller.
  if (!data.startsWith("{") || !data.includes('"error"')) return undefined;
  try {
    const parsed = JSON.parse(data) as { error?: unknown; type?: unknown };
    // OpenAI's and Google's `{"error":…}`, Anthropic's `{"type":"error","error":…}`, the Responses API's `{"type":"error","message":…}`.
    return parsed.error === undefined && parsed.type !== "error" ? undefined : `the stream opened with an error: ${upstreamMessage(data)}`;
  } catch {
    return undefined;
  }
}
