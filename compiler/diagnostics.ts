/**
 * Every problem the compiler finds is a value, never a thrown error: a stable
 * code, a JSON pointer into the config, a line:column, and a message that says
 * what to change.
 */
export type Severity = "error" | "warning";

export interface Diagnostic {
  severity: Severity;
  code: string;
  pointer: string;
  message: string;
  file: string;
  line: number;
  col: number;
}

export interface Position {
  line: number;
  col: number;
}

/** Resolves a JSON pointer to where it stands in the source (nearest known ancestor). */
export type Locate = (pointer: string) => Position;

export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  constructor(
    readonly file: string,
    readonly locate: Locate,
  ) {}

  error(code: string, pointer: string, message: string): void {
    this.add("error", code, pointer, message);
  }

  warning(code: string, pointer: string, message: string): void {
    this.add("warning", code, pointer, message);
  }

  add(severity: Severity, code: string, pointer: string, message: string): void {
    const { line, col } = this.locate(pointer);
    this.items.push({ severity, code, pointer, message, file: this.file, line, col });
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }
}

export function pointerOf(...parts: (string | number)[]): string {
  return parts.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

export function sortDiagnostics(items: Diagnostic[]): Diagnostic[] {
  return [...items].sort((a, b) => a.line - b.line || a.col - b.col || a.code.localeCompare(b.code));
}

/** `file:line:col  CODE  /json/pointer  message`, warnings marked as such. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.col}`;
  const tag = d.severity === "warning" ? " (warning)" : "";
  return `${where}  ${d.code}  ${d.pointer || "/"}  ${d.message}${tag}`;
}

/** The closest candidate by edit distance, for "did you mean" hints. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates);
  return s === undefined ? "" : ` Did you mean '${s}'?`;
}
