// Server-sent events from bytes split anywhere, for the relay and every
// translator that reads SSE. Two promises an upstream cannot break:
//
//   - each byte is scanned once: a line that never ends costs its length, not
//     its length squared (the bytes wait as a list of slices until a line end);
//   - one event is at most `maxEventBytes`: past it, push() throws
//     EventTooLarge instead of buffering on.
//
// Lines end in LF, CRLF or CR (a CR at the end of one read and an LF at the
// start of the next are one line end). A line ends at an ASCII byte, so a
// UTF-8 character is never cut. An event ends at a blank line; the last one
// without its blank line still counts at end().

export interface SseEvent {
  /** The `event:` field ("" when absent). */
  event: string;
  /** The `data:` lines, joined with "\n" ("" when none). */
  data: string;
  /**
   * Whether the event carries data: an event of comments or `id:` alone does not, nor one whose
   * only data line is empty (the SSE spec does not dispatch an empty data buffer; keep-alives do this).
   */
  hasData: boolean;
  /** The event's lines as sent (comments and every field), joined with "\n"; only with `keepText`. */
  text: string;
}

/** One upstream event longer than the bound: the stream is failed, not buffered further. */
export class EventTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the upstream sent an event larger than ${limit} bytes`);
  }
}

export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;

export interface SseOptions {
  /** Keep each event's lines as text, for relaying it as it came. */
  keepText?: boolean;
  /** A line starting with `{` outside an event is an event of its own (newline-delimited JSON, Cohere v1). */
  ndjson?: boolean;
}

export class SseDecoder {
  /** Slices of the line not yet ended. */
  #parts: Buffer[] = [];
  #partBytes = 0;
  /** Bytes of the event so far (ended lines); with the open line, bounded by the limit. */
  #eventBytes = 0;
  /** The last read ended in CR: an LF first thing in the next read belongs to it. */
  #afterCr = false;
  #event = "";
  #data: string[] = [];
  #lines: string[] = [];
  /** The event has had a line of any kind. */
  #seen = false;

  constructor(
    readonly maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
    private readonly options: SseOptions = {},
  ) {}

  /** The events these bytes complete. Throws EventTooLarge past the bound. */
  push(bytes: Uint8Array): SseEvent[] {
    const out: SseEvent[] = [];
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let start = 0;
    if (this.#afterCr && buf.length > 0) {
      if (buf[0] === LF) start = 1;
      this.#afterCr = false;
    }
    // Line ends found by the native search; CRs looked for only while the read has one.
    let cr = buf.indexOf(CR, start);
    while (start < buf.length) {
      if (cr !== -1 && cr < start) cr = buf.indexOf(CR, start);
      const lf = buf.indexOf(LF, start);
      const end = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf;
      if (end === -1) break;
      const bytes = this.#partBytes + end - start;
      this.#line(this.#take(buf, start, end), bytes, out);
      start = end + 1;
      if (end === cr) {
        if (start === buf.length) this.#afterCr = true;
        else if (buf[start] === LF) start++;
      }
    }
    if (start < buf.length) {
      this.#parts.push(buf.subarray(start));
      this.#partBytes += buf.length - start;
    }
    if (this.#eventBytes + this.#partBytes > this.maxEventBytes) throw new EventTooLarge(this.maxEventBytes);
    return out;
  }

  /** The upstream ended: the open line and event, if any, complete. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.#partBytes > 0) {
      const bytes = this.#partBytes;
      this.#line(this.#take(Buffer.alloc(0), 0, 0), bytes, out);
    }
    this.#line("", 0, out);
    return out;
  }

  #take(buf: Buffer, start: number, end: number): string {
    if (this.#parts.length === 0) return buf.toString("utf8", start, end);
    this.#parts.push(buf.subarray(start, end));
    const line = Buffer.concat(this.#parts).toString("utf8");
    this.#parts = [];
    this.#partBytes = 0;
    return line;
  }

  #line(line: string, bytes: number, out: SseEvent[]): void {
    if (line === "") {
      if (this.#seen) {
        const data = this.#data.join("\n");
        out.push({ event: this.#event, data, hasData: data !== "" || this.#data.length > 1, text: this.#lines.join("\n") });
      }
      this.#event = "";
      this.#data = [];
      this.#lines = [];
      this.#seen = false;
      this.#eventBytes = 0;
      return;
    }
    this.#eventBytes += bytes + 1;
    if (this.#eventBytes > this.maxEventBytes) throw new EventTooLarge(this.maxEventBytes);
    if (this.options.ndjson && line.startsWith("{") && this.#data.length === 0) {
      out.push({ event: "", data: line, hasData: true, text: line });
      this.#eventBytes = 0;
      return;
    }
    this.#seen = true;
    if (this.options.keepText) this.#lines.push(line);
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
  }
}
