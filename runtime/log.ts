// The gateway's one log: JSON lines on stdout through pino, written by an
// asynchronous destination so a slow disk or pipe never holds up a request.
//
//   stdout  one JSON object per line, nothing else: an access line per request
//           (`access` below) and lifecycle events (`event`): start, listening,
//           reload, breaker opened/closed, budget exhausted, snapshot failure,
//           drain, stop.
//   stderr  words for a person, only when the process cannot start or serve
//           (a missing secret, a port in use, an unreadable snapshot) — that
//           is also an `event` on stdout, at level fatal.
//
// Until `configureLog` runs (start.ts does, from the plan), `event` writes
// nothing but errors (to stderr): the runtime embedded in tests or tools stays quiet.
import pino, { type Logger } from "pino";
import type { RequestRecord } from "./request-record.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface LogOptions {
  level: LogLevel;
  /** Where lines go: a file descriptor (1, stdout, by default) or a path; tests and the bench pass their own. */
  dest?: number | string;
  /** Writes each line before returning (for tests that read a file right after); the gateway uses the async default. */
  sync?: boolean;
}

let logger: Logger | undefined;
let destination: ReturnType<typeof pino.destination> | undefined;
/** Each line written out before `put` returns (tests): no chunk, no timer. */
let syncWrites = false;

/**
 * Lines are encoded as they come into a chunk of bytes, which goes to the destination whole
 * when the next line might not fit, every 100 ms, and at exit: one write a ~64 KiB chunk
 * (each write is a trip through libuv's thread pool), and no Buffer, no copy and no
 * sonic-boom bookkeeping per line (a Buffer.from per line, sonic-boom's push and its
 * Buffer.concat of the batch cost ~0.5 µs a line more; bench/README.md, third session).
 *
 *   chunk  [ line line line ... line |   free   ]
 *           0                        used       CHUNK_BYTES
 */
const CHUNK_BYTES = 65536;
let chunk: Buffer | undefined;
let used = 0;

/** Creates the process's logger (once; later calls only change its level). */
export function configureLog(options: LogOptions): Logger {
  if (logger !== undefined) {
    logger.level = options.level;
    return logger;
  }
  const sync = options.sync ?? false;
  const dest = pino.destination({
    dest: options.dest ?? 1,
    sync,
    mkdir: typeof options.dest === "string",
    // Bytes, not text: in text mode sonic-boom measures its whole pending text again on every
    // write (Buffer.byteLength of the growing string) and encodes each batch twice, 3–4 µs a line
    // (bench/README.md, item 8). It gets whole chunks (above) and writes each at once; chunks that
    // arrive while a write is under way are merged into the next one, up to 256 KiB.
    contentMode: "buffer",
    maxWrite: 262144,
  });
  destination = dest;
  syncWrites = sync;
  if (!sync) setInterval(handOver, 100).unref();
  logger = pino(
    {
      level: options.level,
      // No pid/hostname on every line: the collector knows where it read them.
      base: null,
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: put },
  );
  // process.exit() does not wait for an asynchronous write: flush what is buffered first.
  process.once("exit", flushLog);
  return logger;
}

let lastMs = NaN;
let lastTime = "";
let lastSecond = NaN;
/** `,"time":"2026-12-03T10:46:32.` for `lastSecond`. */
let secondPrefix = "";
/** pino's isoTime, made once per millisecond: under load many lines share one. */
function isoTime(): string {
  return timeAt(Date.now());
}

/**
 * The `time` field for an epoch time in ms: `,"time":"<ISO 8601>"`, as pino's isoTime writes it.
 * A batch's lines are stamped with their own ends (arrival + duration), which are not in order:
 * consecutive lines alternate between neighbouring milliseconds. So the date is made once per
 * second and a millisecond only appends its three digits (a Date and its ISO text cost ~0.4 µs).
 */
export function timeAt(ms: number): string {
  const whole = Math.floor(ms);
  if (whole !== lastMs) {
    const second = Math.floor(whole / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      // Without the "000Z" of a whole second (any year's form: 2026, +010000).
      secondPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, -4)}`;
    }
    const milli = whole - second * 1000;
    lastMs = whole;
    lastTime = `${secondPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z"`;
  }
  return lastTime;
}

/** Every line goes out here: pino's and the access log's, in order. The destination takes bytes (its types know only its text mode). */
function put(text: string): void {
  if (destination === undefined) return;
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  const most = text.length * 3;
  if (!syncWrites && most <= CHUNK_BYTES) {
    if (used + most > CHUNK_BYTES) handOver();
    chunk ??= Buffer.allocUnsafeSlow(CHUNK_BYTES);
    used += chunk.write(text, used);
    return;
  }
  // Written now (tests), or a line larger than a chunk (logged bodies): after what is pending.
  handOver();
  destination.write(Buffer.from(text) as unknown as string);
}

/** The pending chunk to the destination (which keeps it until written: the next line starts a new one). */
function handOver(): void {
  if (used === 0) return;
  destination?.write(chunk!.subarray(0, used) as unknown as string);
  chunk = undefined;
  used = 0;
}

