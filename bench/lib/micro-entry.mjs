// In-process micro benchmarks (ns/op), bundled on the fly by bench/run.mjs with
// esbuild (it imports the runtime's and compiler's TypeScript directly) and run
// in a child process pinned to the gateway's core. Prints one JSON line.
//
//   MICRO_REPS   timed repetitions per case (median reported)
//   MICRO_MS     target duration of one repetition
//   MICRO_ONLY   pick,routing,full,scale (default all)
import { buildAliasTable } from "../../compiler/alias-table.ts";
import { compileSource } from "../../compiler/compile.ts";
import { pickAlias } from "../../runtime/alias-pick.ts";
import { cost, estimate, Governance } from "../../runtime/governance.ts";

/** take() reads an admission only when the store takes in one step; the memory store does not. */
const NO_ADMISSION = { headers: {}, release: () => {} };
import { AccountHealth, HealthBoard } from "../../runtime/health.ts";
import { Router } from "../../runtime/router.ts";
import { MemoryStore } from "../../runtime/state-store.ts";
import { GOV_ENV, governed } from "./governance.mjs";
import { realKey, scaleConfig } from "./realistic.mjs";

const REPS = Number(process.env.MICRO_REPS ?? 7);
// MICRO_ONLY=pick,routing,full runs a subset (handy with --cpu-prof).
const ONLY = new Set((process.env.MICRO_ONLY ?? "pick,routing,full,scale").split(","));
const REP_MS = Number(process.env.MICRO_MS ?? 40);
const SIZES = [2, 4, 8, 16, 32, 64];

// Deterministic inputs: a small LCG, so every run measures the same tables.
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const U = new Float64Array(4096).map(() => rand());
let sink = 0;

/** Median ns/op of `run(iters)` (which may return a promise) over REPS repetitions of about REP_MS each. */
async function measure(run) {
  // Warm up (lets the JIT settle), then size a repetition to about REP_MS.
  let iters = 1_000;
  for (let k = 0; k < 40; k++) {
    const t0 = process.hrtime.bigint();
    sink += await run(iters);
    const spent = Number(process.hrtime.bigint() - t0);
    if (spent >= REP_MS * 1e6 * 0.25) {
      iters = Math.max(1000, Math.round((iters * REP_MS * 1e6) / spent));
      break;
    }
    iters *= 2;
  }
  // Three untimed repetitions more, so the JIT has settled (optimized, and
  // re-optimized after any early deopt) before anything is timed.
  for (let w = 0; w < 3; w++) sink += await run(iters);
  const per = [];
  const cpu = [];
  for (let r = 0; r < REPS; r++) {
    // A full collection between repetitions (run.mjs passes --expose-gc), so
    // garbage left by setup (compiling the configs) is not collected inside a
    // timed repetition; the case's own garbage still is.
    globalThis.gc?.();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    sink += await run(iters);
    per.push(Number(process.hrtime.bigint() - t0) / iters);
    const c = process.cpuUsage(c0);
    cpu.push(((c.user + c.system) * 1000) / iters);
  }
  per.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  // cpuNsPerOp: this process's CPU time (user + system, µs resolution) per op. On a shared
  // machine the wall clock counts the time other processes held the core; CPU time does not.
  return { nsPerOp: per[Math.floor(per.length / 2)], cpuNsPerOp: cpu[Math.floor(cpu.length / 2)], min: per[0], max: per.at(-1), iters };
}

function weightsFor(n) {
  return Array.from({ length: n }, () => 1 + Math.floor(rand() * 1000));
}

/** The comparison: cumulative-weight linear scan (what the runtime's rare-path scanPick does). */
function scanPick(weights, total, u) {
  let r = Math.floor(u * total);
  for (let i = 0; i < weights.length; i++) {
    if (r < weights[i]) return i;
    r -= weights[i];
  }
  return -1;
}

const results = { loopOverheadNs: 0, pick: [], routing: [], fullDecision: [] };

results.loopOverheadNs = (await measure((iters) => {
  let acc = 0;
  for (let i = 0; i < iters; i++) acc += U[i & 4095];
  return acc;
})).nsPerOp;

