// What a translation could not carry, kept in one place: each field is either
// refused (a 400 `unsupported_parameter` naming it) or, when the route opts in
// with `drop_unsupported_params`, dropped and named in the answer's
// `x-gwc-dropped-params` header. Fields with no counterpart by design (prompt
// cache hints on a provider that caches on its own, another provider's signed
// reasoning in the history) are always dropped, and named the same way.
import { unsupported } from "./served-as.ts";

export const DROPPED_HEADER = "x-gwc-dropped-params";

export class Carry {
  readonly dropped: string[] = [];

  constructor(
    /** What the request is turned into, for messages ("OpenAI chat"). */
    readonly target: string,
    readonly drop: boolean,
  ) {}

  /** A field the target cannot carry: a 400, or dropped when the route allows. */
  refuse(param: string, why = ""): void {
    if (!this.drop) throw unsupported(param, this.target, why);
    this.note(param);
  }

  /** A field with no counterpart by design: dropped, and said so. */
  note(param: string): void {
    if (!this.dropped.includes(param)) this.dropped.push(param);
  }

  /** The header naming what was dropped, if anything was. */
  headers(): Record<string, string> {
    return this.dropped.length === 0 ? {} : { [DROPPED_HEADER]: this.dropped.join(", ") };
  }
}

/** `headers` naming `dropped` too, joined to what they name already; the same object when nothing was dropped. */
export function withDropped(headers: Record<string, string>, dropped: readonly string[] | undefined): Record<string, string> {
  if (dropped === undefined || dropped.length === 0) return headers;
  const before = headers[DROPPED_HEADER];
  return { ...headers, [DROPPED_HEADER]: before === undefined ? dropped.join(", ") : `${before}, ${dropped.join(", ")}` };
}
