import type { Plan } from "./plan.ts";
import { StartupError } from "./secrets.ts";
import { IpcStore } from "./state-store-ipc.ts";
import { RedisStore } from "./state-store-redis.ts";
import type { StateStore } from "./state-store.ts";
import { isWorker } from "./workers.ts";

/** How long start-up waits for Redis before listening anyway (governed requests then get 503 or the local share). */
const CONNECT_WAIT_MS = 3000;

/**
 * The store this process keeps counters in: Redis when the plan says so; the
 * primary's over IPC in a worker of `--workers N`; otherwise undefined, and
 * the Runtime makes the embedded one. `ready` resolves when it is worth
 * listening. Throws StartupError when the Redis URL's variable is not set.
 */
export function openStore(plan: Plan, env: NodeJS.ProcessEnv, log: (line: string) => void): { store: StateStore | undefined; ready: Promise<void> } {
  const redis = plan.state.redis;
  if (redis !== undefined) {
    const url = env[redis.urlEnv];
    if (!url) throw new StartupError(`environment variable not set: ${redis.urlEnv} (the Redis URL of state.redis)`);
    const store = new RedisStore(redis, url, log);
    return { store, ready: store.ready(CONNECT_WAIT_MS) };
  }
  if (isWorker()) return { store: new IpcStore(), ready: Promise.resolve() };
  return { store: undefined, ready: Promise.resolve() };
}
