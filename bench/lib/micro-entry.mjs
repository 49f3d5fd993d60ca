// In-process micro benchmarks (ns/op), bundled on the fly by bench/run.mjs with
// esbuild (it imports the runtime's and compiler's TypeScript directly) and run
// in a child process pinned to the gateway's core. Prints one JSON line.
//
//   MICRO_REPS   timed repetitions per case (median reported)
//   MICRO_MS     target duration of one repetition
import { buildAliasTable } from "../../compiler/alias-table.ts";
import { compileSource } from "../../compiler/compile.ts";
import { pickAlias } from "../../runtime/alias-pick.ts";
import { AccountHealth } from "../../runtime/health.ts";
import { Router } from "../../runtime/router.ts";

const REPS = Number(process.env.MICRO_REPS ?? 7);
const REP_MS = Number(process.env.MICRO_MS ?? 40);
const SIZES = [2, 4, 8, 16, 32, 64];

// Deterministic inputs: a small LCG, so every run measures the same tables.
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const U = new Float64Array(4096).map(() => rand());
let sink = 0;

/** Median ns/op of `run(iters)` over REPS repetitions of about REP_MS each. */
function measure(run) {
  // Warm up (lets the JIT settle), then size a repetition to about REP_MS.
  let iters = 10_000;
  for (let k = 0; k < 40; k++) {
    const t0 = process.hrtime.bigint();
    sink += run(iters);
    const spent = Number(process.hrtime.bigint() - t0);
    if (spent >= REP_MS * 1e6 * 0.25) {
      iters = Math.max(1000, Math.round((iters * REP_MS * 1e6) / spent));
      break;
    }
    iters *= 2;
  }
  const per = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = process.hrtime.bigint();
    sink += run(iters);
    per.push(Number(process.hrtime.bigint() - t0) / iters);
  }
  per.sort((a, b) => a - b);
  return { nsPerOp: per[Math.floor(per.length / 2)], min: per[0], max: per.at(-1), iters };
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

const results = { loopOverheadNs: 0, pick: [], decisionToday: [], fullDecision: null };

results.loopOverheadNs = measure((iters) => {
  let acc = 0;
  for (let i = 0; i < iters; i++) acc += U[i & 4095];
  return acc;
}).nsPerOp;

for (const n of SIZES) {
  const weights = weightsFor(n);
  const table = buildAliasTable(
    weights.map((_, i) => i),
    weights,
  );
  const w32 = Uint32Array.from(weights);
  const total = weights.reduce((a, b) => a + b, 0);
  const alias = measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) acc += pickAlias(table, U[i & 4095]);
    return acc;
  });
  const aliasRandom = measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) acc += pickAlias(table, Math.random());
    return acc;
  });
  const scan = measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) acc += scanPick(w32, total, U[i & 4095]);
    return acc;
  });
  results.pick.push({ accounts: n, aliasNs: alias.nsPerOp, aliasWithMathRandomNs: aliasRandom.nsPerOp, linearScanNs: scan.nsPerOp });
}

// Today's per-request routing decision, exactly as Gateway.proxy makes it: route
// lookup, a `down` closure over each account's circuit breaker, and
// Router.pick (which asks every member of the route whether it is down before
// it picks). No key lookup, rate limit or budget: the runtime has none yet.
for (const n of [2, 8, 64]) {
  const config = {
    accounts: Array.from({ length: n }, (_, i) => ({ id: `a${i}`, provider: "openai", base_url: "http://127.0.0.1:9/v1", weight: 1 + (i % 7) })),
    routes: [{ model: "gpt-4o", targets: Array.from({ length: n }, (_, i) => ({ account: `a${i}` })) }],
  };
  const { plan, diagnostics } = compileSource(JSON.stringify(config), "micro.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  const router = new Router(plan);
  const accounts = plan.accounts.map(() => ({ adapter: {}, health: new AccountHealth() }));
  const r = measure((iters) => {
    let acc = 0;
    for (let i = 0; i < iters; i++) {
      const route = router.route("gpt-4o");
      const down = (a) => accounts[a].adapter === undefined || accounts[a].health.isDown();
      acc += router.pick(route, Math.random(), down);
    }
    return acc;
  });
  results.decisionToday.push({ accounts: n, ns: r.nsPerOp });
}

results.fullDecision = {
  available: false,
  reason: "the runtime has no virtual-key lookup, rate-limit check, budget reserve or settle yet (validated, not enforced)",
};
results.sink = sink % 2;
process.stdout.write(JSON.stringify(results) + "\n");
