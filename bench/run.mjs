// gwc benchmark (issue #6): latency, throughput, SSE, pool isolation, micro,
// compile, governance, each against a `direct` and a `floor` baseline on loopback.
//
//   npm run bench                      full run (4.5–5 min): 5 interleaved rounds
//   npm run bench -- --quick           ~80 s: 3 shorter rounds, 1 build per size
//   npm run bench -- --profile         also --cpu-prof the gateway (plain and governed) and the floor under load
//   npm run bench -- --steady-heap     floor and gateways with V8's memory reducer off (see below)
//   npm run bench -- --only=latency,throughput,sse,isolation,micro,compile,scale   (a subset; --only=profile profiles alone)
//
// Targets: direct, floor, gateway, gateway+gov and realistic (issue #17, lib/realistic.mjs: 70/30,
// org, 4 teams, 1,000 keys rotating per request, metrics and access log on once the runtime has
// them). Item 10 (scale): 1,000 accounts / 10,000 keys (build, start, memory, load, SIGHUP reload)
// and 5x saturation of a small pool under an open-loop client (lib/open-loop.mjs).
//
// Every process is its own, pinned with taskset (on a machine with 2+ cores),
// in one of two layouts that this script switches between (taskset -p):
//   load layout    (items 2, 4)  core 0: the event loop (main thread) of the gateway or floor under test
//                                core 1: wrk (C, one thread), the mock upstream, this script
//                  so the gateway never competes with the load generator or the upstream for CPU.
//   serial layout  (items 1, 3)  everything on core 0. One connection (or a few
//                  mostly idle streams) is strictly serial: nothing runs in
//                  parallel to lose, and no hop pays a cross-core wake-up (on a
//                  VM that halts idle vCPUs that is ~0.1 ms a hop, more than
//                  the gateway's own cost; see bench/README.md).
// The micro benchmarks run on core 0; `gwc build` is left unpinned, as in CI.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCompileBench } from "./compile.mjs";
import { GOV_ENV, GOV_KEY, governed } from "./lib/governance.mjs";
import { openLoop } from "./lib/open-loop.mjs";
import { observabilitySupported, REAL_KEYS, realisticConfig, realKey, scaleConfig } from "./lib/realistic.mjs";
import { summarizeProfile } from "./lib/profile-summary.mjs";
import { runSse } from "./lib/sse.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const benchDir = join(root, "bench");
const resultsDir = join(benchDir, "results");
const gwc = join(root, "build", "gwc.mjs");
const LUA = join(benchDir, "lib", "post.lua");

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const QUICK = flag("quick");
const ALL = ["latency", "throughput", "sse", "isolation", "micro", "compile", "instances", "scale"];
const ONLY = new Set((option("only") ?? ALL.join(",")).split(","));
for (const o of ONLY) if (!ALL.includes(o) && o !== "profile") usage(`unknown --only item '${o}'`);
for (const a of argv) if (!/^--(quick|profile|steady-heap|(rounds|name|only)=.+)$/.test(a)) usage(`unknown option '${a}'`);
const PROFILE = flag("profile") || ONLY.has("profile");
// --steady-heap: run the floor and every gateway with V8's memory reducer off. Each process idles
// ~25 s between its own measurements; the reducer then shrinks its heap, and the process is often
// slower for the rest of the run (see bench/README.md). Off by default: the default measures
// `node dist/gateway.mjs` exactly as it is run.
const STEADY = flag("steady-heap");
const PROCESS_FLAGS = STEADY ? ["--no-memory-reducer"] : [];
const S = QUICK
  ? { rounds: 3, latencySec: 1, throughputSec: 1, warmSec: 1, sseWaves: 1, isoSec: 1, compileRuns: 1, microReps: 3, microMs: 10 }
  : { rounds: 5, latencySec: 3, throughputSec: 3, warmSec: 2, sseWaves: 2, isoSec: 4, compileRuns: 3, microReps: 7, microMs: 30 };
if (option("rounds") !== undefined) {
  const n = Number(option("rounds"));
  if (!Number.isInteger(n) || n < 1 || n > 20) usage("--rounds takes a whole number from 1 to 20");
  S.rounds = n;
}
const NAME = option("name") ?? (QUICK ? "bench-quick" : "bench");
const SSE = { concurrency: 8, chunks: 64, intervalMs: 20, staggerMs: 2.5 };
const THROUGHPUT_CONNECTIONS = 32;
const ISO = { measureConnections: 8, saturateConnections: 64, slowDelayMs: 2000, pool: { max_connections: 4, queue_size: 8 } };
const WALL_LIMIT_MS = (QUICK ? 4 : 12) * 60_000; // a hard stop, far above the expected run time

