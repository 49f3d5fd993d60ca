// A pass-through HTTP proxy that keeps the exact bytes of every answer an
// upstream mock sent, so a test can say the caller got those bytes and no others.
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordingProxy {
  url: string;
  /** The body bytes of each answer, in order, as text. */
  answers: string[];
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const to = new URL(target);
  const answers: string[] = [];
  const server: Server = createServer((req, res) => {
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      const at = answers.push("") - 1;
      r.on("data", (c: Buffer) => {
        answers[at] += c.toString("utf8");
        res.write(c);
      });
      r.on("end", () => res.end());
      r.on("error", () => res.destroy());
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${to.pathname.replace(/\/$/, "")}`;
  return {
    url: base,
    answers,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
