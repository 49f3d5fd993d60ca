import type { Plan } from "./plan.ts";

/** A start-up problem a person fixes in the environment; printed without a stack. */
export class StartupError extends Error {}

/**
 * Resolves every account's API key from the environment, once, at start-up.
 * A missing variable stops start-up with its name and the account that needs
 * it. The values live only in this array, never in logs or errors.
 */
export function resolveApiKeys(plan: Plan, env: NodeJS.ProcessEnv): (string | null)[] {
  const missing: string[] = [];
  const keys = plan.accounts.map((a) => {
    if (a.apiKeyEnv === null) return null;
    const value = env[a.apiKeyEnv];
    if (value === undefined || value === "") {
      missing.push(`${a.apiKeyEnv} (the API key of account '${a.id}')`);
      return null;
    }
    return value;
  });
  if (missing.length > 0) {
    throw new StartupError(`environment variable${missing.length > 1 ? "s" : ""} not set: ${missing.join(", ")}`);
  }
  return keys;
}
