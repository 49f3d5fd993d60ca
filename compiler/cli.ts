import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { PLAN_VERSION, type Plan } from "../runtime/plan.ts";
import type { ApplyResult } from "../runtime/admin-api.ts";
import type { ApplyReply, ApplyRequest } from "../runtime/apply-ipc.ts";
import { buildToDir, compileSource, GWC_VERSION, writeFileAtomically, type Manifest } from "./compile.ts";
import { diffPlans, formatJson, formatMarkdown, formatText, type PlanDiff } from "./diff.ts";
import { formatDiagnostic, type Diagnostic } from "./diagnostics.ts";
import { parseDuration } from "./durations.ts";
import { explain } from "./explain.ts";

const USAGE = `gwc ${GWC_VERSION}: compile an LLM gateway from one JSON config

usage:
  gwc check <config> [--format text|json]   validate; exit 1 listing every problem
  gwc build <config> [-o dir]               write dir/gateway.mjs, its plan and manifest.json (default dir: dist)
  gwc explain <config>                      print each route's exact split, failover chains, budgets
  gwc diff <old> <new> [--format text|markdown|json] [--exit-code]
                                            what a config change does: splits, accounts, keys, budgets,
                                            limits, prices, pools (configs, bundles or manifests);
                                            --exit-code exits 1 when anything changed, 2 on an invalid input
  gwc serve <config|bundle> [--port N] [--host H] [--watch] [--workers N]
                                            serve; --watch applies config edits live (a bad edit is
                                            reported and the running config keeps serving); --workers
                                            runs N processes sharing one set of limits (or GWC_WORKERS)
  gwc state import <config>                 copy the embedded store's snapshot (state.dir) into the
                                            Redis of state.redis, once
  gwc demo [--port N] [--duration 60s]     two local stand-in providers, a gateway with a 70/30 split,
                                            teams, keys and budgets, and traffic: prints the dashboard URL;
                                            Ctrl-C stops everything
  gwc --version
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      format: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      watch: { type: "boolean" },
      workers: { type: "string" },
      "exit-code": { type: "boolean" },
      duration: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
  if (values.version) return print(GWC_VERSION), 0;
  const [command, ...more] = positionals;
  if (values.help || command === undefined || command === "help") return print(USAGE), 0;
  if (command === "state") {
    if (more[0] !== "import") throw new UsageError(`'gwc state' takes 'import <config>'`);
    more.shift();
  }
  const [config, ...rest] = more;
  if (command === "demo") {
    if (config !== undefined) throw new UsageError(`unexpected argument '${config}'`);
    const port = Number(values.port ?? 8080);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new UsageError(`--port must be a port number, not '${values.port}'`);
    const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration);
    if (values.duration !== undefined && durationMs === undefined) throw new UsageError(`--duration must be a duration like 30s or 5m, not '${values.duration}'`);
    const { demo } = await import("./demo.ts");
    // Everything it started is stopped by now; idle keep-alive sockets must not hold the process.
    process.exit(await demo({ port, durationMs, rate: 5, print }));
  }
  if (config === undefined) throw new UsageError(`'gwc ${command}' needs a config file`);
  if (command === "diff") return diff(config, rest, values.format ?? "text", values["exit-code"] ?? false);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") throw new UsageError(`--format must be text or json, not '${format}'`);

  switch (command) {
    case "check": {
      const { diagnostics, plan } = compileSource(readConfig(config), config);
      if (format === "json") {
        print(JSON.stringify({ ok: plan !== undefined, diagnostics }, null, 2));
      } else {
        report(diagnostics, print);
        if (plan !== undefined) {
          print(`${config}: ok (${plan.accounts.length} accounts, ${plan.routes.length} routes, ${plan.virtualKeys.length} virtual keys)`);
        }
      }
      return plan === undefined ? 1 : 0;
    }
    case "build": {
      readConfig(config);
      const { diagnostics, files } = await buildToDir(config, values.out ?? "dist");
      report(diagnostics, printErr);
      if (files === undefined) return printErr(`${config}: build failed; nothing was written`), 1;
      const size = (statSync(files.bundle).size / 1024).toFixed(1);
      print(`wrote ${shortPath(files.bundle)} (${size} KiB) and ${shortPath(files.manifest)}`);
      return 0;
    }
    case "explain": {
      const { diagnostics, plan } = compileSource(readConfig(config), config);
      report(diagnostics, printErr);
      if (plan === undefined) return 1;
      process.stdout.write(explain(plan));
      return 0;
    }
    case "serve": {
      const workers = values.workers;
      if (workers !== undefined && !/^([1-9]\d?|1\d\d|2[0-4]\d|25[0-6])$/.test(workers)) throw new UsageError(`--workers must be a whole number from 1 to 256, not '${workers}'`);
      return serve(config, { port: values.port, host: values.host, watch: values.watch ?? false, workers });
    }
    case "state":
      return stateImport(config);
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** `gwc diff old new`: 0 (or 1 with --exit-code when anything changed); 2 when an input is not a valid config or bundle. */
async function diff(before: string, rest: string[], format: string, exitCode: boolean): Promise<number> {
  const [after, ...extra] = rest;
  if (after === undefined) throw new UsageError("'gwc diff' needs two inputs: the old and the new config (or bundle, or manifest)");
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const formats: Record<string, (d: PlanDiff) => string> = { text: formatText, markdown: formatMarkdown, json: formatJson };
  const formatter = formats[format];
  if (formatter === undefined) throw new UsageError(`--format must be text, markdown or json, not '${format}'`);
  const [a, b] = [await planOf(before), await planOf(after)];
  if (a === undefined || b === undefined) return 2;
  const result = diffPlans(a, b);
  process.stdout.write(formatter(result));
  return exitCode && result.changes.length > 0 ? 1 : 0;
}

/** A config compiled in memory, or the plan inside a built bundle (given as the bundle or its manifest); undefined after printing why not. */
async function planOf(input: string): Promise<Plan | undefined> {
  let bundle: string | undefined;
  if (/\.(mjs|js)$/.test(input)) bundle = resolve(input);
  else if (basename(input) === "manifest.json") bundle = resolve(dirname(input), (JSON.parse(readConfig(input)) as Manifest).bundle);
  if (bundle === undefined) {
    const { diagnostics, plan } = compileSource(readConfig(input), input);
    report(diagnostics.filter((d) => plan === undefined || d.severity === "error"), printErr);
    return plan;
  }
  if (!existsSync(bundle)) throw new UsageError(`cannot read ${bundle}: no such file`);
  const mod = (await import(pathToFileURL(bundle).href)) as { plan?: Plan };
  if (mod.plan?.version !== PLAN_VERSION) {
    printErr(`${input}: not a gwc bundle of plan version ${PLAN_VERSION}; rebuild it with this gwc`);
    return undefined;
  }
  return mod.plan;
}

/**
 * Serves a config (built into a private directory) or a built bundle in a
 * child `node` process, forwarding signals. With --watch, a config edit is
 * recompiled; if it compiles, the bundle is replaced and the child reloads on
 * SIGHUP without dropping requests; if not, the diagnostics are printed and the
 * running config keeps serving.
 */
async function serve(input: string, opts: { port?: string; host?: string; watch: boolean; workers?: string }): Promise<number> {
  const isBundle = /\.(mjs|js)$/.test(input);
  let bundle = resolve(input);
  const rebuild = async (): Promise<boolean> => {
    const { diagnostics, files } = await buildToDir(input, dir!);
    report(diagnostics, printErr);
    if (files === undefined) printErr(`${input}: not applied; still serving the previous config`);
    return files !== undefined;
  };
  let dir: string | undefined;
  if (!isBundle) {
    readConfig(input);
    dir = mkdtempSync(join(tmpdir(), "gwc-serve-"));
    bundle = join(dir, "gateway.mjs");
    if (!(await rebuild())) return 1;
  } else if (!existsSync(bundle)) {
    throw new UsageError(`cannot read ${input}: no such file`);
  }
  const env = { ...process.env, ...(opts.port ? { PORT: opts.port } : {}), ...(opts.host ? { HOST: opts.host } : {}), ...(opts.workers ? { GWC_WORKERS: opts.workers } : {}) };
  // An IPC channel lets the dashboard apply a config draft (server.ui_apply): compiled here, then reloaded.
  const child = spawn(process.execPath, [bundle], { stdio: ["inherit", "inherit", "inherit", "ipc"], env });
  child.on("message", (m: ApplyRequest) => {
    if (m?.type !== "gwc:apply") return;
    void applyDraft(m.source).then((result) => child.send({ type: "gwc:applied", id: m.id, result } satisfies ApplyReply));
  });
  const applyDraft = async (source: string): Promise<ApplyResult> => {
    if (isBundle) return { ok: false, status: 409, message: "This gateway serves a built bundle; serve the config file to apply drafts.", diagnostics: [] };
    const { diagnostics, plan } = compileSource(source, input);
    if (plan === undefined) return { ok: false, status: 400, message: "The draft does not compile; nothing was applied.", diagnostics: diagnostics.map(formatDiagnostic) };
    writeFileAtomically(resolve(input), source);
    printErr(`${input}: replaced by a draft from the dashboard`);
    // --watch sees the new file and reloads; otherwise reload here.
    if (!opts.watch) {
      if (!(await rebuild())) return { ok: false, status: 500, message: "The draft compiled but the bundle could not be built.", diagnostics: [] };
      child.kill("SIGHUP");
    }
    return { ok: true, version: plan.configSha256.slice(0, 12) };
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => child.kill(signal));
  if (opts.watch) {
    let timer: NodeJS.Timeout | undefined;
    // Watch the directory: editors often replace the file rather than write it.
    const target = resolve(input);
    watch(dirname(target), (_event, name) => {
      if (name !== basename(target)) return;
      clearTimeout(timer);
      timer = setTimeout(async () => {
        if (isBundle || (await rebuild())) child.kill("SIGHUP");
      }, 100);
    });
  }
  const code = await new Promise<number>((ok) => child.on("exit", (c, signal) => ok(c ?? (signal ? 128 : 1))));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

/** `gwc state import`: the embedded store's snapshot into Redis, once per prefix. */
async function stateImport(config: string): Promise<number> {
  const { diagnostics, plan } = compileSource(readConfig(config), config);
  report(diagnostics, printErr);
  if (plan === undefined) return 1;
  if (plan.state.redis === undefined) return printErr(`${config}: has no state.redis to import into`), 1;
  const { importSnapshot } = await import("../runtime/redis-import.ts");
  try {
    const r = await importSnapshot(plan.state.dir, plan.state.redis, process.env);
    if (!r.imported) return printErr(`a snapshot was already imported under prefix '${plan.state.redis.prefix}'; nothing was written`), 1;
    print(`imported ${r.money} budget counters and ${r.counts} rate-limit counters from ${join(plan.state.dir, "state.json")}`);
    return 0;
  } catch (e) {
    return printErr(`gwc: ${(e as Error).message}`), 1;
  }
}

function readConfig(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : String(code);
    throw new UsageError(`cannot read ${path}: ${why}`);
  }
}

function report(diagnostics: Diagnostic[], out: (line: string) => void): void {
  for (const d of diagnostics) out(formatDiagnostic(d));
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  if (errors > 0) out(`${errors} error(s), ${diagnostics.length - errors} warning(s)`);
}

function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}

function print(line: string): void {
  process.stdout.write(line + "\n");
}

function printErr(line: string): void {
  process.stderr.write(line + "\n");
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      printErr(`gwc: ${(e as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      // Never a stack trace: one line a person can report.
      printErr(`gwc: internal error: ${(e as Error)?.message ?? String(e)}`);
      process.exitCode = 70;
    }
  },
);
