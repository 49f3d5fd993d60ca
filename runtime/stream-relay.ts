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
//     without the upstream's own end marker.
import type { AccountRuntime, Failure, RequestContext, ResponseSink } from "./attempt-types.ts";
import type { ErrorType } from "./error-type.ts";
import type { StreamTranslator, Usage } from "./providers/adapter.ts";
import { parseJson, upstreamMessage } from "./upstream.ts";
import type { Watchdog } from "./watchdog.ts";

type UpstreamBody = AsyncIterable<Buffer> & { destroy(): void };

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

/** An event that carries a usage object (not `"usage":null`). */
const USAGE = /"usage"\s*:\s*\{/;
/** An event that carries the first token: text, a tool call, or a finish. Cheap, and never parses. */
const TOKEN = /"(?:content|text|reasoning_content|refusal)"\s*:\s*"(?!")|"tool_calls"\s*:\s*\[|"finish_reason"\s*:\s*"/;
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

/** The upstream read threw after the first token: the stall timeout, or the connection. */
function brokenBy(watchdog: Watchdog, acct: AccountRuntime, sent: SentText | undefined): NonNullable<Streamed["broken"]> {
  if (watchdog.fired === "stall") return interrupted(`the upstream stalled (no chunk within the stall timeout) on account ${acct.id}`, sent, "timeout");
  return interrupted(`the upstream connection broke mid-stream on account ${acct.id}`, sent);
}

/** A failure before the first token: fail over; for a continuation, a break of the stream the caller is reading. */
function unopened(acct: AccountRuntime, resume: Resume | undefined, usage: Usage | undefined, errorType: ErrorType, reason: string): Streamed {
  if (resume !== undefined) return { usage, broken: { errorType, reason: `${reason} (continuation on account ${acct.id})`, toolCallOpen: false } };
  return { failure: { account: acct.id, errorType, status: errorType === "stream_interrupted" ? 200 : undefined, reason } };
}

/** The upstream read threw before the first token: the first-token timeout, or the connection. */
function cutBeforeFirstToken(watchdog: Watchdog, acct: AccountRuntime, resume: Resume | undefined, usage: Usage | undefined): Streamed {
  const timedOut = watchdog.fired !== undefined;
  return unopened(acct, resume, usage, timedOut ? "timeout" : "connection_error", timedOut ? "no first token within the first-token timeout" : "the connection broke before the first token");
}

/**
 * Streams another wire format as OpenAI's SSE through the adapter's
 * translator, under the same rules as a relay.
 */
export async function translateStream(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, model: string, opts: StreamOptions): Promise<Streamed> {
  const { res } = ctx;
  const { watchdog, sent, resume } = opts;
  const translator = acct.adapter!.stream!(ctx.req, model);
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
        return unopened(acct, resume, usage, "stream_interrupted", `the stream opened with an error: ${upstreamMessage(t.error)}`);
      }
      head += events(t);
      if (next.done) break;
    }
  } catch {
    body.destroy();
    return cutBeforeFirstToken(watchdog, acct, resume, usage);
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
        broken = interrupted(`the upstream reported an error mid-stream on account ${acct.id}: ${upstreamMessage(t.error)}`, sent);
        break;
      }
    }
    // Its own end marker, or a finish_reason and a clean close: complete either way.
    if (broken === undefined && ended !== undefined && !ended.complete && !finished) {
      broken = interrupted(`the upstream ended the stream before it finished on account ${acct.id}`, sent);
    }
  } catch {
    broken = brokenBy(watchdog, acct, sent);
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
export async function relayStream(body: UpstreamBody, acct: AccountRuntime, ctx: RequestContext, injected: boolean, opts: StreamOptions): Promise<Streamed> {
  const { res } = ctx;
  const { watchdog, sent, resume } = opts;
  const adapter = acct.adapter!;
  const chunks = body[Symbol.asyncIterator]();
  let pending = "";
  let usage: Usage | undefined;
  let done = false;
  let finished = false;
  let started = resume === undefined;
  let ownId: string | undefined;
  let committed = false;
  // One decoder for the whole stream: a character split across reads stays whole.
  const decoder = new TextDecoder();
  /** Appends a read, with line ends as `\n` (SSE allows `\r\n` and `\r`); a trailing `\r` waits for the next read. */
  let heldCr = false;
  const append = (bytes: Buffer | undefined) => {
    let text = (heldCr ? "\r" : "") + (bytes === undefined ? decoder.decode() : decoder.decode(bytes, { stream: true }));
    heldCr = bytes !== undefined && text.endsWith("\r");
    if (heldCr) text = text.slice(0, -1);
    pending += text.replace(/\r\n?/g, "\n");
  };
  let firstError: string | undefined;
  /** Complete events in `pending`, as text to forward (each with its blank line). */
  const takeEvents = (): string => {
    const end = pending.lastIndexOf("\n\n");
    if (end < 0) return "";
    const complete = pending.slice(0, end + 2);
    pending = pending.slice(end + 2);
    let out = "";
    for (let event of complete.split("\n\n")) {
      if (event === "") continue;
      const data = sseData(event);
      if (data === "[DONE]") {
        done = true;
      } else {
        if (!committed || sent !== undefined) {
          const error = sseError(data);
          if (error !== undefined) {
            firstError ??= error;
            continue;
          }
        }
        if (FINISH.test(data)) finished = true;
        if (USAGE.test(data)) {
          const json = parseJson(data);
          usage = adapter.usage(json) ?? usage;
          if (injected && (json as { choices?: unknown[] } | undefined)?.choices?.length === 0) continue;
        }
        if (sent !== undefined && data.startsWith("{")) sent.add(parseJson(data));
        if (resume !== undefined) {
          // A continuation joins at its next token, under the id the caller has seen.
          if (!started && !TOKEN.test(data)) continue;
          started = true;
          ownId ??= (parseJson(data) as { id?: string } | undefined)?.id;
          if (ownId !== undefined) event = event.replace(`"id":"${ownId}"`, `"id":"${resume.id}"`);
        }
      }
      out += event + "\n\n";
    }
    return out;
  };

  // Hold everything back until the first token (or the end): until then, a failure can fail over.
  let head = "";
  try {
    while (!TOKEN.test(head) && !done && firstError === undefined) {
      const next = await chunks.next();
      append(next.done ? undefined : next.value);
      head += takeEvents();
      if (next.done) break;
    }
  } catch {
    body.destroy();
    return cutBeforeFirstToken(watchdog, acct, resume, usage);
  }
  if (firstError !== undefined || (head === "" && !done)) {
    body.destroy();
    return unopened(acct, resume, usage, "stream_interrupted", firstError ?? "the stream ended before its first token");
  }
  watchdog.firstToken();
  opts.commit();
  committed = true;
  if (resume === undefined) res.writeHead(200, sseHead(ctx, acct));
  const write = writer(res, watchdog);
  let broken: Streamed["broken"];
  try {
    await write(head);
    for (let next = await chunks.next(); !next.done && !res.destroyed; next = await chunks.next()) {
      watchdog.tick();
      append(next.value);
      await write(takeEvents());
      if (firstError !== undefined) break;
    }
    if (!res.destroyed && firstError === undefined) {
      append(undefined);
      await write(takeEvents());
    }
    if (firstError !== undefined) {
      broken = interrupted(`the upstream reported an error mid-stream on account ${acct.id}: ${firstError}`, sent);
    } else if (!done && !finished && !res.destroyed) {
      broken = interrupted(`the upstream ended the stream before it finished on account ${acct.id}`, sent);
    }
  } catch {
    broken = brokenBy(watchdog, acct, sent);
  }
  if (broken !== undefined) {
    body.destroy();
    return { usage, broken };
  }
  // A clean close after a finish_reason is a complete answer: the caller gets its `[DONE]`.
  res.end(done ? undefined : "data: [DONE]\n\n");
  return { usage };
}

/** An SSE event's data lines, joined. */
function sseData(event: string): string {
  return event
    .split("\n")
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
}

/** The error message carried by an event's data, if it is an error event. */
function sseError(data: string): string | undefined {
  // Parsed only when it could be one: this sits between the first chunk and the caller.
  if (!data.startsWith("{") || !data.includes('"error"')) return undefined;
  try {
    const parsed = JSON.parse(data) as { error?: unknown };
    return parsed.error === undefined || parsed.error === null ? undefined : `the stream opened with an error: ${upstreamMessage(data)}`;
  } catch {
    return undefined;
  }
}
