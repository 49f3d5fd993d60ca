// Compile-time benchmark: `gwc build` end to end (a fresh process, as CI runs
// it) on generated configs from 10 to 10,000 accounts and virtual keys.
// Prints a table and writes bench/results/compile.json.
//
//   npm run bench:compile            (after npm ci / npm run build)
//
// bench/run.mjs (`npm run bench`) imports runCompileBench() for its item 6.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const gwc = join(root, "build", "gwc.mjs");
const SIZES = [
  { accounts: 10, keys: 10 },
  { accounts: 1000, keys: 1000 },
  { accounts: 1000, keys: 10000 },
  { accounts: 10000, keys: 10000 },
];
const PROVIDERS = ["openai", "anthropic", "groq", "mistral", "gemini"];

/** A realistic large config: routes of 10 accounts, paired fallbacks, teams, budgets, limits. */
function generate({ accounts: n, keys: m }) {
  const accounts = Array.from({ length: n }, (_, i) => ({
    id: `acct-${i}`,
    provider: PROVIDERS[i % PROVIDERS.length],
    api_key: `\${KEY_${i % 50}}`,
    base_url: PROVIDERS[i % PROVIDERS.length] === "anthropic" ? `http://10.0.${i % 250}.1:8080` : `http://10.0.${i % 250}.1:8080/v1`,
    weight: 1 + ((i * 7919) % 100),
    ...(i % 10 === 0 ? { rate_limit: { request_max_limit: 1000, request_reset_duration: "1m" } } : {}),
  }));
  const routeCount = Math.ceil(n / 10);
  const routes = Array.from({ length: routeCount }, (_, r) => ({
    model: `model-${r}`,
    targets: accounts.slice(r * 10, r * 10 + 10).map((a) => ({ account: a.id })),
    ...(r % 2 === 0 && r + 1 < routeCount ? { fallbacks: [`model-${r + 1}`] } : {}),
  }));
  const teams = Array.from({ length: Math.max(1, Math.ceil(m / 100)) }, (_, t) => ({ id: `team-${t}`, budget: { monthly_limit_usd: 10000 } }));
  const virtual_keys = Array.from({ length: m }, (_, k) => ({
    id: `vk-${k}`,
    key_sha256: createHash("sha256").update(`key-${k}`).digest("hex"),
    team: teams[k % teams.length].id,
    budget: { daily_limit_usd: 10, monthly_limit_usd: 100 },
    rate_limit: { request_max_limit: 600, request_reset_duration: "1m" },
  }));
  const pricing = Object.fromEntries(routes.map((r) => [r.model, { input_per_mtok_usd: 1, output_per_mtok_usd: 4 }]));
  return { accounts, routes, organization: { id: "bench", budget: { monthly_limit_usd: 1000000 } }, teams, virtual_keys, pricing };
}

/** Times `runs` builds of each size; returns one row per size. Bounded: sizes × runs builds, each ≤ 120 s. */
export function runCompileBench({ runs = 5, sizes = SIZES } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gwc-bench-compile-"));
  const rows = [];
  try {
    for (const size of sizes) {
      const config = join(dir, `config-${size.accounts}-${size.keys}.json`);
      writeFileSync(config, JSON.stringify(generate(size), null, 2));
      const out = join(dir, `out-${size.accounts}-${size.keys}`);
      const times = [];
      for (let i = 0; i < runs; i++) {
        const start = process.hrtime.bigint();
        execFileSync(process.execPath, [gwc, "build", config, "-o", out], { stdio: "ignore", timeout: 120_000 });
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      times.sort((a, b) => a - b);
      rows.push({
        accounts: size.accounts,
        virtualKeys: size.keys,
        configBytes: statSync(config).size,
        buildMsMedian: Math.round(times[Math.floor(times.length / 2)]),
        buildMsMax: Math.round(times.at(-1)),
        bundleBytes: statSync(join(out, "gateway.mjs")).size,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const runs = Number(process.env.RUNS ?? 5);
  const rows = runCompileBench({ runs });
  const kib = (b) => `${(b / 1024).toFixed(0)} KiB`;
  console.log(`gwc build, end to end, median of ${runs} runs (node ${process.version}, ${new Date().toISOString().slice(0, 10)})`);
  console.log("accounts | virtual keys | config   | build p50 | build max | bundle");
  console.log("-------- | ------------ | -------- | --------- | --------- | ------");
  for (const r of rows) {
    console.log(
      `${String(r.accounts).padStart(8)} | ${String(r.virtualKeys).padStart(12)} | ${kib(r.configBytes).padStart(8)} | ${`${r.buildMsMedian} ms`.padStart(9)} | ${`${r.buildMsMax} ms`.padStart(9)} | ${kib(r.bundleBytes)}`,
    );
  }
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  writeFileSync(
    join(root, "bench", "results", "compile.json"),
    JSON.stringify({ date: new Date().toISOString(), node: process.version, runs, rows }, null, 2) + "\n",
  );
}
