// What every translating surface shares: the request's chat form, made once
// per drop setting, and a sink that stands where the gateway writes an OpenAI
// chat answer and writes the surface's own instead. A subclass says how a whole
// JSON answer reads in its format, and what each SSE event's data becomes.
import type { ResponseSink } from "../gateway.ts";
import type { InboundRequest } from "../providers/adapter.ts";
import { Carry, DROPPED_HEADER, withDropped } from "./carry.ts";
import { isObject, type Json } from "../json.ts";

/** The chat form of a request (for accounts of another format), and what making it dropped. */
export class ChatForms {
  readonly #forms = new Map<boolean, InboundRequest>();
  #carry: Carry | undefined;

  constructor(
    /** What the request becomes, for refusals ("OpenAI chat"). */
    private readonly target: string,
    private readonly build: (carry: Carry) => Json,
  ) {}

  /** `InboundRequest.toChat`: the chat request, built on first need; throws a 400 for what chat cannot carry. */
  readonly toChat = (drop: boolean): InboundRequest => {
    let form = this.#forms.get(drop);
    if (form === undefined) {
      const carry = new Carry(this.target, drop);
      const chat = this.build(carry);
      this.#carry = carry;
      form = { endpoint: "chat", raw: Buffer.from(JSON.stringify(chat)), json: chat, stream: chat.stream === true };
      this.#forms.set(drop, form);
    }
    return form;
  };

  /** The fields the latest chat form dropped, as the answer's header. */
  headers(): Record<string, string> {
    return this.#carry?.headers() ?? {};
  }
}

/** OpenAI chat's usage object, as the sinks read it. */
export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

/** Asks a chat stream for its usage, which the sinks pass on in their own terms. */
export function withStreamUsage(out: Json, stream: boolean): Json {
  if (stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

/** A parsed JSON object, or undefined. */
export function objectOf(text: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export abstract class ChatSink implements ResponseSink {
  protected status = 200;
  protected json = true;
  #pending = "";

  constructor(
    protected readonly res: ResponseSink,
    private readonly forms: { headers(): Record<string, string> },
    private readonly contentTypes: { json: string; stream: string },
  ) {}

  get headersSent(): boolean {
    return this.res.headersSent;
  }
  get destroyed(): boolean {
    return this.res.destroyed;
  }

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.json = !String(headers["content-type"]).startsWith("text/event-stream");
    const { "content-type": _, ...rest } = headers;
    const own = this.forms.headers()[DROPPED_HEADER];
    this.res.writeHead(status, { ...withDropped(rest, own === undefined ? undefined : [own]), "content-type": this.json ? this.contentTypes.json : this.contentTypes.stream });
    return this;
  }

  write(chunk: string | Buffer): boolean {
    // Relayed OpenAI streams come as the upstream sent them: SSE allows CRLF line ends.
    this.#pending += this.json ? chunk.toString() : chunk.toString().replace(/\r\n?/g, "\n");
    if (this.json) return true;
    let ok = true;
    for (let end = this.#pending.indexOf("\n\n"); end >= 0; end = this.#pending.indexOf("\n\n")) {
      const event = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data !== "") ok = this.event(data, event);
    }
    return ok;
  }

  end(chunk?: string | Buffer): this {
    if (chunk !== undefined) this.write(chunk);
    if (this.json) {
      const parsed = objectOf(this.#pending);
      this.res.end(JSON.stringify(this.status < 400 && parsed !== undefined ? this.answer(parsed) : this.error(this.status, parsed, this.#pending)));
    } else {
      this.res.end();
    }
    return this;
  }

  once(event: "drain" | "close", listener: () => void): this {
    this.res.once(event, listener);
    return this;
  }

  destroy(): void {
    this.res.destroy();
  }

  /** A whole chat completion in this surface's shape. */
  protected abstract answer(chat: Json): unknown;
  /** An error answer (the gateway's OpenAI-shaped body, parsed when it parses) in this surface's shape. */
  protected abstract error(status: number, parsed: Json | undefined, text: string): unknown;
  /** One SSE event of a chat stream (its data, `[DONE]` included; the event text as it came); false when the caller is full. */
  protected abstract event(data: string, raw: string): boolean;
}

/** The message of the gateway's OpenAI-shaped error body, or a stand-in. */
export function errorMessage(parsed: Json | undefined): string {
  const e = parsed?.error;
  return typeof e === "object" && e !== null && typeof (e as Json).message === "string" ? ((e as Json).message as string) : "The upstream failed.";
}
