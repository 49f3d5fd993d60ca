/**
 * A local mock of Cohere's API v2 for gateway tests: POST /v2/chat (JSON and
 * SSE) and POST /v2/embed.
 *
 * Shapes follow Cohere's v2 reference (docs.cohere.com/reference/chat,
 * /reference/chat-stream, /reference/embed) and the `cohere-ai` SDK's types:
 * a chat answer is `{id, message: {role, content: [{type: "text", text}],
 * tool_plan, tool_calls}, finish_reason, usage: {billed_units, tokens}}`; a
 * stream is SSE with `event: <type>` and `data: {"type": <type>, …}` lines,
 * message-start → content-start → content-delta… → content-end → message-end
 * (or tool-plan-delta… → tool-call-start → tool-call-delta… → tool-call-end →
 * message-end), then `data: [DONE]`. Errors are `{"id", "message"}`.
 *
 * Answers are deterministic: the last user text echoed as
 * `[name] you said: <text>`; after a tool result, `[name] the tool said:
 * <content>`; a call to the first tool offered, with `{"query": <last user
 * text>}` as arguments, when tools are offered, the last message is the
 * user's and `tool_choice` is not NONE. Billed input tokens are ceil(chars/4); raw
 * input tokens add a 50-token preamble, so tests can tell the two apart.
 *
 * Order of handling: the body is read and recorded; `Authorization: Bearer` is
 * checked (401); the route (404); the body (400); then one behavior is taken
 * from `queue` (or `fallback`) and applied.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Behavior, RecordedRequest } from "./openai-upstream.ts";
import { mockServer } from "./mock-server.ts";

export type { Behavior } from "./openai-upstream.ts";

export interface CohereMock {
  /** Base URL in the Cohere SDK's convention (no version path): http://127.0.0.1:PORT */
  url: string;
  name: string;
  requests: RecordedRequest[];
  queue: Behavior[];
  fallback: Behavior;
  close(): Promise<void>;
}

export interface CohereStartOptions {
  name?: string;
  /** How many content-delta events a text answer is split into. */
  stream?: { chunks?: number; intervalMs?: number };
  fallback?: Behavior;
}

/** Cohere-shaped error bodies. */
export function cohereErrorBody(status: number): { id: string; message: string } {
  const message: Record<number, string> = {
    400: "invalid request: message must be at least 1 token long or tool results must be specified.",
    401: "invalid api token",
    404: "model 'unknown' not found, make sure the correct model ID was used and that you have access to the model.",
    422: "invalid request: the combination of parameters is not supported.",
    429: "You are using a Trial key, which is limited to 10 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'. Contact us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com with any questions",
    500: "internal server error, this has been reported to our developers. id 0f1e2d3c",
    503: "service unavailable: the model is overloaded, please try again later",
  };
  return { id: randomUUID(), message: message[status] ?? (status >= 500 ? `upstream error (HTTP ${status})` : `request failed (HTTP ${status})`) };
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => {
      if (typeof p === "string") return p;
      if (p && typeof p === "object") {
        const part = p as Record<string, unknown>;
        if (typeof part.text === "string") return part.text;
        const doc = part.document as { data?: unknown } | undefined;
        if (doc !== undefined) return typeof doc.data === "string" ? doc.data : JSON.stringify(doc.data);
      }
      return "";
    })
    .join("");
}

/** Splits text into at most n non-empty pieces by code point. */
function splitText(text: string, n: number): string[] {
  const cps = Array.from(text);
  const count = Math.max(1, Math.min(n, cps.length || 1));
  const out: string[] = [];
  const base = Math.floor(cps.length / count);
  const extra = cps.length % count;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push(cps.slice(at, at + len).join(""));
    at += len;
  }
  return out;
}

function embeddingFor(text: string, dims: number): number[] {
  const v: number[] = [];
  for (let i = 0; i < dims; i++) {
    let h = (0x811c9dc5 ^ (i + 1)) >>> 0;
    for (let j = 0; j < text.length; j++) h = Math.imul(h ^ text.charCodeAt(j), 0x01000193) >>> 0;
    v.push(((h % 2001) - 1000) / 1024);
  }
  return v;
}

interface ChatPlan {
  id: string;
  pieces: string[] | null;
  tool: null | { id: string; name: string; plan: string[]; args: string[] };
  usage: { billed_units: { input_tokens: number; output_tokens: number }; tokens: { input_tokens: number; output_tokens: number } };
}

