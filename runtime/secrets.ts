import type { Plan } from "./plan.ts";

/** A start-up problem a person fixes in the environment; printed without a stack. */
export class StartupError extends Error {}

export interface AccountSecrets {
  apiKey: string | null;
  /** Further secrets by option name (an AWS access key id, a session token). */
  options: Record<string, string>;
}

/**
 * Resolves every account's secrets from the environment, once, at start-up.
 * A missing variable stops start-up with its name and the account that needs
 * it. The values live only here, never in logs or errors.
 */
export function resolveSecrets(plan: Plan, env: NodeJS.ProcessEnv): AccountSecrets[] {
  const missing: string[] = [];
  const keys = plan.accounts.map((a) => {
    const options: Record<string, string> = {};
    for (const [name, variable, required] of a.secretOptions) {
      const value = env[variable];
      if (value) options[name] = value;
      else if (required) missing.push(`${variable} (the ${name} of account '${a.id}')`);
    }
    if (a.apiKeyEnv === null) return { apiKey: null, options };
    const value = env[a.apiKeyEnv];
    if (value === undefined || value === "") {
      missing.push(`${a.apiKeyEnv} (the API key of account '${a.id}')`);
      return { apiKey: null, options };
    }
    return { apiKey: value, options };
  });
  if (missing.length > 0) {
    throw new StartupError(`environment variable${missing.length > 1 ? "s" : ""} not set: ${missing.join(", ")}`);
  }
  return keys;
}
