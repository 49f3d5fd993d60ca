// Request bodies checked once, at the edge, per surface: every field the
// gateway or an adapter reads has the type it is read as, and every number is
// finite and in range, before any budget math or translation touches it. A
// malformed field answers 400 naming it (`param`), never a 500 from deep
// inside (`max_tokens: 0.5` once reached a BigInt conversion).
//
// Unknown fields pass: providers add parameters faster than gateways learn them.
//
//   surface body ─► generated validator (first error) ─► the error a caller can act on ─► 400 { param }
//                   (runtime/request-schemas.ts compiled by ajv at development time)
import type { ErrorObject } from "ajv";
import { badRequest } from "./errors.ts";
import { SCHEMAS, type Surface } from "./request-schemas.ts";
import * as validators from "./request-validators.generated.mjs";

export type { Surface };

/** A malformed field, as the surface names it: `messages[0].content` (OpenAI) or `messages.0.content` (Anthropic). */
export interface FieldProblem {
  /** The field, in OpenAI's notation. */
  param: string;
  /** The same field as Anthropic's error messages name it. */
  dotted: string;
  message: string;
  code: string;
}

/** Undefined when the body is well-formed for the surface; else its first malformed field. */
export function findProblem(surface: Surface, body: Record<string, unknown>): FieldProblem | undefined {
  const validate = validators[surface];
  if (validate(body)) return undefined;
  const schema = SCHEMAS[surface];
  const at = (e: ErrorObject): Located => ({
    e,
    keyword: resolve(schema, e.schemaPath),
    parent: resolve(schema, e.schemaPath.slice(0, e.schemaPath.lastIndexOf("/"))),
    data: resolve(body, e.instancePath),
  });
  return describe(pick((validate.errors ?? []).map(at)));
}

/** What an error points at: `#/properties/x/anyOf` in a schema, `/messages/0` in the body. */
function resolve(root: unknown, pointer: string): any {
  let node = root as any;
  for (const raw of pointer.replace(/^#/, "").split("/").slice(1)) {
    if (node === null || typeof node !== "object") return undefined;
    node = node[raw.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node;
}

/** An ajv error with what it points at: the failing keyword's value, the schema holding it, the value it failed on. */
interface Located {
  e: ErrorObject;
  keyword: any;
  parent: { description?: string } | undefined;
  data: unknown;
}

/** Throws a 400 naming the first malformed field. */
export function validateRequest(surface: Surface, body: Record<string, unknown>): void {
  const problem = findProblem(surface, body);
  if (problem !== undefined) throw badRequest(problem.message, problem.code, problem.param);
}

/**
 * The error a caller can act on. ajv reports the failing `anyOf` last, after
 * each branch's own error; when exactly one branch has the value's JSON type
 * (an array where "a string or an array of parts" was wanted), the problem is
 * inside that branch, so descend into it.
 */
function pick(all: Located[]): Located {
  // An `if`/`then` failure is reported twice: its `then`'s own error, then "must match then"; keep the first.
  const errors = all.filter((x) => x.e.keyword !== "if");
  let l = errors[errors.length - 1];
  while (l.e.keyword === "anyOf") {
    const branches = l.keyword as { type?: string | string[] }[];
    const matching = branches.flatMap((b, i) => (typeMatches(b.type, l.data) ? [i] : []));
    if (matching.length !== 1) break;
    const prefix = `${l.e.schemaPath}/${matching[0]}/`;
    const inner = errors.filter((x) => x.e.schemaPath.startsWith(prefix));
    if (inner.length === 0) break;
    l = inner[inner.length - 1];
  }
  return l;
}

function typeMatches(type: string | string[] | undefined, data: unknown): boolean {
  if (type === undefined) return false;
  const kind = kindOf(data);
  return (Array.isArray(type) ? type : [type]).some((t) => t === kind || (t === "number" && kind === "integer") || (t === "integer" && kind === "number"));
}

function kindOf(data: unknown): string {
  if (data === null) return "null";
  if (Array.isArray(data)) return "array";
  if (typeof data === "number") return Number.isInteger(data) ? "integer" : "number";
  return typeof data;
}

/** What a caller reads: the value's kind, never the value itself when it is large. */
function shown(data: unknown): string {
  if (typeof data === "number") return Number.isFinite(data) ? String(data) : "a number out of range";
  const kind = kindOf(data);
  return kind === "integer" || kind === "number" ? kind : kind === "object" ? "an object" : kind === "array" ? "an array" : kind === "null" ? "null" : `a ${kind}`;
}

function describe({ e, parent, data }: Located): FieldProblem {
  const segments = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (e.keyword === "required") segments.push((e.params as { missingProperty: string }).missingProperty);
  const param = segments.reduce((p, s) => (/^\d+$/.test(s) ? `${p}[${s}]` : p === "" ? s : `${p}.${s}`), "");
  const dotted = segments.join(".");
  const field = param === "" ? "the request body" : `'${param}'`;
  // The schema holding the failing keyword says, in its `description`, what was expected.
  const expected = parent?.description ?? `valid (${e.message})`;
  if (e.keyword === "required") {
    return { param, dotted, code: "missing_required_parameter", message: `Missing required parameter: ${field}.` };
  }
  if (e.keyword === "type" || e.keyword === "anyOf") {
    // 0.5 where an integer goes is a type problem in OpenAI's words too ("got a decimal number").
    const got = typeof data === "number" && Number.isFinite(data) && !Number.isInteger(data) ? "a decimal number" : shown(data);
    return { param, dotted, code: "invalid_type", message: `Invalid type for ${field}: expected ${expected}, but got ${got} instead.` };
  }
  return { param, dotted, code: "invalid_value", message: `Invalid value for ${field}: expected ${expected}, but got ${shown(data)} instead.` };
}

/** The problem as Anthropic's API words it: the dotted field, a colon, what is wrong. */
export function anthropicMessage(p: FieldProblem): string {
  if (p.dotted === "") return p.message;
  return p.code === "missing_required_parameter" ? `${p.dotted}: Field required` : `${p.dotted}: ${p.message}`;
}
