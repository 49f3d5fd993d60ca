// The plan as JSON, written beside the bundle (`gateway.plan.json`) so a
// reload can read the new plan as data. Importing the new bundle instead kept
// every imported copy alive (an ES module is never unloaded): ~4.7 MiB of code
// per SIGHUP. Typed arrays travel as `{"$u32": [...]}`; plan field names are
// the plan's own, never user strings, so `$u32` cannot collide.
import { PLAN_VERSION, type Plan } from "./plan.ts";
import { StartupError } from "./secrets.ts";

export function planToJson(plan: Plan): string {
  return JSON.stringify(plan, (_key, value: unknown) => (value instanceof Uint32Array ? { $u32: Array.from(value) } : value));
}

/** The plan in `text`, or a StartupError saying what is wrong with it. */
export function planFromJson(text: string): Plan {
  let plan: Plan;
  try {
    plan = JSON.parse(text, (_key, value: unknown) => {
      const packed = (value as { $u32?: unknown } | null)?.$u32;
      return Array.isArray(packed) ? Uint32Array.from(packed as number[]) : value;
    }) as Plan;
  } catch (e) {
    throw new StartupError(`the plan is not valid JSON (${(e as Error).message})`);
  }
  if (plan?.version !== PLAN_VERSION) throw new StartupError(`the plan's version ${String(plan?.version)} is not ${PLAN_VERSION}: rebuild it with this gwc`);
  return plan;
}

/** Where a bundle's plan sidecar lives: `gateway.mjs` → `gateway.plan.json`. */
export function planPathOf(bundlePath: string): string {
  return bundlePath.replace(/\.m?js$/, "") + ".plan.json";
}