function usage(message) {
  console.error(`bench: ${message}\nusage: npm run bench [-- --quick] [--profile] [--steady-heap] [--rounds=N] [--name=NAME] [--only=${ALL.join(",")},profile]`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Preconditions and pinning
// ---------------------------------------------------------------------------

if (spawnSync("wrk", ["-v"]).error !== undefined) {
  console.error(
    "bench: `wrk` (the HTTP load generator) is not installed.\n" +
      "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk\n" +
      "  macOS:         brew install wrk\n" +
      "then run `npm run bench` again.",
  );
  process.exit(1);
}
if (!existsSync(gwc)) {
  console.error("bench: build/gwc.mjs is missing: run `npm ci` (or `npm run build`) first.");
  process.exit(1);
}
const wrkVersion = (spawnSync("wrk", ["-v"], { encoding: "utf8" }).stdout.match(/wrk (\S+)/) ?? [])[1] ?? "unknown";
const CORES = cpus().length;
const PIN = CORES >= 2 && spawnSync("taskset", ["-V"]).error === undefined;
if (!PIN) console.error("bench: WARNING: taskset or a second core is missing: processes are not pinned and share CPU; numbers will be noisier.");

/** Moves a running process, every thread of it, to one core. */
function pin(pid, core) {
  if (PIN) spawnSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" });
}
/** Each thread's allowed cores, summarised: "main 0; helpers 0-1 ×9". */
function affinityOf(pid) {
  try {
    const lists = readdirSync(`/proc/${pid}/task`).map((tid) => [tid, readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8").match(/Cpus_allowed_list:\s*(\S+)/)?.[1]]);
    const main = lists.find(([tid]) => tid === String(pid))?.[1];
    const helpers = new Map();
    for (const [tid, l] of lists) if (tid !== String(pid)) helpers.set(l, (helpers.get(l) ?? 0) + 1);
    return `main thread on ${main}; other threads ${[...helpers].map(([l, n]) => `${l} ×${n}`).join(", ")}`;
  } catch {
    return "unknown";
  }
}
/** Moves only a process's main thread (its event loop) to one core. */
function pinMainThread(pid, core) {
  if (PIN) spawnSync("taskset", ["-p", "-c", String(core), String(pid)], { stdio: "ignore" });
}
const started = Date.now();
const children = new Set();
const killAll = () => {
  for (const c of children) c.kill("SIGKILL");
};
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
setTimeout(() => {
  console.error(`bench: gave up after ${WALL_LIMIT_MS / 60_000} minutes`);
  killAll();
  process.exit(1);
}, WALL_LIMIT_MS).unref();

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/**
 * Spawns a process on `core`. With `mainThread`, only the process's main
 * thread is pinned (the event loop of a gateway or floor): V8's helper threads
 * (GC, JIT), started before the pin, float, as they would on a real server. A
 * whole Node process squeezed onto one core has its event loop preempted by its
 * own GC threads for whole scheduler slices, which adds milliseconds to p99.
 */
function spawnPinned(core, cmd, args, env = {}, cwd = undefined, { mainThread = false, stdoutFile = undefined } = {}) {
  // Children inherit this script's affinity; a main-thread-pinned process starts on every core.
  const cpuList = mainThread ? `0-${CORES - 1}` : String(core);
  const [file, full] = PIN ? ["taskset", ["-c", cpuList, cmd, ...args]] : [cmd, args];
  // A gateway's stdout (its JSON access log) goes to a file, as in production; nothing is held in this process.
  const stdout = stdoutFile === undefined ? "pipe" : openSync(stdoutFile, "a");
  const child = spawn(file, full, { stdio: ["ignore", stdout, "pipe"], env: { ...process.env, ...env }, cwd });
  if (typeof stdout === "number") closeSync(stdout);
  // With `mainThread`, the caller pins the main thread once the process is up (pinMainThread), after taskset's own exec.
  children.add(child);
  child.on("exit", () => children.delete(child));
  child.out = "";
  child.err = "";
  child.stdout?.on("data", (d) => (child.out += d));
  child.stderr.on("data", (d) => (child.err += d));
  return child;
}

function waitFor(child, stream, re, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = (stream === "stdout" ? child.out : child.err).match(re);
      if (m !== null) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code) => {
      cleanup();
      reject(new Error(`${what} exited (${code}) before it was ready:\n${child.err || child.out}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not ready after ${timeoutMs} ms:\n${child.err || child.out}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child[stream].off("data", check);
      child.off("exit", onExit);
    };
    child[stream].on("data", check);
    child.on("exit", onExit);
    check();
  });
}

function stop(child, signal = "SIGTERM", timeoutMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      ok();
    });
    child.kill(signal);
  });
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startMock(slowDelayMs = ISO.slowDelayMs) {
  const child = spawnPinned(1, process.execPath, [join(benchDir, "lib", "mock.mjs")], {
    SSE_CHUNKS: String(SSE.chunks),
    SSE_INTERVAL_MS: String(SSE.intervalMs),
    SLOW_DELAY_MS: String(slowDelayMs),
  });
  const m = await waitFor(child, "stdout", /\{"fast":(\d+),"slow":(\d+)\}/, 10_000, "mock upstream");
  return { child, fast: `http://127.0.0.1:${m[1]}`, slow: `http://127.0.0.1:${m[2]}` };
}

async function startFloor(upstream, nodeFlags = PROCESS_FLAGS, env = {}) {
  const child = spawnPinned(0, process.execPath, [...nodeFlags, join(benchDir, "lib", "floor.mjs")], { UPSTREAM: upstream, CONNECTIONS: "64", ...env }, undefined, { mainThread: true });
  const m = await waitFor(child, "stdout", /\{"port":(\d+)\}/, 10_000, "floor");
  pinMainThread(child.pid, 0);
  return { child, url: `http://127.0.0.1:${m[1]}` };
}

const buildRoot = mkdtempSync(join(tmpdir(), "gwc-bench-"));
process.on("exit", () => rmSync(buildRoot, { recursive: true, force: true }));

function build(name, config) {
  const dir = join(buildRoot, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  execFileSync(process.execPath, [gwc, "build", join(dir, "config.json"), "-o", join(dir, "dist")], { stdio: "pipe", timeout: 120_000 });
  return join(dir, "dist", "gateway.mjs");
}

/**
 * Runs a built bundle with its event loop on core 0, from its own temporary
 * directory (where its state snapshots go); its stdout, the JSON access log
 * and events, goes to `gateway.log` there.
 */
async function startGateway(bundle, env = {}, nodeFlags = PROCESS_FLAGS) {
  const port = await freePort();
  const logFile = join(dirname(bundle), "gateway.log");
  const child = spawnPinned(0, process.execPath, [...nodeFlags, bundle], { PORT: String(port), HOST: "127.0.0.1", OPENAI_API_KEY: "sk-bench", ...env }, dirname(bundle), { mainThread: true, stdoutFile: logFile });
  const url = `http://127.0.0.1:${port}`;
  await ready(child, url, 15_000);
  pinMainThread(child.pid, 0);
  return { child, url, logFile };
}

/** Resolves once GET /readyz answers 200 (stdout is a file, so there is no line to wait for). */
async function ready(child, url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}) before it was ready:\n${child.err}`);
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`gateway not ready after ${timeoutMs} ms:\n${child.err}`);
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/** One wrk run; resolves with its WRKJSON line. Bounded by wrk's own -d, plus a kill deadline. */
function wrk(url, { connections, seconds, model = "gpt-4o", auth = "", timeoutSec = 10, core = 1, keys = 0 }) {
  const child = spawnPinned(core, "wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", `${timeoutSec}s`, "-s", LUA, url], {
    BENCH_MODEL: model,
    BENCH_AUTH: auth,
    // keys > 0: a key picked per request from the first `keys` of lib/realistic.mjs (post.lua)
    BENCH_KEYS: keys > 0 ? String(keys) : "",
  });
  const deadline = setTimeout(() => child.kill("SIGKILL"), (seconds + timeoutSec + 15) * 1000);
  const done = new Promise((resolve, reject) => {
    child.on("exit", (code) => {
      clearTimeout(deadline);
      const m = child.out.match(/WRKJSON (\{.*\})/);
      if (m === null) reject(new Error(`wrk ${url} exited ${code} without a result:\n${child.out}${child.err}`));
      else {
        const r = JSON.parse(m[1]);
        r.rps = r.requests / (r.duration_us / 1e6);
        r.errorCount = Object.values(r.errors).reduce((a, b) => a + b, 0);
        resolve(r);
      }
    });
  });
  done.child = child;
  return done;
}

function rssKiB(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]);
  } catch {
    return NaN;
  }
}

/** A process's CPU time so far (user + system), in ms; NaN once it is gone. */
function cpuMs(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

/**
 * Runs `work` while sampling the process's RSS every 100 ms; returns [result,
 * peak KiB, CPU ms the process used meanwhile]. CPU per request is the figure a
 * shared machine disturbs least: time other processes hold the core is not in it.
 */
async function withRss(pid, work) {
  let peak = rssKiB(pid);
  const cpu0 = cpuMs(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 100);
  try {
    const result = await work();
    return [result, peak, cpuMs(pid) - cpu0];
  } finally {
    clearInterval(timer);
    peak = Math.max(peak, rssKiB(pid));
  }
}

/**
 * CPU used on the machine by anything that is not this bench: all CPUs' user
 * and system time (/proc/stat) minus this script's, its reaped children's (wrk)
 * and its live children's (mock, floor, gateways). In clock ticks.
 */
function cpuSnapshot() {
  try {
    const [user, nice, system] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 4).map(Number);
    const stat = (pid) => {
      const text = readFileSync(`/proc/${pid}/stat`, "utf8");
      return text.slice(text.lastIndexOf(")") + 2).split(" ");
    };
    const self = stat("self");
    // After ")": state is field 3, so utime (14), stime (15), cutime (16), cstime (17) sit at 11..14.
    let ours = Number(self[11]) + Number(self[12]) + Number(self[13]) + Number(self[14]);
    for (const c of children) {
      try {
        const f = stat(c.pid);
        ours += Number(f[11]) + Number(f[12]);
      } catch {
        // exited between the two reads: counted in cutime once reaped
      }
    }
    return { at: Date.now(), busy: user + nice + system, ours };
  } catch {
    return undefined;
  }
}

/** Share of one core (percent) that other processes on the machine used between two snapshots. */
function foreignCpuPct(a, b) {
  if (a === undefined || b === undefined) return NaN;
  const ticks = b.busy - a.busy - (b.ours - a.ours);
  return Math.max(0, Math.round((1000 * ticks) / (b.at - a.at)) / 10); // 100 ticks per second
}

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return res.json();
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]);
const log = (line) => process.stderr.write(`bench: ${line}\n`);

// ---------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------

const git = (args) => spawnSync("git", args, { cwd: root, encoding: "utf8" }).stdout?.trim() ?? "";
const meta = {
  name: NAME,
  // The gateway is built from the working tree: record exactly which one.
  commit: git(["rev-parse", "--short", "HEAD"]) || "unknown",
  runtimeChangesNotCommitted: git(["status", "--porcelain", "--", "runtime", "compiler"]).split("\n").filter(Boolean).length,
  date: new Date().toISOString(),
  // The 1/5/15-minute load averages (as `uptime` prints them) when the run started; loadAvgAtEnd is added at the end.
  loadAvgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  quick: QUICK,
  processFlags: PROCESS_FLAGS,
  node: process.version,
  cpu: cpus()[0]?.model ?? "unknown",
  cores: CORES,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  loadGenerator: `wrk ${wrkVersion} (C, 1 thread)`,
  pinning: PIN
    ? "gateway/floor event loop on core 0 (V8 helper threads float); load layout (items 2, 4): wrk + mock upstream on core 1; serial layout (items 1, 3): wrk/SSE client + mock on core 0 too; micro on core 0"
    : "none",
  settings: { ...S, sse: SSE, throughputConnections: THROUGHPUT_CONNECTIONS, isolation: ISO },
};
log(`${QUICK ? "quick" : "full"} run: ${S.rounds} rounds; ${meta.cpu}, ${CORES} cores; ${meta.loadGenerator}`);
{
  // Is anything else busy? (Another test run on a shared machine shows up in every p99.)
  const a = cpuSnapshot();
  await sleep(1000);
  meta.otherCpuBeforeStartPct = foreignCpuPct(a, cpuSnapshot());
  if (meta.otherCpuBeforeStartPct > 10) log(`WARNING: other processes are using ${meta.otherCpuBeforeStartPct}% of a core right now; results will be noisy`);
}

const needTraffic = ["latency", "throughput", "sse", "isolation", "instances", "scale"].some((o) => ONLY.has(o));
const mock = needTraffic || PROFILE ? await startMock() : undefined;
const account = (id, url, extra = {}) => ({ id, provider: "openai", base_url: `${url}/v1`, api_key: "${OPENAI_API_KEY}", ...extra });

/** Switches the mock upstream and this script (the SSE client) between the two layouts; gateways stay on core 0. */
function layout(kind) {
  const core = kind === "serial" ? 0 : 1;
  if (mock) pin(mock.child.pid, core);
  pin(process.pid, core);
  return core;
}

// Item 7: governance on (lib/governance.mjs): admission, rate-limit counting, a
// budget reservation per attempt, settlement from the reported usage, token counting.
const governedConfig = (url) => governed({ accounts: [account("mock", url, { model: "gpt-4o" })] });

/** Whether the governed gateway enforces: no key → 401, the key → 200 with x-ratelimit headers. */
async function verifyGovernance(url, startupLog, key = GOV_KEY) {
  const body = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 16 });
  const post = (headers) => fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body, signal: AbortSignal.timeout(5000) });
  const anonymous = await post({});
  await anonymous.arrayBuffer();
  const keyed = await post({ authorization: `Bearer ${key}` });
  await keyed.arrayBuffer();
  const notEnforced = startupLog.split("\n").find((l) => /NOT ENFORCED/i.test(l));
  const enforced = notEnforced === undefined && anonymous.status === 401 && keyed.status === 200 && keyed.headers.has("x-ratelimit-remaining-requests");
  return {
    available: enforced,
    withoutKey: anonymous.status,
    withKey: keyed.status,
    rateLimitHeaders: keyed.headers.has("x-ratelimit-remaining-requests"),
    reason: enforced ? undefined : notEnforced ?? `without a key: ${anonymous.status}, with it: ${keyed.status} (expected 401 and 200 with x-ratelimit headers)`,
  };
}

// Item 9 (issue #17): the configuration people actually run (lib/realistic.mjs): 70/30 split,
// organization, 4 teams, 1,000 keys with budgets, limits and a concurrency cap, a key picked per
// request, and /metrics and the access log on once the runtime has them.
const OBSERVABILITY = observabilitySupported(join(root, "schemas", "gateway.schema.json"));
const realisticTarget = (url) => realisticConfig({ primary: url, observability: OBSERVABILITY });

/** Whether the realistic gateway enforces its keys (as verifyGovernance) and, when on, serves /metrics. */
async function verifyRealistic(url, startupLog) {
  const v = await verifyGovernance(url, startupLog, realKey(REAL_KEYS - 1));
  if (!OBSERVABILITY) return { ...v, observability: false, metricsStatus: null };
  const metrics = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  await metrics.arrayBuffer();
  const available = v.available && metrics.status === 200;
  return { ...v, available, observability: true, metricsStatus: metrics.status, reason: available ? undefined : v.reason ?? `GET /metrics answered ${metrics.status}` };
}

const targets = [];
let plainBundle;
let governance = { available: false, reason: "not measured (no traffic items selected)" };
let realistic = { available: false, reason: "not measured (no traffic items selected)" };
if (["latency", "throughput", "sse"].some((o) => ONLY.has(o))) {
  const floor = await startFloor(mock.fast);
  plainBundle = build("plain", { accounts: [account("mock", mock.fast)] });
  const gateway = await startGateway(plainBundle);
  targets.push({ name: "direct", url: mock.fast }, { name: "floor", url: floor.url, child: floor.child }, { name: "gateway", url: gateway.url, child: gateway.child, logFile: gateway.logFile });
  meta.affinity = { gateway: affinityOf(gateway.child.pid), floor: affinityOf(floor.child.pid) };
  const gov = await startGateway(build("governed", governedConfig(mock.fast)), GOV_ENV);
  governance = await verifyGovernance(gov.url, gov.child.err);
  if (governance.available) targets.push({ name: "gateway+gov", url: gov.url, child: gov.child, auth: `Bearer ${GOV_KEY}` });
  else await stop(gov.child);
  const real = await startGateway(build("realistic", realisticTarget(mock.fast)));
  realistic = { keys: REAL_KEYS, ...(await verifyRealistic(real.url, real.child.err)) };
  // SSE and the checks send key 0; wrk's load picks one of the 1,000 keys per request (post.lua).
  if (realistic.available) targets.push({ name: "realistic", url: real.url, child: real.child, auth: `Bearer ${realKey(0)}`, keys: REAL_KEYS });
  else await stop(real.child);
  // Item 8: the same gateway with metrics and the access log off (they are on by default), to price them.
  const quiet = await startGateway(build("quiet", { accounts: [account("mock", mock.fast)], observability: { metrics: false }, server: { access_log: false } }));
  targets.push({ name: "gateway-quiet", url: quiet.url, child: quiet.child });
}
const authHeaders = (t) => (t.auth ? { authorization: t.auth } : {});

// ---------------------------------------------------------------------------
// Items 1–3: interleaved rounds
// ---------------------------------------------------------------------------

const rounds = [];
if (ONLY.has("latency") || ONLY.has("throughput") || ONLY.has("sse")) {
  log("warming up every target (JIT, connection pools)");
  for (const t of targets) {
    let core = layout("load");
    await wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.warmSec, auth: t.auth, keys: t.keys, core });
    core = layout("serial");
    await wrk(t.url, { connections: 1, seconds: S.warmSec, auth: t.auth, keys: t.keys, core });
    if (ONLY.has("sse")) await runSse(t.url, { ...SSE, waves: 1, headers: authHeaders(t) });
  }
  for (let r = 0; r < S.rounds; r++) {
    const order = rotate(targets, r);
    const round = { order: order.map((t) => t.name), latency: {}, throughput: {}, sse: {} };
    const cpuStart = cpuSnapshot();
    if (ONLY.has("latency") || ONLY.has("sse")) {
      const core = layout("serial");
      if (ONLY.has("latency")) {
        for (const t of order) {
          const w = await wrk(t.url, { connections: 1, seconds: S.latencySec, auth: t.auth, keys: t.keys, core });
          round.latency[t.name] = { p50Us: w.p50_us, p99Us: w.p99_us, p999Us: w.p999_us, rps: w.rps, requests: w.requests, errors: w.errorCount };
        }
      }
      if (ONLY.has("sse")) {
        for (const t of order) round.sse[t.name] = await runSse(t.url, { ...SSE, waves: S.sseWaves, headers: authHeaders(t) });
      }
    }
    if (ONLY.has("throughput")) {
      const core = layout("load");
      for (const t of order) {
        const load = () => wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.throughputSec, auth: t.auth, keys: t.keys, core });
        const idleKiB = t.child ? rssKiB(t.child.pid) : NaN;
        const [w, peakKiB, cpu] = t.child ? await withRss(t.child.pid, load) : [await load(), NaN, NaN];
        const cpuUsPerRequest = (cpu * 1000) / w.requests;
        round.throughput[t.name] = { rps: w.rps, p50Us: w.p50_us, p99Us: w.p99_us, requests: w.requests, errors: w.errorCount, rssBeforeMiB: idleKiB / 1024, rssPeakMiB: peakKiB / 1024, cpuUsPerRequest };
      }
    }
    round.foreignCpuPct = foreignCpuPct(cpuStart, cpuSnapshot());
    rounds.push(round);
    log(`round ${r + 1}/${S.rounds} done (${Math.round((Date.now() - started) / 1000)} s; other processes used ${round.foreignCpuPct}% of a core)`);
  }
}

// Item 2, memory as README recommends running the gateway: V8's young generation
// capped with --max-semi-space-size. Fresh floor and gateway processes, both
// with the flag, warmed up, then interleaved load runs; the floor's run shows
// what the flag costs any Node proxy.
const TUNED_FLAGS = ["--max-semi-space-size=2"];
const tuned = { flags: TUNED_FLAGS, runs: [] };
if (ONLY.has("throughput")) {
  const floor = await startFloor(mock.fast, [...PROCESS_FLAGS, ...TUNED_FLAGS]);
  // A bundle of its own: the plain gateway still runs, and a state dir takes one process (its lock).
  const gateway = await startGateway(build("plain-tuned", { accounts: [account("mock", mock.fast)] }), {}, [...PROCESS_FLAGS, ...TUNED_FLAGS]);
  const pair = [
    { name: "floor", url: floor.url, child: floor.child },
    { name: "gateway", url: gateway.url, child: gateway.child },
  ];
  const core = layout("load");
  for (const t of pair) await wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.warmSec, core });
  for (let r = 0; r < Math.min(S.rounds, 3); r++) {
    const run = {};
    for (const t of rotate(pair, r)) {
      const [w, peakKiB] = await withRss(t.child.pid, () => wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.throughputSec, core }));
      run[t.name] = { rps: w.rps, rssPeakMiB: peakKiB / 1024, errors: w.errorCount };
    }
    tuned.runs.push(run);
  }
  await stop(floor.child);
  await stop(gateway.child);
  log(`memory with ${TUNED_FLAGS.join(" ")} done (${Math.round((Date.now() - started) / 1000)} s)`);
}

// ---------------------------------------------------------------------------
// Item 4: pool isolation
// ---------------------------------------------------------------------------

const isolation = { rounds: [] };
if (ONLY.has("isolation")) {
  const bundle = build("isolation", {
    accounts: [
      account("fast", mock.fast),
      {
        id: "slow",
        provider: "openai-compatible",
        base_url: `${mock.slow}/v1`,
        pool: { ...ISO.pool, backpressure: "block", queue_timeout: "30s", request_timeout: "60s" },
      },
    ],
    routes: [
      { model: "gpt-4o", targets: [{ account: "fast" }] },
      { model: "slow-model", targets: [{ account: "slow" }] },
    ],
    fallback_config: { enabled: false },
  });
  layout("load");
  const gw = await startGateway(bundle);
  await wrk(gw.url, { connections: ISO.measureConnections, seconds: S.warmSec });
  for (let r = 0; r < S.rounds; r++) {
    const row = {};
    const cpuStart = cpuSnapshot();
    for (const phase of r % 2 === 0 ? ["healthy", "saturated"] : ["saturated", "healthy"]) {
      if (phase === "healthy") {
        const w = await wrk(gw.url, { connections: ISO.measureConnections, seconds: S.isoSec });
        row.healthy = { p50Us: w.p50_us, p99Us: w.p99_us, rps: w.rps, errors: w.errorCount };
        continue;
      }
      await getJson(`${mock.fast}/stats/reset`);
      const saturate = wrk(gw.url, { connections: ISO.saturateConnections, seconds: S.isoSec + 5, model: "slow-model", timeoutSec: 30 });
      await sleep(500);
      const before = await getJson(`${mock.fast}/stats`);
      const w = await wrk(gw.url, { connections: ISO.measureConnections, seconds: S.isoSec });
      const after = await getJson(`${mock.fast}/stats`);
      await stop(saturate.child, "SIGKILL");
      await saturate.catch(() => undefined);
      row.saturated = {
        p50Us: w.p50_us,
        p99Us: w.p99_us,
        rps: w.rps,
        errors: w.errorCount,
        slowInFlightAtStart: before.inFlight,
        slowMaxInFlight: after.maxInFlight,
        callersWaitingOnSlowPool: ISO.saturateConnections - before.inFlight,
      };
      await sleep(300); // let the gateway drop the abandoned slow requests
    }
    row.p99Ratio = row.saturated.p99Us / row.healthy.p99Us;
    row.foreignCpuPct = foreignCpuPct(cpuStart, cpuSnapshot());
    isolation.rounds.push(row);
  }
  await stop(gw.child);
  log(`isolation done (${Math.round((Date.now() - started) / 1000)} s)`);
}

// ---------------------------------------------------------------------------
// Item 10: at scale (issue #17): 1,000 accounts and 10,000 keys (build, start, memory, load,
// SIGHUP reload), and 5x saturation of a small pool (open-loop load, lib/open-loop.mjs).
// Bounded: 2 builds, 3 + 1 reloads, ~20 s of load; loopback only.
// ---------------------------------------------------------------------------

let scale;
if (ONLY.has("scale")) {
  scale = {};
  const core = layout("load");
  const SCALE = { accounts: 1000, keys: 10_000 };
  const timed = (f) => {
    const t0 = performance.now();
    const v = f();
    return [v, performance.now() - t0];
  };
  const [bundle, buildMs] = timed(() => build("scale", scaleConfig({ url: mock.fast, ...SCALE })));
  const t0 = performance.now();
  const gw = await startGateway(bundle);
  const startMs = performance.now() - t0;
  const idleMiB = rssKiB(gw.child.pid) / 1024;
  const scaleLoad = (seconds) => wrk(gw.url, { connections: THROUGHPUT_CONNECTIONS, seconds, model: "model-7", keys: SCALE.keys, core });
  // 3 s each even with --quick: the first seconds carry every key's first SHA-256 and the JIT.
  await scaleLoad(3);
  const [w, peakKiB, cpu] = await withRss(gw.child.pid, () => scaleLoad(3));
  scale.large = { ...SCALE, buildMs, bundleBytes: statSync(bundle).size, planBytes: statSync(join(dirname(bundle), "gateway.plan.json")).size, startMs, rssIdleMiB: idleMiB, rssPeakMiB: peakKiB / 1024, rps: w.rps, p50Us: w.p50_us, p99Us: w.p99_us, errors: w.errorCount, cpuUsPerRequest: (cpu * 1000) / w.requests };
  // Reload: `gwc build` of a changed config (every weight moved) over the running bundle's dir,
  // then SIGHUP; timed until the gateway logs that it serves the new config. 3 idle, 1 under load.
  const reloads = [];
  for (let i = 1; i <= 4; i++) {
    const [, rebuildMs] = timed(() => build("scale", scaleConfig({ url: mock.fast, ...SCALE, weightSeed: i })));
    const underLoad = i === 4 ? scaleLoad(3) : undefined;
    if (underLoad) await sleep(500);
    const r0 = performance.now();
    const seen = await reloadGateway(gw);
    reloads.push({ rebuildMs, reloadMs: performance.now() - r0, underLoad: underLoad !== undefined, log: seen });
    if (underLoad) {
      const wl = await underLoad;
      reloads.at(-1).loadErrors = wl.errorCount;
      reloads.at(-1).loadRequests = wl.requests;
    }
  }
  scale.reloads = reloads;
  scale.rssAfterReloadsMiB = rssKiB(gw.child.pid) / 1024;
  await stop(gw.child);
  log(`scale: 1,000 accounts / 10,000 keys done (${Math.round((Date.now() - started) / 1000)} s)`);

  // 5x saturation: two accounts (70/30) of 8 connections and a queue of 8 each, refusing beyond
  // (backpressure "error"), on an upstream that answers in 200 ms: 16 / 0.2 s = 80 req/s of
  // capacity. Open-loop phases: half of it, then 5x five times (resident memory must level off,
  // not climb phase after phase), then half again. A small capacity keeps the offered 400 req/s far below what the gateway and this
  // script's client can do, so what saturates is the pool, not the CPU.
  const SAT = { delayMs: 200, pool: { max_connections: 8, queue_size: 8, backpressure: "error" }, seconds: QUICK ? 3 : 4 };
  const capacity = (2 * SAT.pool.max_connections * 1000) / SAT.delayMs;
  const slowMock = await startMock(SAT.delayMs);
  const satBundle = build("saturation", realisticConfig({ primary: slowMock.slow, accountExtra: { pool: SAT.pool } }));
  const sg = await startGateway(satBundle);
  const phases = [];
  for (const [name, factor] of [["0.5x", 0.5], ["5x", 5], ["5x", 5], ["5x", 5], ["5x", 5], ["5x", 5], ["0.5x again", 0.5]]) {
    const result = await openLoop(sg.url, { rate: capacity * factor, seconds: SAT.seconds, keys: (n) => realKey(n % REAL_KEYS), model: "gpt-4o", maxInFlight: 512 });
    phases.push({ name, ...result, rssAfterMiB: rssKiB(sg.child.pid) / 1024 });
  }
  scale.saturation = { ...SAT, capacityRps: capacity, phases };
  await stop(sg.child);
  await stop(slowMock.child);
  log(`scale: saturation done (${Math.round((Date.now() - started) / 1000)} s)`);
}

/** SIGHUP, then wait (≤ 60 s) for the gateway to say it reloaded (or failed to); resolves with that line. */
async function reloadGateway(gw) {
  const text = () => gw.child.err + gw.child.out + (gw.logFile && existsSync(gw.logFile) ? readFileSync(gw.logFile, "utf8") : "");
  const re = /reloaded|reload failed/g;
  const before = (text().match(re) ?? []).length;
  gw.child.kill("SIGHUP");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const all = text();
    const hits = all.match(re) ?? [];
    if (hits.length > before) return hits.at(-1);
    await sleep(5);
  }
  throw new Error("the gateway did not reload within 60 s of SIGHUP");
}

// ---------------------------------------------------------------------------
// Item 5: micro (in-process), bundled on the fly with esbuild
// ---------------------------------------------------------------------------

let micro;
if (ONLY.has("micro")) {
  const esbuild = await import("esbuild");
  mkdirSync(resultsDir, { recursive: true });
  // Written under bench/results/ (gitignored) so the bundle's bare imports (ajv, jsonc-parser) resolve from node_modules.
  const out = join(resultsDir, ".micro-bundle.mjs");
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(benchDir, "lib", "micro-entry.mjs")],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    outfile: out,
    logLevel: "warning",
  });
  try {
    const env = { ...process.env, MICRO_REPS: String(S.microReps), MICRO_MS: String(S.microMs) };
    const [file, args] = PIN ? ["taskset", ["-c", "0", process.execPath, "--expose-gc", out]] : [process.execPath, ["--expose-gc", out]];
    const r = spawnSync(file, args, { encoding: "utf8", timeout: 120_000, env });
    if (r.status !== 0) throw new Error(`micro benchmark failed: ${r.stderr || r.error}`);
    micro = JSON.parse(r.stdout.trim().split("\n").at(-1));
  } finally {
    rmSync(out, { force: true });
  }
  log(`micro done (${Math.round((Date.now() - started) / 1000)} s)`);
}

// ---------------------------------------------------------------------------
// Item 6: compile (bench/compile.mjs), unpinned: a build uses both cores, as in CI
// ---------------------------------------------------------------------------

let compile;
if (ONLY.has("compile")) {
  if (PIN) spawnSync("taskset", ["-a", "-p", "-c", `0-${CORES - 1}`, String(process.pid)], { stdio: "ignore" });
  compile = { runs: S.compileRuns, rows: runCompileBench({ runs: S.compileRuns }) };
  log(`compile done (${Math.round((Date.now() - started) / 1000)} s)`);
}

// ---------------------------------------------------------------------------
// Profiles (--profile): gateway and floor under the same load, --cpu-prof
// ---------------------------------------------------------------------------

let profiles;
if (PROFILE) {
  const dir = join(resultsDir, "profiles");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  profiles = {};
  layout("load");
  const plainBundle = build("profile", { accounts: [account("mock", mock.fast)] });
  const govBundle = build("profile-governed", governedConfig(mock.fast));
  const realBundle = build("profile-realistic", realisticTarget(mock.fast));
  for (const who of ["gateway", "gateway+gov", "realistic", "floor"]) {
    const flags = [...PROCESS_FLAGS, "--cpu-prof", `--cpu-prof-dir=${join(dir, who)}`];
    const p =
      who === "gateway"
        ? await startGateway(plainBundle, {}, flags)
        : who === "gateway+gov"
          ? await startGateway(govBundle, GOV_ENV, flags)
          : who === "realistic"
            ? await startGateway(realBundle, {}, flags)
            : await startFloor(mock.fast, flags);
    const auth = who === "gateway+gov" ? `Bearer ${GOV_KEY}` : "";
    const keys = who === "realistic" ? REAL_KEYS : 0;
    // The throughput load only (item 2's), after a short warm-up, so the profile is mostly the busy gateway.
    await wrk(p.url, { connections: THROUGHPUT_CONNECTIONS, seconds: 1, auth, keys });
    await wrk(p.url, { connections: THROUGHPUT_CONNECTIONS, seconds: QUICK ? 3 : 6, auth, keys });
    await stop(p.child, "SIGTERM", 15_000);
    const file = readdirSync(join(dir, who)).find((f) => f.endsWith(".cpuprofile"));
    profiles[who] = file === undefined ? { error: "no profile written" } : { file: join("bench", "results", "profiles", who, file), ...summarizeProfile(join(dir, who, file), 25) };
    profiles[who].allocation = await allocationPerRequest(who, who === "gateway" ? plainBundle : who === "gateway+gov" ? govBundle : realBundle, auth, keys, dir);
  }
  log(`profiles done (${Math.round((Date.now() - started) / 1000)} s)`);
}

/**
 * Bytes the process allocates per request under the throughput load (lib/alloc-hook.mjs):
 * a warm-up, then V8's sampling heap profiler over one load run, divided by its requests.
 */
async function allocationPerRequest(who, bundle, auth, keys, dir) {
  const out = join(dir, `${who}.alloc.json`);
  const flags = [...PROCESS_FLAGS, "--import", join(benchDir, "lib", "alloc-hook.mjs")];
  const env = { GWC_ALLOC_PROFILE: out };
  const p = who === "floor" ? await startFloor(mock.fast, flags, env) : await startGateway(bundle, who === "gateway+gov" ? { ...GOV_ENV, ...env } : env, flags);
  try {
    await wrk(p.url, { connections: THROUGHPUT_CONNECTIONS, seconds: 2, auth, keys });
    p.child.kill("SIGUSR2");
    const run = await wrk(p.url, { connections: THROUGHPUT_CONNECTIONS, seconds: QUICK ? 2 : 4, auth, keys });
    p.child.kill("SIGUSR2");
    for (let i = 0; i < 100 && !existsSync(out); i++) await sleep(100);
    const profile = JSON.parse(readFileSync(out, "utf8"));
    if (profile.error) return { error: profile.error };
    let bytes = 0;
    const walk = (n) => {
      bytes += n.selfSize;
      for (const c of n.children ?? []) walk(c);
    };
    walk(profile.head);
    return { requests: run.requests, bytesPerRequest: Math.round(bytes / run.requests) };
  } catch (e) {
    return { error: e.message };
  } finally {
    await stop(p.child, "SIGTERM", 15_000);
  }
}

// ---------------------------------------------------------------------------
// Item 8 (issue #16): several instances. The governed gateway over Redis beside
// the same config over the embedded store, interleaved in the same rounds
// (latency in the serial layout with Redis on core 0 too, throughput in the
// load layout with Redis beside wrk and the mock on core 1); then `--workers 2`
// against one process, everything unpinned, since two workers need both cores.
// ---------------------------------------------------------------------------

const instances = { rounds: [], workers: [] };
if (ONLY.has("instances")) {
  if (spawnSync("redis-server", ["--version"]).error !== undefined) {
    instances.reason = "redis-server is not installed (apt-get install -y redis-server)";
    log(`item 8 skipped: ${instances.reason}`);
  } else {
    const redisPort = await freePort();
    const redisDir = mkdtempSync(join(tmpdir(), "gwc-bench-redis-"));
    process.on("exit", () => rmSync(redisDir, { recursive: true, force: true }));
    // What the README asks operators for: AOF, fsync every second.
    const redis = spawnPinned(1, "redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--dir", redisDir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]);
    await waitFor(redis, "stdout", /Ready to accept connections/, 10_000, "redis-server");
    const REDIS_ENV = { ...GOV_ENV, REDIS_URL: `redis://127.0.0.1:${redisPort}` };
    const withRedis = (config) => ({ ...config, state: { redis: { url: "${REDIS_URL}" } } });
    const embedded = await startGateway(build("gov-embedded", governedConfig(mock.fast)), GOV_ENV);
    const viaRedis = await startGateway(build("gov-redis", withRedis(governedConfig(mock.fast))), REDIS_ENV);
    const auth = `Bearer ${GOV_KEY}`;
    const pair = [
      { name: "gov embedded", url: embedded.url, child: embedded.child },
      { name: "gov redis", url: viaRedis.url, child: viaRedis.child },
    ];
    const redisOn = (kind) => pin(redis.pid, kind === "serial" ? 0 : 1);
    for (const t of pair) {
      await wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.warmSec, auth, core: layout("load") });
      await wrk(t.url, { connections: 1, seconds: S.warmSec, auth, core: layout("serial") });
    }
    for (let r = 0; r < Math.min(S.rounds, 3); r++) {
      const round = {};
      let core = layout("serial");
      redisOn("serial");
      for (const t of rotate(pair, r)) {
        const w = await wrk(t.url, { connections: 1, seconds: S.latencySec, auth, core });
        round[t.name] = { p50Us: w.p50_us, p99Us: w.p99_us, errors: w.errorCount };
      }
      core = layout("load");
      redisOn("load");
      for (const t of rotate(pair, r)) {
        // CPU per request of the gateway, and of Redis (what the scripts cost it), over the throughput run.
        const redis0 = cpuMs(redis.pid);
        const [w, , cpu] = await withRss(t.child.pid, () => wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.throughputSec, auth, core }));
        const redisCpu = cpuMs(redis.pid) - redis0;
        Object.assign(round[t.name], { rps: w.rps, errors: round[t.name].errors + w.errorCount, cpuUsPerRequest: (cpu * 1000) / w.requests, redisCpuUsPerRequest: (redisCpu * 1000) / w.requests });
      }
      instances.rounds.push(round);
    }
    await stop(embedded.child);
    await stop(viaRedis.child);
    log(`item 8, Redis beside the embedded store, done (${Math.round((Date.now() - started) / 1000)} s)`);

    // --workers 2 against one process: the plain gateway, and the governed one over Redis.
    const ALL_CORES = `0-${CORES - 1}`;
    const startFree = async (bundle, env) => {
      const port = await freePort();
      // A directory of its own: its state dir (and lock) must not be another running gateway's.
      const cwd = mkdtempSync(join(buildRoot, "run-"));
      const child = spawnPinned(ALL_CORES, process.execPath, [...PROCESS_FLAGS, bundle], { PORT: String(port), HOST: "127.0.0.1", OPENAI_API_KEY: "sk-bench", ...env }, cwd);
      // The gateway logs JSON lines on stdout.
      await waitFor(child, "stdout", env.GWC_WORKERS ? /\d+ workers serving/ : /listening on/, 15_000, "gateway");
      return { child, url: `http://127.0.0.1:${port}` };
    };
    if (mock) pin(mock.child.pid, ALL_CORES);
    pin(process.pid, ALL_CORES);
    const redisBundle = join(buildRoot, "gov-redis", "dist", "gateway.mjs");
    const cases = [
      { name: "plain", bundle: plainBundle ?? build("plain", { accounts: [account("mock", mock.fast)] }), env: {}, auth: "" },
      { name: "gov redis", bundle: redisBundle, env: REDIS_ENV, auth },
    ];
    for (const c of cases) {
      const one = await startFree(c.bundle, c.env);
      const two = await startFree(c.bundle, { ...c.env, GWC_WORKERS: "2" });
      const pairW = [
        { name: "1 process", ...one },
        { name: "--workers 2", ...two },
      ];
      for (const t of pairW) await wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.warmSec, auth: c.auth, core: ALL_CORES });
      const runs = [];
      for (let r = 0; r < Math.min(S.rounds, 3); r++) {
        const run = {};
        for (const t of rotate(pairW, r)) {
          const w = await wrk(t.url, { connections: THROUGHPUT_CONNECTIONS, seconds: S.throughputSec, auth: c.auth, core: ALL_CORES });
          run[t.name] = { rps: w.rps, p50Us: w.p50_us, errors: w.errorCount };
        }
        runs.push(run);
      }
      instances.workers.push({ config: c.name, runs });
      await stop(one.child);
      await stop(two.child);
    }
    await stop(redis);
    log(`item 8, --workers 2, done (${Math.round((Date.now() - started) / 1000)} s)`);
  }
}

