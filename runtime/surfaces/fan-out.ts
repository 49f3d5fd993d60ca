// `n` choices from providers that answer one per request (Anthropic, Bedrock,
// Cohere): n requests of one choice each, every one routed, limited, reserved
// and settled on its own (so a budget holds n reservations), merged into one
// chat completion whose usage is their sum. JSON answers only; a stream of n
// choices is refused by the provider's translation with a 400 naming `n`.
import type { CallerSignal } from "../caller-signal.ts";
import type { Gateway, ResponseSink } from "../gateway.ts";
import type { InboundRequest } from "../providers/adapter.ts";
import { newRecord, type RequestRecord } from "../request-record.ts";

type Json = Record<string, unknown>;

/** Formats whose upstreams return several choices themselves (OpenAI's `n`, Gemini's `candidateCount`). */
const NATIVE_N = new Set(["openai", "gemini"]);

/** Whether a chat request asks for more choices than some account of its route can give in one call. */
export function needsFanOut(gateway: Gateway, req: InboundRequest): boolean {
  const n = req.json.n;
  if (req.stream || typeof n !== "number" || !Number.isInteger(n) || n < 2 || n > 128) return false;
  return gateway.routeFormats(req.json.model as string).some((f) => f === null || !NATIVE_N.has(f));
}

/** An answer kept whole instead of sent. */
class Capture implements ResponseSink {
  status = 0;
  headers: Record<string, string> = {};
  body = "";
  headersSent = false;
  destroyed = false;
  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }
  write(chunk: string | Buffer): boolean {
    this.body += chunk.toString();
    return true;
  }
  end(chunk?: string | Buffer): this {
    if (chunk !== undefined) this.body += chunk.toString();
    return this;
  }
  once(): this {
    return this;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

const sum = (values: unknown[]) => values.reduce<number>((a, v) => a + (typeof v === "number" ? v : 0), 0);

/** The usage of several chat completions, added up field by field. */
function addUsage(usages: Json[]): Json {
  const details = (k: string) => usages.map((u) => (u[k] ?? {}) as Json);
  return {
    prompt_tokens: sum(usages.map((u) => u.prompt_tokens)),
    completion_tokens: sum(usages.map((u) => u.completion_tokens)),
    total_tokens: sum(usages.map((u) => u.total_tokens)),
    prompt_tokens_details: { cached_tokens: sum(details("prompt_tokens_details").map((d) => d.cached_tokens)) },
    completion_tokens_details: { reasoning_tokens: sum(details("completion_tokens_details").map((d) => d.reasoning_tokens)) },
  };
}

/** Serves `n` choices as `n` one-choice requests and answers their merge; the record gets every attempt and the summed usage and cost. */
export async function fanOut(gateway: Gateway, req: InboundRequest, res: ResponseSink, record: RequestRecord, signal: CallerSignal, vk: number): Promise<void> {
  const n = req.json.n as number;
  const json = { ...req.json, n: 1 };
  const one: InboundRequest = { ...req, json, raw: Buffer.from(JSON.stringify(json)) };
  const parts = Array.from({ length: n }, () => ({ out: new Capture(), record: newRecord(record.id, record.method, record.path) }));
  try {
    await Promise.all(parts.map((p) => gateway.proxy(one, p.out, p.record, signal, vk)));
  } finally {
    for (const p of parts) {
      record.attempts.push(...p.record.attempts);
      record.upstreamMs += p.record.upstreamMs;
    }
    record.route = parts[0].record.route;
  }
  const failed = parts.find((p) => p.out.status !== 200);
  if (failed !== undefined) {
    res.writeHead(failed.out.status, failed.out.headers);
    res.end(failed.out.body);
    return;
  }
  const bodies = parts.map((p) => JSON.parse(p.out.body) as Json);
  const choices = bodies.map((b, i) => ({ ...(((b.choices as Json[] | undefined) ?? [])[0] ?? {}), index: i }));
  const merged = { ...bodies[0], choices, usage: addUsage(bodies.map((b) => (b.usage ?? {}) as Json)) };
  const first = parts[0].record;
  record.account = first.account;
  record.provider = first.provider;
  record.responseModel = first.responseModel;
  if (parts.every((p) => p.record.usage !== null)) {
    const u = parts.map((p) => p.record.usage!);
    record.usage = {
      inputTokens: sum(u.map((x) => x.inputTokens)),
      outputTokens: sum(u.map((x) => x.outputTokens)),
      cacheReadTokens: sum(u.map((x) => x.cacheReadTokens)),
      cacheWriteTokens: sum(u.map((x) => x.cacheWriteTokens)),
    };
    record.costNanoUsd = parts.every((p) => p.record.costNanoUsd !== null) ? sum(parts.map((p) => p.record.costNanoUsd)) : null;
  }
  res.writeHead(200, { ...parts[0].out.headers, "content-type": "application/json" });
  res.end(JSON.stringify(merged));
}
