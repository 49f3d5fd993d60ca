import type { AddressInfo } from "node:net";
import { compileSource } from "../../compiler/compile.ts";
import { Runtime } from "../../runtime/gateway.ts";
import type { Plan } from "../../runtime/plan.ts";
import { MemoryStore, type StateStore } from "../../runtime/state-store.ts";
import { createGatewayServer, type GatewayServer } from "../../runtime/server.ts";

export interface RunningGateway {
  url: string;
  /** Base URL for the openai client. */
  v1: string;
  plan: Plan;
  server: GatewayServer;
  /** The state that outlives reloads: pools, breakers, the store. */
  runtime: Runtime;
  reload(config: object): void;
  close(): Promise<void>;
}

export function compile(config: object): Plan {
  const { plan, diagnostics } = compileSource(JSON.stringify(config, null, 2), "test-config.json");
  if (plan === undefined) throw new Error(diagnostics.map((d) => `${d.code} ${d.pointer} ${d.message}`).join("\n"));
  return plan;
}

/** The real runtime (server, pools, breakers) on a loopback port, in this process. */
export async function startGateway(
  config: object,
  env: NodeJS.ProcessEnv = { OPENAI_API_KEY: "sk-test-openai" },
  store: StateStore = new MemoryStore(),
): Promise<RunningGateway> {
  const runtime = new Runtime(store);
  const plan = compile(config);
  const server = createGatewayServer(runtime, runtime.load(plan, env, JSON.stringify(config, null, 2)));
  await new Promise<void>((ok) => server.server.listen(0, "127.0.0.1", ok));
  const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  return {
    url,
    v1: `${url}/v1`,
    plan,
    server,
    runtime,
    reload: (next) => {
      server.gateway = runtime.load(compile(next), env);
    },
    close: () => server.shutdown(),
  };
}

/** Accounts on OpenAI-compatible mock upstreams. */
export function account(id: string, baseUrl: string, weight: number, extra: object = {}): object {
  return { id, provider: "openai", base_url: baseUrl, weight, ...extra };
}

/** Resolves once `done()` holds, polling every 10 ms; rejects after `ms`. */
export async function until(done: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}
