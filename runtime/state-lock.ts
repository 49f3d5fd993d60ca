// One gateway per state dir. Two processes snapshotting one directory each
// believe they own every budget, and together spend up to twice each cap
// (issue #11: 193%). The owner holds `dir/gwc.lock`, created exclusively,
// holding its pid and host; its snapshot timer touches the file, so a lock
// whose owner is gone is recognised and taken over:
//
//   holder on this host   → alive (kill 0)?       refuse : stale
//   holder on another host → touched recently?    refuse : stale
//
// (Another host: containers sharing a volume, where a pid means nothing.)
import { hostname } from "node:os";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { StartupError } from "./secrets.ts";

export const LOCK_FILE = "gwc.lock";
/** A lock from another host untouched for this long is stale (its owner touches it every snapshot). */
const STALE_AFTER_MS = 60_000;

/** Dirs this process holds: a second store here on the same dir is as wrong as a second process. */
const held = new Set<string>();

export interface StateLock {
  readonly file: string;
  /** Marks the lock as still held (the snapshot timer calls it). */
  touch(): void;
  release(): void;
}

interface Holder {
  pid: number;
  host: string;
}

/** Takes the lock on `dir`, or throws a StartupError naming the lock file and the process holding it. */
export function lockStateDir(dir: string, staleAfterMs = STALE_AFTER_MS): StateLock {
  const file = join(dir, LOCK_FILE);
  const key = resolve(file);
  const me: Holder = { pid: process.pid, host: hostname() };
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new StartupError(`cannot create the state dir ${dir}: ${(e as Error).message}`);
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: "wx" });
      held.add(key);
      return {
        file,
        touch: () => {
          const now = new Date();
          try {
            utimesSync(file, now, now);
          } catch {
            // The dir was replaced under us (and is back): hold it again, unless another process took it meanwhile.
            try {
              writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: "wx" });
            } catch {}
          }
        },
        release: () => {
          held.delete(key);
          // Only our own lock: never one another process took over meanwhile.
          if (sameHolder(readHolder(file), me)) rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new StartupError(`cannot create the lock file ${file}: ${(e as Error).message}`);
    }
    // An empty lock may be one another process is writing this instant: give it a moment.
    const holder = readHolder(file) ?? (pause(100), readHolder(file));
    if (holder !== undefined && inUse(holder, file, key, staleAfterMs)) {
      throw new StartupError(
        `the state dir ${dir} is in use by process ${holder.pid}${holder.host === me.host ? "" : ` on ${holder.host}`} (lock file ${file}). ` +
          `Two gateways sharing a state dir would each spend every budget in full: give each its own state.dir, or stop process ${holder.pid}. ` +
          `If that process is not a gwc gateway, delete ${file}.`,
      );
    }
    breakStale(file, holder);
  }
  throw new StartupError(`cannot take the lock file ${file}: other processes keep taking it`);
}

function inUse(holder: Holder, file: string, key: string, staleAfterMs: number): boolean {
  if (holder.host !== hostname()) {
    const touched = statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    return Date.now() - touched < staleAfterMs;
  }
  // Our own pid: held by this process, or left by an earlier one that had the same pid (pid 1 in a restarted container).
  if (holder.pid === process.pid) return held.has(key);
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Moves a stale lock aside. Two processes may find the same stale lock; the
 * rename lets only one move it, and a process that finds it moved a fresh lock
 * instead (the other won meanwhile) puts it back.
 */
function breakStale(file: string, seen: Holder | undefined): void {
  const aside = `${file}.stale.${process.pid}`;
  try {
    renameSync(file, aside);
  } catch {
    return; // gone already: try to create it again
  }
  const moved = readHolder(aside);
  if (seen !== undefined && !sameHolder(moved, seen)) {
    try {
      renameSync(aside, file);
    } catch {
      // The winner's lock is lost only if a third process created one meanwhile; nothing more to do.
    }
    return;
  }
  rmSync(aside, { force: true });
}

function readHolder(file: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, "utf8")) as Partial<Holder>;
    return Number.isSafeInteger(h.pid) && typeof h.host === "string" ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function sameHolder(a: Holder | undefined, b: Holder | undefined): boolean {
  return a !== undefined && b !== undefined && a.pid === b.pid && a.host === b.host;
}
