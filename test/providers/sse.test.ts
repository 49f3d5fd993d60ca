// The one SSE decoder (runtime/providers/sse.ts) the relay and the translators
// share: any split of the bytes gives the same events, line ends of every kind
// are read, and one event is bounded (issue #11 item 10).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventTooLarge, SseDecoder, type SseEvent } from "../../runtime/providers/sse.ts";

function decode(parts: Buffer[], max = 1024 * 1024, keepText = true): SseEvent[] {
  const d = new SseDecoder(max, { keepText });
  const out: SseEvent[] = [];
  for (const p of parts) out.push(...d.push(p));
  out.push(...d.end());
  return out;
}

/** Cuts `bytes` at the given offsets. */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(bytes.subarray(prev, p));
    prev = p;
  }
  parts.push(bytes.subarray(prev));
  return parts;
}

const field = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }).map((s) => `data: ${s.replace(/[\r\n]/g, "")}`),
  fc.constantFrom("event: message_delta", ": keep-alive", "id: 7", "retry: 100", "data:", "data:no-space"),
);
const event = fc.array(field, { minLength: 1, maxLength: 4 });
const lineEnd = fc.constantFrom("\n", "\r\n", "\r");

describe("SseDecoder", () => {
  it("gives the same events however the bytes are split, and whatever the line ends (property)", () => {
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 6 }), lineEnd, fc.array(fc.nat(), { maxLength: 8 }), (events, nl, at) => {
        const text = events.map((e) => e.join(nl) + nl + nl).join("");
        const bytes = Buffer.from(text);
        const whole = decode([bytes]);
        expect(decode(cut(bytes, at))).toEqual(whole);
        // Byte by byte too: a CR at the end of one read and its LF at the start of the next are one line end.
        expect(decode([...bytes].map((b) => Buffer.of(b)))).toEqual(whole);
        expect(whole.map((e) => e.text)).toEqual(events.map((e) => e.join("\n")));
      }),
      { numRuns: 300 },
    );
  });

  it("reads data, event and multi-line data as the SSE spec does; the last event without its blank line counts at the end", () => {
    const events = decode([Buffer.from("event: ping\ndata: {\"a\":1}\n\n: comment\n\ndata: x\ndata: y\n\ndata:\n\ndata: [DONE]")]);
    expect(events.map(({ event, data, hasData }) => ({ event, data, hasData }))).toEqual([
      { event: "ping", data: '{"a":1}', hasData: true },
      { event: "", data: "", hasData: false },
      { event: "", data: "x\ny", hasData: true },
      // An empty data line is a keep-alive, not an event with data.
      { event: "", data: "", hasData: false },
      { event: "", data: "[DONE]", hasData: true },
    ]);
  });

  it("keeps a UTF-8 character whole across reads", () => {
    const bytes = Buffer.from("data: héllo 世界\n\n");
    expect(decode([...bytes].map((b) => Buffer.of(b)))[0].data).toBe("héllo 世界");
  });

  it("reads newline-delimited JSON as events when asked (Cohere v1)", () => {
    const d = new SseDecoder(1024, { ndjson: true });
    expect(d.push(Buffer.from('{"a":1}\n{"b":2}\n')).map((e) => e.data)).toEqual(['{"a":1}', '{"b":2}']);
  });

  it("throws EventTooLarge once one event passes the bound, whether its line never ends or its lines never stop", () => {
    const endless = new SseDecoder(64 * 1024);
    endless.push(Buffer.from("data: "));
    const piece = Buffer.alloc(16 * 1024, "x");
    let threw: unknown;
    let fed = 0;
    try {
      for (; fed < 1024 * 1024; fed += piece.length) endless.push(piece);
    } catch (e) {
      threw = e;
    }
    expect(threw).toBeInstanceOf(EventTooLarge);
    // It stopped at the bound, not at the end of what the upstream would send.
    expect(fed).toBeLessThanOrEqual(64 * 1024);

    const lines = new SseDecoder(1024);
    expect(() => {
      for (let i = 0; i < 1000; i++) lines.push(Buffer.from("data: 0123456789\n"));
    }).toThrow(EventTooLarge);

    // Many small events are fine: the bound is per event.
    const many = new SseDecoder(1024);
    for (let i = 0; i < 1000; i++) expect(many.push(Buffer.from("data: 0123456789\n\n"))).toHaveLength(1);
  });
});
