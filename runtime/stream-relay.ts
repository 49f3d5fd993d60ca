// Relaying an upstream stream to the caller, for both kinds of upstream:
// OpenAI's own SSE (relayed event by event) and other wire formats (through the
// adapter's translator). Both keep the same promises:
//
//   - nothing is sent before the first event that carries data, so an opening
//     error (or a stream that is not SSE at all) can still fail over;
//   - after that, a stream that breaks, reports an error, or stops speaking its
//     protocol ends with a `stream_interrupted` error event, never `[DONE]`;
//   - one upstream event is at most `server.max_event_bytes`: an upstream that
//     never ends its event costs that much memory, not all it sends;
//   - every upstream text that reaches the caller is scrubbed of secrets;
//   - a stream that stopped speaking its protocol is billed only the usage the
//     provider reported (none when it reported none).
import type { AccountRuntime, Failure, RequestContext } from "./gateway.ts";
import type { StreamTranslator, Usage } from "./providers/adapter.ts";
import type { Classified } from "./providers/classify.ts";
import { EventTooLarge, SseDecoder, type SseEvent } from "./providers/sse.ts";
import { isTimeout, type UpstreamBody } from "./upstream.ts";

/** How a stream ended: failed before anything was sent (fail over), or sent, with its usage; `interrupted` when it ended with an error event. */
export interface Streamed {
  failure?: Failure;
  usage?: Usage;
  interrupted?: boolean;
}

