import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PlanRedis } from "./plan.ts";
import { redisClient } from "./redis-client.ts";
import { IMPORT } from "./redis-scripts.ts";
import { StartupError } from "./secrets.ts";
import { MONEY_GRACE_MS } from "./state-store-redis.ts";

export interface ImportResult {
  /** False when this prefix already had a snapshot imported: nothing was written. */
  imported: boolean;
  money: number;
  counts: number;
}

/**
 * Moves the embedded store's counters (`dir/state.json`) into Redis, once
 * per prefix: one script adds every live counter and sets a marker, so
 * running it twice cannot double a budget's spend.
 */
export async function importSnapshot(dir: string, redis: PlanRedis, env: NodeJS.ProcessEnv, now = Date.now()): Promise<ImportResult> {
  const url = env[redis.urlEnv];
  if (!url) throw new StartupError(`environment variable not set: ${redis.urlEnv} (the Redis URL of state.redis)`);
  const file = join(dir, "state.json");
  let data: { version?: number; money?: [string, number, number][]; counts?: [string, number, number][] };
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new StartupError(`cannot read the snapshot ${file}: ${(e as Error).message}`);
  }
  if (data?.version !== 1 || !Array.isArray(data.money) || !Array.isArray(data.counts)) {
    throw new StartupError(`${file} is not a version 1 gwc snapshot`);
  }
  const money = data.money.filter(([, , expiresAt]) => expiresAt > now);
  const counts = data.counts.filter(([, , expiresAt]) => expiresAt > now);
  const p = `{${redis.prefix}}`;
  const keys = [`${p}imported`, ...money.map(([k]) => `${p}m:${k}`), ...counts.map(([k]) => `${p}c:${k}`)];
  const args = [String(money.length), `${file} at ${new Date(now).toISOString()}`];
  for (const [, spent, expiresAt] of money) args.push(String(spent), String(expiresAt + MONEY_GRACE_MS));
  for (const [, count, expiresAt] of counts) args.push(String(count), String(expiresAt));
  const client = redisClient(redis, url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    const done = (await client.eval(IMPORT, keys.length, ...keys, ...args)) as number;
    return { imported: done === 1, money: money.length, counts: counts.length };
  } catch (e) {
    throw new StartupError(`cannot import into Redis: ${(e as Error).message}`);
  } finally {
    client.disconnect();
  }
}
