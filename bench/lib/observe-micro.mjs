// Item 8 in process: what one request's observers cost (metrics and the access
// log), over a realistic RequestRecord, with the log written to a file by the
// gateway's own destination. Bundled on the fly (esbuild; it imports the
// runtime's TypeScript):
//
//   node bench/lib/observe-micro.mjs            (bundles itself, then runs; prints one table)
//
// Calls come in bursts of 32 (the throughput load's connections) with a turn of
// the event loop between bursts, so the asynchronous log writes complete as they
// do in the gateway. CPU is process.cpuUsage() (every thread: the thread pool's
// writes count), per call; subtract the first row (making the records).
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";

const BUNDLED = typeof globalThis.__OBSERVE_MICRO__ !== "undefined";
if (!BUNDLED) {
  const { build } = await import("esbuild");
  const root = new URL("../..", import.meta.url).pathname;
  // Beside the package's node_modules, so the bundle's external imports resolve.
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  const out = join(root, "bench", "results", ".observe-micro-bundle.mjs");
  await build({ absWorkingDir: root, entryPoints: [new URL(import.meta.url).pathname], bundle: true, format: "esm", platform: "node", target: "node20", packages: "external", outfile: out, logLevel: "warning", define: { "globalThis.__OBSERVE_MICRO__": "true" } });
  const { spawnSync } = await import("node:child_process");
  const r = spawnSync(process.execPath, ["--expose-gc", out], { stdio: "inherit", cwd: root, env: process.env });
  rmSync(out, { force: true });
  process.exit(r.status ?? 1);
}

const { GatewayMetrics } = await import("../../runtime/metrics.ts");
const { accessJson, accessLog, configureLog, flushLog } = await import("../../runtime/log.ts");
const { newRecord } = await import("../../runtime/request-record.ts");

const BURST = 32;
const CALLS = Number(process.env.OBSERVE_CALLS ?? 200_000);
const REPS = Number(process.env.OBSERVE_REPS ?? 7);

const plan = { routes: [{ id: "*", model: "*", targets: [{ account: 0, model: null }] }], accounts: [{ id: "mock", model: null }], configSha256: "0".repeat(64), budgets: [], virtualKeys: [], teams: [], organization: { id: "org", rateLimit: null } };
const gateway = { plan };
const runtime = { pools: new Map(), breakerState: () => 0 };

/**
 * A served, unstreamed chat request as the gateway fills it (one attempt, usage, cost): a new
 * record each call, with its own id and measured times (V8 caches number-to-text conversions,
 * so repeated times would flatter the access line).
 */
function record() {
  const r = newRecord(randomUUID(), "POST", "/v1/chat/completions");
  r.operation = "chat";
  r.model = "gpt-4o";
  r.route = "*";
  r.status = 200;
  r.attempts.push({ account: "mock", provider: "openai", model: "gpt-4o", status: 200, errorType: null, ms: 0.3 + Math.random() });
  r.account = "mock";
  r.provider = "openai";
  r.responseModel = "gpt-4o";
  r.usage = { inputTokens: 9, outputTokens: 9, cacheReadTokens: 0, cacheWriteTokens: 0 };
  r.costNanoUsd = 112500;
  r.durationMs = r.attempts[0].ms + 0.05 + Math.random() * 0.1;
  r.upstreamMs = r.attempts[0].ms;
  return r;
}

async function measure(name, observe) {
  const rows = [];
  for (let rep = 0; rep < REPS; rep++) {
    globalThis.gc?.();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; ) {
      for (let k = 0; k < BURST; k++, i++) observe(record());
      await new Promise((ok) => setImmediate(ok));
    }
    const wall = Number(process.hrtime.bigint() - t0) / CALLS;
    const cpu = process.cpuUsage(cpu0);
    rows.push({ wall, cpu: ((cpu.user + cpu.system) * 1000) / CALLS });
  }
  // The least of the repetitions: on a shared machine, others' work only ever adds.
  const least = (k) => Math.min(...rows.map((r) => r[k]));
  return { name, wallNs: Math.round(least("wall")), cpuNs: Math.round(least("cpu")) };
}

const dir = mkdtempSync(join(tmpdir(), "gwc-observe-log-"));
const file = join(dir, "access.log");
configureLog({ level: "info", dest: file });
const metrics = new GatewayMetrics(runtime, { current: () => gateway, perKey: false });
const log = accessLog();
const results = [];
results.push(await measure("nothing (the loop, making records)", () => {}));
results.push(await measure("metrics.observe", metrics.observe));
let sink = 0;
results.push(await measure("accessJson only (the line's text)", (r) => (sink += accessJson(r).length)));
results.push(await measure("access log", log));
results.push(await measure("both", (r) => (metrics.observe(r), log(r))));
flushLog();
const bytes = statSync(file).size;
rmSync(dir, { recursive: true, force: true });
console.log(`observers over a served chat record, ${CALLS} calls in bursts of ${BURST}, least of ${REPS} (access log ${(bytes / 1048576).toFixed(1)} MiB written, ${sink > 0 ? "lines built" : ""})`);
for (const r of results) console.log(`${r.name.padEnd(36)} wall ${String(r.wallNs).padStart(6)} ns/call   cpu ${String(r.cpuNs).padStart(6)} ns/call`);