/** An event that carries a usage object (not `"usage":null`). */
const USAGE = /"usage"\s*:\s*\{/;

/** What a stream that broke its protocol is billed when the provider reported nothing. */
const NO_USAGE: Usage = { input: 0, output: 0, cached: 0 };

/**
 * Streams another wire format as OpenAI's SSE through the adapter's
 * translator, with the same rules as a relay: nothing is sent until the
 * first chunk (an opening error fails over), and a stream that breaks or
 * ends early ends with an error event, never `[DONE]`.
 */
export async function translateStream(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, model: string, commit: () => void): Promise<Streamed> {
  const { res } = ctx;
  const { scrub } = acct.edge;
  const translator = acct.adapter!.stream!(ctx.req, model, acct.edge.maxEventBytes);
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
  let ended: ReturnType<StreamTranslator["end"]> | undefined;
  while (head === "") {
    const next = await chunks.next();
    let t;
    try {
      t = next.done ? (ended = translator.end()) : translator.push(next.value);
    } catch (e) {
      if (!(e instanceof EventTooLarge)) throw e;
      return refuse(body, acct, { errorType: "server_error", message: e.message });
    }
    if (t.error !== undefined) {
      return refuse(body, acct, { errorType: t.errorType ?? "server_error", retryAfterMs: t.retryAfterMs, message: `the stream opened with an error: ${scrub.say(t.error)}` });
    }
    head = events(t);
    if (next.done) break;
  }
  if (head === "") return refuse(body, acct, { errorType: "server_error", message: "the stream ended before its first event" });
  commit();
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": ctx.requestId, "x-gwc-account": acct.id, ...ctx.headers });
  let failure: string | undefined;
  let lied = false;
  try {
    await write(res, head);
    while (ended === undefined && !res.destroyed) {
      const next = await chunks.next();
      const t = next.done ? (ended = translator.end()) : translator.push(next.value);
      await write(res, events(t));
      if (t.error !== undefined) failure = `the upstream reported an error mid-stream: ${scrub.say(t.error)}`;
      if (failure !== undefined) break;
    }
    if (failure === undefined && ended !== undefined && !ended.complete) failure = "the upstream ended the stream before it finished";
  } catch (e) {
    lied = e instanceof EventTooLarge;
    failure = broken(e, acct);
  }
  if (failure !== undefined) {
    interrupt(body, acct, ctx, failure);
    return { usage: lied ? (usage ?? NO_USAGE) : usage, interrupted: true };
  }
  if (wantsUsage && usage !== undefined && last !== undefined) {
    const u = {
      prompt_tokens: usage.input,
      completion_tokens: usage.output,
      total_tokens: usage.input + usage.output,
      prompt_tokens_details: { cached_tokens: usage.cached, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    await write(res, `data: ${JSON.stringify({ ...last, choices: [], usage: u })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
  return { usage };
}

/**
 * Relays an SSE stream event by event. The first event with data is read
 * before anything is sent, so an upstream that opens with an error (or with
 * something that is not SSE of JSON) still fails over; after that, a broken,
 * truncated or malformed stream ends with an error event, never `[DONE]`.
 * Usage is read from the events as they pass; when the gateway asked for it
 * on the caller's behalf, the usage-only event is withheld so the caller sees
 * the stream it asked for.
 */
export async function relayStream(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, injected: boolean, commit: () => void): Promise<Streamed> {
  const { res } = ctx;
  const { scrub, maxEventBytes } = acct.edge;
  const adapter = acct.adapter!;
  const sse = new SseDecoder(maxEventBytes, { keepText: true });
  const chunks = body[Symbol.asyncIterator]();
  let usage: Usage | undefined;
  let done = false;
  /** Events with data forwarded (or held to forward): the stream has opened once there is one. */
  let dataEvents = 0;

  /** The events as text to forward, up to the first that is an error or not this protocol. */
  const forward = (events: SseEvent[]): { text: string; error?: Classified; bad?: string } => {
    let text = "";
    for (const e of events) {
      if (e.hasData) {
        const data = e.data;
        if (data === "[DONE]") done = true;
        else if (!isJsonObjectText(data)) return { text, bad: "an event whose data is not a JSON object" };
        // Parsed only when it could be an error: this sits between the upstream and the caller.
        else if (data.includes('"error"') && isErrorEvent(data)) return { text, error: adapter.classify(200, {}, data) };
        else if (USAGE.test(data)) {
          let json: unknown;
          try {
            json = JSON.parse(data);
          } catch {
            return { text, bad: "an event whose data is not JSON" };
          }
          usage = adapter.usage(json) ?? usage;
          if (injected && (json as { choices?: unknown[] }).choices?.length === 0) continue;
        }
        dataEvents++;
      }
      text += `${e.text}\n\n`;
    }
    return { text };
  };

  let held = "";
  /** What ended the stream while it was still held (the events before it are good and are sent). */
  let first: ReturnType<typeof forward> | undefined;
  let ended = false;
  while (dataEvents === 0 && first === undefined && !ended) {
    const next = await chunks.next();
    ended = next.done === true;
    let f: ReturnType<typeof forward>;
    try {
      f = forward(next.done ? sse.end() : sse.push(next.value));
    } catch (e) {
      if (!(e instanceof EventTooLarge)) throw e;
      return refuse(body, acct, { errorType: "server_error", message: e.message });
    }
    held += f.text;
    if (f.error !== undefined || f.bad !== undefined) first = f;
    // Comments and empty events before the first data are held, within one event's bound.
    if (held.length > maxEventBytes) return refuse(body, acct, { errorType: "server_error", message: `the stream sent ${held.length} bytes before its first event` });
  }
  if (dataEvents === 0) {
    if (first?.error !== undefined) return refuse(body, acct, { ...first.error, message: `the stream opened with an error: ${scrub.say(first.error.message)}` });
    if (first?.bad !== undefined) return refuse(body, acct, { errorType: "server_error", message: `the stream is not SSE of JSON (${first.bad})` });
    return refuse(body, acct, { errorType: "server_error", message: "the stream ended before its first event" });
  }
  commit();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-request-id": ctx.requestId,
    "x-gwc-account": acct.id,
    ...ctx.headers,
  });
  let failure: string | undefined;
  let lied = false;
  const fail = (f: ReturnType<typeof forward>) => {
    if (f.error !== undefined) failure = `the upstream reported an error mid-stream: ${scrub.say(f.error.message)}`;
    else if (f.bad !== undefined) {
      failure = `the upstream broke the stream's format (${f.bad})`;
      lied = true;
    }
  };
  try {
    await write(res, held);
    if (first !== undefined) fail(first);
    while (failure === undefined && !ended && !res.destroyed) {
      const next = await chunks.next();
      ended = next.done === true;
      const f = forward(next.done ? sse.end() : sse.push(next.value));
      await write(res, f.text);
      fail(f);
    }
    if (failure === undefined && !done && !res.destroyed) failure = "the upstream ended the stream before it finished";
  } catch (e) {
    lied = e instanceof EventTooLarge;
    failure = broken(e, acct);
  }
  if (failure !== undefined) {
    interrupt(body, acct, ctx, failure);
    return { usage: lied ? (usage ?? NO_USAGE) : usage, interrupted: true };
  }
  res.end();
  return { usage };
}

/** A stream that failed before its first byte reached the caller: the account failed, the request may fail over. */
function refuse(body: UpstreamBody, acct: AccountRuntime, c: Classified): Streamed {
  body.destroy();
  acct.health.failure(c.retryAfterMs);
  const failure: Failure = { account: acct.id, status: 200, errorType: c.errorType, reason: c.message };
  if (c.retryAfterMs !== undefined) failure.retryAfterMs = c.retryAfterMs;
  return { failure };
}

/** A stream that failed after its first byte: it ends with an error event, never a clean finish. */
function interrupt(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, failure: string): void {
  body.destroy();
  acct.health.failure();
  const event = { error: { message: `${failure} (account ${acct.id}); the answer is incomplete.`, type: "upstream_error", code: "stream_interrupted", param: null } };
  ctx.res.end(`data: ${JSON.stringify(event)}\n\n`);
}

/** What a read that threw mid-stream means, in words. */
function broken(e: unknown, acct: AccountRuntime): string {
  if (e instanceof EventTooLarge) return `${e.message} (server.max_event_bytes)`;
  return isTimeout(e) ? `the upstream stalled for ${acct.pool.config.requestTimeoutMs} ms` : "the upstream connection broke mid-stream";
}

async function write(res: RequestContext["res"], text: string): Promise<void> {
  if (text !== "" && !res.write(text)) {
    await new Promise<void>((ok) => {
      res.once("drain", ok);
      res.once("close", ok);
    });
  }
}

/** Whether event data is (by its ends) a JSON object: the cheap check every relayed event gets. */
function isJsonObjectText(data: string): boolean {
  let i = 0;
  let j = data.length - 1;
  while (i <= j && data.charCodeAt(i) <= 0x20) i++;
  while (j >= i && data.charCodeAt(j) <= 0x20) j--;
  return data[i] === "{" && data[j] === "}";
}

function isErrorEvent(data: string): boolean {
  try {
    return (JSON.parse(data) as { error?: unknown }).error != null;
  } catch {
    return false;
  }
}
