// Hostile strings in every place a config puts a user string into the plan
// (account ids, route models and ids, upstream models, team and virtual-key
// ids, pricing keys) must come out of the emitted bundle as the same strings:
// never as code, never as an object key, never confused with a builtin name.
// Modelled on fast-json-stringify's sanitize tests.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { buildToDir, compileSource, type Manifest } from "../../compiler/compile.ts";
import { emitPlanModule } from "../../compiler/emit.ts";
import { fromConfig, load, type Gateway, type Share } from "../../compiler/testing.ts";
import type { Plan } from "../../runtime/plan.ts";
import { stableKey } from "../../compiler/plan.ts";

const HOSTILE: Record<string, string> = {
  doubleQuote: 'say "hi"',
  singleQuote: "it's",
  backticks: "`whoami`",
  commentClose: "*/",
  commentOpen: "/*",
  templateOpen: "${",
  scriptClose: "</script><script>globalThis.pwned=1</script>",
  lineSeparator: "a\u2028b",
  paragraphSeparator: "a\u2029b",
  newline: "line1\nline2",
  carriageReturn: "line1\r\nline2",
  backslashU0000: "\\u0000", // six characters: a backslash, then u0000
  trailingBackslash: "ends with \\",
  proto: "__proto__",
  constructor: "constructor",
  prototype: "prototype",
  toString: "toString",
  hasOwnProperty: "hasOwnProperty",
  valueOf: "valueOf",
  doubleQuoteBreakout: '"+process.exit(1)+"',
  singleQuoteBreakout: "'+(globalThis.pwned=1)+'",
  templateBreakout: "${globalThis.pwned=1}",
  backtickBreakout: "`+(globalThis.pwned=1)+`",
  commentBreakout: "*/globalThis.pwned=1;/*",
  newlineBreakout: "\n;globalThis.pwned=1;//",
  separatorBreakout: "\u2028globalThis.pwned=1;//",
  loneSurrogate: "\ud800",
};
const H = Object.values(HOSTILE);

type Pwnable = typeof globalThis & { pwned?: unknown };

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Writes the config, builds it with buildToDir into a fresh temp dir and imports the bundle inertly. */
async function build(config: object): Promise<{ text: string; gw: Gateway; bundle: string; manifest: Manifest }> {
  const dir = await mkdtemp(join(tmpdir(), "gwc-injection-"));
  tempDirs.push(dir);
  const text = JSON.stringify(config, null, 2);
  const configPath = join(dir, "gateway.json");
  await writeFile(configPath, text);
  const out = await buildToDir(configPath, join(dir, "out"));
  expect(out.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  expect(out.files).toBeDefined();

  // (d) importing it parses it as an ES module.
  const gw = await inertly(() => load(out.files!.bundle));
  expect(process.exitCode ?? 0).toBe(0);

  const bundle = await readFile(out.files!.bundle, "utf8");
  const manifest = JSON.parse(await readFile(out.files!.manifest, "utf8")) as Manifest;
  return { text, gw, bundle, manifest };
}

/**
 * Runs an import with process.exit stubbed, so a payload that runs is recorded
 * instead of killing the worker; then checks that no payload ran.
 */
async function inertly<T>(run: () => Promise<T>): Promise<T> {
  delete (globalThis as Pwnable).pwned;
  // Recorded by hand: mockRestore also clears the spy's own call list.
  const exitCalls: unknown[] = [];
  const exit = vi.spyOn(process, "exit").mockImplementation(((code?: number) => {
    exitCalls.push(code);
    throw new Error(`the bundle called process.exit(${code})`);
  }) as typeof process.exit);
  let result: T;
  try {
    result = await run();
  } finally {
    exit.mockRestore();
  }
  expect(exitCalls).toEqual([]);
  expect((globalThis as Pwnable).pwned).toBeUndefined();
  return result;
}

function compileClean(text: string): Plan {
  const { diagnostics, plan } = compileSource(text, "hostile.json");
  expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  expect(plan).toBeDefined();
  return plan!;
}

/** Imports the emitted plan module on its own (no esbuild in between). */
async function importEmitted(plan: Plan): Promise<Plan> {
  const src = emitPlanModule(plan);
  const mod = await inertly(() => import(`data:text/javascript,${encodeURIComponent(src)}`) as Promise<{ plan: Plan }>);
  return mod.plan;
}

/** Reduced fractions of integer weights, in order. */
function shares(weights: [string, number][]): Share[] {
  const total = weights.reduce((s, [, w]) => s + w, 0);
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  return weights.map(([account, w]) => {
    const g = gcd(w, total);
    return { account, numerator: w / g, denominator: total / g };
  });
}

/**
 * Picks at the midpoints of a uniform grid over [0, 1). With a grid size that
 * is a multiple of every column count × column height, the hits per account are
 * exactly proportional to its weight.
 */
function gridCounts(gw: Gateway, model: string | undefined, size = 1200): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (let j = 0; j < size; j++) {
    const account = gw.pick({ model, random: (j + 0.5) / size });
    counts.set(account, (counts.get(account) ?? 0) + 1);
  }
  return counts;
}

