import { parseTree, printParseErrorCode, type Node, type ParseError } from "jsonc-parser";
import { DiagnosticBag, pointerOf, type Locate, type Position } from "./diagnostics.ts";

export interface Loaded {
  /** The parsed value, or undefined when the text is not JSON. Objects have no
   *  prototype, so `__proto__` is just a key. */
  value: unknown;
  bag: DiagnosticBag;
}

/**
 * Parses strict JSON and remembers where every JSON pointer stands: a property
 * at its key, an array element at its value. Duplicate keys are reported
 * (JSON.parse would silently keep the last one).
 */
export function load(text: string, file: string): Loaded {
  const lines = lineStarts(text);
  const offsets = new Map<string, number>();
  const toPosition = (offset: number): Position => {
    let lo = 0;
    let hi = lines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lines[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - lines[lo] + 1 };
  };
  const locate: Locate = (pointer) => {
    for (let p = pointer; ; p = p.slice(0, p.lastIndexOf("/"))) {
      const offset = offsets.get(p);
      if (offset !== undefined) return toPosition(offset);
      if (p === "") return { line: 1, col: 1 };
    }
  };
  const bag = new DiagnosticBag(file, locate);
  const at = (offset: number, code: string, pointer: string, message: string) =>
    bag.items.push({ severity: "error", code, pointer, message, file, ...toPosition(offset) });

  const errors: ParseError[] = [];
  const root = parseTree(text.charCodeAt(0) === 0xfeff ? " " + text.slice(1) : text, errors, {
    disallowComments: true,
    allowTrailingComma: false,
    allowEmptyContent: false,
  });
  if (text.trim() === "") {
    bag.error("GWC_E_JSON_SYNTAX", "", "The file is empty; a config is a JSON object such as {\"accounts\": [...]}.");
    return { value: undefined, bag };
  }
  if (errors.length > 0 || root === undefined) {
    // Only the first syntax error is real; the parser's recovery makes the rest noise.
    const first = errors[0];
    const { offset, message } = explainSyntaxError(text, first.offset, printParseErrorCode(first.error));
    at(offset, "GWC_E_JSON_SYNTAX", "", `Invalid JSON: ${message}.`);
    return { value: undefined, bag };
  }

  const build = (node: Node, pointer: string): unknown => {
    switch (node.type) {
      case "object": {
        const obj = Object.create(null) as Record<string, unknown>;
        for (const prop of node.children ?? []) {
          const [keyNode, valueNode] = prop.children ?? [];
          const key = keyNode.value as string;
          const child = pointer + pointerOf(key);
          if (Object.prototype.hasOwnProperty.call(obj, key)) {
            at(prop.offset, "GWC_E_DUPLICATE_KEY", child, `Property '${key}' appears twice in this object; JSON keeps only the last. Remove one.`);
          }
          // JSON keeps the last occurrence, so that is where its problems are.
          offsets.set(child, prop.offset);
          obj[key] = valueNode === undefined ? null : build(valueNode, child);
        }
        return obj;
      }
      case "array":
        return (node.children ?? []).map((c, i) => {
          const child = pointer + "/" + i;
          offsets.set(child, c.offset);
          return build(c, child);
        });
      default:
        return node.value;
    }
  };
  offsets.set("", root.offset);
  return { value: build(root, ""), bag };
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13 && text.charCodeAt(i + 1) !== 10) starts.push(i + 1);
  }
  return starts;
}

/** Points at the real mistake: a trailing comma, a single quote, rather than where the parser gave up. */
function explainSyntaxError(text: string, offset: number, code: string): { offset: number; message: string } {
  if (text[offset] === "'") return { offset, message: "strings and property names need double quotes, not single quotes" };
  if (code === "PropertyNameExpected" || code === "ValueExpected") {
    let i = offset - 1;
    while (i >= 0 && /\s/.test(text[i])) i--;
    if (text[i] === "," && (text[offset] === "}" || text[offset] === "]")) {
      return { offset: i, message: `trailing comma before '${text[offset]}'; remove it` };
    }
  }
  return { offset, message: describeParseError(code) };
}

function describeParseError(code: string): string {
  const words: Record<string, string> = {
    InvalidSymbol: "unexpected character",
    InvalidNumberFormat: "malformed number",
    PropertyNameExpected: "expected a property name in double quotes",
    ValueExpected: "expected a value",
    ColonExpected: "expected ':' after the property name",
    CommaExpected: "expected ',' between items",
    CloseBraceExpected: "expected '}' to close the object",
    CloseBracketExpected: "expected ']' to close the array",
    EndOfFileExpected: "unexpected content after the end of the config",
    InvalidCommentToken: "comments are not allowed in JSON",
    UnexpectedEndOfComment: "unterminated comment",
    UnexpectedEndOfString: "unterminated string",
    UnexpectedEndOfNumber: "unterminated number",
    InvalidUnicode: "invalid \\u escape",
    InvalidEscapeCharacter: "invalid escape in a string",
    InvalidCharacter: "invalid character in a string (control characters must be escaped)",
  };
  return words[code] ?? code;
}
