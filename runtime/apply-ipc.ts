// Applying a config draft from the dashboard. The gateway process has no
// compiler (it trusts the plan it was built with), so under `gwc serve <config>`
// it hands the draft over the IPC channel to the `gwc` process that started it,
// which compiles it, writes the config file and reloads this process with
// SIGHUP, as `--watch` does; a draft with errors comes back with its diagnostics.
import type { ApplyResult } from "./admin-api.ts";

export interface ApplyRequest {
  type: "gwc:apply";
  id: number;
  source: string;
}

export interface ApplyReply {
  type: "gwc:applied";
  id: number;
  result: ApplyResult;
}

const TIMEOUT_MS = 60_000;

/** An applier over this process's IPC channel, or undefined when it has none (not started by `gwc serve`). */
export function ipcApplier(unref = true): ((source: string) => Promise<ApplyResult>) | undefined {
  if (process.send === undefined) return undefined;
  const pending = new Map<number, (r: ApplyResult) => void>();
  let next = 0;
  process.on("message", (m: ApplyReply) => {
    if (m?.type === "gwc:applied") pending.get(m.id)?.(m.result);
  });
  // The channel must not keep a draining process alive (a worker's is node:cluster's, which needs it as it is).
  if (unref) process.channel?.unref();
  return (source) =>
    new Promise((resolve) => {
      const id = ++next;
      const timer = setTimeout(() => done({ ok: false, status: 504, message: "gwc serve did not answer in time.", diagnostics: [] }), TIMEOUT_MS);
      const done = (r: ApplyResult) => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(r);
      };
      pending.set(id, done);
      process.send!({ type: "gwc:apply", id, source } satisfies ApplyRequest);
    });
}
