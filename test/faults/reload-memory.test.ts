// SIGHUP reloads must not accumulate memory. Importing the rebuilt bundle again
// (as reloads once did) kept every copy alive in the ES module map: ~4.7 MiB a
// reload. A reload now reads the plan as data (gateway.plan.json).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../runtime/gateway.ts";
import { planFromJson } from "../../runtime/plan-json.ts";
import { nextPlan } from "../../runtime/reload.ts";
import { createGatewayServer } from "../../runtime/server.ts";
import { MemoryStore } from "../../runtime/state-store.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, until } from "../runtime/harness.ts";
import { buildGateway, chat, startGateway } from "./gateway-process.ts";

// --expose-gc for this test process: a heap figure means something only after a full collection.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

let upstream: MockUpstream;
beforeAll(async () => {
  upstream = await startOpenAIUpstream({ name: "up" });
});
afterAll(async () => {
  await upstream?.close();
});

const config = (weightA: number) => ({ accounts: [account("a", upstream.url, weightA), account("b", upstream.url, 1 - weightA)] });

describe("reload memory", () => {
  it("200 reloads in one gateway: the heap after GC grows by less than 5 MiB", async () => {
    const dir = buildGateway(config(1));
    const bundleUrl = pathToFileURL(join(dir, "gateway.mjs")).href;
    const runtime = new Runtime(new MemoryStore());
    const env = { OPENAI_API_KEY: "sk-test" };
    const gs = createGatewayServer(runtime, runtime.load(planFromJson(readFileSync(join(dir, "gateway.plan.json"), "utf8")).plan, env));
    await new Promise<void>((ok) => gs.server.listen(0, "127.0.0.1", ok));
    const url = `http://127.0.0.1:${(gs.server.address() as { port: number }).port}`;
    const ask = async () => (await fetch(`${url}/v1/chat/completions`, { method: "POST", body: chat() })).status;
    try {
      const reload = async (n: number) => {
        const next = await nextPlan(bundleUrl, n, () => undefined);
        gs.gateway = runtime.load(next.plan, env, next.configSource);
      };
      for (let i = 1; i <= 20; i++) await reload(i);
      expect(await ask()).toBe(200);
      const before = heapMiB();
      for (let i = 21; i <= 220; i++) {
        await reload(i);
        if (i % 50 === 0) expect(await ask()).toBe(200);
      }
      const after = heapMiB();
      console.log(`heap after GC: ${before.toFixed(1)} MiB → ${after.toFixed(1)} MiB over 200 reloads`);
      expect(after - before).toBeLessThan(5);
    } finally {
      await gs.shutdown();
    }
  });

  it("a real process, 100 SIGHUPs after rebuilds: resident memory stays flat, and each reload applies", async () => {
    const dir = buildGateway(config(1));
    const gw = await startGateway(dir);
    const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.child.pid}/status`, "utf8"))![1]) / 1024;
    const account = async () => {
      const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", body: chat() });
      await r.arrayBuffer();
      return r.headers.get("x-gwc-account");
    };
    try {
      const sighup = async () => {
        const seen = gw.stderr.split("reloaded").length;
        process.kill(gw.child.pid!, "SIGHUP");
        await until(() => gw.stderr.split("reloaded").length > seen, 10_000);
      };
      for (let i = 1; i <= 10; i++) await sighup();
      const before = rssMiB();
      for (let i = 11; i <= 110; i++) await sighup();
      const after = rssMiB();
      console.log(`RSS: ${before.toFixed(1)} MiB → ${after.toFixed(1)} MiB over 100 reloads`);
      expect(after - before).toBeLessThan(40);
      expect(await account()).toBe("a");
      // A rebuild in place, then a reload: the new split applies.
      buildGateway(config(0), dir);
      await sighup();
      expect(await account()).toBe("b");
      expect(gw.alive()).toBe(true);
    } finally {
      await gw.stop();
    }
  });
});