function expectGridMatches(gw: Gateway, model: string | undefined, expected: Share[], size = 1200): void {
  const counts = gridCounts(gw, model, size);
  expect(new Map(expected.map((s) => [s.account, (size * s.numerator) / s.denominator]))).toEqual(counts);
}

// ── One config with every hostile string in every role ───────────────────────

const PROVIDERS = ["openai", "anthropic", "groq"] as const;
const N = H.length;
const at = (i: number) => H[i % N];

/** Route i serves model H[i]; its targets and expected split depend on i % 3. */
function routeTargets(i: number): { targets: { account: string; weight: number; model?: string }[]; expected: Share[] } {
  switch (i % 3) {
    case 0:
      return {
        targets: [
          { account: at(i), weight: 3, model: at(i + 3) },
          { account: at(i + 1), weight: 1 },
        ],
        expected: [
          { account: at(i), numerator: 3, denominator: 4 },
          { account: at(i + 1), numerator: 1, denominator: 4 },
        ],
      };
    case 1:
      return {
        targets: [
          { account: at(i), weight: 70 },
          { account: at(i + 1), weight: 30, model: at(i + 7) },
        ],
        expected: [
          { account: at(i), numerator: 7, denominator: 10 },
          { account: at(i + 1), numerator: 3, denominator: 10 },
        ],
      };
    default:
      return {
        targets: [
          { account: at(i), weight: 50 },
          { account: at(i + 1), weight: 30 },
          { account: at(i + 2), weight: 20 },
        ],
        expected: [
          { account: at(i), numerator: 1, denominator: 2 },
          { account: at(i + 1), numerator: 3, denominator: 10 },
          { account: at(i + 2), numerator: 1, denominator: 5 },
        ],
      };
  }
}

const SHA = (c: string) => c.repeat(64);

const manyAtOnce = {
  accounts: [
    ...H.map((h, i) => ({ id: h, provider: PROVIDERS[i % 3], ...(i % 2 === 0 ? { model: at(i + 5) } : {}) })),
    { id: "benign-a", provider: "openai", weight: 70 },
    { id: "benign-b", provider: "anthropic", weight: 30 },
  ],
  routes: [
    // Route i: model H[i], id H[i+1] (so an id never doubles as its own model),
    // falling back to route i+1 (a chain, so no cycle).
    ...H.map((h, i) => ({
      id: at(i + 1),
      model: h,
      targets: routeTargets(i).targets,
      ...(i + 1 < N ? { fallbacks: [at(i + 2)] } : {}),
    })),
    { id: "catch-all", model: "*", targets: [{ account: "benign-a" }, { account: "benign-b" }] },
  ],
  organization: { id: HOSTILE.proto, budget: { monthly_limit_usd: 1000 } },
  teams: H.map((h) => ({ id: h, budget: { monthly_limit_usd: 100 }, rate_limit: { request_max_limit: 10 } })),
  virtual_keys: H.map((h, i) => ({
    id: h,
    team: at(i + 1),
    ...(i % 2 === 0 ? { key: `\${GWC_INJECTION_VK_${i}}` } : { key_sha256: SHA("0123456789abcdef"[i % 16]) }),
    models: [h, at(i + 1)],
    budget: { monthly_limit_usd: 10 },
    on_budget_exceeded: i % 2 === 0 ? { reroute_to_route: at(i + 3) } : { reroute_to_account: at(i + 4) },
  })),
  // Object.fromEntries defines `__proto__` as an own key, so it reaches the JSON.
  pricing: Object.fromEntries(H.map((h) => [h, { input_per_mtok_usd: 1, output_per_mtok_usd: 2 }])),
};