for (const t of targets) if (t.child) await stop(t.child);
if (mock) await stop(mock.child);

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

const names = targets.map((t) => t.name);
const med = (pick) => Object.fromEntries(names.map((n) => [n, median(rounds.map((r) => pick(r, n)))]));
const summary = {};
if (ONLY.has("latency")) {
  const p50 = med((r, n) => r.latency[n]?.p50Us);
  const p99 = med((r, n) => r.latency[n]?.p99Us);
  const added = (p, n) => p[n] - p.direct;
  summary.latency = {
    p50Us: p50,
    p99Us: p99,
    addedP50Us: Object.fromEntries(names.slice(1).map((n) => [n, added(p50, n)])),
    addedP99Us: Object.fromEntries(names.slice(1).map((n) => [n, added(p99, n)])),
    p50RatioToFloor: added(p50, "gateway") / added(p50, "floor"),
    p99RatioToFloor: added(p99, "gateway") / added(p99, "floor"),
    errors: rounds.reduce((a, r) => a + Object.values(r.latency).reduce((b, x) => b + x.errors, 0), 0),
  };
}
if (ONLY.has("throughput")) {
  const rps = med((r, n) => r.throughput[n]?.rps);
  const rss = Object.fromEntries(names.slice(1).map((n) => [n, Math.max(...rounds.map((r) => r.throughput[n].rssPeakMiB))]));
  const rssBefore = Object.fromEntries(names.slice(1).map((n) => [n, rounds[0].throughput[n].rssBeforeMiB]));
  summary.throughput = {
    connections: THROUGHPUT_CONNECTIONS,
    rps,
    cpuUsPerRequest: med((r, n) => r.throughput[n]?.cpuUsPerRequest),
    gatewayToFloor: rps.gateway / rps.floor,
    rssPeakMiB: rss,
    rssBeforeFirstLoadMiB: rssBefore,
    tuned: {
      flags: tuned.flags,
      rps: { floor: median(tuned.runs.map((r) => r.floor.rps)), gateway: median(tuned.runs.map((r) => r.gateway.rps)) },
      rssPeakMiB: { floor: Math.max(...tuned.runs.map((r) => r.floor.rssPeakMiB)), gateway: Math.max(...tuned.runs.map((r) => r.gateway.rssPeakMiB)) },
      runs: tuned.runs,
    },
    errors: rounds.reduce((a, r) => a + Object.values(r.throughput).reduce((b, x) => b + x.errors, 0), 0),
  };
}
if (ONLY.has("sse")) {
  const ttfc = med((r, n) => r.sse[n]?.ttfcMs.p50);
  const gap = med((r, n) => r.sse[n]?.gapMs.p99);
  const stretch = med((r, n) => r.sse[n]?.stretchMs.p99);
  const oneWayMax = Object.fromEntries(names.map((n) => [n, Math.max(...rounds.map((r) => r.sse[n].oneWayMs.p100))]));
  const total = (key) => Object.fromEntries(names.map((n) => [n, rounds.reduce((a, r) => a + r.sse[n][key], 0)]));
  summary.sse = {
    ttfcP50Ms: ttfc,
    gapP99Ms: gap,
    gapStretchP99Ms: stretch,
    addedTtfcP50Ms: Object.fromEntries(names.slice(1).map((n) => [n, ttfc[n] - ttfc.direct])),
    addedGapP99Ms: Object.fromEntries(names.slice(1).map((n) => [n, gap[n] - gap.direct])),
    addedGapStretchP99Ms: Object.fromEntries(names.slice(1).map((n) => [n, stretch[n] - stretch.direct])),
    oneWayMaxMs: oneWayMax,
    streams: total("streams"),
    complete: total("complete"),
    chunksExpected: total("chunksExpected"),
    chunksReceived: total("chunksReceived"),
    lost: total("lost"),
    outOfOrder: total("outOfOrder"),
    coalesced: total("coalesced"),
  };
}
if (ONLY.has("isolation")) {
  summary.isolation = {
    healthyP99Us: median(isolation.rounds.map((r) => r.healthy.p99Us)),
    saturatedP99Us: median(isolation.rounds.map((r) => r.saturated.p99Us)),
    // As for items 1 and 2: the ratio of the medians across rounds (each round's own ratio is in `rounds`).
    p99Ratio: median(isolation.rounds.map((r) => r.saturated.p99Us)) / median(isolation.rounds.map((r) => r.healthy.p99Us)),
    perRoundRatios: isolation.rounds.map((r) => Math.round(r.p99Ratio * 100) / 100),
    slowMaxInFlight: Math.max(...isolation.rounds.map((r) => r.saturated.slowMaxInFlight)),
    errors: isolation.rounds.reduce((a, r) => a + r.healthy.errors + r.saturated.errors, 0),
  };
}