export async function startCohereUpstream(opts: CohereStartOptions = {}): Promise<CohereMock> {
  const name = opts.name ?? "cohere";
  const streamChunks = Math.max(1, Math.floor(opts.stream?.chunks ?? 4));
  const intervalMs = Math.max(0, opts.stream?.intervalMs ?? 0);
  const srv = mockServer();
  const { server, sleep, gone } = srv;
  const mock: CohereMock = {
    url: "",
    name,
    requests: [],
    queue: [],
    fallback: opts.fallback ?? { kind: "ok" },
    close: srv.close,
  };

  function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
    if (gone(res)) return;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), "x-mock-upstream": name, ...extra });
    res.end(text);
  }

  function startSse(res: ServerResponse): boolean {
    if (gone(res)) return false;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-mock-upstream": name });
    res.flushHeaders();
    return true;
  }

  function event(res: ServerResponse, data: { type: string } & Record<string, unknown>): boolean {
    if (gone(res)) return false;
    res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);
    return true;
  }

  // ---- chat ----------------------------------------------------------------

  function planChat(body: any): ChatPlan | { status: number; body: unknown } {
    if (!body || typeof body !== "object" || Array.isArray(body)) return { status: 400, body: { id: randomUUID(), message: "invalid request: could not parse the request body as JSON" } };
    if (typeof body.model !== "string" || body.model === "") return { status: 400, body: { id: randomUUID(), message: "invalid request: model must be specified" } };
    const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
    if (messages.length === 0) return { status: 400, body: { id: randomUUID(), message: "invalid request: messages must not be empty" } };
    for (const m of messages) {
      if (!["system", "user", "assistant", "tool"].includes(m?.role)) return { status: 400, body: { id: randomUUID(), message: `invalid request: unknown role '${m?.role}'` } };
      if (m.role === "tool" && typeof m.tool_call_id !== "string") return { status: 400, body: { id: randomUUID(), message: "invalid request: tool messages need a tool_call_id" } };
    }
    let chars = 0;
    for (const m of messages) chars += textOf(m.content).length + (typeof m.tool_plan === "string" ? m.tool_plan.length : 0);
    const input = Math.max(1, Math.ceil(chars / 4));
    const last = messages[messages.length - 1];
    const tools: any[] = Array.isArray(body.tools) ? body.tools : [];
    const id = randomUUID();
    if (tools.length > 0 && last.role === "user" && body.tool_choice !== "NONE") {
      const toolName = String(tools[0]?.function?.name ?? "tool");
      const args = JSON.stringify({ query: textOf(last.content) });
      const plan = splitText(`I will use ${toolName} to answer.`, 2);
      const argPieces = splitText(args, 3);
      const output = plan.length + argPieces.length;
      return {
        id,
        pieces: null,
        tool: { id: `${toolName}_${id.slice(0, 8)}`, name: toolName, plan, args: argPieces },
        usage: { billed_units: { input_tokens: input, output_tokens: output }, tokens: { input_tokens: input + 50, output_tokens: output } },
      };
    }
    let text: string;
    if (last.role === "tool") text = `[${name}] the tool said: ${textOf(last.content)}`;
    else {
      const user = [...messages].reverse().find((m) => m.role === "user");
      text = `[${name}] you said: ${textOf(user?.content)}`;
    }
    const pieces = splitText(text, streamChunks);
    return {
      id,
      pieces,
      tool: null,
      usage: { billed_units: { input_tokens: input, output_tokens: pieces.length }, tokens: { input_tokens: input + 50, output_tokens: pieces.length } },
    };
  }

  function chatJson(plan: ChatPlan): object {
    if (plan.tool) {
      return {
        id: plan.id,
        message: {
          role: "assistant",
          tool_plan: plan.tool.plan.join(""),
          tool_calls: [{ id: plan.tool.id, type: "function", function: { name: plan.tool.name, arguments: plan.tool.args.join("") } }],
        },
        finish_reason: "TOOL_CALL",
        usage: plan.usage,
      };
    }
    return { id: plan.id, message: { role: "assistant", content: [{ type: "text", text: plan.pieces!.join("") }] }, finish_reason: "COMPLETE", usage: plan.usage };
  }

  /** Every event of the stream, in order, before `[DONE]`; `content` marks the ones stream-fail-after counts. */
  function chatEvents(plan: ChatPlan): { head: object[]; content: object[]; tail: object[] } {
    const head: object[] = [
      { id: plan.id, type: "message-start", delta: { message: { role: "assistant", content: [], tool_plan: "", tool_calls: [], citations: [] } } },
    ];
    const content: object[] = [];
    const tail: object[] = [];
    if (plan.tool) {
      for (const p of plan.tool.plan) content.push({ type: "tool-plan-delta", delta: { message: { tool_plan: p } } });
      content.push({
        type: "tool-call-start",
        index: 0,
        delta: { message: { tool_calls: { id: plan.tool.id, type: "function", function: { name: plan.tool.name, arguments: "" } } } },
      });
      for (const a of plan.tool.args) content.push({ type: "tool-call-delta", index: 0, delta: { message: { tool_calls: { function: { arguments: a } } } } });
      tail.push({ type: "tool-call-end", index: 0 });
      tail.push({ type: "message-end", delta: { finish_reason: "TOOL_CALL", usage: plan.usage } });
    } else {
      head.push({ type: "content-start", index: 0, delta: { message: { content: { type: "text", text: "" } } } });
      for (const p of plan.pieces!) content.push({ type: "content-delta", index: 0, delta: { message: { content: { text: p } } } });
      tail.push({ type: "content-end", index: 0 });
      tail.push({ type: "message-end", delta: { finish_reason: "COMPLETE", usage: plan.usage } });
    }
    return { head, content, tail };
  }

  // ---- embed ---------------------------------------------------------------

  function embed(body: any): { status: number; body: unknown } {
    if (!body || typeof body !== "object") return { status: 400, body: { id: randomUUID(), message: "invalid request: could not parse the request body as JSON" } };
    if (typeof body.model !== "string" || body.model === "") return { status: 400, body: { id: randomUUID(), message: "invalid request: model must be specified" } };
    if (typeof body.input_type !== "string") return { status: 400, body: { id: randomUUID(), message: "invalid request: valid input_type must be provided with the provided model" } };
    const texts: unknown[] = Array.isArray(body.texts) ? body.texts : [];
    if (texts.length === 0 || !texts.every((t) => typeof t === "string")) return { status: 400, body: { id: randomUUID(), message: "invalid request: texts must be a non-empty list of strings" } };
    if (texts.length > 96) return { status: 400, body: { id: randomUUID(), message: "invalid request: total number of texts must be at most 96" } };
    const dims = typeof body.output_dimension === "number" ? body.output_dimension : 8;
    const types: string[] = Array.isArray(body.embedding_types) ? body.embedding_types : ["float"];
    const embeddings: Record<string, number[][]> = {};
    for (const t of types) if (t === "float") embeddings.float = (texts as string[]).map((s) => embeddingFor(s, dims));
    const tokens = Math.max(1, Math.ceil((texts as string[]).join("").length / 4));
    return {
      status: 200,
      body: { id: randomUUID(), embeddings, texts, meta: { api_version: { version: "2" }, billed_units: { input_tokens: tokens } }, response_type: "embeddings_by_type" },
    };
  }

  // ---- handling ------------------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    const raw = await new Promise<string>((resolve) => {
      const parts: Buffer[] = [];
      req.on("data", (c: Buffer) => parts.push(c));
      req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
      req.on("error", () => resolve(""));
    });
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    let body: any = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    mock.requests.push({ method, path, headers: { ...req.headers }, body });

    const auth = req.headers.authorization;
    const token = typeof auth === "string" ? /^Bearer\s+(\S.*)$/i.exec(auth)?.[1]?.trim() : undefined;
    if (!token) return sendJson(res, 401, cohereErrorBody(401));
    const route = method === "POST" && path === "/v2/chat" ? "chat" : method === "POST" && path === "/v2/embed" ? "embed" : null;
    if (route === null) return sendJson(res, 404, { id: randomUUID(), message: `route ${method} ${path} not found` });

    const prepared = route === "embed" ? embed(body) : planChat(body);
    const behavior: Behavior = mock.queue.length > 0 ? mock.queue.shift()! : mock.fallback;
    const wantsStream = route === "chat" && body?.stream === true;

    switch (behavior.kind) {
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return;
      case "status": {
        const extra: Record<string, string> = {};
        if (behavior.retryAfterSeconds !== undefined) extra["retry-after"] = String(behavior.retryAfterSeconds);
        return sendJson(res, behavior.status, behavior.body !== undefined ? behavior.body : cohereErrorBody(behavior.status), extra);
      }
      case "stream-error-first": {
        const error = "internal server error, this has been reported to our developers";
        if (!wantsStream) return sendJson(res, 500, { id: randomUUID(), message: error });
        if (!startSse(res)) return;
        event(res, { type: "message-end", delta: { finish_reason: "ERROR", error } });
        res.end("data: [DONE]\n\n");
        return;
      }
      case "stream-fail-after":
      case "ok": {
        if (behavior.kind === "ok" && behavior.delayMs) await sleep(behavior.delayMs);
        if (gone(res)) return;
        if (!("id" in prepared) || route === "embed") {
          // a request error, or an embed answer
          const answer = prepared as { status: number; body: unknown };
          if (behavior.kind === "stream-fail-after" && answer.status === 200) {
            const text = JSON.stringify(answer.body);
            res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
            res.write(text.slice(0, Math.floor(text.length / 2)));
            await sleep(5);
            res.socket?.destroy();
            return;
          }
          return sendJson(res, answer.status, answer.body);
        }
        const plan = prepared as ChatPlan;
        if (!wantsStream) {
          if (behavior.kind === "stream-fail-after") {
            const text = JSON.stringify(chatJson(plan));
            res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
            res.write(text.slice(0, Math.floor(text.length / 2)));
            await sleep(5);
            res.socket?.destroy();
            return;
          }
          return sendJson(res, 200, chatJson(plan));
        }
        if (!startSse(res)) return;
        const events = chatEvents(plan);
        for (const e of events.head) if (!event(res, e as { type: string })) return;
        const content = behavior.kind === "stream-fail-after" ? events.content.slice(0, Math.max(0, Math.floor(behavior.chunks))) : events.content;
        for (let i = 0; i < content.length; i++) {
          if (i > 0 && intervalMs > 0) await sleep(intervalMs);
          if (!event(res, content[i] as { type: string })) return;
        }
        if (behavior.kind === "stream-fail-after") {
          await sleep(Math.max(intervalMs, 25));
          res.socket?.destroy();
          return;
        }
        for (const e of events.tail) if (!event(res, e as { type: string })) return;
        if (!gone(res)) res.end("data: [DONE]\n\n");
        return;
      }
    }
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!gone(res) && !res.headersSent) sendJson(res, 500, cohereErrorBody(500));
      else res.socket?.destroy();
    });
  });

  const port = await srv.listen();
  mock.url = `http://127.0.0.1:${port}`;
  return mock;
}

