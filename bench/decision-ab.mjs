// In-process A/B of the realistic per-request governance decision (issue #17):
// the same decision server.ts and Gateway make (identify, admit, pick, take,
// metered, finish, release) over lib/realistic.mjs's 1,000 keys, a different
// key each time, each `Authorization` header a fresh string as the HTTP parser
// makes it. Each tree's runtime is bundled from its own sources (esbuild) and
// run pinned to core 0, the trees alternating; CPU ns per decision, median of 15.
//
//   node bench/decision-ab.mjs TREE [TREE ...] [--rounds=N] [--thrash=BYTES]
//
// --thrash=BYTES writes BYTES of memory between decisions (a request's
// allocation, e.g. 36864), so the per-key objects are cold as on the live
// gateway; the figure then includes that writing (run with a tree list of one
// to see it alone: it is the same for every tree).
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const args = process.argv.slice(2);
const trees = args.filter((a) => !a.startsWith("--")).map((t) => resolve(t));
const opt = (name, d) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? d);
const rounds = opt("rounds", 2);
const thrash = opt("thrash", 0);
if (trees.length === 0) throw new Error("usage: node bench/decision-ab.mjs TREE [TREE ...] [--rounds=N] [--thrash=BYTES]");
const here = new URL("..", import.meta.url).pathname;
const { build } = await import(join(here, "node_modules/esbuild/lib/main.js"));

const body = (tree) => `
import { compileSource } from ${JSON.stringify(join(tree, "compiler/compile.ts"))};
import { cost, estimate, Governance } from ${JSON.stringify(join(tree, "runtime/governance.ts"))};
import { Router } from ${JSON.stringify(join(tree, "runtime/router.ts"))};
import { MemoryStore } from ${JSON.stringify(join(tree, "runtime/state-store.ts"))};
import { realisticConfig, realKey } from ${JSON.stringify(join(here, "bench/lib/realistic.mjs"))};
const { plan } = compileSource(JSON.stringify(realisticConfig({ primary: "http://127.0.0.1:9" })), "decision.json");
const gov = new Governance(plan, new MemoryStore(null), new Map(), {});
const router = new Router(plan);
const raw = Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}');
const json = JSON.parse(raw.toString());
const inbound = { endpoint: "chat", raw, json, stream: false };
const usage = { input: 9, output: 9, cached: 0 };
const sent = Array.from({ length: 1000 }, (_, k) => Buffer.from("Bearer " + realKey(k), "latin1"));
let seed = 1;
const order = Uint32Array.from({ length: 65536 }, () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 1000));
const now = (v) => { if (v instanceof Promise) throw new Error("the in-memory store answered with a promise"); return v; };
const THRASH = ${thrash};
const junk = new Float64Array(4 << 20);
let at = 0;
function one(i) {
  for (let j = 0; j < THRASH; j += 64) { junk[at] = j; at = (at + 8) & ((4 << 20) - 1); }
  const vk = gov.identify({ "content-type": "application/json", authorization: sent[order[i & 65535]].latin1Slice() });
  const route = router.route(json.model);
  const t = Date.now();
  const admission = now(gov.admit(vk, json.model, route, t));
  const p = router.pick(route, Math.random(), undefined);
  const account = route.targets[p].account;
  const budgets = gov.budgetsFor(vk, plan.accounts[account].provider, false);
  const price = gov.price(route.targets[p].model ?? json.model);
  const r = now(gov.take(admission, budgets, estimate(price, inbound, "openai"), account, t));
  const metered = r !== undefined || gov.metered(vk, account);
  now(gov.finish(r, true, usage, cost(price, usage), vk, account, t));
  admission.release();
  return Object.keys(admission.headers).length + (metered ? 1 : 0);
}
for (let i = 0; i < 5000; i++) one(i);
const per = [];
for (let r = 0; r < 15; r++) {
  const n = THRASH > 0 ? 20000 : 200000;
  const c0 = process.cpuUsage();
  let s = 0;
  for (let i = 0; i < n; i++) s += one(i);
  const c = process.cpuUsage(c0);
  per.push(((c.user + c.system) * 1000) / n + (s < 0 ? 1 : 0));
}
per.sort((a, b) => a - b);
console.log(JSON.stringify({ tree: ${JSON.stringify(tree)}, thrash: THRASH, cpuNsPerDecision: Math.round(per[7]), min: Math.round(per[0]) }));
`;

const bundles = [];
for (const tree of trees) {
  const dir = join(tree, "bench/results");
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, ".decision-ab-entry.mjs");
  writeFileSync(entry, body(tree));
  const out = join(dir, ".decision-ab.mjs");
  await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "node", target: "node20", packages: "external", absWorkingDir: tree, outfile: out, logLevel: "warning" });
  bundles.push(out);
}
for (let r = 0; r < rounds; r++) {
  for (const out of bundles) process.stdout.write(execFileSync("taskset", ["-c", "0", process.execPath, out]));
}
