// The plan as JSON, written beside the bundle (`gateway.plan.json`) so a
// reload can read the new plan as data. Importing the new bundle instead kept
// every imported copy alive (an ES module is never unloaded): ~4.7 MiB of code
// per SIGHUP. Typed arrays travel as `{"$u32": [...]}`; plan field names are
// the plan's own, never user strings, so `$u32` cannot collide.
import { PLAN_VERSION, type Plan } from "./plan.ts";
import { StartupError } from "./secrets.ts";

/** What a bundle carries besides its code: the plan, and the config source its dashboard shows (null without one). */
export interface PlanFile {
  plan: Plan;
  configSource: string | null;
}

export function planToJson(plan: Plan, configSource: string | null = null): string {
  const file: PlanFile = { plan, configSource };
  return JSON.stringify(file, (_key, value: unknown) => (value instanceof Uint32Array ? { $u32: Array.from(value) } : value));
}

/** The plan file in `text`, or a StartupError saying what is wrong with it. */
export function planFromJson(text: string): PlanFile {
  let file: PlanFile;
  try {
    file = JSON.parse(text, (_key, value: unknown) => {
      const packed = (value as { $u32?: unknown } | null)?.$u32;
      return Array.isArray(packed) ? Uint32Array.from(packed as number[]) : value;
    }) as PlanFile;
  } catch (e) {
    throw new StartupError(`the plan is not valid JSON (${(e as Error).message})`);
  }
  const version = file?.plan?.version;
  if (version !== PLAN_VERSION) throw new StartupError(`the plan's version ${String(version)} is not ${PLAN_VERSION}: rebuild it with this gwc`);
  return { plan: file.plan, configSource: typeof file.configSource === "string" ? file.configSource : null };
}

/** Where a bundle's plan sidecar lives: `gateway.mjs` → `gateway.plan.json`. */
export function planPathOf(bundlePath: string): string {
  return bundlePath.replace(/\.m?js$/, "") + ".plan.json";
}
