// Relaying an upstream stream to the caller, for both kinds of upstream:
// OpenAI's own SSE (relayed event by event) and other wire formats (through the
// adapter's translator). Both keep the same promises:
//   - nothing is sent before the first token (a content, text or tool-call
//     delta, or the end): an opening error, a role-only chunk followed by
//     silence, or a first-token timeout still fails over;
//   - after that, a break is reported to the attempt loop (`broken`) with the
//     caller's stream left open, so the loop can continue it on another
//     account or end it with an error event;
//   - a stream that closes cleanly after a finish_reason is complete, with or
//     without the upstream's own end marker;
//   - one upstream event is at most `server.max_event_bytes`: an upstream that
//     never ends its event costs that much memory, not all it sends;
//   - every upstream text that reaches the caller is scrubbed of secrets;
//   - a stream that stopped speaking its protocol is billed only the usage the
//     provider reported (none when it reported none).
import type { AccountRuntime, Failure, RequestContext, ResponseSink } from "./attempt-types.ts";
import type { ErrorType } from "./error-type.ts";
import type { StreamTranslator, Usage } from "./providers/adapter.ts";
import { EventTooLarge, SseDecoder, type SseEvent } from "./providers/sse.ts";
import { parseJson, type UpstreamBody } from "./upstream.ts";
import type { Dialect } from "./surfaces/dialects.ts";
import type { Watchdog } from "./watchdog.ts";

/** How a stream attempt ended. */
export interface Streamed {
  /** Failed before anything was sent: fail over. */
  failure?: Failure;
  usage?: Usage;
  /** Broke after bytes reached the caller; the caller's stream is still open. */
  broken?: { errorType: ErrorType; reason: string; toolCallOpen: boolean };
}

/** A stream that continues another on this account (mid-stream continuation). */
export interface Resume {
  /** The id the caller has seen: every continued chunk carries it. */
  id: string;
}

/** What the caller has been sent so far, kept only when a continuation may need it. */
export class SentText {
  text = "";
  id: string | undefined;
  toolCallOpen = false;

  /** Reads one chunk object's first choice. */
  add(chunk: unknown): void {
    const c = chunk as { id?: unknown; choices?: { delta?: { content?: unknown; tool_calls?: unknown }; text?: unknown; finish_reason?: unknown }[] } | undefined;
    if (typeof c?.id === "string") this.id ??= c.id;
    const choice = c?.choices?.[0];
    const piece = choice?.delta?.content ?? choice?.text;
    if (typeof piece === "string") this.text += piece;
    if (choice?.delta?.tool_calls !== undefined) this.toolCallOpen = true;
    if (choice?.finish_reason !== undefined && choice.finish_reason !== null) this.toolCallOpen = false;
  }
}

export interface StreamOptions {
  watchdog: Watchdog;
  /** Called once, just before the first byte goes to the caller. */
  commit: () => void;
  /** Kept when the route may continue a broken stream. */
  sent?: SentText;
  /** This attempt continues a stream the caller is already reading. */
  resume?: Resume;
}

/** What a stream that broke its protocol is billed when the provider reported nothing. */
const NO_USAGE: Usage = { input: 0, output: 0, cached: 0 };

