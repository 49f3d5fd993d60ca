// The Redis store on its own, against a real redis-server: `when_down: local`
// (a conservative share of the headroom last seen, written back when Redis
// returns) and `gwc state import` (the embedded snapshot, once).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { HttpError } from "../../runtime/errors.ts";
import { RedisStore } from "../../runtime/state-store-redis.ts";
import { MemoryStore } from "../../runtime/state-store.ts";
import { tempDir } from "../helpers.ts";
import { until } from "../runtime/harness.ts";
import { eventually } from "./fleet.ts";
import { redisForSuite } from "./redis-server.ts";

const suite = redisForSuite();

const FAR = Date.now() + 3_600_000;
const line = (key: string, cap: number) => ({ key, cap, expiresAt: FAR });

describe("when_down: local", () => {
  it("serves this instance's share of the headroom last seen, refuses counters it never saw, and writes its spend to Redis when it returns", async () => {
    const config = { urlEnv: "X", prefix: "local:", leaseTtlMs: 3000, whenDown: "local" as const };
    const a = new RedisStore(config, suite.server().url);
    const b = new RedisStore(config, suite.server().url);
    try {
      await Promise.all([a.ready(3000), b.ready(3000)]);
      // Both hold a lease: the local share is half the headroom.
      expect(await a.reserve([line("vk:x|daily|0", 1000)], 200)).toBe(-1);
      await a.settle(["vk:x|daily|0"], 200, 200);
      expect(await b.reserve([line("vk:x|daily|0", 1000)], 10)).toBe(-1);
      await b.cancel(["vk:x|daily|0"], 10);
      await until(() => a.health().connected && b.health().connected);
      // Let both renew so each knows there are two instances.
      await new Promise((r) => setTimeout(r, 1200));

      await suite.server().stop();
      await until(() => !a.health().connected, 3000);
      // Headroom last seen: 1000 − 200 = 800; two instances: 400 each.
      expect(await a.reserve([line("vk:x|daily|0", 1000)], 300)).toBe(-1);
      expect(await a.reserve([line("vk:x|daily|0", 1000)], 150)).toBe(0);
      await a.settle(["vk:x|daily|0"], 300, 250);
      expect(await a.reserve([line("vk:x|daily|0", 1000)], 150)).toBe(-1);
      await a.settle(["vk:x|daily|0"], 150, 100);
      // A budget this instance has never seen: no guess.
      await expect(a.reserve([line("vk:never|daily|0", 1000)], 1)).rejects.toSatisfy((e) => e instanceof HttpError && e.code === "state_unavailable");

      await suite.server().start();
      await until(() => a.health().connected, 10_000);
      // 200 before, then 250 + 100 spent locally.
      await until(() => a.money("vk:x|daily|0").spent === 550, 5000);
      expect(await suite.direct().hget("{local:}m:vk:x|daily|0", "s")).toBe("550");
      expect(await suite.direct().hget("{local:}m:vk:x|daily|0", "r")).toBe("0");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("with reject, refuses at once while Redis is away and sends a settle that could not land once it is back", async () => {
    const store = new RedisStore({ urlEnv: "X", prefix: "reject:", leaseTtlMs: 3000, whenDown: "reject" }, suite.server().url);
    try {
      await store.ready(3000);
      expect(await store.reserve([line("vk:y|daily|0", 1000)], 300)).toBe(-1);
      await suite.server().stop();
      await until(() => !store.health().connected, 3000);
      const t0 = Date.now();
      await expect(store.reserve([line("vk:y|daily|0", 1000)], 1)).rejects.toSatisfy((e) => e instanceof HttpError && e.status === 503);
      expect(Date.now() - t0).toBeLessThan(100);
      await store.settle(["vk:y|daily|0"], 300, 120);
      await suite.server().start();
      await until(() => store.health().connected, 10_000);
      await until(() => store.money("vk:y|daily|0").reserved === 0, 5000);
      expect(await suite.direct().hmget("{reject:}m:vk:y|daily|0", "s", "r")).toEqual(["120", "0"]);
    } finally {
      await store.close();
    }
  });
});

describe("gwc state import", () => {
  it("with reject, answers 503 after one command timeout when Redis stops answering (connected, but silent), and serves again when it answers", async () => {
    const store = new RedisStore({ urlEnv: "X", prefix: "silent:", leaseTtlMs: 30_000, whenDown: "reject" }, suite.server().url);
    const take = { counts: [{ key: "vk:s|req|0", limit: 100, expiresAt: FAR }], forced: [], slot: { key: "conc|s", limit: 4 }, money: [line("vk:s|daily|0", 1000)], amount: 10 };
    try {
      await store.ready(3000);
      expect(await store.take(take)).toBe(-1);
      suite.server().pause();
      const t0 = Date.now();
      await expect(store.take(take)).rejects.toSatisfy((e) => e instanceof HttpError && e.code === "state_unavailable");
      // One command timeout (1 s), not one per step of the request's admission.
      expect(Date.now() - t0).toBeLessThan(1900);
    } finally {
      suite.server().resume();
    }
    try {
      await until(() => store.health().connected, 10_000);
      const back = await eventually(() => store.take(take).catch(() => -2), (r) => r === -1, 10_000);
      expect(back).toBe(-1);
    } finally {
      await store.close();
    }
  });

  it("copies the embedded snapshot's live counters into Redis once, and refuses a second time", () => {
    const dir = tempDir();
    const now = Date.now();
    const mem = new MemoryStore(join(dir, "state"));
    mem.reserve([line("vk:alice|daily|1", 10_000)], 500);
    mem.settle(["vk:alice|daily|1"], 500, 420);
    mem.count([{ key: "vk:alice|req|1", limit: 100, expiresAt: now + 3_600_000 }], 7);
    mem.close();
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        accounts: [{ id: "a", provider: "openai", base_url: "http://127.0.0.1:9/v1" }],
        state: { dir: "state", redis: { url: "${REDIS_URL}", prefix: "import:" } },
      }),
    );
    const gwc = (...args: string[]) => spawnSync(process.execPath, [resolve("build/gwc.mjs"), ...args], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH, REDIS_URL: suite.server().url } });
    const first = gwc("state", "import", "config.json");
    expect(first.stderr).toBe("");
    expect(first.stdout).toContain("imported 1 budget counters and 1 rate-limit counters");
    const second = gwc("state", "import", "config.json");
    expect(second.status).toBe(1);
    expect(second.stderr).toContain("already imported");
    return Promise.all([suite.direct().hget("{import:}m:vk:alice|daily|1", "s"), suite.direct().get("{import:}c:vk:alice|req|1")]).then(([spent, count]) => {
      expect(spent).toBe("420");
      expect(count).toBe("7");
    });
  });
});
