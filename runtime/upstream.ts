// Reading what an upstream answered: its error text, its Retry-After, whether
// a failure was a timeout.
import { errors as undiciErrors } from "undici";

const ERROR_TEXT_LIMIT = 300;

export function isTimeout(e: unknown): boolean {
  return e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError;
}

export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The message of an OpenAI-shaped error body, shortened; the raw text otherwise. */
export function upstreamMessage(text: string): string {
  let message = text;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof parsed.error === "object" ? parsed.error?.message : (parsed.error ?? parsed.message);
    if (typeof m === "string") message = m;
  } catch {
    // not JSON: keep the text
  }
  message = message.replace(/\s+/g, " ").trim();
  return message.length > ERROR_TEXT_LIMIT ? `${message.slice(0, ERROR_TEXT_LIMIT)}…` : message || "no message";
}

export function parseJson(text: string | Buffer): unknown {
  try {
    return JSON.parse(text.toString());
  } catch {
    return undefined;
  }
}

const USAGE_KEY = Buffer.from('"usage"');
/** What may follow a top-level member: more members with scalar values, then the document's closing brace. */
const SCALAR_TAIL = /^\s*(?:,\s*"(?:[^"\\]|\\.)*"\s*:\s*(?:"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null)\s*)*\}\s*$/;

/**
 * An OpenAI-shaped response with its top-level `usage` readable, for metering.
 * The usage object sits near the end, after the choices; when only scalar
 * members follow it, it alone is parsed (a few hundred bytes, however long the
 * answer). Anything else falls back to parsing the whole document, so the
 * result's `usage` is always what `JSON.parse(body).usage` would be.
 */
export function usageView(body: Buffer): unknown {
  const at = body.lastIndexOf(USAGE_KEY);
  if (at > 0) {
    // A raw quote cannot occur inside a JSON string, so `"usage"` after `{` or `,` is a key.
    let before = at - 1;
    while (before > 0 && isSpace(body[before])) before--;
    let i = at + USAGE_KEY.length;
    while (isSpace(body[i])) i++;
    if ((body[before] === 0x7b || body[before] === 0x2c) && body[i] === 0x3a) {
      i++;
      while (isSpace(body[i])) i++;
      const end = body[i] === 0x7b ? containerEnd(body, i) : -1;
      // Only scalars, then one closing brace, after it: a member of the top-level object.
      if (end > 0 && SCALAR_TAIL.test(body.toString("latin1", end))) {
        try {
          return { usage: JSON.parse(body.toString("utf8", i, end)) };
        } catch {
          // not JSON after all: the whole document decides
        }
      }
    }
  }
  return parseJson(body);
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** The index just past the object or array opening at `start`, or -1 if it does not close. */
function containerEnd(body: Buffer, start: number): number {
  let depth = 0;
  for (let i = start; i < body.length; i++) {
    const b = body[i];
    if (b === 0x22) {
      // Skip the string, escapes included.
      for (i++; i < body.length && body[i] !== 0x22; i++) if (body[i] === 0x5c) i++;
    } else if (b === 0x7b || b === 0x5b) depth++;
    else if ((b === 0x7d || b === 0x5d) && --depth === 0) return i + 1;
  }
  return -1;
}
