// A real redis-server for the tests: its own port and directory, AOF on
// (appendfsync everysec, what the README asks operators for), stopped by PID.
import { spawn, type ChildProcess } from "node:child_process";
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
}

export async function startRedis(): Promise<RedisProcess> {
  const port = await freePort();
  const dir = tempDir("gwc-redis-");
  let child: ChildProcess | undefined;
  const start = () =>
    new Promise<void>((ok, fail) => {
      const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"], {
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
  return { port, url: `redis://127.0.0.1:${port}`, dir, start, stop: stopWith("SIGTERM"), kill: stopWith("SIGKILL") };
}