// Item 9: the realistic gateway against the floor, the same figures as the plain gateway's.
if (names.includes("realistic")) {
  const R = "realistic";
  const L = summary.latency;
  const T = summary.throughput;
  const E = summary.sse;
  summary.realistic = {
    keys: REAL_KEYS,
    observability: realistic.observability,
    addedP50Us: L ? L.addedP50Us[R] : NaN,
    addedP99Us: L ? L.addedP99Us[R] : NaN,
    p50RatioToFloor: L ? L.addedP50Us[R] / L.addedP50Us.floor : NaN,
    p99RatioToFloor: L ? L.addedP99Us[R] / L.addedP99Us.floor : NaN,
    rps: T ? T.rps[R] : NaN,
    throughputToFloor: T ? T.rps[R] / T.rps.floor : NaN,
    throughputToGateway: T ? T.rps[R] / T.rps.gateway : NaN,
    rssPeakMiB: T ? T.rssPeakMiB[R] : NaN,
    cpuUsPerRequest: T ? T.cpuUsPerRequest[R] : NaN,
    cpuToFloor: T ? T.cpuUsPerRequest[R] / T.cpuUsPerRequest.floor : NaN,
    addedTtfcP50Ms: E ? E.addedTtfcP50Ms[R] : NaN,
    sseChunks: E ? `${E.chunksReceived[R]}/${E.chunksExpected[R]}` : undefined,
  };
}

