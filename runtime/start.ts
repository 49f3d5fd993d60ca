import type { Plan } from "./plan.ts";
import { nextPlan } from "./reload.ts";
import { Runtime, type Gateway } from "./gateway.ts";
import { StartupError } from "./secrets.ts";
import { ipcApplier } from "./apply-ipc.ts";
import { createGatewayServer } from "./server.ts";

const log = (line: string) => process.stderr.write(`gwc: ${line}\n`);

/**
 * Runs the gateway as a process: listens on HOST:PORT, reloads its own bundle
 * on SIGHUP (a new plan, same pools and breakers, no dropped requests), and
 * drains on SIGTERM/SIGINT.
 */
export function start(plan: Plan, bundleUrl: string, configSource: string | null = null): void {
  const runtime = new Runtime();
  let gateway;
  try {
    gateway = runtime.load(plan, process.env, configSource);
  } catch (e) {
    if (!(e instanceof StartupError)) throw e;
    log(`cannot start: ${e.message}`);
    process.exit(1);
  }
  describe(gateway);
  runtime.applyConfig = ipcApplier();
  const gs = createGatewayServer(runtime, gateway);
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? "127.0.0.1";
  // Only a listen failure ends the process; once listening, the server's own handler takes errors (an accept failure under EMFILE).
  const cannotListen = (e: Error) => {
    log(`cannot listen on ${host}:${port}: ${e.message}`);
    process.exit(1);
  };
  gs.server.once("error", cannotListen);
  gs.server.listen(port, host, () => {
    gs.server.off("error", cannotListen);
    log(`listening on http://${host}:${port} (${plan.routes.length} routes, ${plan.accounts.length} accounts)`);
  });

  let generation = 0;
  process.on("SIGHUP", () => {
    nextPlan(bundleUrl, ++generation, log)
      .then((next) => {
        gs.gateway = runtime.load(next.plan, process.env, next.configSource);
        describe(gs.gateway);
        log(`reloaded (config sha256 ${next.plan.configSha256.slice(0, 12)})`);
      })
      .catch((e: unknown) => {
        runtime.noteLoad({ at: Date.now(), version: null, ok: false, message: (e as Error).message });
        log(`reload failed, still serving the previous config: ${(e as Error).message}`);
      });
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: draining in-flight requests (up to ${plan.server.shutdownTimeoutMs} ms)`);
    gs.shutdown().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // A promise nobody awaited failing is a bug to log, not a reason to drop every request in flight.
  const seen = new Set<string>();
  process.on("unhandledRejection", (e) => {
    const why = (e as Error)?.message ?? String(e);
    if (seen.size < 100 && !seen.has(why)) {
      seen.add(why);
      log(`BUG: an unhandled failure, logged once and survived: ${(e as Error)?.stack ?? why}`);
    }
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function describe(gateway: Gateway): void {
  const unsupported = gateway.unsupportedAccounts();
  if (unsupported.length > 0) {
    log(`WARNING: this runtime does not speak these accounts' providers yet; they get no traffic: ${unsupported.join(", ")}`);
  }
  if (gateway.plan.virtualKeys.length === 0) log("WARNING: no virtual keys are configured: the gateway is OPEN to every caller");
}
