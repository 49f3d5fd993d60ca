// What a surface handler gets from the server, and what they share: reading
// the body once, parsing it, finding the caller's virtual key, answering errors
// in the surface's own shape.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { CallerSignal } from "../caller-signal.ts";
import { HttpError } from "../errors.ts";
import type { Gateway } from "../gateway.ts";
import type { Operation, RequestRecord } from "../request-record.ts";

export interface SurfaceCall {
  gateway: Gateway;
  req: IncomingMessage;
  res: ServerResponse;
  record: RequestRecord;
  signal: CallerSignal;
  path: string;
  query: URLSearchParams;
  /** The request body, read under the server's limits. */
  body(): Promise<Buffer>;
  /** The body as a JSON object, as the server parses every body (a 400 otherwise). */
  parse(raw: Buffer): Record<string, unknown>;
  /** Before answering early (an error before the body was read): reads and discards the body, so the sender gets the answer. */
  unread(): Promise<void>;
}

export type SurfaceHandler = (call: SurfaceCall) => Promise<void>;

/** An error as a surface words it: its status, headers and body. */
export type ErrorShape = (err: HttpError) => unknown;

/** Runs a handler and answers any error it throws in the surface's shape (a stream already started is cut instead). */
export function inShape(shape: ErrorShape, handler: SurfaceHandler): SurfaceHandler {
  return async (call) => {
    try {
      await handler(call);
    } catch (e) {
      const { res, record } = call;
      if (res.headersSent) {
        // Cut mid-answer: the caller must not take it for a whole one. (An answer already ended stands.)
        if (!res.writableEnded) res.destroy();
        return;
      }
      await call.unread();
      const err = e instanceof HttpError ? e : new HttpError(500, "server_error", "internal_error", "The gateway failed to handle this request; it has been logged.");
      if (!(e instanceof HttpError)) console.error(`gwc: request ${record.id} failed: ${(e as Error)?.message ?? e}`);
      record.errorType = err.errorType;
      sendJson(res, err.status, shape(err), record.id, err.headers);
    }
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "x-request-id": requestId, ...headers });
  res.end(JSON.stringify(body));
}

/** A request's start on any surface: what it is (for the record), whose key it carries, its body raw and parsed. */
export async function readRequest(call: SurfaceCall, operation: Operation, headers?: IncomingHttpHeaders): Promise<{ vk: number; raw: Buffer; json: Record<string, unknown> }> {
  call.record.operation = operation;
  const vk = identify(call, headers);
  const raw = await call.body();
  return { vk, raw, json: call.parse(raw) };
}

/** The caller's virtual key index (governance reads `authorization` or `x-api-key`; `headers` may present another one). */
export function identify(call: SurfaceCall, headers: IncomingHttpHeaders = call.req.headers): number {
  const vk = call.gateway.governance.identify(headers);
  call.record.keyId = call.gateway.plan.virtualKeys[vk]?.id ?? null;
  return vk;
}

/** Headers OpenAI defines for a request, relayed to OpenAI-format upstreams as they came. */
export const OPENAI_HEADERS = /^openai-beta$/;

/** The caller's headers whose names match `pattern`, as one value each (repeats joined by commas, as HTTP allows). */
export function headersMatching(headers: IncomingHttpHeaders, pattern: RegExp): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && pattern.test(name)) out[name] = Array.isArray(value) ? value.join(",") : value;
  }
  return out;
}