for (const n of ONLY.has("pick") ? SIZES : []) {
  const weights = weightsFor(n);
  const table = buildAliasTable(
    weights.map((_, i) => i),
    weights,
  );
  const w32 = Uint32Array.from(weights);
  const total = weights.reduce((a, b) => a + b, 0);
  const alias = await measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) acc += pickAlias(table, U[i & 4095]);
    return acc;
  });
  const aliasRandom = await measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) acc += pickAlias(table, Math.random());
    return acc;
  });
  const scan = await measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) acc += scanPick(w32, total, U[i & 4095]);
    return acc;
  });
  results.pick.push({ accounts: n, aliasNs: alias.nsPerOp, aliasWithMathRandomNs: aliasRandom.nsPerOp, linearScanNs: scan.nsPerOp });
}

// The routing part alone, as Gateway.proxy / #serve make it: route lookup, a
// \`down\` closure over each account's circuit breaker and its own rate limit
// (none here), and Router.pick. While every breaker is closed (the health
// board counts none unsettled) the pick reads the route's own table; with one
// breaker open, it asks every member whether it is down (\`nsOneOpen\`).
for (const n of ONLY.has("routing") ? [2, 8, 64] : []) {
  const config = {
    accounts: Array.from({ length: n }, (_, i) => ({ id: `a${i}`, provider: "openai", base_url: "http://127.0.0.1:9/v1", weight: 1 + (i % 7) })),
    routes: [{ model: "gpt-4o", targets: Array.from({ length: n }, (_, i) => ({ account: `a${i}` })) }],
  };
  const { plan, diagnostics } = compileSource(JSON.stringify(config), "micro.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  const router = new Router(plan);
  const gov = new Governance(plan, new MemoryStore(null), new Map(), {});
  const board = new HealthBoard();
  const accounts = plan.accounts.map(() => ({ adapter: {}, health: new AccountHealth(Date.now, board) }));
  const routing = () =>
    measure((iters) => {
      let acc = 0;
      for (let i = 0; i < iters; i++) {
        const route = router.route("gpt-4o");
        const now = Date.now();
        const down = (a) => accounts[a].adapter === undefined || accounts[a].health.isDown() || gov.accountOverLimit(a, now);
        acc += router.pick(route, Math.random(), board.unsettled === 0 ? undefined : down);
      }
      return acc;
    });
  const r = await routing();
  accounts[n - 1].health.failure(3_600_000); // a 429 with an hour's Retry-After: open for the whole measurement
  const oneOpen = await routing();
  results.routing.push({ accounts: n, ns: r.nsPerOp, nsOneOpen: oneOpen.nsPerOp });
}

// The full per-request decision for one served, non-streaming request, in the
// order Gateway.proxy / #attempt and server.ts make it: key lookup (a map of
// keys already matched; SHA-256 on first sight), route lookup, admission (token window check,
// request window count, concurrency slot, x-ratelimit headers), the pick over
// healthy, under-limit accounts, the budget reservation (organization, team,
// key; every capped period), the account's request count, then settlement
// from the reported usage and the token count, under the same governance as
// the live gateway+gov target. The in-memory store, as the gateway runs by default. No I/O, no HTTP: only the decision.
results.fullDecision = [];
try {
  for (const n of ONLY.has("full") ? [2, 8, 64] : []) {
    const config = governed({
      accounts: Array.from({ length: n }, (_, i) => ({ id: `a${i}`, provider: "openai", base_url: "http://127.0.0.1:9/v1", weight: 1 + (i % 7), model: "gpt-4o" })),
      routes: [{ model: "gpt-4o", targets: Array.from({ length: n }, (_, i) => ({ account: `a${i}` })) }],
    });
    const headers = { "content-type": "application/json", authorization: `Bearer ${GOV_ENV.GWC_BENCH_KEY}` };
    const { gov, router, one, inbound, usage, sync } = decision(config, "gpt-4o");
    const r = await measure((iters) => {
      let acc = 0;
      for (let i = 0; i < iters; i++) acc += one(headers);
      return acc;
    });
    // Its parts, each alone, to see where the time goes.
    const identify = await measure((iters) => {
      let acc = 0;
      for (let i = 0; i < iters; i++) acc += gov.identify(headers);
      return acc;
    });
    const route = router.route("gpt-4o");
    const admit = await measure((iters) => {
      let acc = 0;
      for (let i = 0; i < iters; i++) {
        const a = sync(gov.admit(0, "gpt-4o", route, Date.now()));
        a.release();
        acc += 1;
      }
      return acc;
    });
    const reserveSettle = await measure((iters) => {
      let acc = 0;
      const budgets = gov.budgetsFor(0, "openai", false);
      const price = gov.price("gpt-4o");
      for (let i = 0; i < iters; i++) {
        const now = Date.now();
        const res = sync(gov.take(NO_ADMISSION, budgets, estimate(price, inbound, "openai"), 0, now));
        sync(gov.finish(res, true, usage, cost(price, usage), 0, 0, now));
        acc += res.amount;
      }
      return acc;
    });
    results.fullDecision.push({ accounts: n, ns: r.nsPerOp, cpuNs: r.cpuNsPerOp, parts: { identifyNs: identify.nsPerOp, admitNs: admit.nsPerOp, reserveAndSettleNs: reserveSettle.nsPerOp } });
  }
} catch (e) {
  results.fullDecision = { error: `could not run against this runtime: ${e?.message ?? e}` };
}

// At scale (item 10): the same decision over the at-scale config (lib/realistic.mjs scaleConfig:
// 1,000 accounts in routes of 10, 10,000 keys in 100 teams), a different key each time (keys
// already seen, as after warm-up), beside the same decision over 1,000 keys; and the heap the
// compiled plan and the governance over it hold (after a full GC).
results.scale = [];
try {
  for (const [accounts, keys] of ONLY.has("scale") ? [[2, 1000], [1000, 10_000]] : []) {
    globalThis.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const config = scaleConfig({ url: "http://127.0.0.1:9", accounts, keys });
    const d = decision(config, accounts > 10 ? "model-7" : "model-0");
    globalThis.gc?.();
    const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const headerList = Array.from({ length: keys }, (_, k) => ({ "content-type": "application/json", authorization: `Bearer ${realKey(k)}` }));
    const order = Uint32Array.from({ length: 65536 }, () => Math.floor(rand() * keys));
    for (const h of headerList) d.gov.identify(h); // every key seen once (SHA-256 on first sight)
    const r = await measure((iters) => {
      let acc = 0;
      for (let i = 0; i < iters; i++) acc += d.one(headerList[order[i & 65535]]);
      return acc;
    });
    results.scale.push({ accounts, keys, ns: r.nsPerOp, cpuNs: r.cpuNsPerOp, planAndGovernanceHeapMiB: heapMiB });
  }
} catch (e) {
  results.scale = { error: `could not run against this runtime: ${e?.message ?? e}` };
}

/**
 * One served request's decision over `config`, in the order server.ts and
 * Gateway make it (see "Full per-request decision" above), as one(headers).
 */
function decision(config, model) {
  const { plan, diagnostics } = compileSource(JSON.stringify(config), "micro-governed.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  const gov = new Governance(plan, new MemoryStore(null), new Map(), GOV_ENV);
  const router = new Router(plan);
  const board = new HealthBoard();
  const accounts = plan.accounts.map((a) => ({ adapter: {}, health: new AccountHealth(Date.now, board), provider: a.provider }));
  const raw = Buffer.from(`{"model":"${model}","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}`);
  const json = JSON.parse(raw.toString());
  const inbound = { endpoint: "chat", raw, json, stream: false };
  const usage = { input: 9, output: 9, cached: 0 };
  // The in-memory store answers synchronously, and the gateway awaits only
  // promises, so over it the whole decision is synchronous; `sync` fails
  // loudly if that ever stops being true rather than measure something else.
  const sync = (v) => {
    if (v instanceof Promise) throw new Error("the in-memory store answered with a promise");
    return v;
  };
  const one = (headers) => {
    const vk = gov.identify(headers);
    const route = router.route(json.model);
    const now = Date.now();
    const admission = sync(gov.admit(vk, json.model, route, now));
    const down = (a) => accounts[a].adapter === undefined || accounts[a].health.isDown() || gov.accountOverLimit(a, now);
    const p = router.pick(route, Math.random(), board.unsettled === 0 ? undefined : down);
    const account = route.targets[p].account;
    const budgets = gov.budgetsFor(vk, accounts[account].provider, false);
    const price = gov.price(route.targets[p].model ?? json.model);
    // As Gateway.#try does: take (reservation and the account's count), then finish (settlement and tokens).
    const reservation = sync(gov.take(admission, budgets, estimate(price, inbound, "openai"), account, now));
    sync(gov.finish(reservation, true, usage, cost(price, usage), vk, account, now));
    admission.release();
    return p;
  };
  return { gov, router, one, inbound, usage, sync };
}
results.sink = sink % 2;
process.stdout.write(JSON.stringify(results) + "\n");
