// `gwc diff`: the review a config change gets in CI. Each scenario edits the
// teams-and-budgets example the way a pull request would; its text and
// markdown outputs are golden files (regenerate on purpose with
// `npm run golden`), and the CLI's exit codes are checked on the built bin.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { compileSource } from "../compiler/compile.ts";
import { diffPlans, formatJson, formatMarkdown, formatText } from "../compiler/diff.ts";
import type { Plan } from "../runtime/plan.ts";
import { tempDir } from "./helpers.ts";

const update = process.env.GWC_UPDATE_GOLDEN === "1";
const BASE = "examples/teams-and-budgets.json";
const base = () => JSON.parse(readFileSync(BASE, "utf8"));
type Config = ReturnType<typeof base>;

const plan = (config: Config): Plan => {
  const { plan, diagnostics } = compileSource(JSON.stringify(config), "config.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  return plan;
};

const scenarios: [string, (c: Config) => void][] = [
  ["nothing", () => {}],
  ["weights-50-50", (c) => {
    c.accounts[0].weight = 50;
    c.accounts[1].weight = 50;
  }],
  ["account-added-and-removed", (c) => {
    c.accounts.push({ id: "gemini-backup", provider: "gemini", model: "gemini-2.5-flash", api_key: "${GEMINI_API_KEY}", weight: 10 });
    c.virtual_keys[1].on_budget_exceeded = "reject";
    c.accounts.splice(2, 1);
  }],
  ["team-cap-cut", (c) => {
    c.teams[0].budget.daily_limit_usd = 100;
    delete c.teams[1].budget.monthly_limit_usd;
    c.teams[1].budget.weekly_limit_usd = 2000;
  }],
  ["keys-and-limits", (c) => {
    c.virtual_keys.push({ id: "ci-bot", key: "${GWC_KEY_CI}", team: "backend", models: ["gpt-4o"] });
    c.virtual_keys[0].rate_limit.request_max_limit = 500;
    c.virtual_keys[0].max_concurrent_requests = 8;
    c.virtual_keys[1].models = ["gpt-4o"];
  }],
  ["price-and-pool", (c) => {
    c.pricing["gpt-4o"].input_per_mtok_usd = 2;
    c.accounts[0].pool = { max_connections: 128 };
  }],
];

describe("gwc diff", () => {
  it.each(scenarios)("%s: text and markdown match their golden files", (name, edit) => {
    const next = base();
    edit(next);
    const d = diffPlans(plan(base()), plan(next));
    for (const [ext, out] of [["txt", formatText(d)], ["md", formatMarkdown(d)]] as const) {
      const golden = join("test/diff-golden", `${name}.${ext}`);
      if (update) writeFileSync(golden, out);
      expect(existsSync(golden), `${golden} is missing; run npm run golden`).toBe(true);
      expect(out).toBe(readFileSync(golden, "utf8"));
    }
  });

  it("says what a cap change means in words, and gives exact splits", () => {
    const next = base();
    next.teams[0].budget.daily_limit_usd = 100;
    next.accounts[0].weight = 50;
    next.accounts[1].weight = 50;
    const d = diffPlans(plan(base()), plan(next));
    expect(d.changes.map((c) => c.text)).toContain("team backend's daily cap falls from $250.00 to $100.00");
    const split = d.splits.find((s) => s.changed)!;
    expect(split.accounts.map((x) => [x.account, x.before?.numerator, x.before?.denominator, x.after?.numerator, x.after?.denominator])).toEqual([
      ["openai-primary", 7, 10, 1, 2],
      ["anthropic-secondary", 3, 10, 1, 2],
      ["openai-mini", 0, 1, 0, 1],
    ]);
    expect(JSON.parse(formatJson(d)).changes).toHaveLength(d.changes.length);
  });

  it("names ids only, never a secret's value", () => {
    const next = base();
    next.accounts[0].api_key = "${OPENAI_API_KEY_2}";
    const text = formatText(diffPlans(plan(base()), plan(next)));
    expect(text).toContain("api key variable OPENAI_API_KEY → OPENAI_API_KEY_2");
  });
});

describe("gwc diff (the built bin)", () => {
  const GWC = resolve("build/gwc.mjs");
  const gwc = (...args: string[]) => spawnSync(process.execPath, [GWC, ...args], { encoding: "utf8" });

  it("exits 0, or 1 with --exit-code when anything changed, and reads a built bundle's manifest", () => {
    const dir = tempDir();
    const next = base();
    next.teams[0].budget.daily_limit_usd = 100;
    const nextPath = join(dir, "next.json");
    writeFileSync(nextPath, JSON.stringify(next));
    expect(gwc("build", BASE, "-o", join(dir, "dist")).status).toBe(0);
    const changed = gwc("diff", join(dir, "dist", "manifest.json"), nextPath, "--exit-code");
    expect(changed.status, changed.stderr).toBe(1);
    expect(changed.stdout).toContain("team backend's daily cap falls from $250.00 to $100.00");
    expect(gwc("diff", join(dir, "dist", "gateway.mjs"), BASE, "--exit-code").status).toBe(0);
    expect(gwc("diff", BASE, nextPath).status).toBe(0);
    const md = gwc("diff", BASE, nextPath, "--format", "markdown");
    expect(md.stdout.startsWith("### gwc diff: 1 change")).toBe(true);
  });

  it("exits 2 with gwc check's diagnostics on an invalid input, and no stack trace", () => {
    const dir = tempDir();
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{\n  "accounts": [{ "id": "a", "provider": "opneai" }]\n}\n');
    const r = gwc("diff", BASE, bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.json:2:\d+\s+GWC_E_\w+\s+\/accounts\/0\/provider/);
    expect(r.stderr).not.toMatch(/^\s+at .+[:(]/m);
  });
});
