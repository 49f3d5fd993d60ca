// A real gateway process for the fault suite: `gwc build` into a temp dir, then
// `node gateway.mjs` (optionally under a shell `ulimit`), on 127.0.0.1 only.
// Every process started here is stopped by its PID in `stop()`.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { tempDir } from "../helpers.ts";

const GWC = resolve("build/gwc.mjs");

export function buildGateway(config: object, dir = tempDir("gwc-faults-")): string {
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const r = spawnSync(process.execPath, [GWC, "build", join(dir, "config.json"), "-o", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`gwc build failed: ${r.stderr}`);
  return dir;
}

export interface GatewayProcess {
  child: ChildProcess;
  port: number;
  url: string;
  /** Everything the process wrote to stderr and stdout (its JSON log) so far. */
  readonly stderr: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>;
  alive(): boolean;
  stop(): Promise<void>;
}

/** A port the kernel just handed out, so free a moment ago (others run tests on this machine too). */
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => ok(port));
    });
  });
}

/**
 * Starts `node gateway.mjs` in `dir`; `ulimit` (descriptors) runs it under `sh -c 'ulimit -n N; exec node …'`.
 * A port taken between choosing and listening is retried with another.
 */
export async function startGateway(dir: string, env: Record<string, string> = {}, opts: { ulimit?: number; nodeArgs?: string[] } = {}): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(dir, env, opts, await freePort());
    } catch (e) {
      if (attempt >= 3 || !String((e as Error).message).includes("EADDRINUSE")) throw e;
    }
  }
}

async function startOnce(dir: string, env: Record<string, string>, opts: { ulimit?: number; nodeArgs?: string[] }, port: number): Promise<GatewayProcess> {
  const args = [...(opts.nodeArgs ?? []), join(dir, "gateway.mjs")];
  const fullEnv = { PATH: process.env.PATH ?? "", PORT: String(port), HOST: "127.0.0.1", OPENAI_API_KEY: "sk-test", ...env };
  const child =
    opts.ulimit === undefined
      ? spawn(process.execPath, args, { cwd: dir, env: fullEnv })
      : spawn("sh", ["-c", `ulimit -n ${opts.ulimit} && exec "$0" "$@"`, process.execPath, ...args], { cwd: dir, env: fullEnv });
  let stderr = "";
  let exitedWith: number | string | undefined;
  const exited = new Promise<number | string>((ok) => child.on("exit", (code, signal) => ok((exitedWith = code ?? signal ?? -1))));
  await new Promise<void>((ok, fail) => {
    // The gateway's log (JSON lines: `listening`, reloads, failures) is on stdout; why it could not start, on stderr.
    const take = (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("listening on")) ok();
    };
    child.stderr!.on("data", take);
    child.stdout!.on("data", take);
    void exited.then((code) => fail(new Error(`gateway exited ${code} before listening: ${stderr}`)));
  });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    get stderr() {
      return stderr;
    },
    exited,
    alive: () => exitedWith === undefined,
    async stop() {
      if (exitedWith !== undefined) return;
      process.kill(child.pid!, "SIGKILL");
      await exited;
    },
  };
}

/** A raw TCP connection to the gateway, collecting whatever it answers. */
export interface RawClient {
  socket: Socket;
  /** Bytes received so far, as latin1 text. */
  readonly received: string;
  /** Resolves when the gateway closed the connection (or it errored), with any socket error code. */
  closed: Promise<string | undefined>;
}

export function rawConnect(port: number): Promise<RawClient> {
  return new Promise((ok, fail) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    let error: string | undefined;
    socket.on("data", (d) => (received += d.toString("latin1")));
    socket.on("error", (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    const closed = new Promise<string | undefined>((done) => socket.on("close", () => done(error)));
    socket.once("connect", () =>
      ok({
        socket,
        get received() {
          return received;
        },
        closed,
      }),
    );
    socket.once("error", fail);
  });
}

/** Status line and JSON body of the first response in `text`. */
export function parseResponse(text: string): { status: number; headers: string; body: any } {
  const head = text.indexOf("\r\n\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const headers = text.slice(0, head).toLowerCase();
  let body: any;
  try {
    const raw = text.slice(head + 4);
    body = JSON.parse(/transfer-encoding: chunked/.test(headers) ? raw.split("\r\n")[1] : raw);
  } catch {
    body = undefined;
  }
  return { status, headers, body };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const chat = (model = "m", extra: object = {}) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], ...extra });