/** A recorded Cohere v2 text stream (the mock's shape), for translator tests. */
export const RECORDED_TEXT_STREAM = [
  `event: message-start\ndata: {"id":"5c1f0a8e-7d0b-4c8e-9f3e-3b1f2c9d4e11","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}\n\n`,
  `event: content-start\ndata: {"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}\n\n`,
  `event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hola"}}}}\n\n`,
  `event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":" Juan, ¿qué"}}}}\n\n`,
  `event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":" tal? 👋"}}}}\n\n`,
  `event: content-end\ndata: {"type":"content-end","index":0}\n\n`,
  `event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":5,"output_tokens":7},"tokens":{"input_tokens":70,"output_tokens":7},"cached_tokens":2}}}\n\n`,
  `data: [DONE]\n\n`,
].join("");

/** A recorded Cohere v2 tool-call stream: a plan, one call with its arguments in pieces. */
export const RECORDED_TOOL_STREAM = [
  `event: message-start\ndata: {"id":"93b3f521-090e-4ebc-bac4-f7c557e63c00","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}\n\n`,
  `event: tool-plan-delta\ndata: {"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will look"}}}\n\n`,
  `event: tool-plan-delta\ndata: {"type":"tool-plan-delta","delta":{"message":{"tool_plan":" up the weather."}}}\n\n`,
  `event: tool-call-start\ndata: {"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"get_weather_3v76fs3zjrgq","type":"function","function":{"name":"get_weather","arguments":""}}}}}\n\n`,
  `event: tool-call-delta\ndata: {"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\\n    \\""}}}}}\n\n`,
  `event: tool-call-delta\ndata: {"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"location"}}}}}\n\n`,
  `event: tool-call-delta\ndata: {"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"\\": \\"Madrid\\"\\n}"}}}}}\n\n`,
  `event: tool-call-end\ndata: {"type":"tool-call-end","index":0}\n\n`,
  `event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":{"billed_units":{"input_tokens":50,"output_tokens":26},"tokens":{"input_tokens":793,"output_tokens":61}}}}\n\n`,
  `data: [DONE]\n\n`,
].join("");
