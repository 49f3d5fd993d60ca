// The floor: what any Node gateway pays. A bare node:http server that reads
// each request body and sends it through one undici Pool (the gateway's pool
// size, 64) to the upstream, then pipes the answer back, SSE included, chunk
// by chunk. No parsing, no routing, no failover.
//
//   UPSTREAM=http://127.0.0.1:PORT PORT=0 node bench/lib/floor.mjs
//   → prints {"port":N} when listening
import { createServer } from "node:http";
import { Pool } from "undici";

const pool = new Pool(process.env.UPSTREAM, { connections: Number(process.env.CONNECTIONS ?? 64), pipelining: 1 });

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const r = await pool.request({
        method: "POST",
        path: req.url,
        headers: { "content-type": "application/json" },
        body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
      });
      res.writeHead(r.statusCode, { "content-type": String(r.headers["content-type"] ?? "application/json") });
      for await (const chunk of r.body) {
        if (!res.write(chunk)) await new Promise((ok) => res.once("drain", ok).once("close", ok));
      }
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    }
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n"));
process.on("SIGTERM", () => process.exit(0));
