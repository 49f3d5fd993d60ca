// load → validate → check → plan, with no Node API: `gwc` runs it, and so
// does the dashboard's config page in the browser (compiler/browser.ts).
import pkg from "../package.json" with { type: "json" };
import type { Plan } from "../runtime/plan.ts";
import { check } from "./check.ts";
import type { Config } from "./config-types.ts";
import { sortDiagnostics, type Diagnostic } from "./diagnostics.ts";
import { load } from "./load.ts";
import { buildPlan } from "./plan.ts";
import { validate } from "./validate.ts";

export const GWC_VERSION: string = pkg.version;

export interface CompileResult {
  diagnostics: Diagnostic[];
  /** Present when there is no error (warnings allow a plan). */
  plan?: Plan;
}

/** Never throws on any input text. */
export function compileWith(text: string, file: string, configSha256: string): CompileResult {
  const { value, bag } = load(text, file);
  if (value === undefined || !validate(value, bag)) return { diagnostics: sortDiagnostics(bag.items) };
  const config = value as Config;
  check(config, bag);
  if (bag.hasErrors) return { diagnostics: sortDiagnostics(bag.items) };
  return { diagnostics: sortDiagnostics(bag.items), plan: buildPlan(config, { gwcVersion: GWC_VERSION, configSha256 }) };
}

