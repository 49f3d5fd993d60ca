// Summarises a V8 .cpuprofile (from node --cpu-prof): the functions with the
// most self time, and the share of samples per broad category.
//
//   node bench/lib/profile-summary.mjs FILE.cpuprofile [TOP]
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

export function summarizeProfile(file, top = 20) {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfCount = new Map();
  for (const id of profile.samples) selfCount.set(id, (selfCount.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const byFunction = new Map();
  const categories = new Map();
  for (const [id, count] of selfCount) {
    const { callFrame } = byId.get(id);
    const name = frameName(callFrame);
    byFunction.set(name, (byFunction.get(name) ?? 0) + count);
    categories.set(category(callFrame), (categories.get(category(callFrame)) ?? 0) + count);
  }
  // Inclusive ("total") time: every sample counts once for each distinct function on its stack.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  const active = profile.samples.filter((id) => !["(idle)", "(program)", "(garbage collector)"].includes(byId.get(id).callFrame.functionName));
  for (const id of active) {
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const f = frameName(byId.get(n).callFrame);
      if (f !== "(root)") seen.add(f);
    }
    for (const f of seen) inclusive.set(f, (inclusive.get(f) ?? 0) + 1);
  }
  const share = (n) => Math.round((1000 * n) / total) / 10;
  return {
    samples: total,
    busyPct: share(active.length),
    top: [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, n]) => ({ fn, selfPct: share(n) })),
    inclusive: [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, n]) => ({ fn, totalPct: share(n) })),
    categories: [...categories].sort((a, b) => b[1] - a[1]).map(([name, n]) => ({ name, selfPct: share(n) })),
  };
}

function frameName(callFrame) {
  const where = callFrame.url === "" ? "" : `${basename(callFrame.url)}:${callFrame.lineNumber + 1}`;
  return `${callFrame.functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
}

function category({ functionName, url }) {
  if (functionName === "(idle)") return "idle";
  if (functionName === "(garbage collector)") return "garbage collector";
  if (functionName === "(program)") return "program (native, not JS)";
  if (url.includes("gateway.mjs") || url.includes("floor.mjs")) {
    return "bundle (runtime + undici)";
  }
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0].replace(/^internal$/, "internal")}`;
  if (url.includes("undici")) return "undici";
  if (url === "") return "native / builtins";
  return basename(url);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const s = summarizeProfile(process.argv[2], Number(process.argv[3] ?? 25));
  console.log(`${s.samples} samples, ${s.busyPct}% busy`);
  for (const c of s.categories) console.log(`${String(c.selfPct).padStart(5)}%  ${c.name}`);
  console.log("");
  console.log("\nself time:");
  for (const t of s.top) console.log(`${String(t.selfPct).padStart(5)}%  ${t.fn}`);
  console.log("\ntotal (inclusive) time:");
  for (const t of s.inclusive) console.log(`${String(t.totalPct).padStart(5)}%  ${t.fn}`);
}
