// A real redis-server for the tests: its own port and directory, AOF on
// (appendfsync everysec, what the README asks operators for), stopped by PID.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { freePort, tempDir } from "../helpers.ts";

export { freePort };

export interface RedisProcess {
  port: number;
  url: string;
  dir: string;
  /** Stops it (SIGTERM: Redis writes its AOF and exits) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory: what it had persisted comes back. */
  start(): Promise<void>;
  /** SIGKILL: no shutdown save at all, only what the AOF already had. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that holds connections open and answers nothing. */
  pause(): void;
  resume(): void;
}

export async function startRedis(extra: string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  const dir = tempDir("gwc-redis-");
  let child: ChildProcess | undefined;
  const start = () =>
    new Promise<void>((ok, fail) => {
      const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no", ...extra], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = c;
      let out = "";
      c.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ready to accept connections")) ok();
      });
      c.once("exit", (code) => fail(new Error(`redis-server exited ${code}: ${out}`)));
    });
  const stopWith = (signal: NodeJS.Signals) => () =>
    new Promise<void>((ok) => {
      const c = child;
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return ok();
      c.once("exit", () => ok());
      c.kill(signal);
    });
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, dir, start, stop: stopWith("SIGTERM"), kill: stopWith("SIGKILL"), pause: () => child?.kill("SIGSTOP"), resume: () => child?.kill("SIGCONT") };
}

/**
 * A Redis Cluster of three masters (no replicas) on free ports, made with
 * `redis-cli --cluster create` as an operator would; resolves once every
 * slot is served (cluster_state:ok).
 */
export async function startRedisCluster(): Promise<RedisProcess[]> {
  const nodes = await Promise.all([0, 1, 2].map(() => startRedis(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"])));
  const created = spawnSync("redis-cli", ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"], { encoding: "utf8", timeout: 30_000 });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const info = nodes.map((n) => spawnSync("redis-cli", ["-p", String(n.port), "cluster", "info"], { encoding: "utf8" }).stdout);
    if (info.every((i) => i.includes("cluster_state:ok"))) return nodes;
    if (Date.now() > deadline) throw new Error(`the cluster is not ok after 20 s: ${info.join("\n")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A redis-server for the whole file (started before its tests, stopped after), and a plain client to it. */
export function redisForSuite(): { server: () => RedisProcess; direct: () => Redis } {
  let server: RedisProcess | undefined;
  let direct: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    direct = new Redis(server.url);
    // Tests stop and restart the server: the client reconnects, and its errors meanwhile are expected.
    direct.on("error", () => {});
  });
  afterAll(async () => {
    direct?.disconnect();
    await server?.stop();
  });
  return { server: () => server!, direct: () => direct! };
}
