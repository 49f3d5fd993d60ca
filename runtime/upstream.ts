// Reading what an upstream answered, as bytes: its content-encoding undone,
// its size bounded, and what a thrown read means.
import { pipeline, type Readable } from "node:stream";
import { brotliDecompress, createBrotliDecompress, createGunzip, createInflate, gunzip, inflate, type InputType, type ZlibOptions } from "node:zlib";
import { errors as undiciErrors, type Dispatcher } from "undici";
import type { CallerSignal } from "./caller-signal.ts";
import type { ErrorType } from "./error-type.ts";
import { EventTooLarge } from "./providers/sse.ts";

export type UpstreamBody = Readable;

export function isTimeout(e: unknown): boolean {
  return e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError;
}

/** What a read that threw means: the clock ran out, the bytes could not be decoded or were too many, or the connection broke. */
export function thrownType(e: unknown): ErrorType {
  if (isTimeout(e)) return "timeout";
  if (e instanceof EventTooLarge) return "server_error";
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("Z_") ? "server_error" : "connection_error";
}

type Decode = (buf: InputType, options: ZlibOptions, callback: (error: Error | null, result: Buffer) => void) => void;

/** Each encoding the gateway reads: as a stream (answers relayed as they come) and whole (fetchWhole). */
const DECODERS: Record<string, { stream: () => NodeJS.ReadWriteStream; whole: Decode }> = {
  gzip: { stream: createGunzip, whole: gunzip },
  "x-gzip": { stream: createGunzip, whole: gunzip },
  br: { stream: createBrotliDecompress, whole: brotliDecompress as Decode },
  deflate: { stream: createInflate, whole: inflate },
};

/** An answer's content-encoding, lower case; "" when it has none. */
function encodingOf(headers: Readonly<Record<string, string | string[] | undefined>>): string {
  const header = headers["content-encoding"];
  return (Array.isArray(header) ? header.join(",") : (header ?? "")).trim().toLowerCase();
}

/**
 * The body with its `content-encoding` undone. Every upstream request asks
 * for `identity`; a provider (or a proxy in front of it) that compresses
 * anyway is decoded here, so compressed bytes never reach a caller without
 * their header. Undefined for an encoding the gateway cannot read.
 */
export function decodedBody(body: Readable, headers: Record<string, string | string[] | undefined>): UpstreamBody | undefined {
  const encoding = encodingOf(headers);
  if (encoding === "" || encoding === "identity") return body;
  const decoder = DECODERS[encoding]?.stream;
  if (decoder === undefined) return undefined;
  // pipeline carries a broken upstream or corrupt data to the decoder's reader as an error,
  // and destroying the decoder destroys the upstream body with it.
  return pipeline(body, decoder(), () => {}) as unknown as Readable;
}

/** An answer read whole: `bytes` undefined when it passed the limit, `unreadable` when its content-encoding is not one the gateway decodes. */
export interface WholeAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  bytes: Buffer | undefined;
  unreadable?: boolean;
}

/**
 * One upstream exchange read whole, for answers that are not streamed:
 * undici's dispatch with a handler that gathers the chunks. request()'s body
 * stream (a Readable per answer, its events, an async resource) cost the
 * floor itself 15 µs of its 57 a request (bench/README.md). `signal` aborts
 * the exchange; `onHeaders` runs when the status line and headers are in;
 * bytes past `limit` (before or after decoding) end it with `bytes` undefined.
 * Rejects as request() does: undici's errors (timeouts, a broken connection,
 * the abort), or zlib's for corrupt compressed data.
 */
export function fetchWhole(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, signal: CallerSignal, limit: number, onHeaders: () => void): Promise<WholeAnswer> {
  return new Promise((resolve, reject) => {
    let abort: ((e: Error) => void) | undefined;
    let status = 0;
    let headers: Record<string, string | string[]> = {};
    let chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const onAbort = () => abort?.(new undiciErrors.RequestAbortedError());
    const done = (bytes: Buffer | undefined, unreadable?: true) => {
      signal.removeListener("abort", onAbort);
      resolve({ status, headers, bytes, unreadable });
    };
    const failed = (e: Error) => {
      signal.removeListener("abort", onAbort);
      reject(e);
    };
    signal.on("abort", onAbort);
    dispatcher.dispatch(options, {
      onConnect(abortExchange) {
        abort = abortExchange;
        if (signal.aborted) abortExchange(new undiciErrors.RequestAbortedError());
      },
      onHeaders(statusCode, raw) {
        // 1xx: an interim answer (100 Continue); the real one follows.
        if (statusCode < 200) return true;
        status = statusCode;
        // Copied out at once, as request() does: keeping undici's raw headers (views into what the socket read) until asked for tripled GC time.
        headers = parseRawHeaders(raw);
        onHeaders();
        return true;
      },
      onData(chunk) {
        size += chunk.length;
        if (size > limit) {
          over = true;
          chunks = [];
          // The rest is not read: the connection goes, and onError reports this abort.
          abort?.(new undiciErrors.RequestAbortedError());
          return false;
        }
        chunks.push(chunk);
        return true;
      },
      onComplete() {
        const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
        const encoding = encodingOf(headers);
        if (encoding === "" || encoding === "identity") return done(bytes);
        const decode = DECODERS[encoding]?.whole;
        if (decode === undefined) return done(undefined, true);
        decode(bytes, { maxOutputLength: limit }, (e, decoded) => {
          if (e === null) done(decoded);
          else if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") done(undefined);
          else failed(e);
        });
      },
      onError(e) {
        if (over) done(undefined);
        else failed(e);
      },
    });
  });
}

/** undici's raw header list as Node gives headers: lower-case names, repeated ones as an array (no prototype: the names are the upstream's). */
function parseRawHeaders(raw: Buffer[] | string[] | null): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = Object.create(null);
  if (raw === null) return headers;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString("latin1").toLowerCase();
    const value = raw[i + 1].toString("latin1");
    const had = headers[name];
    headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return headers;
}


/**
 * The whole body, or undefined once it passes `limit` bytes (the rest is not
 * read). Read by events, not `for await`: the async iterator was a tenth of
 * what a plain JSON request allocated.
 */
export function readLimited(body: UpstreamBody, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("error", onError);
      body.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop();
        // Destroying it makes the body emit its abort as an error: nobody is reading it any more.
        body.on("error", ignore);
        body.destroy();
        resolve(undefined);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      stop();
      reject(e);
    };
    // Closed without an end or an error (destroyed quietly): the answer was cut short.
    const onClose = () => onError(Object.assign(new Error("the upstream body closed before its end"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    body.on("data", onData);
    body.on("end", onEnd);
    body.on("error", onError);
    body.on("close", onClose);
  });
}

const ignore = () => {};

export function parseJson(text: string | Buffer): unknown {
  try {
    return JSON.parse(text.toString());
  } catch {
    return undefined;
  }
}
