// Reading a request body within its bounds: at most `limit` bytes, within
// `timeoutMs` of the headers. Past the limit the rest is read and thrown away
// (up to DRAIN_BYTES) before the 413 goes out, so a client still writing its
// body reads the answer instead of a broken pipe; then the connection closes.
//
//   bytes ──► ≤ limit: kept ──► end: the body
//             > limit: discarded ──► end, or DRAIN_BYTES more: 413, Connection: close
//   timer ──► timeoutMs without the end: 408, Connection: close
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError } from "./errors.ts";

/** How much of an oversized body is read and discarded so its sender sees the 413. */
export const DRAIN_BYTES = 32 * 1024 * 1024;

export function tooLarge(limit: number): HttpError {
  return new HttpError(413, "invalid_request_error", "request_too_large", `The request body is larger than ${limit} bytes (server.max_body_bytes).`, { connection: "close" });
}

export function bodyTimeout(ms: number): HttpError {
  return new HttpError(408, "invalid_request_error", "request_timeout", `The request body did not arrive within ${ms} ms (server.body_timeout).`, { connection: "close" });
}

/** The body, or an HttpError (413, 408) after which the connection closes. */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const fail = (e: unknown) => {
      clearTimeout(timer);
      req.removeListener("data", onData);
      req.removeListener("end", onEnd);
      // The rest of this body is not going to be read: the connection cannot carry another request.
      res.shouldKeepAlive = false;
      reject(e);
    };
    const timer = setTimeout(() => fail(bodyTimeout(timeoutMs)), timeoutMs);
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else if (!over) {
        over = true;
        chunks.length = 0;
      }
      if (size > limit + DRAIN_BYTES) fail(tooLarge(limit));
    };
    const onEnd = () => {
      clearTimeout(timer);
      if (over) return fail(tooLarge(limit));
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    };
    if (declared > limit + DRAIN_BYTES) return fail(tooLarge(limit));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", fail);
  });
}