describe("hostile strings: many at once", () => {
  const text = JSON.stringify(manyAtOnce, null, 2);
  let built: Awaited<ReturnType<typeof build>>;
  let memory: Gateway;
  let plan: Plan;

  it("the config really holds every hostile string (test sanity)", () => {
    const parsed = JSON.parse(text) as typeof manyAtOnce;
    expect(parsed.accounts.map((a) => a.id).slice(0, N)).toEqual(H);
    expect(Object.keys(parsed.pricing)).toEqual(H);
    expect(new Set(H).size).toBe(N);
  });

  it("(a) compiles to a plan with no errors", () => {
    plan = compileClean(text);
    memory = fromConfig(text);
    expect(plan.routes.map((r) => r.model)).toEqual([...H, "*"]);
  });

  it("the emitted plan module, imported on its own, is the plan", async () => {
    expect(await importEmitted(plan)).toEqual(plan);
  });

  it("(b) builds and imports without running any payload", async () => {
    built = await build(manyAtOnce);
    expect(built.text).toBe(text);
    expect(built.manifest.accounts).toBe(N + 2);
    expect(built.manifest.routes).toBe(N + 1);
    expect(built.manifest.virtualKeys).toBe(N);
    expect(built.bundle.startsWith("// @generated by gwc")).toBe(true);
  });

  it("every hostile string comes out of the bundle unchanged, in every role", () => {
    const p = built.gw.plan;
    expect(p).toEqual(plan);
    expect(p.accounts.map((a) => a.id)).toEqual([...H, "benign-a", "benign-b"]);
    expect(p.routes.map((r) => r.model)).toEqual([...H, "*"]);
    expect(p.routes.map((r) => r.id)).toEqual([...H.map((_, i) => at(i + 1)), "catch-all"]);
    expect(p.routeByModel).toEqual(H.map((h, i) => [h, i]));
    H.forEach((h, i) => {
      const t = p.routes[i].targets;
      if (i % 3 === 0) expect(t[0].model).toBe(at(i + 3));
      if (i % 3 === 1) expect(t[1].model).toBe(at(i + 7));
      // Without a target model: the account's model, else the route's.
      const inherit = (k: number) => ((i + k) % N) % 2 === 0 ? at(i + k + 5) : h;
      if (i % 3 === 0) expect(t[1].model).toBe(inherit(1));
      if (i % 3 === 1) expect(t[0].model).toBe(inherit(0));
      if (i % 3 === 2) expect(t.slice(0, 3).map((x) => x.model)).toEqual([inherit(0), inherit(1), inherit(2)]);
    });
    expect(p.organization.id).toBe(HOSTILE.proto);
    expect(p.teams.map((t) => t.id)).toEqual(H);
    expect(p.virtualKeys.map((k) => k.id)).toEqual(H);
    expect(p.virtualKeys.map((k) => p.teams[k.team].id)).toEqual(H.map((_, i) => at(i + 1)));
    expect(p.virtualKeys.map((k) => k.models)).toEqual(H.map((h, i) => [h, at(i + 1)]));
    p.virtualKeys.forEach((k, i) => {
      const e = k.onBudgetExceeded;
      if (i % 2 === 0) expect(e.kind === "route" && p.routes[e.route].id).toBe(at(i + 3));
      else expect(e.kind === "account" && p.accounts[e.account].id).toBe(at(i + 4));
    });
    expect(p.teams.map((t) => p.budgets[t.budget].key)).toEqual(H.map((h) => stableKey("team", h)));
    const prices = new Map(p.prices);
    for (const h of H) expect(prices.get(h)).toEqual({ inputNano: 1e9, outputNano: 2e9, cachedInputNano: 1e9, cacheWriteNano: 1e9 });
  });

  it("(c) routes every hostile model to its own route, split exactly by weight", () => {
    const gw = built.gw;
    expect(gw.models()).toEqual([...H, "*"]);
    H.forEach((h, i) => {
      const { expected } = routeTargets(i);
      expect(gw.distribution({ model: h })).toEqual(expected);
      expect(memory.distribution({ model: h })).toEqual(expected);
      for (const random of [0, 0.999]) {
        const picked = gw.pick({ model: h, random });
        expect(picked).toBe(memory.pick({ model: h, random }));
        expect(expected.map((s) => s.account)).toContain(picked);
      }
      expectGridMatches(gw, h, expected);
      expect(gw.failover({ model: h, account: h })).toEqual(memory.failover({ model: h, account: h }));
    });
  });

  it("(c) a model no route names goes to the catch-all", () => {
    const catchAll = shares([
      ["benign-a", 70],
      ["benign-b", 30],
    ]);
    for (const model of [undefined, "no-such-model", "__defineGetter__", "isPrototypeOf", "catch-all", H[1] + H[2]]) {
      expect(built.gw.distribution({ model })).toEqual(catchAll);
      expect(memory.distribution({ model })).toEqual(catchAll);
    }
  });
});

