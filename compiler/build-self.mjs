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

// The dashboard page: Preact and uPlot bundled for the browser, script and
// styles inlined into one HTML file that `gwc build` puts into each bundle.
const ui = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["runtime/ui/app.tsx"],
  bundle: true,
  write: false,
  outdir: "ui",
  minify: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  logLevel: "warning",
});
const out = (ext) => ui.outputFiles.find((f) => f.path.endsWith(ext)).text;
// "</script" cannot occur in the script: esbuild escapes it in string literals.
writeFileSync(
  join(root, "build", "ui.html"),
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>gwc dashboard</title><style>${out(".css")}</style></head><body><div id="app"></div><script>${out(".js")}</script></body></html>\n`,
);

// The compiler's checks for the dashboard's config page (compiler/browser.ts),
// loaded by the page only when the config page opens.
await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["compiler/browser.ts"],
  bundle: true,
  outfile: "build/ui-compiler.js",
  minify: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  legalComments: "none",
  logLevel: "warning",
});
