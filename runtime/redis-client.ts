import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { PlanRedis } from "./plan.ts";

/**
 * A client for `url`: a plain connection, or with `cluster`, a Redis Cluster
 * client seeded by that node (it learns the others and follows moved slots).
 * Both take the same scripts; every key gwc writes carries one hash tag, so a
 * script's keys always sit on one node.
 */
export function redisClient(config: Pick<PlanRedis, "cluster">, url: string, options: RedisOptions): Redis | Cluster {
  if (config.cluster !== true) return new Redis(url, options);
  const { enableOfflineQueue, retryStrategy, lazyConnect, ...node } = options;
  const u = new URL(url);
  return new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    enableOfflineQueue,
    lazyConnect,
    clusterRetryStrategy: typeof retryStrategy === "function" ? (times) => retryStrategy(times) ?? null : undefined,
    redisOptions: { ...node, username: u.username || undefined, password: u.password ? decodeURIComponent(u.password) : undefined, tls: u.protocol === "rediss:" ? {} : undefined },
  });
}