// ── Prototype names: `__proto__` is a route of its own, nothing else is ───────

const protoRoutes = {
  accounts: [
    { id: "__proto__", provider: "openai", weight: 3 },
    { id: "constructor", provider: "anthropic", weight: 1 },
    { id: "toString", provider: "openai", weight: 70 },
    { id: "valueOf", provider: "anthropic", weight: 30 },
  ],
  routes: [
    // Light account first; weights come from the accounts (1 and 3).
    { id: "hasOwnProperty", model: "__proto__", targets: [{ account: "constructor" }, { account: "__proto__" }] },
    { id: "prototype", model: "*", targets: [{ account: "toString" }, { account: "valueOf" }] },
  ],
  teams: [{ id: "__proto__" }, { id: "constructor" }],
  virtual_keys: [
    { id: "__proto__", team: "constructor", key: "${GWC_INJECTION_PROTO_KEY}", models: ["__proto__"] },
    { id: "constructor", team: "__proto__", key_sha256: SHA("a") },
  ],
};

describe("hostile strings: prototype names", () => {
  let gw: Gateway;
  let memory: Gateway;

  it("(a)(b) compiles and builds", async () => {
    compileClean(JSON.stringify(protoRoutes));
    memory = fromConfig(protoRoutes);
    ({ gw } = await build(protoRoutes));
    expect(gw.plan.virtualKeys.map((k) => [k.id, gw.plan.teams[k.team].id])).toEqual([
      ["__proto__", "constructor"],
      ["constructor", "__proto__"],
    ]);
  });

  it("(c) `__proto__` resolves to its own route, split 1/4 : 3/4", () => {
    const expected = [
      { account: "constructor", numerator: 1, denominator: 4 },
      { account: "__proto__", numerator: 3, denominator: 4 },
    ];
    expect(gw.distribution({ model: "__proto__" })).toEqual(expected);
    expect(memory.distribution({ model: "__proto__" })).toEqual(expected);
    // Alias table for weights 1, 3: column 0 is 'constructor' up to half its
    // height, aliased to '__proto__'; column 1 is all '__proto__'.
    for (const g of [gw, memory]) {
      expect(g.pick({ model: "__proto__", random: 0 })).toBe("constructor");
      expect(g.pick({ model: "__proto__", random: 0.999 })).toBe("__proto__");
      expect(g.pick({ model: "__proto__", random: 0, down: ["constructor"] })).toBe("__proto__");
      expect(g.pick({ model: "__proto__", random: 0.999, down: ["__proto__"] })).toBe("constructor");
      expect(g.failover({ model: "__proto__", account: "__proto__" })).toEqual(["constructor"]);
    }
    expectGridMatches(gw, "__proto__", expected);
  });

  it("(c) other builtin names, and route ids, do not resolve to the `__proto__` route", () => {
    const catchAll = [
      { account: "toString", numerator: 7, denominator: 10 },
      { account: "valueOf", numerator: 3, denominator: 10 },
    ];
    const models = [undefined, "unknown-model", "constructor", "toString", "valueOf", "prototype", "hasOwnProperty", "__defineGetter__", "__lookupGetter__", "isPrototypeOf", "__proto__ ", " __proto__", "__PROTO__"];
    for (const model of models) {
      expect(gw.distribution({ model })).toEqual(catchAll);
      expect(memory.distribution({ model })).toEqual(catchAll);
    }
    // Alias table for weights 7, 3: column 0 is all 'toString'; column 1 is
    // 'valueOf' for its lower 6/10, aliased to 'toString' above.
    for (const g of [gw, memory]) {
      expect(g.pick({ model: "constructor", random: 0 })).toBe("toString");
      expect(g.pick({ model: "constructor", random: 0.999 })).toBe("toString");
      expect(g.pick({ model: "constructor", random: 0.7 })).toBe("valueOf");
    }
    expectGridMatches(gw, "constructor", catchAll);
  });
});

