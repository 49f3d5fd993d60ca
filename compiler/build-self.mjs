// Builds gwc itself: the CLI and gwc/testing into build/ (run by `npm install`
// through `prepare`, and before `npm test`). The runtime is not built here; it
// is bundled with each config's plan by `gwc build`.
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
rmSync(join(root, "build"), { recursive: true, force: true });
await esbuild.build({
  absWorkingDir: root,
  entryPoints: { gwc: "compiler/cli.ts", testing: "compiler/testing.ts" },
  outdir: "build",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  logLevel: "warning",
});
const cli = join(root, "build", "gwc.mjs");
writeFileSync(cli, "#!/usr/bin/env node\n" + readFileSync(cli, "utf8"));
chmodSync(cli, 0o755);
// Type declarations for gwc/testing users.
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "compiler", "tsconfig.testing.json")], { stdio: "inherit" });
