/**
 * An upstream that answers exactly what a test scripts, byte for byte: any
 * status, any headers, a body in pieces (SSE events, event-stream frames,
 * HTML, a body that lies about its encoding). Tests build the bodies in each
 * provider's real wire format; this mock only puts them on the wire, so one
 * server can play every provider's error shapes. Requests are recorded.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { mockServer } from "./mock-server.ts";

export interface Scripted {
  status: number;
  headers?: Record<string, string>;
  /** Written in order, each flushed on its own (so a stream's events arrive as separate reads). */
  body: (string | Buffer)[] | string | Buffer;
}

export interface RawUpstream {
  url: string;
  /** Answers, one per request; when empty, `fallback` answers. */
  queue: Scripted[];
  fallback: Scripted;
  requests: { method: string; path: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

export async function startRawUpstream(fallback: Scripted = { status: 500, body: "no script" }): Promise<RawUpstream> {
  const srv = mockServer();
  const mock: RawUpstream = { url: "", queue: [], fallback, requests: [], close: srv.close };
  srv.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    res.on("error", () => {});
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", async () => {
      mock.requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(parts).toString("utf8") });
      const answer = mock.queue.shift() ?? mock.fallback;
      if (srv.gone(res)) return;
      res.writeHead(answer.status, answer.headers ?? { "content-type": "application/json" });
      const pieces = Array.isArray(answer.body) ? answer.body : [answer.body];
      for (const p of pieces) {
        if (srv.gone(res)) return;
        res.write(p);
        // A turn between pieces, so each arrives as its own read.
        await srv.sleep(2);
      }
      res.end();
    });
  });
  const port = await srv.listen();
  mock.url = `http://127.0.0.1:${port}`;
  return mock;
}