describe("hostile strings: no catch-all", () => {
  it("an unknown or builtin model has no route, and `__proto__` still has its own", async () => {
    const config = { accounts: protoRoutes.accounts, routes: [protoRoutes.routes[0]] };
    compileClean(JSON.stringify(config));
    const { gw } = await build(config);
    const memory = fromConfig(config);
    for (const g of [gw, memory]) {
      expect(g.distribution({ model: "__proto__" })).toEqual(shares([["constructor", 1], ["__proto__", 3]]));
      for (const model of [undefined, "unknown-model", "constructor", "toString", "hasOwnProperty", "prototype"]) {
        expect(() => g.distribution({ model })).toThrow(/no route serves model/);
        expect(() => g.pick({ model, random: 0 })).toThrow(/no route serves model/);
      }
    }
  });
});

// ── Code breakouts as account ids in the implicit catch-all route ──────────────

describe("hostile strings: code breakouts as account ids, no routes", () => {
  const config = {
    accounts: [
      { id: HOSTILE.doubleQuoteBreakout, provider: "openai", weight: 70, model: HOSTILE.templateBreakout },
      { id: HOSTILE.templateBreakout, provider: "anthropic", weight: 20, model: HOSTILE.commentBreakout },
      { id: HOSTILE.scriptClose, provider: "groq", weight: 10, model: HOSTILE.newlineBreakout },
    ],
  };

  it("(a)-(d) compiles, builds, imports inertly, and splits 70/20/10", async () => {
    compileClean(JSON.stringify(config));
    const memory = fromConfig(config);
    const { gw } = await build(config);
    const expected = shares([
      [HOSTILE.doubleQuoteBreakout, 70],
      [HOSTILE.templateBreakout, 20],
      [HOSTILE.scriptClose, 10],
    ]);
    expect(expected.map((s) => `${s.numerator}/${s.denominator}`)).toEqual(["7/10", "1/5", "1/10"]);
    for (const model of [undefined, "gpt-4o", HOSTILE.doubleQuoteBreakout]) {
      expect(gw.distribution({ model })).toEqual(expected);
      expect(memory.distribution({ model })).toEqual(expected);
      for (const random of [0, 0.5, 0.999]) expect(gw.pick({ model, random })).toBe(memory.pick({ model, random }));
    }
    // weights 7, 2, 1 over 3 columns of height 10: column 0 is all the first account.
    expect(gw.pick({ random: 0 })).toBe(HOSTILE.doubleQuoteBreakout);
    expectGridMatches(gw, undefined, expected);
    expect(gw.plan.routes[0].targets.map((t) => t.model)).toEqual([HOSTILE.templateBreakout, HOSTILE.commentBreakout, HOSTILE.newlineBreakout]);
  });
});

describe("counter keys", () => {
  it("never let two budgets share a key, whatever the ids contain", () => {
    const { plan } = compileSource(
      JSON.stringify({
        accounts: [{ id: "a", provider: "openai", model: "gpt-4o" }],
        virtual_keys: [
          { id: "alice", key: "${K1}", provider_budgets: { openai: { daily_limit_usd: 5 } } },
          { id: "alice/provider:openai", key: "${K2}", budget: { daily_limit_usd: 500 } },
          { id: "alice%2Fprovider%3Aopenai", key: "${K3}", budget: { daily_limit_usd: 50 } },
        ],
      }),
      "keys.json",
    );
    const keys = plan!.budgets.map((b) => b.key);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
