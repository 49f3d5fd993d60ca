import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import type { Plan } from "./plan.ts";
import { nextPlan } from "./reload.ts";
import { Runtime, type Gateway } from "./gateway.ts";
import { configureLog, event, flushLog } from "./log.ts";
import { installObservability, tracingConfigured } from "./observability.ts";
import { StartupError } from "./secrets.ts";
import { ipcApplier } from "./apply-ipc.ts";
import { createGatewayServer } from "./server.ts";
import { openStore } from "./state-open.ts";
import { isWorker, runPrimary, workerCanApply, workerCount } from "./workers.ts";

/**
 * The process cannot start or serve: a JSON event on stdout for the log
 * pipeline, the same words on stderr for the person at the terminal, exit 1.
 */
function fatal(name: string, message: string, fields: Record<string, unknown> = {}): never {
  event(name, fields, message, "fatal");
  flushLog();
  process.stderr.write(`gwc: ${message}\n`);
  process.exit(1);
}

const version = (plan: Plan) => plan.configSha256.slice(0, 12);

/** A line for the log, for the parts (the store, --workers) that speak in words. */
const log = (line: string) => event("notice", {}, line);

/**
 * Runs the gateway as a process: listens on HOST:PORT, reloads its own bundle
 * on SIGHUP (a new plan, same pools and breakers, no dropped requests), and
 * drains on SIGTERM/SIGINT. Everything it says is a JSON line on stdout (log.ts).
 */
export function start(plan: Plan, bundleUrl: string, configSource: string | null = null): void {
  boundOldGeneration();
  const logger = configureLog({ level: plan.server.logLevel });
  const workers = workerCount();
  if (workers > 1 && !isWorker()) return runPrimary(plan, workers, log);
  let runtime: Runtime;
  let ready: Promise<void>;
  let gateway;
  try {
    const opened = openStore(plan, process.env, log);
    ready = opened.ready;
    runtime = new Runtime(opened.store);
    gateway = runtime.load(plan, process.env, configSource);
  } catch (e) {
    if (!(e instanceof StartupError)) throw e;
    fatal("start_failed", `cannot start: ${e.message}`);
  }
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? "127.0.0.1";
  event(
    "start",
    { config_version: version(plan), gwc_version: plan.gwcVersion, routes: plan.routes.length, accounts: plan.accounts.length, metrics: plan.observability.metrics, access_log: plan.server.accessLog, tracing: tracingConfigured(process.env) },
    `starting gwc ${plan.gwcVersion} with config ${version(plan)}`,
  );
  describe(gateway);
  // A worker's IPC channel leads to the --workers primary, which relays drafts to `gwc serve` when one started it.
  runtime.applyConfig = !isWorker() ? ipcApplier() : workerCanApply() ? ipcApplier(false) : undefined;
  const gs = createGatewayServer(runtime, gateway);
  // Only a listen failure ends the process; once listening, the server's own handler takes errors (an accept failure under EMFILE).
  const cannotListen = (e: Error) => fatal("listen_failed", `cannot listen on ${host}:${port}: ${e.message}`, { host, port });
  gs.server.once("error", cannotListen);
  // Listen once the store answers (or has had its chance: Redis, a few seconds at most) and tracing is up.
  void ready
    .then(() => installObservability(runtime, { current: () => gs.gateway, logger }))
    .then(
      () =>
        gs.server.listen(port, host, () => {
          gs.server.off("error", cannotListen);
          // The port bound (PORT=0 asks the system for a free one).
          const bound = (gs.server.address() as AddressInfo).port;
          event("listening", { host, port: bound }, `listening on http://${host}:${bound} (${plan.routes.length} routes, ${plan.accounts.length} accounts)`);
        }),
      (e: unknown) => fatal("start_failed", `cannot start tracing: ${(e as Error)?.message ?? e}`),
    );

  let generation = 0;
  process.on("SIGHUP", () => {
    nextPlan(bundleUrl, ++generation, (line) => event("reload_note", {}, line, "warn"))
      .then((next) => {
        gs.gateway = runtime.load(next.plan, process.env, next.configSource);
        configureLog({ level: next.plan.server.logLevel });
        runtime.metrics?.configLoaded(next.plan);
        runtime.metrics?.reload("success");
        event("reload", { config_version: version(next.plan) }, `reloaded config ${version(next.plan)}`);
        describe(gs.gateway);
      })
      .catch((e: unknown) => {
        runtime.noteLoad({ at: Date.now(), version: null, ok: false, message: (e as Error).message });
        runtime.metrics?.reload("failure");
        event("reload_failed", { error: (e as Error)?.message ?? String(e) }, `reload failed, still serving the previous config: ${(e as Error)?.message ?? e}`, "error");
      });
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const timeoutMs = gs.gateway.plan.server.shutdownTimeoutMs;
    event("drain", { signal, timeout_ms: timeoutMs }, `${signal}: draining in-flight requests (up to ${timeoutMs} ms)`);
    gs.shutdown().then(
      () => {
        event("stop", { signal }, "drained; exiting");
        process.exit(0);
      },
      (e: unknown) => {
        event("stop", { signal, error: (e as Error)?.message ?? String(e) }, "drain failed; exiting", "error");
        process.exit(1);
      },
    );
  };
  // A promise nobody awaited failing is a bug to log, not a reason to drop every request in flight.
  const seen = new Set<string>();
  process.on("unhandledRejection", (e) => {
    const why = (e as Error)?.message ?? String(e);
    if (seen.size < 100 && !seen.has(why)) {
      seen.add(why);
      event("unhandled_rejection", { error: why, stack: (e as Error)?.stack }, `BUG: an unhandled failure, logged once and survived: ${why}`, "error");
    }
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/**
 * Under load most of what a request allocates dies young, but what is in
 * flight when the young generation is collected moves to the old one, and V8
 * lets that grow to about twice what is live before it collects it: 40-50 MiB
 * of dead requests at 32 connections. Growing it by 20% of what is live
 * instead collects that sooner (a few ms of concurrent marking a second under
 * load); bench/README.md "Memory" has the figures. V8 reads the setting each
 * time it sizes the heap, so setting it here is the same as `node
 * --heap-growing-percent=20`; a value the user passes to node wins.
 */
function boundOldGeneration(): void {
  if (process.execArgv.some((a) => a.startsWith("--heap-growing-percent") || a.startsWith("--heap_growing_percent"))) return;
  setFlagsFromString("--heap-growing-percent=20");
}

function describe(gateway: Gateway): void {
  const unsupported = gateway.unsupportedAccounts();
  if (unsupported.length > 0) {
    event("unsupported_accounts", { accounts: unsupported }, `this runtime does not speak these accounts' providers yet; they get no traffic: ${unsupported.join(", ")}`, "warn");
  }
  if (gateway.plan.virtualKeys.length === 0) event("open_gateway", {}, "no virtual keys are configured: the gateway is OPEN to every caller", "warn");
}
