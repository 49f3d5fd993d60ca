// Two stand-in providers for `gwc demo`: one speaking OpenAI's chat
// completions, one Anthropic's Messages API, each JSON and SSE in its
// provider's own wire format (usage included), with realistic latency, token
// streaming, occasional 429s and 5xx, and an outage window every minute.
// They listen on 127.0.0.1 only.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface DemoUpstream {
  url: string;
  close(): Promise<void>;
}

export interface Misbehaviour {
  /** Share of requests answered 429 with a Retry-After. */
  rateLimited: number;
  /** Share of requests answered with a server error. */
  failing: number;
  /** Every `outageEveryMs`, the first `outageMs` answer 503 (Anthropic: 529 overloaded). */
  outageEveryMs: number;
  outageMs: number;
}

const WORDS = "Routing across providers keeps an application answering when one of them is slow or down, and a budget keeps the bill where the team expects it".split(" ");

export function startDemoUpstream(format: "openai" | "anthropic", misbehaviour: Misbehaviour, random: () => number = Math.random): Promise<DemoUpstream> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return fail(res, format, 400, "invalid JSON body");
      }
      const now = Date.now();
      if (now % misbehaviour.outageEveryMs < misbehaviour.outageMs) return fail(res, format, format === "anthropic" ? 529 : 503, "the provider is having an outage");
      const r = random();
      if (r < misbehaviour.rateLimited) return fail(res, format, 429, "rate limit reached, try again shortly", { "retry-after": "1" });
      if (r < misbehaviour.rateLimited + misbehaviour.failing) return fail(res, format, 500, "internal error");
      const words = 8 + Math.floor(random() * 24);
      const text = Array.from({ length: words }, (_, i) => WORDS[(i + Math.floor(random() * WORDS.length)) % WORDS.length]).join(" ");
      const input = Math.max(1, Math.ceil(JSON.stringify(body.messages ?? "").length / 4));
      const answer = format === "openai" ? openai : anthropic;
      // Time to first token: 150–600 ms.
      setTimeout(() => answer(req, res, body, text.split(" "), input, random), 150 + random() * 450);
    });
  });
  return listen(server);
}

function openai(_req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, words: string[], input: number, random: () => number): void {
  const id = `chatcmpl-demo${Math.floor(random() * 1e12).toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  const model = String(body.model);
  const usage = { prompt_tokens: input, completion_tokens: words.length, total_tokens: input + words.length };
  if (body.stream !== true) {
    return json(res, 200, {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: words.join(" "), refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage,
    });
  }
  const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  const chunk = (choices: object[], extra: object = {}) => `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
  sse(res, [
    chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]),
    ...words.map((w, i) => chunk([{ index: 0, delta: { content: i === 0 ? w : ` ${w}` }, logprobs: null, finish_reason: null }])),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]),
    ...(includeUsage ? [chunk([], { usage })] : []),
    "data: [DONE]\n\n",
  ], random);
}

function anthropic(_req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, words: string[], input: number, random: () => number): void {
  const id = `msg_demo${Math.floor(random() * 1e12).toString(36)}`;
  const model = String(body.model);
  if (body.stream !== true) {
    return json(res, 200, {
      id,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text: words.join(" ") }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: input, output_tokens: words.length, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
  }
  const event = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  sse(res, [
    event("message_start", { message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } } }),
    event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    event("ping", {}),
    ...words.map((w, i) => event("content_block_delta", { index: 0, delta: { type: "text_delta", text: i === 0 ? w : ` ${w}` } })),
    event("content_block_stop", { index: 0 }),
    event("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: words.length } }),
    event("message_stop", {}),
  ], random);
}

/** Writes events 15–45 ms apart, as tokens arrive from a real model. */
function sse(res: ServerResponse, events: string[], random: () => number): void {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    if (i === events.length) return void res.end();
    res.write(events[i++]);
    setTimeout(next, 15 + random() * 30);
  };
  next();
}

function fail(res: ServerResponse, format: "openai" | "anthropic", status: number, message: string, headers: Record<string, string> = {}): void {
  const body =
    format === "openai"
      ? { error: { message, type: status === 429 ? "requests" : "server_error", param: null, code: status === 429 ? "rate_limit_exceeded" : null } }
      : { type: "error", error: { type: status === 429 ? "rate_limit_error" : status === 529 ? "overloaded_error" : "api_error", message } };
  json(res, status, body, headers);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function listen(server: Server): Promise<DemoUpstream> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((ok) => {
            server.closeAllConnections();
            server.close(() => ok());
          }),
      });
    });
  });
}
