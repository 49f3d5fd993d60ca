// Bench mock upstream: the smallest OpenAI-shaped server that still answers
// like one, in its own process so it never shares the gateway's CPU.
//
//   fast port  POST .../chat/completions          → a fixed chat.completion JSON, at once
//              POST ... with "stream":true        → SSE: SSE_CHUNKS chunks SSE_INTERVAL_MS apart, then
//                                                   (with stream_options.include_usage) a usage chunk, then [DONE]
//              GET /stats, /stats/reset           → in-flight counters of the slow port
//   slow port  the same answers after SLOW_DELAY_MS
//
// Every SSE chunk carries {"bench":{"i":<index>,"t":"<process.hrtime.bigint() at write>"}}.
// hrtime is CLOCK_MONOTONIC, shared by every process on the machine, so the
// client can tell exactly how long each chunk took to reach it.
//
// Prints one line to stdout when listening: {"fast":PORT,"slow":PORT}.
import { createServer } from "node:http";

const CHUNKS = Number(process.env.SSE_CHUNKS ?? 64);
const INTERVAL_MS = Number(process.env.SSE_INTERVAL_MS ?? 20);
const SLOW_DELAY_MS = Number(process.env.SLOW_DELAY_MS ?? 2000);

const completion = Buffer.from(
  JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    created: 1764000000,
    model: "gpt-4o",
    choices: [{ index: 0, message: { role: "assistant", content: "Hello! How can I help you today?", refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 },
    system_fingerprint: "fp_bench",
  }),
);
const jsonHeaders = { "content-type": "application/json", "content-length": String(completion.length) };
const notFound = Buffer.from('{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":"unknown_url"}}');

const slow = { inFlight: 0, maxInFlight: 0, total: 0 };

const usageChunk =
  'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":64,"total_tokens":73}}\n\n';

/** `usage`: the caller set stream_options.include_usage, so a usage-only chunk precedes [DONE], as OpenAI sends it. */
function sse(res, usage) {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  const start = performance.now();
  let i = 0;
  let timer;
  res.once("close", () => clearTimeout(timer));
  const tick = () => {
    if (res.destroyed) return;
    res.write(
      `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}],"bench":{"i":${i},"t":"${process.hrtime.bigint()}"}}\n\n`,
    );
    i++;
    if (i === CHUNKS) {
      res.end(`${usage ? usageChunk : ""}data: [DONE]\n\n`);
      return;
    }
    // Scheduled against the stream's start, so timer lateness does not accumulate.
    timer = setTimeout(tick, Math.max(0, start + i * INTERVAL_MS - performance.now()));
  };
  tick();
}

function handler(delayMs, counters) {
  return (req, res) => {
    if (req.method === "GET" && req.url.startsWith("/stats")) {
      if (req.url === "/stats/reset") Object.assign(slow, { maxInFlight: slow.inFlight, total: 0 });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(slow));
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(notFound);
        return;
      }
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const stream = body.includes('"stream":true');
      const answer = () => {
        if (res.destroyed) return;
        if (stream) sse(res, body.includes('"include_usage":true'));
        else {
          res.writeHead(200, jsonHeaders);
          res.end(completion);
        }
      };
      if (delayMs === 0) return answer();
      counters.inFlight++;
      counters.total++;
      counters.maxInFlight = Math.max(counters.maxInFlight, counters.inFlight);
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          counters.inFlight--;
        }
      };
      res.once("close", finish);
      const timer = setTimeout(() => {
        finish();
        answer();
      }, delayMs);
      res.once("close", () => clearTimeout(timer));
    });
  };
}

function listen(server) {
  server.keepAliveTimeout = 120_000;
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server.address().port)));
}

const fast = await listen(createServer(handler(0, null)));
const slowPort = await listen(createServer(handler(SLOW_DELAY_MS, slow)));
process.stdout.write(JSON.stringify({ fast, slow: slowPort }) + "\n");
process.on("SIGTERM", () => process.exit(0));
