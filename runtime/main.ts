// Entry of the bundle `gwc build` writes. Importing it (as gwc/testing does)
// only exposes the plan and its router; running it with `node` serves.
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { plan } from "gwc:plan";
import { Router } from "./router.ts";
import { start } from "./start.ts";

declare const __GWC_CONFIG_SOURCE__: string | null | undefined;

export { plan };
export const router = new Router(plan);
/** The config this bundle was built from, when it has a dashboard (only `${VAR}` references, never a secret). */
export const configSource: string | null = typeof __GWC_CONFIG_SOURCE__ === "string" ? __GWC_CONFIG_SOURCE__ : null;

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isMain()) start(plan, import.meta.url, configSource);