/** An event that carries the first token: text, a tool call, or a finish. Cheap, and never parses. */
const TOKEN = /"(?:content|text|reasoning_content|refusal|delta|partial_json|thinking)"\s*:\s*"(?!")|"(?:tool_calls|parts)"\s*:\s*\[\s*\{\s*"function|"tool_calls"\s*:\s*\[|"functionCall"\s*:|"finish_reason"\s*:\s*"/;
const FINISH = /"finish_reason"\s*:\s*"/;

/** Ends the caller's stream with an error event: the answer is incomplete. */
export function endWithError(res: ResponseSink, message: string, code = "stream_interrupted"): void {
  if (res.destroyed) return;
  const event = { error: { message, type: "upstream_error", code, param: null } };
  res.end(`data: ${JSON.stringify(event)}\n\n`);
}

function sseHead(ctx: RequestContext, acct: AccountRuntime): Record<string, string> {
  return { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": ctx.requestId, "x-gwc-account": acct.id, ...ctx.headers };
}

function writer(res: ResponseSink, watchdog: Watchdog): (text: string) => Promise<void> {
  return async (text: string) => {
    if (text === "" || res.write(text)) return;
    watchdog.pause();
    await new Promise<void>((ok) => {
      res.once("drain", ok);
      res.once("close", ok);
    });
    watchdog.tick();
  };
}

/** A break after the first token. */
function interrupted(reason: string, sent: SentText | undefined, errorType: ErrorType = "stream_interrupted"): NonNullable<Streamed["broken"]> {
  return { errorType, reason, toolCallOpen: sent?.toolCallOpen ?? false };
}

/** The upstream read threw after the first token: the stall timeout, an event past its bound, or the connection. */
function brokenBy(e: unknown, watchdog: Watchdog, acct: AccountRuntime, sent: SentText | undefined): NonNullable<Streamed["broken"]> {
  if (watchdog.fired === "stall") return interrupted(`the upstream stalled (no chunk within the stall timeout) on account ${acct.id}`, sent, "timeout");
  if (e instanceof EventTooLarge) return interrupted(`${e.message} (server.max_event_bytes) on account ${acct.id}`, sent);
  return interrupted(`the upstream connection broke mid-stream on account ${acct.id}`, sent);
}

/** A failure before the first token: fail over; for a continuation, a break of the stream the caller is reading. */
function unopened(acct: AccountRuntime, resume: Resume | undefined, usage: Usage | undefined, errorType: ErrorType, reason: string, retryAfterMs?: number): Streamed {
  if (resume !== undefined) return { usage, broken: { errorType, reason: `${reason} (continuation on account ${acct.id})`, toolCallOpen: false } };
  const failure: Failure = { account: acct.id, errorType, status: 200, reason };
  if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
  return { failure };
}

/** The upstream read threw before the first token: the first-token timeout, an event past its bound, or the connection. */
function cutBeforeFirstToken(e: unknown, watchdog: Watchdog, acct: AccountRuntime, resume: Resume | undefined, usage: Usage | undefined): Streamed {
  if (e instanceof EventTooLarge) return unopened(acct, resume, usage ?? NO_USAGE, "server_error", `${e.message} (server.max_event_bytes)`);
  const timedOut = watchdog.fired !== undefined;
  const f = unopened(acct, resume, usage, timedOut ? "timeout" : "connection_error", timedOut ? "no first token within the first-token timeout" : "the connection broke before the first token");
  if (f.failure !== undefined) delete f.failure.status;
  return f;
}

/**
 * Streams another wire format as OpenAI's SSE through the adapter's
 * translator, under the same rules as a relay.
 */
export async function translateStream(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, model: string, opts: StreamOptions): Promise<Streamed> {
  const { res } = ctx;
  const { watchdog, sent, resume } = opts;
  const { scrub } = acct.edge;
  const translator = acct.adapter!.stream!(ctx.req, model, acct.edge.maxEventBytes);
  const wantsUsage = (ctx.req.json.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  const chunks = body[Symbol.asyncIterator]();
  let usage: Usage | undefined;
  let last: Record<string, unknown> | undefined;
  let finished = false;
  let started = resume === undefined;
  const events = (t: { chunks: object[]; usage?: Usage }) => {
    usage = t.usage ?? usage;
    let out = "";
    for (let c of t.chunks) {
      const choice = (c as { choices?: { delta?: { role?: unknown; content?: unknown; tool_calls?: unknown }; finish_reason?: unknown }[] }).choices?.[0];
      if (choice?.finish_reason != null) finished = true;
      // A continuation joins the caller's stream at its next token: no second role chunk, the first id.
      if (!started) {
        if (choice?.delta?.content === undefined && choice?.delta?.tool_calls === undefined && choice?.finish_reason == null) continue;
        started = true;
      }
      if (resume !== undefined) c = { ...c, id: resume.id };
      last = c as Record<string, unknown>;
      sent?.add(c);
      out += `data: ${JSON.stringify(wantsUsage ? { ...c, usage: null } : c)}\n\n`;
    }
    return out;
  };
  let head = "";
  let ended: ReturnType<StreamTranslator["end"]> | undefined;
  try {
    while (!TOKEN.test(head)) {
      const next = await chunks.next();
      const t = next.done ? (ended = translator.end()) : translator.push(next.value);
      if (t.error !== undefined) {
        body.destroy();
        return unopened(acct, resume, usage, t.errorType ?? "server_error", `the stream opened with an error: ${scrub.say(t.error)}`, t.retryAfterMs);
      }
      head += events(t);
      if (next.done) break;
    }
  } catch (e) {
    body.destroy();
    return cutBeforeFirstToken(e, watchdog, acct, resume, usage);
  }
  if (head === "" && !finished) return unopened(acct, resume, usage, "stream_interrupted", "the stream ended before its first token");
  watchdog.firstToken();
  opts.commit();
  if (resume === undefined) res.writeHead(200, sseHead(ctx, acct));
  const write = writer(res, watchdog);
  let broken: Streamed["broken"];
  try {
    await write(head);
    while (ended === undefined && !res.destroyed) {
      const next = await chunks.next();
      watchdog.tick();
      const t = next.done ? (ended = translator.end()) : translator.push(next.value);
      await write(events(t));
      if (t.error !== undefined) {
        broken = interrupted(`the upstream reported an error mid-stream on account ${acct.id}: ${scrub.say(t.error)}`, sent);
        break;
      }
    }
    // Its own end marker, or a finish_reason and a clean close: complete either way.
    if (broken === undefined && ended !== undefined && !ended.complete && !finished) {
      broken = interrupted(`the upstream ended the stream before it finished on account ${acct.id}`, sent);
    }
  } catch (e) {
    broken = brokenBy(e, watchdog, acct, sent);
    if (e instanceof EventTooLarge) usage ??= NO_USAGE;
  }
  if (broken !== undefined) {
    body.destroy();
    return { usage, broken };
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
 * Relays an SSE stream event by event. Usage is read from the events as they
 * pass; when the gateway asked for it on the caller's behalf, the usage-only
 * event is withheld so the caller sees the stream it asked for.
 */
export async function relayStream(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, injected: boolean, opts: StreamOptions, dialect: Dialect): Promise<Streamed> {
  const { res } = ctx;
  const { watchdog, sent, resume } = opts;
  const adapter = acct.adapter!;
  const { scrub, maxEventBytes } = acct.edge;
  const chunks = body[Symbol.asyncIterator]();
  const sse = new SseDecoder(maxEventBytes, { keepText: true });
  let usage: Usage | undefined;
  let done = false;
  let finished = false;
  let started = resume === undefined;
  let ownId: string | undefined;
  let committed = false;
  /** The first error event, or the first event that is not this protocol (then the stream lied: `bad`). */
  let firstError: { errorType: ErrorType; message: string; retryAfterMs?: number } | undefined;
  let bad = false;
  /** Events with data seen: a stream with none (an HTML page, comments alone) never opened. */
  let dataEvents = 0;
  /** Events to forward, as text (each with its blank line), up to the first that is an error or not this protocol. */
  const forward = (events: SseEvent[]): string => {
    let out = "";
    for (const e of events) {
      if (firstError !== undefined) break;
      let text = e.text;
      if (e.hasData) {
        const data = e.data;
        if (data === "[DONE]") {
          done = true;
        } else {
          dataEvents++;
          if (!isJsonObjectText(data)) {
            firstError = { errorType: "server_error", message: "an event whose data is not a JSON object" };
            bad = true;
            break;
          }
          // Parsed only when it could be an error: this sits between the upstream and the caller.
          if (data.includes('"error"') && isErrorEvent(data)) {
            const c = adapter.classify(200, {}, data);
            firstError = { errorType: c.errorType, message: scrub.say(c.message), retryAfterMs: c.retryAfterMs };
            break;
          }
          if (FINISH.test(data)) finished = true;
          // The API's own end marker (Anthropic's message_stop, the Responses API's response.completed, …).
          if (dialect.ends(data)) done = true;
          if (dialect.mayCarryUsage.test(data)) {
            const json = parseJson(data);
            if (json === undefined) {
              firstError = { errorType: "server_error", message: "an event whose data is not JSON" };
              bad = true;
              break;
            }
            usage = dialect.eventUsage(json, usage) ?? usage;
            if (injected && (json as { choices?: unknown[] }).choices?.length === 0) continue;
          }
          if (sent !== undefined) sent.add(parseJson(data));
          if (resume !== undefined) {
            // A continuation joins at its next token, under the id the caller has seen.
            if (!started && !TOKEN.test(data)) continue;
            started = true;
            ownId ??= (parseJson(data) as { id?: string } | undefined)?.id;
            if (ownId !== undefined) text = text.replace(`"id":"${ownId}"`, `"id":"${resume.id}"`);
          }
        }
      }
      out += `${text}\n\n`;
    }
    return out;
  };

  // Hold everything back until the first token (or the end): until then, a failure can fail over.
  let head = "";
  try {
    while (!TOKEN.test(head) && !done && firstError === undefined) {
      const next = await chunks.next();
      head += forward(next.done ? sse.end() : sse.push(next.value));
      // Comments and empty events before the first token are held, within one event's bound.
      if (head.length > maxEventBytes) throw new EventTooLarge(maxEventBytes);
      if (next.done) break;
    }
  } catch (e) {
    body.destroy();
    return cutBeforeFirstToken(e, watchdog, acct, resume, usage);
  }
  // An error (or a lie) after the first token, in the same read: the tokens before it are sent, then the break.
  if (firstError !== undefined && !TOKEN.test(head)) {
    body.destroy();
    const why = bad ? `the stream is not SSE of JSON (${firstError.message})` : `the stream opened with an error: ${firstError.message}`;
    return unopened(acct, resume, bad ? (usage ?? NO_USAGE) : usage, firstError.errorType, why, firstError.retryAfterMs);
  }
  if (dataEvents === 0 && !done) {
    body.destroy();
    return unopened(acct, resume, usage ?? NO_USAGE, "server_error", "the stream ended before its first token (no event with data)");
  }
  watchdog.firstToken();
  opts.commit();
  committed = true;
  if (resume === undefined) res.writeHead(200, sseHead(ctx, acct));
  const write = writer(res, watchdog);
  let broken: Streamed["broken"];
  try {
    await write(head);
    let ended = firstError !== undefined;
    while (!ended && firstError === undefined && !res.destroyed) {
      const next = await chunks.next();
      watchdog.tick();
      ended = next.done === true;
      await write(forward(next.done ? sse.end() : sse.push(next.value)));
    }
    // Set by forward(), which TypeScript cannot see through.
    const error = firstError as { message: string } | undefined;
    if (error !== undefined) {
      broken = bad
        ? interrupted(`the upstream broke the stream's format (${error.message}) on account ${acct.id}`, sent)
        : interrupted(`the upstream reported an error mid-stream on account ${acct.id}: ${error.message}`, sent);
    } else if (!done && !finished && !res.destroyed) {
      broken = interrupted(`the upstream ended the stream before it finished on account ${acct.id}`, sent);
    }
  } catch (e) {
    broken = brokenBy(e, watchdog, acct, sent);
    bad ||= e instanceof EventTooLarge;
  }
  if (broken !== undefined) {
    body.destroy();
    return { usage: bad ? (usage ?? NO_USAGE) : usage, broken };
  }
  // A clean close after a finish_reason is a complete answer: the caller gets its `[DONE]`.
  res.end(done ? undefined : "data: [DONE]\n\n");
  return { usage };
}

/** Whether event data is (by its ends) a JSON object: the cheap check every relayed event gets. */
function isJsonObjectText(data: string): boolean {
  let i = 0;
  let j = data.length - 1;
  while (i <= j && data.charCodeAt(i) <= 0x20) i++;
  while (j >= i && data.charCodeAt(j) <= 0x20) j--;
  return data[i] === "{" && data[j] === "}";
}

/** OpenAI's and Google's `{"error":…}`, Anthropic's `{"type":"error","error":…}`, the Responses API's `{"type":"error","message":…}`. */
function isErrorEvent(data: string): boolean {
  try {
    const parsed = JSON.parse(data) as { error?: unknown; type?: unknown };
    return parsed.error != null || parsed.type === "error";
  } catch {
    return false;
  }
}
