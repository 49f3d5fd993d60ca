import { readFileSync, statSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { buildToDir, compileSource, GWC_VERSION } from "./compile.ts";
import { formatDiagnostic, type Diagnostic } from "./diagnostics.ts";
import { explain } from "./explain.ts";

const USAGE = `gwc ${GWC_VERSION}: compile an LLM gateway from one JSON config

usage:
  gwc check <config> [--format text|json]   validate; exit 1 listing every problem
  gwc build <config> [-o dir]               write dir/gateway.mjs and dir/manifest.json (default dir: dist)
  gwc explain <config>                      print each route's exact split, failover chains, budgets
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
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
  if (values.version) return print(GWC_VERSION), 0;
  const [command, config, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") return print(USAGE), 0;
  if (config === undefined) throw new UsageError(`'gwc ${command}' needs a config file`);
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
    default:
      throw new UsageError(`unknown command '${command}'`);
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
