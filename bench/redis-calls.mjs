// The Redis store's calls for one governed request, in process, against a
// local redis-server: the separate calls (request count, reservation, then
// settlement and token count) beside the combined ones gwc makes now (TAKE,
// then SETTLE carrying the token count). Sequential, so each figure is one
// request's wall time; CPU per request of this process and of redis-server
// from /proc, the figures a shared machine disturbs least.
//
//   node bench/redis-calls.mjs [requests per round, default 4000]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const N = Number(process.argv[2] ?? 4000);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const built = await esbuild.build({ entryPoints: [join(root, "runtime", "state-store-redis.ts")], bundle: true, write: false, format: "esm", platform: "node", packages: "external" });
const tmp = mkdtempSync(join(root, "bench", ".redis-calls-"));
const file = join(tmp, "store.mjs");
(await import("node:fs")).writeFileSync(file, built.outputFiles[0].text);
const { RedisStore } = await import(file);

const port = await new Promise((ok) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => ok(p));
  });
});
const dir = mkdtempSync(join(tmpdir(), "gwc-redis-calls-"));
const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""], { stdio: ["ignore", "pipe", "inherit"] });
await new Promise((ok) => redis.stdout.on("data", (d) => d.toString().includes("Ready to accept") && ok()));
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
};

const store = new RedisStore({ urlEnv: "X", prefix: "calls:", leaseTtlMs: 30_000, whenDown: "reject" }, `redis://127.0.0.1:${port}`);
// Budget leasing (state.redis.budget_leasing) with its defaults: $1 slices, reports every 100 ms.
const leased = new RedisStore({ urlEnv: "X", prefix: "leased:", leaseTtlMs: 30_000, whenDown: "reject", budgetLeasing: { maxSliceNano: 1e9, reportMs: 100 } }, `redis://127.0.0.1:${port}`);
await Promise.all([store.ready(3000), leased.ready(3000)]);
const FAR = Date.now() + 86_400_000;
// The bench's governed config (lib/governance.mjs): five budget lines (org monthly, team daily + monthly, key daily + monthly), a request and a token window.
const money = ["org|monthly", "team|daily", "team|monthly", "key|daily", "key|monthly"].map((k) => ({ key: k, cap: 1e15, expiresAt: FAR }));
const keys = money.map((l) => l.key);
const req = { key: "key|req", limit: 1e12, expiresAt: FAR };
const tok = { key: "key|tok", limit: 1e15, expiresAt: FAR };
const AMOUNT = 5_000_000;

const ways = {
  separate: async () => {
    await store.count([req], 1);
    await store.reserve(money, AMOUNT);
    // After the answer (the caller does not wait): the settlement, then the token count.
    await store.settle(keys, AMOUNT, 1_000_000);
    await store.count([tok], 30, true);
  },
  combined: async () => {
    await store.take({ counts: [req], forced: [], slot: undefined, money, amount: AMOUNT });
    await store.settleCounting(keys, AMOUNT, 1_000_000, [tok], 30);
  },
  // A key with budgets and no rate limit: TAKE and SETTLE per request, or leased slices.
  "budgets only": async () => {
    await store.take({ counts: [], forced: [], slot: undefined, money, amount: AMOUNT });
    await store.settle(keys, AMOUNT, 1_000_000);
  },
  "budgets only, leased": async () => {
    await leased.take({ counts: [], forced: [], slot: undefined, money, amount: AMOUNT });
    await leased.settle(keys, AMOUNT, 1_000_000);
  },
};
const results = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
for (let round = 0; round < 3; round++) {
  for (const [name, once] of round % 2 === 0 ? Object.entries(ways) : Object.entries(ways).reverse()) {
    for (let i = 0; i < 200; i++) await once();
    const c0 = cpuMs(process.pid);
    const r0 = cpuMs(redis.pid);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await once();
    const ms = performance.now() - t0;
    results[name].push({ wallUs: (ms * 1000) / N, cpuUs: ((cpuMs(process.pid) - c0) * 1000) / N, redisCpuUs: ((cpuMs(redis.pid) - r0) * 1000) / N });
  }
}
await Promise.all([store.close(), leased.close()]);
redis.kill("SIGTERM");
rmSync(tmp, { recursive: true, force: true });
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${N} requests a round, 3 rounds, medians (load average ${(await import("node:os")).loadavg().map((x) => x.toFixed(2)).join(", ")})`);
console.log("calls                 wall/request  client CPU/request  Redis CPU/request");
for (const [name, rs] of Object.entries(results)) {
  console.log(`${name.padEnd(21)} ${median(rs.map((r) => r.wallUs)).toFixed(0).padStart(9)} µs  ${median(rs.map((r) => r.cpuUs)).toFixed(0).padStart(14)} µs  ${median(rs.map((r) => r.redisCpuUs)).toFixed(0).padStart(13)} µs`);
}
process.exit(0);
