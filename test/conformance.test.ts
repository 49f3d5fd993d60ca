// One suite, two implementations: the plan interpreted in memory (compiled
// from the config) and the emitted, bundled module (built by `gwc build` and
// imported). Both must answer every routing question identically.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildToDir } from "../compiler/compile.ts";
import { fromConfig, load, type Gateway } from "../compiler/testing.ts";
import { readFileSync } from "node:fs";
import { tempDir } from "./helpers.ts";

const examples = readdirSync("examples").filter((f) => f.endsWith(".json"));
const randoms = Array.from({ length: 101 }, (_, i) => Math.min(i / 100, 0.999999));

/** Every question worth asking of a gateway: splits under each outage set of up to two, picks, chains. */
function answers(gw: Gateway): unknown[] {
  const out: unknown[] = [];
  for (const model of gw.models()) {
    const query = model === "*" ? {} : { model };
    const members = gw.distribution(query).map((s) => s.account);
    const outages: string[][] = [[]];
    for (const a of members) {
      outages.push([a]);
      for (const b of members) if (a < b) outages.push([a, b]);
    }
    for (const down of outages) {
      out.push({ model, down, shares: gw.distribution({ ...query, down }) });
      out.push({ model, down, picks: randoms.map((random) => gw.pick({ ...query, down, random })) });
    }
    for (const account of members) out.push({ model, account, chain: gw.failover({ ...query, account }) });
  }
  return out;
}

describe.each(examples)("conformance: %s", (file) => {
  let inMemory: Gateway;
  let bundled: Gateway;
  beforeAll(async () => {
    const dir = tempDir();
    const { files } = await buildToDir(join("examples", file), dir);
    bundled = await load(files!.bundle);
    inMemory = fromConfig(readFileSync(join("examples", file), "utf8"));
  });

  it("answers every routing question identically", () => {
    expect(answers(bundled)).toEqual(answers(inMemory));
  });

  it("carries the same plan", () => {
    expect(bundled.plan).toEqual(inMemory.plan);
  });
});

describe("the article's splits, exactly", () => {
  const shares = async (file: string) => (await load(`examples/${file}`)).distribution();
  it("70/30 → 7/10 and 3/10", async () => {
    expect(await shares("article-70-30.json")).toEqual([
      { account: "openai-primary", numerator: 7, denominator: 10 },
      { account: "anthropic-secondary", numerator: 3, denominator: 10 },
    ]);
  });
  it("60/40 cost split", async () => {
    expect(await shares("article-cost-split.json")).toEqual([
      { account: "gemini-flash-cheap", numerator: 3, denominator: 5 },
      { account: "openai-capable", numerator: 2, denominator: 5 },
    ]);
  });
  it("50/50 latency split", async () => {
    expect(await shares("article-latency-split.json")).toEqual([
      { account: "groq-fast", numerator: 1, denominator: 2 },
      { account: "anthropic-quality", numerator: 1, denominator: 2 },
    ]);
  });
  it("40/30/30 reliability split, and 4/7 : 3/7 when Anthropic is down", async () => {
    const gw = await load("examples/article-reliability.json");
    expect(gw.distribution()).toEqual([
      { account: "openai-primary", numerator: 2, denominator: 5 },
      { account: "anthropic-secondary", numerator: 3, denominator: 10 },
      { account: "gemini-tertiary", numerator: 3, denominator: 10 },
    ]);
    expect(gw.distribution({ down: ["anthropic-secondary"] })).toEqual([
      { account: "openai-primary", numerator: 4, denominator: 7 },
      { account: "anthropic-secondary", numerator: 0, denominator: 1 },
      { account: "gemini-tertiary", numerator: 3, denominator: 7 },
    ]);
  });
});

describe("routes, fallbacks and large routes", () => {
  it("falls back through other routes, each account once", async () => {
    const gw = await load("examples/routes-and-fallbacks.json");
    expect(gw.failover({ model: "gpt-4o", account: "openai-main" })).toEqual(["anthropic-main", "groq-fast", "openai-backup"]);
    expect(gw.failover({ model: "gpt-4o-mini", account: "openai-backup" })).toEqual(["openai-main"]);
  });

  it("a route of 50 accounts stays exact under one and under several outages", () => {
    const accounts = Array.from({ length: 50 }, (_, i) => ({ id: `a${i}`, provider: "openai", weight: i + 1 }));
    const gw = fromConfig({ accounts });
    const exact = (down: string[]) => {
      const alive = accounts.map((a) => (down.includes(a.id) ? 0 : a.weight));
      const total = alive.reduce((x, y) => x + y, 0);
      gw.distribution({ down }).forEach((s, i) => expect(s.numerator * total).toBe(alive[i] * s.denominator));
      for (const random of randoms) expect(down).not.toContain(gw.pick({ down, random }));
    };
    exact([]);
    exact(["a49"]); // one down: a precomputed `without` table
    exact(["a0", "a1", "a49"]); // several down: the exact scan
    expect(gw.distribution()[49]).toEqual({ account: "a49", numerator: 2, denominator: 51 });
  });
});