/** Writes whatever is buffered, synchronously (before exit). */
export function flushLog(): void {
  try {
    handOver();
    destination?.flushSync();
  } catch {
    // Nothing was pending, or the descriptor is gone: there is nowhere left to say so.
  }
}

/** The logger, once configured; undefined before (see the header). */
export function currentLogger(): Logger | undefined {
  return logger;
}

/**
 * One lifecycle event as a JSON line: `{"time","level","event":name,...fields,"msg"}`.
 * Fields are plain data (ids, counts, versions), never a secret or a body.
 */
export function event(name: string, fields: Record<string, unknown>, msg: string, level: "info" | "warn" | "error" | "fatal" = "info"): void {
  if (logger !== undefined) logger[level]({ event: name, ...fields }, msg);
  // Embedded without a log (tests, tools): a failure still reaches a person.
  else if (level === "error" || level === "fatal") process.stderr.write(`gwc: ${msg}\n`);
}

/** The access line of one request: exactly the fields README's "Observability" lists. */
export function accessLine(r: RequestRecord): Record<string, unknown> {
  const u = r.usage;
  return {
    req_id: r.id,
    method: r.method,
    path: r.path,
    status: r.status,
    model: r.model,
    route: r.route,
    key_id: r.keyId,
    attempts: r.attempts.map((a) => ({ account: a.account, provider: a.provider, model: a.model, status: a.status, error_type: a.errorType, ms: round(a.ms) })),
    usage: u === null ? null : { input_tokens: u.inputTokens, output_tokens: u.outputTokens, cache_read_tokens: u.cacheReadTokens, cache_write_tokens: u.cacheWriteTokens },
    cost_usd: r.costNanoUsd === null ? null : r.costNanoUsd / 1e9,
    ttft_ms: r.ttftMs === null ? null : round(r.ttftMs),
    duration_ms: round(r.durationMs),
    overhead_ms: round(Math.max(0, r.durationMs - r.upstreamMs)),
    error_type: r.errorType,
  };
}

/**
 * `accessLine(r)` as JSON text, written without the intermediate objects:
 * the access line is the one log line per request, and building it through
 * pino's per-key serializer plus the objects above cost about twice this
 * (the benchmark's item 8). Strings that need no escaping (ids, paths, model
 * names: nearly all) are quoted as they are, the rest through JSON.stringify;
 * milliseconds are written from whole microseconds, which is cheaper than a
 * fraction's shortest form and reads back as the same number.
 */
export function accessJson(r: RequestRecord): string {
  let attempts = "";
  for (const a of r.attempts) {
    attempts += `${attempts === "" ? "" : ","}{"account":${quote(a.account)},"provider":${quote(a.provider)},"model":${quote(a.model)},"status":${a.status},"error_type":${quote(a.errorType)},"ms":${millis(a.ms)}}`;
  }
  const u = r.usage;
  const usage = u === null ? "null" : `{"input_tokens":${u.inputTokens},"output_tokens":${u.outputTokens},"cache_read_tokens":${u.cacheReadTokens},"cache_write_tokens":${u.cacheWriteTokens}}`;
  return (
    `"req_id":${quote(r.id)},"method":${quote(r.method)},"path":${quote(r.path)},"status":${r.status},"model":${quote(r.model)},"route":${quote(r.route)},"key_id":${quote(r.keyId)},` +
    `"attempts":[${attempts}],"usage":${usage},"cost_usd":${r.costNanoUsd === null ? "null" : r.costNanoUsd / 1e9},"ttft_ms":${r.ttftMs === null ? "null" : millis(r.ttftMs)},` +
    `"duration_ms":${millis(r.durationMs)},"overhead_ms":${millis(Math.max(0, r.durationMs - r.upstreamMs))},"error_type":${quote(r.errorType)}`
  );
}

/** What JSON.stringify must escape: quotes, backslashes, control characters, lone surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string (or null): JSON.stringify's text, without its cost when there is nothing to escape. */
function quote(s: string | null): string {
  return s === null ? "null" : NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** `round(ms)` as JSON text: whole microseconds, written with a decimal point (0.41 as 0.410). */
function millis(ms: number): string {
  const us = Math.round(ms * 1000);
  // Not a finite non-negative number (never expected): the plain form.
  if (!(us >= 0 && us <= Number.MAX_SAFE_INTEGER)) return String(round(ms));
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  return frac === 0 ? `${whole}` : `${whole}.${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}`;
}

/**
 * An observer writing one access line per request, at level info whatever
 * `server.log_level` says (`server.access_log` turns them off), to the log's
 * own destination. Bodies are on the record only under `observability.log_bodies`.
 */
export function accessLog(): (r: RequestRecord) => void {
  return (r) => {
    // Stamped with when the response ended (arrival + duration), not when the batch is written: no clock read per line.
    let line = `{"level":"info"${timeAt(r.start + r.durationMs)},${accessJson(r)}`;
    if (r.requestBody !== null) line += `,"request_body":${JSON.stringify(r.requestBody)}`;
    if (r.responseBody !== null) line += `,"response_body":${JSON.stringify(r.responseBody)}`;
    put(`${line}}\n`);
  };
}

/** Milliseconds to the microsecond: enough for any reader, and short lines. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
