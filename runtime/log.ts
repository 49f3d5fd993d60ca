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

/** Creates the process's logger (once; later calls only change its level). */
export function configureLog(options: LogOptions): Logger {
  if (logger !== undefined) {
    logger.level = options.level;
    return logger;
  }
  const sync = options.sync ?? false;
  destination = pino.destination({
    dest: options.dest ?? 1,
    sync,
    mkdir: typeof options.dest === "string",
    // Lines gather up to 4 KiB (or 100 ms) before one write: a write per request would wake
    // libuv's thread pool per request, which cost more than building the line.
    ...(sync ? {} : { minLength: 4096, periodicFlush: 100 }),
  });
  logger = pino(
    {
      level: options.level,
      // No pid/hostname on every line: the collector knows where it read them.
      base: null,
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  // process.exit() does not wait for an asynchronous write: flush what is buffered first.
  process.once("exit", flushLog);
  return logger;
}

let lastMs = 0;
let lastTime = "";
/** pino's isoTime, made once per millisecond: under load many lines share one. */
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/** Writes whatever is buffered, synchronously (before exit). */
export function flushLog(): void {
  try {
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
 * (the benchmark's item 8). Strings go through JSON.stringify, numbers as they are.
 */
export function accessJson(r: RequestRecord): string {
  const s = JSON.stringify;
  let attempts = "";
  for (const a of r.attempts) {
    attempts += `${attempts === "" ? "" : ","}{"account":${s(a.account)},"provider":${s(a.provider)},"model":${s(a.model)},"status":${a.status},"error_type":${s(a.errorType)},"ms":${round(a.ms)}}`;
  }
  const u = r.usage;
  const usage = u === null ? "null" : `{"input_tokens":${u.inputTokens},"output_tokens":${u.outputTokens},"cache_read_tokens":${u.cacheReadTokens},"cache_write_tokens":${u.cacheWriteTokens}}`;
  return (
    `"req_id":${s(r.id)},"method":${s(r.method)},"path":${s(r.path)},"status":${r.status},"model":${s(r.model)},"route":${s(r.route)},"key_id":${s(r.keyId)},` +
    `"attempts":[${attempts}],"usage":${usage},"cost_usd":${r.costNanoUsd === null ? "null" : r.costNanoUsd / 1e9},"ttft_ms":${r.ttftMs === null ? "null" : round(r.ttftMs)},` +
    `"duration_ms":${round(r.durationMs)},"overhead_ms":${round(Math.max(0, r.durationMs - r.upstreamMs))},"error_type":${s(r.errorType)}`
  );
}

/**
 * An observer writing one access line per request, at level info whatever
 * `server.log_level` says (`server.access_log` turns them off), to the log's
 * own destination. Bodies are on the record only under `observability.log_bodies`.
 */
export function accessLog(): (r: RequestRecord) => void {
  return (r) => {
    let line = `{"level":"info"${isoTime()},${accessJson(r)}`;
    if (r.requestBody !== null) line += `,"request_body":${JSON.stringify(r.requestBody)}`;
    if (r.responseBody !== null) line += `,"response_body":${JSON.stringify(r.responseBody)}`;
    destination?.write(`${line}}\n`);
  };
}

/** Milliseconds to the microsecond: enough for any reader, and short lines. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
