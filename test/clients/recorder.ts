/**
 * A recording hop between a client and the gateway: it relays every request
 * unchanged and keeps what the client sent (method, path, headers, body) and
 * what it got back (status, headers, body bytes), so a test can compare both
 * ends of a passthrough:
 *
 *   client ──► recorder ──► gateway ──► mock upstream
 *              (exchanges)               (requests, answers)
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface Exchange {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The request body parsed as JSON, or the raw text. */
  body: any;
  status?: number;
  responseHeaders?: IncomingHttpHeaders;
  /** The response body as the client received it (decoded text). */
  response?: string;
}

export interface Recorder {
  url: string;
  exchanges: Exchange[];
  close(): Promise<void>;
}

export async function startRecorder(target: string): Promise<Recorder> {
  const to = new URL(target);
  const exchanges: Exchange[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(parts);
      let body: any = raw.toString("utf8");
      try {
        body = raw.length > 0 ? JSON.parse(body) : undefined;
      } catch {
        // keep the text
      }
      const ex: Exchange = { method: req.method ?? "GET", url: req.url ?? "/", headers: { ...req.headers }, body };
      exchanges.push(ex);
      // Ask for an unencoded answer so the recorded bytes are readable; everything else goes as sent.
      const headers = { ...req.headers, host: to.host, "accept-encoding": "identity" };
      const up = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (upRes) => {
        ex.status = upRes.statusCode;
        ex.responseHeaders = { ...upRes.headers };
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        const got: Buffer[] = [];
        upRes.on("data", (c: Buffer) => {
          got.push(c);
          res.write(c);
        });
        upRes.on("end", () => {
          ex.response = Buffer.concat(got).toString("utf8");
          res.end();
        });
        upRes.on("error", () => res.destroy());
      });
      up.on("error", () => res.destroy());
      up.end(raw);
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The data of each SSE event in a recorded stream, parsed. */
export function sseData(text: string): any[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((block) => block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
    .filter((d) => d !== "" && d !== "[DONE]")
    .map((d) => JSON.parse(d));
}
