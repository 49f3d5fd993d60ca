// The `gwc` command as a user runs it: the built bin, in a child process.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort, tempDir } from "./helpers.ts";

const GWC = resolve("build/gwc.mjs");
const gwc = (...args: string[]) => spawnSync(process.execPath, [GWC, ...args], { encoding: "utf8" });
const STACK_FRAME = /^\s+at .+[:(]/m;

const bad = (dir: string) => {
  const path = join(dir, "bad.json");
  writeFileSync(
    path,
    `{
  "accounts": [
    { "id": "a", "provider": "opneai", "wieght": 70 },
    { "id": "a", "provider": "anthropic", "api_key": "sk-ant-REAL" }
  ],
  "routes": [{ "model": "x", "targets": [{ "account": "nope" }] }]
}
`,
  );
  return path;
};

describe("gwc check", () => {
  it("exits 0 on every example", () => {
    for (const f of readdirSync("examples")) {
      const r = gwc("check", join("examples", f));
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain("ok (");
    }
  });

  it("lists every problem as file:line:col  CODE  /pointer  message, exit 1, no stack trace", () => {
    const path = bad(tempDir());
    const r = gwc("check", path);
    expect(r.status).toBe(1);
    const lines = r.stdout.trim().split("\n").slice(0, -1);
    for (const line of lines) expect(line).toMatch(/^.+bad\.json:\d+:\d+ {2}GWC_[EW]_[A-Z_]+ {2}\/\S* {2}.+$/);
    // The schema stage stops before semantic checks, so these are its errors:
    expect(r.stdout).toContain("bad.json:3:18  GWC_E_UNKNOWN_PROVIDER  /accounts/0/provider  'opneai' is not a valid provider. Did you mean 'openai'?");
    expect(r.stdout).toContain("bad.json:3:40  GWC_E_UNKNOWN_PROPERTY  /accounts/0/wieght  Unknown property 'wieght'. Did you mean 'weight'?");
    expect(r.stdout).not.toMatch(STACK_FRAME);
    expect(r.stdout + r.stderr).not.toContain("sk-ant-REAL");
  });

  it("reports semantic problems all at once once the schema passes", () => {
    const path = join(tempDir(), "refs.json");
    writeFileSync(
      path,
      JSON.stringify(
        {
          accounts: [{ id: "a", provider: "openai" }, { id: "a", provider: "anthropic", api_key: "sk-ant-REAL" }],
          routes: [{ model: "x", targets: [{ account: "nope" }], fallbacks: ["x"] }],
        },
        null,
        2,
      ),
    );
    const r = gwc("check", path);
    expect(r.status).toBe(1);
    for (const code of ["GWC_E_DUPLICATE_ID", "GWC_E_LITERAL_SECRET", "GWC_E_UNKNOWN_ACCOUNT", "GWC_E_FALLBACK_CYCLE"]) expect(r.stdout).toContain(code);
    expect(r.stdout).not.toContain("sk-ant-REAL");
  });

  it("warns, without failing, when one model name goes to providers with different APIs", () => {
    const r = gwc("check", "examples/article-70-30.json");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("GWC_W_MIXED_PASSTHROUGH  /accounts  The catch-all route sends the same model name to 'openai-primary', 'anthropic-secondary'");
    expect(gwc("check", "examples/article-latency-split.json").stdout).not.toContain("GWC_W_MIXED_PASSTHROUGH");
  });

  it("speaks JSON with --format json", () => {
    const r = gwc("check", bad(tempDir()), "--format", "json");
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; diagnostics: { code: string; line: number; col: number; pointer: string }[] };
    expect(out.ok).toBe(false);
    expect(out.diagnostics).toContainEqual(expect.objectContaining({ code: "GWC_E_UNKNOWN_PROVIDER", pointer: "/accounts/0/provider", line: 3, col: 18 }));
  });

  it("says clearly when the file is missing or the command is wrong", () => {
    const missing = gwc("check", "no/such/config.json");
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("cannot read no/such/config.json: no such file");
    const unknown = gwc("frobnicate", "x.json");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    for (const r of [missing, unknown]) expect(r.stderr).not.toMatch(STACK_FRAME);
  });
});

