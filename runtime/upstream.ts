// Reading what an upstream answered, as bytes: its content-encoding undone,
// its size bounded, and what a thrown read means.
import { pipeline, type Readable } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { errors as undiciErrors } from "undici";
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

const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = {
  gzip: createGunzip,
  "x-gzip": createGunzip,
  br: createBrotliDecompress,
  deflate: createInflate,
};

/**
 * The body with its `content-encoding` undone. Every upstream request asks
 * for `identity`; a provider (or a proxy in front of it) that compresses
 * anyway is decoded here, so compressed bytes never reach a caller without
 * their header. Undefined for an encoding the gateway cannot read.
 */
export function decodedBody(body: Readable, headers: Record<string, string | string[] | undefined>): UpstreamBody | undefined {
  const header = headers["content-encoding"];
  const encoding = (Array.isArray(header) ? header.join(",") : (header ?? "")).trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return body;
  const decoder = DECODERS[encoding];
  if (decoder === undefined) return undefined;
  // pipeline carries a broken upstream or corrupt data to the decoder's reader as an error,
  // and destroying the decoder destroys the upstream body with it.
  return pipeline(body, decoder(), () => {}) as unknown as Readable;
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
