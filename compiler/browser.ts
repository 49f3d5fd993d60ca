// The compiler's checks for the dashboard's config page, in the browser: the
// same pipeline `gwc check` runs (compileWith), the same explain and diff.
// Bundled by compiler/build-self.mjs into build/ui-compiler.js, which the
// gateway serves at /ui/compiler.js; it sets `globalThis.gwcCompiler`.
import { applyEdits, modify, parseTree, findNodeAtLocation } from "jsonc-parser";
import type { Plan } from "../runtime/plan.ts";
import { compileWith } from "./pipeline.ts";
import { formatDiagnostic } from "./diagnostics.ts";
import { diffPlans, formatMarkdown, formatText } from "./diff.ts";
import { explain } from "./explain.ts";

export interface DraftResult {
  /** `file:line:col  CODE  /pointer  message`, as `gwc check` prints them. */
  diagnostics: string[];
  errors: number;
  explain: string | null;
  diff: { text: string; markdown: string; changes: number } | null;
}

/** Checks a draft and, when it compiles, explains it and diffs it against what is running. */
export function checkDraft(draft: string, running: string | null, file = "gateway.config.json"): DraftResult {
  const { diagnostics, plan } = compileWith(draft, file, "draft");
  const result: DraftResult = { diagnostics: diagnostics.map(formatDiagnostic), errors: diagnostics.filter((d) => d.severity === "error").length, explain: null, diff: null };
  if (plan === undefined) return result;
  result.explain = explain(plan);
  const before: Plan | undefined = running === null ? undefined : compileWith(running, file, "running").plan;
  if (before !== undefined) {
    const d = diffPlans(before, plan);
    result.diff = { text: formatText(d), markdown: formatMarkdown(d), changes: d.changes.length };
  }
  return result;
}

export interface Weight {
  /** JSON path of the weight, e.g. ["accounts", 0, "weight"]. */
  path: (string | number)[];
  label: string;
  value: number;
}

/** Every weight a person may change in the draft: accounts' and routes' targets'. */
export function weights(draft: string): Weight[] {
  const tree = parseTree(draft);
  if (tree === undefined) return [];
  const out: Weight[] = [];
  const at = (path: (string | number)[]) => findNodeAtLocation(tree, path);
  const accounts = at(["accounts"])?.children ?? [];
  accounts.forEach((_, i) => {
    const id = at(["accounts", i, "id"])?.value;
    const weight = at(["accounts", i, "weight"])?.value;
    out.push({ path: ["accounts", i, "weight"], label: `account ${String(id)}`, value: typeof weight === "number" ? weight : 1 });
  });
  (at(["routes"])?.children ?? []).forEach((_, r) => {
    (at(["routes", r, "targets"])?.children ?? []).forEach((__, t) => {
      const weight = at(["routes", r, "targets", t, "weight"])?.value;
      const model = at(["routes", r, "model"])?.value;
      const account = at(["routes", r, "targets", t, "account"])?.value;
      out.push({ path: ["routes", r, "targets", t, "weight"], label: `route ${String(model)} → ${String(account)}`, value: typeof weight === "number" ? weight : 1 });
    });
  });
  return out;
}

/** The draft with one value changed, its formatting and comments kept. */
export function setValue(draft: string, path: (string | number)[], value: unknown): string {
  return applyEdits(draft, modify(draft, path, value, { formattingOptions: { insertSpaces: true, tabSize: 2 } }));
}

(globalThis as { gwcCompiler?: unknown }).gwcCompiler = { checkDraft, weights, setValue };