// Item 8: what metrics and the access log cost, the same gateway with them on ("gateway") and off ("gateway-quiet").
if (names.includes("gateway-quiet") && (summary.latency || summary.throughput)) {
  const logTarget = targets.find((t) => t.name === "gateway");
  const logBytes = logTarget?.logFile && existsSync(logTarget.logFile) ? statSync(logTarget.logFile).size : NaN;
  summary.observability = {
    p50AddedUs: summary.latency ? summary.latency.p50Us.gateway - summary.latency.p50Us["gateway-quiet"] : NaN,
    p99AddedUs: summary.latency ? summary.latency.p99Us.gateway - summary.latency.p99Us["gateway-quiet"] : NaN,
    throughputCost: summary.throughput ? 1 - summary.throughput.rps.gateway / summary.throughput.rps["gateway-quiet"] : NaN,
    accessLogBytes: logBytes,
  };
}

// Targets from the issue: [label, value, limit, met]
const checks = [];
const check = (label, value, limit, ok) => checks.push({ label, value, limit, met: ok === null ? null : Boolean(ok) });
if (summary.realistic) {
  const R = summary.realistic;
  if (summary.latency) {
    check("realistic: added latency p50 vs floor's", `${fx(R.p50RatioToFloor)}x`, "≤ 1.25x", R.p50RatioToFloor <= 1.25);
    check("realistic: added latency p99 vs floor's", `${fx(R.p99RatioToFloor)}x`, "≤ 1.5x", R.p99RatioToFloor <= 1.5);
  }
  if (summary.throughput) {
    check("realistic: throughput vs floor's", `${fx(R.throughputToFloor)}x`, "≥ 0.8x", R.throughputToFloor >= 0.8);
    check("realistic: peak RSS under load", `${fx(R.rssPeakMiB, 0)} MiB`, "≤ 100 MiB", R.rssPeakMiB <= 100);
  }
  if (summary.sse) check("realistic: SSE added TTFC p50", `${fx(R.addedTtfcP50Ms, 3)} ms`, "≤ 0.3 ms", R.addedTtfcP50Ms <= 0.3);
}
if (summary.latency) {
  const L = summary.latency;
  check("added latency p50 vs floor's", `${fx(L.p50RatioToFloor)}x`, "≤ 1.25x", L.p50RatioToFloor <= 1.25);
  check("added latency p99 vs floor's", `${fx(L.p99RatioToFloor)}x`, "≤ 1.5x", L.p99RatioToFloor <= 1.5);
  if (L.addedP50Us["gateway+gov"] !== undefined) {
    // The issue holds the latency targets "with governance on" too.
    const p50 = L.addedP50Us["gateway+gov"] / L.addedP50Us.floor;
    const p99 = L.addedP99Us["gateway+gov"] / L.addedP99Us.floor;
    check("added latency p50 vs floor's, governance on", `${fx(p50)}x`, "≤ 1.25x", p50 <= 1.25);
    check("added latency p99 vs floor's, governance on", `${fx(p99)}x`, "≤ 1.5x", p99 <= 1.5);
  }
}
if (summary.throughput) {
  check("throughput vs floor's", `${fx(summary.throughput.gatewayToFloor)}x`, "≥ 0.8x", summary.throughput.gatewayToFloor >= 0.8);
  check("gateway RSS under load", `${fx(summary.throughput.rssPeakMiB.gateway, 0)} MiB`, "≤ 100 MB", summary.throughput.rssPeakMiB.gateway * 1.048576 <= 100);
  const t = summary.throughput.tuned;
  if (Number.isFinite(t.rssPeakMiB.gateway)) {
    check(`gateway RSS under load, ${t.flags.join(" ")}`, `${fx(t.rssPeakMiB.gateway, 0)} MiB`, "≤ 100 MB", t.rssPeakMiB.gateway * 1.048576 <= 100);
  }
}
if (summary.sse) {
  const s = summary.sse;
  check("SSE added TTFC p50", `${fx(s.addedTtfcP50Ms.gateway, 3)} ms`, "≤ 0.3 ms", s.addedTtfcP50Ms.gateway <= 0.3);
  check("SSE added inter-chunk gap p99", `${fx(s.addedGapStretchP99Ms.gateway, 3)} ms`, "≤ 0.3 ms", s.addedGapStretchP99Ms.gateway <= 0.3);
  check("SSE every chunk, in order, unbuffered", `${s.chunksReceived.gateway}/${s.chunksExpected.gateway}`, "all", s.lost.gateway === 0 && s.outOfOrder.gateway === 0 && s.complete.gateway === s.streams.gateway && s.oneWayMaxMs.gateway < SSE.intervalMs);
}
if (summary.isolation) check("pool isolation p99 ratio", `${fx(summary.isolation.p99Ratio)}`, "≤ 1.2", summary.isolation.p99Ratio <= 1.2);
if (micro) {
  const worst = Math.max(...micro.pick.map((p) => p.aliasNs));
  check("alias pick, 2–64 accounts (worst)", `${fx(worst, 1)} ns`, "≤ 30 ns", worst <= 30);
  if (Array.isArray(micro.fullDecision) && micro.fullDecision.length > 0) {
    const full = Math.max(...micro.fullDecision.map((d) => d.ns));
    check("full per-request decision (worst)", `${fx(full / 1000)} µs`, "≤ 2 µs", full <= 2000);
  } else check("full per-request decision (worst)", "not available", "≤ 2 µs", null);
}
check("governance on (items 1–3)", governance.available ? "measured" : "not yet available", "(visible cost)", null);
if (summary.observability) {
  const O = summary.observability;
  if (summary.throughput) check("metrics + access log: throughput cost", `${fx(O.throughputCost * 100, 1)}%`, "≤ 5%", O.throughputCost <= 0.05);
  if (summary.latency) check("metrics + access log: added p50", `${fx(O.p50AddedUs, 1)} µs`, "≤ 10 µs", O.p50AddedUs <= 10);
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

function fx(x, digits = 2) {
  if (!Number.isFinite(x)) return "—";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const us = (x) => (Number.isFinite(x) ? `${fx(x, 0)} µs` : "—");
const ms = (x, d = 3) => (Number.isFinite(x) ? `${fx(x, d)} ms` : "—");

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(headers), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

const lines = [];
const out = (s = "") => lines.push(s);
out(`gwc bench (${QUICK ? "quick" : "full"}): ${meta.date.slice(0, 10)}, node ${meta.node}, ${meta.cpu}, ${CORES} cores, ${S.rounds} interleaved rounds, medians across rounds`);
out(`gateway built from commit ${meta.commit}${meta.runtimeChangesNotCommitted > 0 ? ` plus ${meta.runtimeChangesNotCommitted} uncommitted file(s) in runtime/ and compiler/` : ""}`);
out(`load: ${meta.loadGenerator}; pinning: ${meta.pinning}${STEADY ? "; floor and gateways run with --no-memory-reducer (--steady-heap)" : ""}`);
out();
const cols = ["#", "measure", ...names, "result", "target", "met"];
const mark = (c) => (c === undefined ? "" : c.met === null ? "n/a" : c.met ? "yes" : "MISSED");
const findCheck = (label) => checks.find((c) => c.label === label);
const main = [];
const row = (n, measure, perTarget, result, checkLabel) => {
  const c = checkLabel ? findCheck(checkLabel) : undefined;
  main.push([n, measure, ...names.map((t) => perTarget[t] ?? ""), result, c?.limit ?? "", mark(c)]);
};
if (summary.latency) {
  const L = summary.latency;
  row(1, "latency p50, 1 connection", Object.fromEntries(names.map((n) => [n, us(L.p50Us[n])])), `added ${us(L.addedP50Us.gateway)} vs floor's ${us(L.addedP50Us.floor)} = ${fx(L.p50RatioToFloor)}x`, "added latency p50 vs floor's");
  row(1, "latency p99, 1 connection", Object.fromEntries(names.map((n) => [n, us(L.p99Us[n])])), `added ${us(L.addedP99Us.gateway)} vs floor's ${us(L.addedP99Us.floor)} = ${fx(L.p99RatioToFloor)}x`, "added latency p99 vs floor's");
}
if (summary.throughput) {
  const T = summary.throughput;
  row(2, `throughput, ${T.connections} connections`, Object.fromEntries(names.map((n) => [n, `${fx(T.rps[n], 0)} req/s`])), `gateway/floor = ${fx(T.gatewayToFloor)}x`, "throughput vs floor's");
  row(2, "CPU per request under load (the process's user + system time / requests)", Object.fromEntries(names.slice(1).map((n) => [n, us(T.cpuUsPerRequest[n])])), `gateway ${fx(T.cpuUsPerRequest.gateway / T.cpuUsPerRequest.floor)}x the floor's`);
  row(2, "RSS: before the first load run → peak under load", Object.fromEntries(names.slice(1).map((n) => [n, `${fx(T.rssBeforeFirstLoadMiB[n], 0)} → ${fx(T.rssPeakMiB[n], 0)} MiB`])), `gateway peak ${fx(T.rssPeakMiB.gateway, 0)} MiB (floor's ${fx(T.rssPeakMiB.floor, 0)})`, "gateway RSS under load");
  const tn = T.tuned;
  if (Number.isFinite(tn.rssPeakMiB.gateway)) {
    row(
      2,
      `peak RSS and throughput with ${tn.flags.join(" ")}`,
      { floor: `${fx(tn.rssPeakMiB.floor, 0)} MiB, ${fx(tn.rps.floor, 0)} req/s`, gateway: `${fx(tn.rssPeakMiB.gateway, 0)} MiB, ${fx(tn.rps.gateway, 0)} req/s` },
      `gateway/floor = ${fx(tn.rps.gateway / tn.rps.floor)}x; the flag as README recommends`,
      `gateway RSS under load, ${tn.flags.join(" ")}`,
    );
  }
}
if (summary.sse) {
  const E = summary.sse;
  row(3, "SSE time to first chunk p50", Object.fromEntries(names.map((n) => [n, ms(E.ttfcP50Ms[n])])), `added ${ms(E.addedTtfcP50Ms.gateway)} (floor ${ms(E.addedTtfcP50Ms.floor)})`, "SSE added TTFC p50");
  row(3, "SSE inter-chunk gap stretch p99 (gap seen − gap sent)", Object.fromEntries(names.map((n) => [n, ms(E.gapStretchP99Ms[n])])), `added ${ms(E.addedGapStretchP99Ms.gateway)} (floor ${ms(E.addedGapStretchP99Ms.floor)})`, "SSE added inter-chunk gap p99");
  row(3, "SSE inter-chunk gap p99 (raw, incl. the mock's timer jitter)", Object.fromEntries(names.map((n) => [n, ms(E.gapP99Ms[n])])), `added ${ms(E.addedGapP99Ms.gateway)} (floor ${ms(E.addedGapP99Ms.floor)})`);
  row(3, "SSE chunks received / max one-way delay", Object.fromEntries(names.map((n) => [n, `${E.chunksReceived[n]}/${E.chunksExpected[n]}, ${ms(E.oneWayMaxMs[n], 2)}`])), `${E.complete.gateway}/${E.streams.gateway} streams complete, ${E.lost.gateway} lost, ${E.outOfOrder.gateway} out of order`, "SSE every chunk, in order, unbuffered");
}
if (summary.isolation) {
  const I = summary.isolation;
  row(4, `pool isolation: p99, ${ISO.measureConnections} conns to the healthy provider`, { gateway: `${us(I.healthyP99Us)} → ${us(I.saturatedP99Us)}` }, `saturated/healthy = ${fx(I.p99Ratio)} (rounds: ${I.perRoundRatios.join(", ")}; the slow upstream saw ≤ ${I.slowMaxInFlight} in flight)`, "pool isolation p99 ratio");
}
if (micro) {
  const lo = Math.min(...micro.pick.map((p) => p.aliasNs));
  const hi = Math.max(...micro.pick.map((p) => p.aliasNs));
  row(5, "alias pick, 2–64 accounts", {}, `${fx(lo, 1)}–${fx(hi, 1)} ns/op (linear scan ${fx(micro.pick[0].linearScanNs, 1)}–${fx(micro.pick.at(-1).linearScanNs, 1)} ns)`, "alias pick, 2–64 accounts (worst)");
  const full = micro.fullDecision;
  row(
    5,
    "full per-request decision (key, limits, budget, pick, settle)",
    {},
    Array.isArray(full) ? `${full.map((d) => `${fx(d.ns / 1000)} µs (${d.accounts})`).join(", ")}; routing alone ${micro.routing.map((d) => `${fx(d.ns, 0)} ns (${d.accounts})`).join(", ")}, ${micro.routing.map((d) => fx(d.nsOneOpen, 0)).join("/")} ns with one breaker open` : `not available: ${full.error}`,
    "full per-request decision (worst)",
  );
}
if (compile) {
  row(6, "gwc build (accounts/keys)", {}, compile.rows.map((r) => `${r.accounts}/${r.virtualKeys}: ${fx(r.buildMsMedian / 1000)} s, ${fx(r.bundleBytes / 1024, 0)} KiB`).join("; "));
}
if (micro && Array.isArray(micro.scale) && micro.scale.length > 0) {
  row(5, "full decision, a different key each time (CPU time)", {}, micro.scale.map((d) => `${fx(d.cpuNs / 1000)} µs (${d.accounts} accounts, ${d.keys} keys; plan + governance ${fx(d.planAndGovernanceHeapMiB, 1)} MiB of heap)`).join("; "));
}
if (scale?.large) {
  const L = scale.large;
  row(10, `${L.accounts} accounts, ${L.keys} keys: build, start, memory, load`, {}, `build ${fx(L.buildMs / 1000)} s (bundle ${fx(L.bundleBytes / 1048576, 1)} MiB, plan ${fx(L.planBytes / 1048576, 1)} MiB); ready in ${fx(L.startMs / 1000)} s; RSS ${fx(L.rssIdleMiB, 0)} MiB idle → ${fx(L.rssPeakMiB, 0)} MiB peak; ${fx(L.rps, 0)} req/s at ${THROUGHPUT_CONNECTIONS} conns, p50 ${us(L.p50Us)}, p99 ${us(L.p99Us)}, CPU ${us(L.cpuUsPerRequest)} a request, ${L.errors} errors`);
  const idle = scale.reloads.filter((r) => !r.underLoad);
  const loaded = scale.reloads.find((r) => r.underLoad);
  row(10, "the same: rebuild and SIGHUP reload", {}, `rebuild ${idle.map((r) => fx(r.rebuildMs / 1000)).join("/")} s; reload ${idle.map((r) => fx(r.reloadMs, 0)).join("/")} ms idle, ${fx(loaded?.reloadMs, 0)} ms under load (${loaded?.loadErrors} errors in ${loaded?.loadRequests} requests); RSS after ${fx(scale.rssAfterReloadsMiB, 0)} MiB`);
}
if (scale?.saturation) {
  const Z = scale.saturation;
  const f = (p) => `${p.name}: ${p.admitted.count} admitted (p50 ${fx(p.admitted.p50Ms, 1)} ms, p99 ${fx(p.admitted.p99Ms, 1)} ms), ${p.shed.count} shed (p50 ${fx(p.shed.p50Ms, 2)} ms, p99 ${fx(p.shed.p99Ms, 2)} ms), RSS ${fx(p.rssAfterMiB, 0)} MiB`;
  row(10, `saturation: ${fx(Z.capacityRps, 0)} req/s capacity (2 × ${Z.pool.max_connections} connections, ${Z.delayMs} ms upstream), open loop`, {}, Z.phases.map(f).join("; "));
}
row(7, "governance on (virtual key, budgets, rate limits)", {}, governance.available ? `the gateway+gov column (enforced: ${governance.withoutKey} without the key, ${governance.withKey} with it)` : `not available: ${governance.reason}`, "governance on (items 1–3)");
if (summary.realistic) {
  const R = summary.realistic;
  const rc = (label) => mark(findCheck(label));
  const what = `${R.keys} keys rotating, ${R.observability ? "/metrics and access log on" : "no /metrics or access log in this runtime yet"}`;
  if (summary.latency) row(9, `realistic (${what}): added p50 / p99 vs floor's`, {}, `${us(R.addedP50Us)} = ${fx(R.p50RatioToFloor)}x (${rc("realistic: added latency p50 vs floor's")}); ${us(R.addedP99Us)} = ${fx(R.p99RatioToFloor)}x (${rc("realistic: added latency p99 vs floor's")})`, "realistic: added latency p50 vs floor's");
  if (summary.throughput) row(9, `realistic (${what}): throughput vs floor's, peak RSS`, {}, `${fx(R.rps, 0)} req/s = ${fx(R.throughputToFloor)}x (${rc("realistic: throughput vs floor's")}; ${fx(R.throughputToGateway)}x the plain gateway's); peak RSS ${fx(R.rssPeakMiB, 0)} MiB (${rc("realistic: peak RSS under load")}); CPU ${us(R.cpuUsPerRequest)} a request = ${fx(R.cpuToFloor)}x the floor's`, "realistic: throughput vs floor's");
  if (summary.sse) row(9, "realistic: SSE added time to first chunk", {}, `${ms(R.addedTtfcP50Ms)}, ${R.sseChunks} chunks`, "realistic: SSE added TTFC p50");
}
if (summary.observability) {
  const O = summary.observability;
  row(
    8,
    "metrics + access log on (gateway) vs off (gateway-quiet)",
    {},
    `throughput ${Number.isFinite(O.throughputCost) ? `${fx(O.throughputCost * 100, 1)}% lower` : "—"}, p50 ${Number.isFinite(O.p50AddedUs) ? `${fx(O.p50AddedUs, 1)} µs` : "—"} added (p99 ${Number.isFinite(O.p99AddedUs) ? `${fx(O.p99AddedUs, 0)} µs` : "—"}); ${fx(O.accessLogBytes / 1048576, 1)} MiB of access log written`,
    summary.throughput ? "metrics + access log: throughput cost" : "metrics + access log: added p50",
  );
}
out(table(cols, main));

if (names.includes("gateway+gov")) {
  const g = "gateway+gov";
  const parts = [];
  if (summary.latency) {
    const L = summary.latency;
    parts.push(`latency p50 ${us(L.p50Us[g])} (added ${us(L.addedP50Us[g])} = ${fx(L.addedP50Us[g] / L.addedP50Us.floor)}x the floor's; governance itself ${us(L.p50Us[g] - L.p50Us.gateway)})`);
    parts.push(`latency p99 ${us(L.p99Us[g])} (added ${us(L.addedP99Us[g])} = ${fx(L.addedP99Us[g] / L.addedP99Us.floor)}x the floor's)`);
  }
  if (summary.throughput) {
    const T = summary.throughput;
    parts.push(`throughput ${fx(T.rps[g], 0)} req/s = ${fx(T.rps[g] / T.rps.floor)}x the floor's, ${fx(T.rps[g] / T.rps.gateway)}x the plain gateway's; peak RSS ${fx(T.rssPeakMiB[g], 0)} MiB`);
  }
  if (summary.sse) {
    const E = summary.sse;
    parts.push(`SSE added TTFC p50 ${ms(E.addedTtfcP50Ms[g])}, added gap stretch p99 ${ms(E.addedGapStretchP99Ms[g])}, ${E.chunksReceived[g]}/${E.chunksExpected[g]} chunks, ${E.complete[g]}/${E.streams[g]} streams complete`);
  }
  out();
  out("Item 7, governance on (gateway+gov: a virtual key, budgets at organization/team/key level, request and token limits):");
  for (const p of parts) out(`  ${p}`);
}
if (micro) {
  out();
  out("Item 5, micro (ns/op, median of repetitions; loop overhead " + fx(micro.loopOverheadNs, 1) + " ns included):");
  out(table(["accounts", "alias pick", "alias pick + Math.random()", "linear scan"], micro.pick.map((p) => [p.accounts, fx(p.aliasNs, 1), fx(p.aliasWithMathRandomNs, 1), fx(p.linearScanNs, 1)])));
  if (Array.isArray(micro.fullDecision)) {
    out();
    out("Item 5, full per-request decision (ns/op): all of it, then its parts measured alone");
    out(
      table(
        ["accounts in route", "full decision", "key lookup", "admission (limits)", "budget reserve + settle", "routing alone (no governance)", "routing, one breaker open"],
        micro.fullDecision.map((d) => {
          const routing = micro.routing.find((r) => r.accounts === d.accounts);
          return [d.accounts, fx(d.ns, 0), fx(d.parts.identifyNs, 0), fx(d.parts.admitNs, 0), fx(d.parts.reserveAndSettleNs, 0), fx(routing?.ns, 0), fx(routing?.nsOneOpen, 0)];
        }),
      ),
    );
  }
}
if (compile) {
  out();
  out(`Item 6, gwc build end to end (median of ${compile.runs}):`);
  out(table(["accounts", "virtual keys", "config", "build p50", "build max", "bundle"], compile.rows.map((r) => [r.accounts, r.virtualKeys, `${fx(r.configBytes / 1024, 0)} KiB`, `${fx(r.buildMsMedian, 0)} ms`, `${fx(r.buildMsMax, 0)} ms`, `${fx(r.bundleBytes / 1024, 0)} KiB`])));
}
if (profiles) {
  for (const [who, p] of Object.entries(profiles)) {
    out();
    if (p.error) {
      out(`profile ${who}: ${p.error}`);
      continue;
    }
    out(`profile ${who} under ${THROUGHPUT_CONNECTIONS} connections (${p.file}, ${p.samples} samples, ${p.busyPct}% busy): ${p.categories.slice(0, 6).map((c) => `${c.name} ${c.selfPct}%`).join(", ")}`);
    const a = p.allocation;
    out(`  allocated per request: ${a === undefined ? "not measured" : a.error ? `not measured (${a.error})` : `${fx(a.bytesPerRequest / 1024, 1)} KiB (V8 sampling heap profiler over ${a.requests} requests)`}`);
    out("  self time:");
    for (const t of p.top.slice(0, 15)) out(`  ${String(t.selfPct).padStart(5)}%  ${t.fn}`);
    out("  total time (inclusive):");
    for (const t of p.inclusive.slice(0, 25)) out(`  ${String(t.totalPct).padStart(5)}%  ${t.fn}`);
  }
}
if (instances.rounds.length > 0) {
  const m = (name, key) => median(instances.rounds.map((r) => r[name][key]));
  const direct = summary.latency?.p50Us?.direct;
  instances.summary = Object.fromEntries(
    ["gov embedded", "gov redis"].map((n) => [n, { p50Us: m(n, "p50Us"), p99Us: m(n, "p99Us"), rps: m(n, "rps"), cpuUsPerRequest: m(n, "cpuUsPerRequest"), redisCpuUsPerRequest: m(n, "redisCpuUsPerRequest"), errors: instances.rounds.reduce((a, r) => a + r[n].errors, 0) }]),
  );
  const E = instances.summary["gov embedded"];
  const R = instances.summary["gov redis"];
  out();
  out("Item 8, several instances: the governed gateway over Redis (one script before the upstream, TAKE, and one after, SETTLE) beside the embedded store, same rounds (per-round figures in the JSON):");
  out(
    table(
      ["store", "latency p50", "latency p99", `throughput (${THROUGHPUT_CONNECTIONS} conns)`, "gateway CPU/req", "Redis CPU/req", "errors"],
      [E, R].map((x, i) => [i === 0 ? "embedded" : "redis", us(x.p50Us), us(x.p99Us), `${fx(x.rps, 0)} req/s`, us(x.cpuUsPerRequest), i === 0 ? "-" : us(x.redisCpuUsPerRequest), x.errors]),
    ),
  );
  out(`  Redis adds ${us(R.p50Us - E.p50Us)} at p50 (goal ≤ +150 µs)${direct === undefined ? "" : `; added over direct: ${us(R.p50Us - direct)}`}, and serves ${fx(R.rps / E.rps)}x the embedded store's throughput (goal ≥ 0.7x)`);
}
for (const w of instances.workers) {
  const one = median(w.runs.map((r) => r["1 process"].rps));
  const two = median(w.runs.map((r) => r["--workers 2"].rps));
  w.summary = { oneRps: one, twoRps: two, ratio: two / one };
  out(`Item 8, ${w.config}: --workers 2 ${fx(two, 0)} req/s against one process's ${fx(one, 0)} req/s = ${fx(two / one)}x (unpinned; wrk and the mock share the ${CORES} cores)`);
}
const foreign = [...rounds.map((r) => r.foreignCpuPct), ...isolation.rounds.map((r) => r.foreignCpuPct)].filter((x) => Number.isFinite(x));
if (foreign.length > 0) {
  out();
  out(`other processes on the machine, per round (% of one core): ${rounds.map((r) => r.foreignCpuPct).join(", ")}${isolation.rounds.length > 0 ? `; isolation rounds: ${isolation.rounds.map((r) => r.foreignCpuPct).join(", ")}` : ""}`);
  if (Math.max(...foreign) > 10) out("WARNING: something else was busy on this machine during some rounds; their p99 rows are suspect (medians across rounds soften this; rerun on a quiet machine)");
}
meta.loadAvgAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
out();
out(`load average (1/5/15 min) at start ${meta.loadAvgAtStart.join(", ")}; at end ${meta.loadAvgAtEnd.join(", ")}`);
const missed = checks.filter((c) => c.met === false);
out();
out(checks.every((c) => c.met === null) ? "targets: none measured" : missed.length === 0 ? "targets: all measured targets met" : `targets MISSED: ${missed.map((c) => `${c.label} (${c.value}, target ${c.limit})`).join("; ")}`);
const errors = (summary.latency?.errors ?? 0) + (summary.throughput?.errors ?? 0) + (summary.isolation?.errors ?? 0);
if (errors > 0) out(`WARNING: ${errors} wrk errors (non-2xx, timeouts or socket errors) during measured runs; see the JSON`);
out(`wall time ${Math.round((Date.now() - started) / 1000)} s`);
console.log(lines.join("\n"));

mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `${NAME}.json`);
writeFileSync(file, JSON.stringify({ meta, summary, checks, governance, realistic, rounds, isolation, micro, compile, scale, profiles, instances, table: lines }, null, 2) + "\n");
log(`wrote ${file.slice(root.length + 1)}`);
process.exit(0);
