// The embedded store's snapshot file, read back at start-up. Budgets rest on
// these numbers, so nothing in the file is trusted: every field is checked for
// its type, range and id shape, and the first one that is wrong stops start-up
// naming the file, the field and the value. A hand edit that turns `spent`
// into the string "12.5" must not start as zero spend.
//
//   { "version": 1,
//     "money":  [[ "vk:team-a|daily|1764720000000", 1250000, 1764806400000 ], ...],   key, spent (nano-USD), expires (ms)
//     "counts": [[ "vk:team-a|req|1764720000000",   42,      1764720060000 ], ...] }  key, count,            expires (ms)
import { StartupError } from "./secrets.ts";

export const SNAPSHOT_VERSION = 1;

/** [key, value, expiresAt]: spent nano-USD for money, a count for counters. */
export type SnapshotEntry = [string, number, number];

export interface Snapshot {
  version: typeof SNAPSHOT_VERSION;
  money: SnapshotEntry[];
  counts: SnapshotEntry[];
}

// Keys are stable ids (compiler/plan.ts stableKey: `kind:id`, `/`-joined, with `%`, `/` and `:` escaped in ids),
// then the period or window kind, then its start in ms.
const OWNER = String.raw`(?:org|team|vk|account):[^/:]*(?:/provider:[^/:]*)?`;
const MONEY_KEY = new RegExp(String.raw`^${OWNER}\|(?:daily|weekly|monthly)\|(\d{1,16})$`);
const COUNT_KEY = new RegExp(String.raw`^${OWNER}\|(?:req|tok)\|(\d{1,16})$`);
const WHAT = { money: ["key", "spent (nano-USD)", "expiry (ms since 1970)"], counts: ["key", "count", "expiry (ms since 1970)"] } as const;

/** Parses and checks a snapshot's text; throws a StartupError naming `file`, the field and its value. */
export function parseSnapshot(text: string, file: string): Snapshot {
  const refuse = (what: string) =>
    new StartupError(`the state snapshot ${file} ${what}; fix it, or move it aside to start with every budget and rate-limit counter at zero`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw refuse(`is not valid JSON (${(e as Error).message})`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw refuse(`is not a gwc snapshot (it holds ${show(data)})`);
  const top = data as Record<string, unknown>;
  for (const field of Object.keys(top)) {
    if (field !== "version" && field !== "money" && field !== "counts") throw refuse(`has an unknown field /${field}`);
  }
  if (top.version !== SNAPSHOT_VERSION) throw refuse(`is not a version ${SNAPSHOT_VERSION} gwc snapshot: /version is ${show(top.version)}`);
  for (const list of ["money", "counts"] as const) {
    const entries = top[list];
    if (!Array.isArray(entries)) throw refuse(`has no list at /${list} (it holds ${show(entries)})`);
    const pattern = list === "money" ? MONEY_KEY : COUNT_KEY;
    const seen = new Set<string>();
    entries.forEach((entry: unknown, i) => {
      const at = `/${list}/${i}`;
      if (!Array.isArray(entry) || entry.length !== 3) throw refuse(`has ${show(entry)} at ${at}, not a [key, ${WHAT[list][1]}, ${WHAT[list][2]}] entry`);
      const [key, value, expiresAt] = entry as unknown[];
      const bad = (j: number, why: string, v: unknown) => refuse(`has ${show(v)} at ${at}/${j}, the ${WHAT[list][j]}${typeof key === "string" && j > 0 ? ` of '${key}'` : ""}: ${why}`);
      const start = typeof key === "string" ? pattern.exec(key) : null;
      if (start === null) throw bad(0, `not a ${list === "money" ? "budget" : "rate-limit"} counter key`, key);
      if (seen.has(key as string)) throw bad(0, "the same key appears twice", key);
      seen.add(key as string);
      if (!isCount(value)) throw bad(1, "not a whole number of 0 or more", value);
      if (!isCount(expiresAt) || expiresAt <= Number(start[1])) throw bad(2, "not a time after the period's start", expiresAt);
    });
  }
  return top as unknown as Snapshot;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** A value as JSON, cut short: enough to find it in the file. */
function show(v: unknown): string {
  const text = v === undefined ? "nothing" : JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
