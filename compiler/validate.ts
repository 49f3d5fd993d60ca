import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import schema from "../schemas/gateway.schema.json" with { type: "json" };
import { didYouMean, type DiagnosticBag } from "./diagnostics.ts";

let compiled: ValidateFunction | undefined;

/** The schema validator, compiled once per process. */
function validator(): ValidateFunction {
  compiled ??= new Ajv2020.default({ allErrors: true, verbose: true, strict: true }).compile(schema);
  return compiled;
}

/**
 * Checks the config against schemas/gateway.schema.json and turns ajv's errors
 * into diagnostics a person can act on: unknown properties name the closest
 * known one, enums list their choices, every message says what is expected.
 */
export function validate(value: unknown, bag: DiagnosticBag): boolean {
  const validate = validator();
  if (validate(value)) return true;
  const errors = validate.errors ?? [];
  // A failed `oneOf` explains itself once; its branches' errors are noise.
  const oneOfPaths = errors.filter((e) => e.keyword === "oneOf").map((e) => e.schemaPath);
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== "oneOf" && oneOfPaths.some((p) => e.schemaPath.startsWith(p + "/"))) continue;
    if (e.keyword === "propertyNames") continue; // its inner error names the key
    const d = describe(e);
    const key = d.code + d.pointer;
    if (seen.has(key)) continue;
    seen.add(key);
    bag.error(d.code, d.pointer, d.message);
  }
  return false;
}

function describe(e: ErrorObject): { code: string; pointer: string; message: string } {
  const at = e.instancePath;
  const parent = (e.parentSchema ?? {}) as { description?: string; properties?: Record<string, unknown>; enum?: unknown[] };
  const about = parent.description ? ` (${parent.description})` : "";
  const name = lastSegment(at);
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  switch (e.keyword) {
    case "additionalProperties": {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent.properties ?? {});
      const hint = didYouMean(prop, known) || (known.length > 0 ? ` Known properties here: ${known.join(", ")}.` : "");
      return { code: "GWC_E_UNKNOWN_PROPERTY", pointer: `${at}/${escape(prop)}`, message: `Unknown property '${prop}'.${hint}` };
    }
    case "required": {
      const prop = (e.params as { missingProperty: string }).missingProperty;
      return { code: "GWC_E_MISSING_PROPERTY", pointer: at, message: `Missing required property '${prop}'; add it.` };
    }
    case "type":
      return { code: "GWC_E_TYPE", pointer: at, message: `'${name}' must be ${article((e.params as { type: string }).type)}${about}.` };
    case "enum": {
      const choices = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      if (propertyName !== undefined) {
        return {
          code: "GWC_E_UNKNOWN_PROVIDER",
          pointer: `${at}/${escape(propertyName)}`,
          message: `Unknown provider '${propertyName}'.${didYouMean(propertyName, choices)} Providers: ${choices.join(", ")}.`,
        };
      }
      const code = name === "provider" ? "GWC_E_UNKNOWN_PROVIDER" : "GWC_E_ENUM";
      const given = show(e.data);
      return { code, pointer: at, message: `'${given}' is not a valid ${name}.${didYouMean(given, choices)} Choose one of: ${choices.join(", ")}.` };
    }
    case "oneOf": {
      const branches = ((e.schema ?? []) as { const?: unknown; properties?: Record<string, unknown> }[]).map((b) =>
        b.const !== undefined ? JSON.stringify(b.const) : `an object with exactly one of ${Object.keys(b.properties ?? {}).join(", ")}`,
      );
      return { code: "GWC_E_TYPE", pointer: at, message: `'${name}' must be ${branches.join(", or ")}.` };
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const p = e.params as { comparison: string; limit: number };
      return { code: "GWC_E_RANGE", pointer: at, message: `'${name}' must be ${p.comparison} ${p.limit}; it is ${show(e.data)}.` };
    }
    case "minLength":
      return { code: "GWC_E_EMPTY", pointer: at, message: `'${name}' must not be empty.` };
    case "maxLength":
      return { code: "GWC_E_RANGE", pointer: at, message: `'${name}' is too long; at most ${(e.params as { limit: number }).limit} characters.` };
    case "minItems":
      return { code: "GWC_E_EMPTY", pointer: at, message: `'${name}' needs at least ${(e.params as { limit: number }).limit} item(s).` };
    default:
      return { code: "GWC_E_SCHEMA", pointer: at, message: `'${name}' ${e.message ?? "is invalid"}${about}.` };
  }
}

/** `/accounts/0/weight` → `weight`; `/accounts/0` → `accounts[0]`. */
function lastSegment(pointer: string): string {
  const segs = pointer.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const last = segs.at(-1);
  if (last === undefined) return "config";
  return /^\d+$/.test(last) && segs.length > 1 ? `${segs.at(-2)}[${last}]` : last;
}

/** A value as a person would write it, short (config objects have no prototype). */
function show(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function escape(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function article(type: string): string {
  const words: Record<string, string> = {
    integer: "a whole number",
    number: "a number",
    string: "a string",
    boolean: "true or false",
    array: "an array",
    object: "an object",
  };
  return type.split(",").map((t) => words[t] ?? t).join(" or ");
}