describe("gwc build", () => {
  it("writes the same bytes for the same input", () => {
    const a = tempDir();
    const b = tempDir();
    expect(gwc("build", "examples/routes-and-fallbacks.json", "-o", a).status).toBe(0);
    expect(gwc("build", "examples/routes-and-fallbacks.json", "-o", b).status).toBe(0);
    // Buffer.equals: a deep toEqual walks a multi-megabyte bundle byte by byte (tens of seconds under load).
    for (const f of ["gateway.mjs", "gateway.plan.json", "manifest.json"]) expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f).toBe(true);
    const manifest = JSON.parse(readFileSync(join(a, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ gwcVersion: expect.any(String), planVersion: 2, configSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(manifest.environment).toEqual(["ANTHROPIC_API_KEY", "GROQ_API_KEY", "OPENAI_API_KEY", "OPENAI_BACKUP_API_KEY"]);
  });

  it("a failed build writes nothing and leaves the old build intact", () => {
    const dir = tempDir();
    expect(gwc("build", "examples/article-70-30.json", "-o", dir).status).toBe(0);
    const before = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]);
    const r = gwc("build", bad(tempDir()), "-o", dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("build failed; nothing was written");
    expect(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")])).toEqual(before);
  });

  it("the bundle runs with plain node, no node_modules beside it", async () => {
    const dir = tempDir();
    expect(gwc("build", "examples/routes-and-fallbacks.json", "-o", dir).status).toBe(0);
    const lonely = tempDir();
    copyFileSync(join(dir, "gateway.mjs"), join(lonely, "gateway.mjs"));
    // A free port, not a random one: a random port taken by another suite made the gateway exit 1 (listen_failed).
    const port = await freePort();
    const keys = { OPENAI_API_KEY: "k1", OPENAI_BACKUP_API_KEY: "k2", ANTHROPIC_API_KEY: "k3", GROQ_API_KEY: "k4" };
    const child = spawn(process.execPath, [join(lonely, "gateway.mjs")], { cwd: lonely, env: { PATH: process.env.PATH, PORT: String(port), ...keys } });
    try {
      await new Promise<void>((ok, fail) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes('"event":"listening"') && ok());
        child.on("exit", (code) => fail(new Error(`gateway exited with ${code}`)));
      });
      const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(["gpt-4o", "llama-3.3-70b-versatile", "gpt-4o-mini"]);
    } finally {
      child.kill("SIGTERM");
    }
  });
});

describe("gwc explain", () => {
  it("prints the exact split, outage splits, chains and the budget tree", () => {
    const out = execFileSync(process.execPath, [GWC, "explain", "examples/teams-and-budgets.json"], { encoding: "utf8" });
    expect(out).toMatch(/openai-primary\s+70\.00%\s+7\/10/);
    expect(out).toMatch(/when openai-primary is down:\n\s+anthropic-secondary\s+100\.00%\s+1\/1/);
    expect(out).toContain("openai-primary → anthropic-secondary → openai-mini");
    expect(out).toContain('team "backend": $250.00/day, $5000.00/month');
    expect(out).toContain('key "alice-laptop" (when spent: reroute to account "openai-mini")');
  });

  it("prints each route's attempt policy and its worst case", () => {
    const out = execFileSync(process.execPath, [GWC, "explain", "examples/routes-and-fallbacks.json"], { encoding: "utf8" });
    expect(out).toMatch(/policy: deadline 10m; first token 10s \(streams\), headers 10m \(JSON\); stall 15s/);
    expect(out).toMatch(/retries: up to 2 on the same account, backoff 250ms doubling to 4s \(full jitter\), Retry-After waited up to 10s, budget 20% of first attempts per 10s \(\+1\)/);
    expect(out).toMatch(/worst case: \d+ attempts \(\d+ accounts? \+ 2 retries\), 10m in all \(the deadline\); a stream's first token within /);
  });
});
