import cluster, { type Worker } from "node:cluster";
import type { ApplyReply, ApplyRequest } from "./apply-ipc.ts";
import type { Plan } from "./plan.ts";
import { StateHost } from "./state-store-ipc.ts";
import { MemoryStore } from "./state-store.ts";

/** `GWC_WORKERS` (set by `gwc serve --workers N`): how many serving processes; 1 means this one serves. */
export function workerCount(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.GWC_WORKERS ?? 1);
  return Number.isInteger(n) && n >= 1 && n <= 256 ? n : 1;
}

/**
 * The primary of `--workers N`: forks N workers that share the listening
 * socket (node:cluster hands connections round-robin), and, without Redis,
 * owns the embedded store they all use (state-store-ipc.ts). It forwards
 * SIGHUP (each worker reloads the bundle) and SIGTERM/SIGINT (each drains),
 * and replaces a worker that dies, after returning what that worker held.
 */
export function runPrimary(plan: Plan, n: number, log: (line: string) => void): void {
  const host = plan.state.redis === undefined ? new StateHost(new MemoryStore(plan.state.dir, plan.state.snapshotIntervalMs)) : undefined;
  let stopping = false;
  let listening = 0;
  const relay = applyRelay();
  const fork = () => {
    // GWC_APPLY: this process relays the dashboard's drafts to `gwc serve` (see applyRelay).
    const worker: Worker = cluster.fork({ GWC_WORKER: "1", GWC_APPLY: relay === undefined ? "" : "1" });
    host?.attach(worker);
    if (relay !== undefined) worker.on("message", (m: ApplyRequest) => relay(worker, m));
    worker.on("listening", () => {
      if (++listening === n) log(`${n} workers serving (state: ${host === undefined ? "Redis" : "this process, shared over IPC"})`);
    });
    worker.on("exit", (code, signal) => {
      if (stopping) return;
      log(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
      // A worker that cannot start at all (a missing secret) would otherwise be re-forked forever.
      if (code === 1 && listening === 0) {
        log("a worker could not start; stopping");
        stop("exit", 1);
        return;
      }
      setTimeout(fork, 200).unref();
    });
  };
  for (let i = 0; i < n; i++) fork();

  const stop = (signal: NodeJS.Signals | "exit", code = 0) => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    for (const w of workers) w?.process.kill(signal === "exit" ? "SIGTERM" : signal);
    let left = workers.length;
    const done = () => {
      host?.store.close();
      process.exit(code);
    };
    if (left === 0) done();
    for (const w of workers) w?.once("exit", () => --left === 0 && done());
  };
  process.on("SIGHUP", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGHUP");
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/**
 * The dashboard's apply (server.ui_apply) under `gwc serve --workers N`: a
 * worker's draft goes up to `gwc serve` through this process (ids made unique
 * here), and the answer back to that worker. `gwc serve` compiles the draft,
 * writes the config and sends this process SIGHUP, which reloads every worker.
 * Undefined when no `gwc serve` started this process.
 */
function applyRelay(): ((worker: Worker, m: ApplyRequest) => void) | undefined {
  if (process.send === undefined) return undefined;
  const waiting = new Map<number, { worker: Worker; id: number }>();
  let next = 0;
  process.on("message", (m: ApplyReply) => {
    if (m?.type !== "gwc:applied") return;
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (w !== undefined && w.worker.isConnected()) w.worker.send({ ...m, id: w.id } satisfies ApplyReply);
  });
  return (worker, m) => {
    if (m?.type !== "gwc:apply") return;
    const id = ++next;
    waiting.set(id, { worker, id: m.id });
    process.send!({ ...m, id } satisfies ApplyRequest);
  };
}

/** Whether a worker's primary relays drafts to `gwc serve` (so the dashboard can apply them). */
export function workerCanApply(): boolean {
  return process.env.GWC_APPLY === "1";
}

/** Whether this process is a worker of `--workers N`. */
export function isWorker(): boolean {
  return cluster.isWorker;
}
