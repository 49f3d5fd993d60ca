import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Plan } from "../runtime/plan.ts";
import { planPathOf, planToJson } from "../runtime/plan-json.ts";
import type { Diagnostic } from "./diagnostics.ts";
import { compileWith, GWC_VERSION, type CompileResult } from "./pipeline.ts";

export { GWC_VERSION, type CompileResult };

/** load → validate → check → plan, all in memory. Never throws on any input text. */
export function compileSource(text: string, file: string): CompileResult {
  return compileWith(text, file, createHash("sha256").update(text).digest("hex"));
}

export function compileFile(path: string): CompileResult {
  return compileSource(readFileSync(path, "utf8"), path);
}

export interface Manifest {
  gwcVersion: string;
  planVersion: number;
  configSha256: string;
  bundle: string;
  bundleSha256: string;
  accounts: number;
  routes: number;
  virtualKeys: number;
  /** Variables the gateway reads at start-up: names only, never values. */
  environment: string[];
}

export interface BuildOutput {
  diagnostics: Diagnostic[];
  files?: { bundle: string; manifest: string; plan: string };
}

/**
 * The whole build: compile, emit, bundle, then write `gateway.plan.json` (the
 * plan as data, which a reload reads), `gateway.mjs` and `manifest.json` into `outDir`. Everything is produced in memory first and
 * renamed into place, so a failed build writes nothing and an old build stays.
 */
export async function buildToDir(configPath: string, outDir: string): Promise<BuildOutput> {
  const { diagnostics, plan } = compileFile(configPath);
  if (plan === undefined) return { diagnostics };
  // Loaded on demand: `gwc check` should not pay for the TypeScript compiler and esbuild.
  const [{ emitPlanModule, generatedHeader }, { bundleGateway }] = await Promise.all([import("./emit.ts"), import("./bundle.ts")]);
  // The dashboard's config page shows the running config; only a config with an admin key has a dashboard.
  const source = plan.server.adminKeyEnv === null ? null : readFileSync(configPath, "utf8");
  const bundle = await bundleGateway(emitPlanModule(plan), generatedHeader(plan), source);
  const manifest: Manifest = {
    gwcVersion: plan.gwcVersion,
    planVersion: plan.version,
    configSha256: plan.configSha256,
    bundle: "gateway.mjs",
    bundleSha256: createHash("sha256").update(bundle).digest("hex"),
    accounts: plan.accounts.length,
    routes: plan.routes.length,
    virtualKeys: plan.virtualKeys.length,
    environment: requiredEnvironment(plan),
  };
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const files = { bundle: join(dir, "gateway.mjs"), manifest: join(dir, "manifest.json"), plan: planPathOf(join(dir, "gateway.mjs")) };
  // The plan first: a reload checks it against the bundle's header, so a reload between the two writes is refused, not mixed.
  writeFileAtomically(files.plan, planToJson(plan, source));
  writeFileAtomically(files.bundle, bundle);
  writeFileAtomically(files.manifest, JSON.stringify(manifest, null, 2) + "\n");
  return { diagnostics, files };
}

export function requiredEnvironment(plan: Plan): string[] {
  const names = new Set<string>();
  for (const a of plan.accounts) if (a.apiKeyEnv !== null) names.add(a.apiKeyEnv);
  for (const k of plan.virtualKeys) if (k.keyEnv !== null) names.add(k.keyEnv);
  if (plan.server.adminKeyEnv !== null) names.add(plan.server.adminKeyEnv);
  return [...names].sort();
}

/** Write to a temporary file beside it, then rename: a reader never sees half a file. */
export function writeFileAtomically(path: string, contents: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, contents);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
