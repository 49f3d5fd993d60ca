import * as esbuild from "esbuild";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "./package-root.ts";

/**
 * Bundles the runtime with an emitted plan module into one self-contained ES
 * module that runs with plain `node`. Paths are relative to the package root,
 * so the same input gives the same bytes wherever gwc is installed.
 */
export async function bundleGateway(planModule: string, header: string, configSource: string | null = null): Promise<string> {
  const page = (name: string) => JSON.stringify(readFileSync(join(PACKAGE_ROOT, "build", name), "utf8"));
  const result = await esbuild.build({
    absWorkingDir: PACKAGE_ROOT,
    entryPoints: [join(PACKAGE_ROOT, "runtime", "main.ts")],
    bundle: true,
    write: false,
    format: "esm",
    platform: "node",
    target: "node20",
    legalComments: "none",
    // ES module builds first: esbuild can drop what is never imported from them (CommonJS it must
    // keep whole), which keeps the OpenTelemetry SDK to ~150 KiB instead of ~700 and @smithy's to a tenth.
    mainFields: ["module", "main"],
    logLevel: "silent",
    // The dashboard (built by compiler/build-self.mjs), served at /ui with nothing beside the bundle,
    // and the config it was built from (only `${VAR}` references, never a secret) for its config page.
    define: { __GWC_UI_PAGE__: page("ui.html"), __GWC_UI_COMPILER__: page("ui-compiler.js"), __GWC_CONFIG_SOURCE__: JSON.stringify(configSource) },
    // undici is CommonJS and requires node: built-ins; give the ES module a require.
    banner: { js: `${header}\nimport { createRequire as __gwcCreateRequire } from "node:module";\nconst require = __gwcCreateRequire(import.meta.url);` },
    plugins: [
      {
        // The runtime's `undici` and `ioredis`, as the gateway needs them (compiler/shims/: why).
        name: "gwc-shims",
        setup(build) {
          const shims = join(PACKAGE_ROOT, "compiler", "shims");
          build.onResolve({ filter: /^(undici|ioredis)$/ }, (args) => (args.importer.startsWith(shims) ? undefined : { path: join(shims, `${args.path}.mjs`) }));
        },
      },
      {
        name: "gwc-plan",
        setup(build) {
          build.onResolve({ filter: /^gwc:plan$/ }, () => ({ path: "plan.generated.mjs", namespace: "gwc-plan" }));
          build.onLoad({ filter: /.*/, namespace: "gwc-plan" }, () => ({ contents: planModule, loader: "js" }));
        },
      },
    ],
  });
  return asciiOnly(result.outputFiles[0].text);
}

/**
 * esbuild escapes non-ASCII characters in string literals but leaves them in
 * comments and regular expressions. One such character makes V8 hold the whole
 * bundle's source as a two-byte string: twice its size, for the life of the
 * process. `\uXXXX` means the same character in a comment, a regular
 * expression (with or without the u flag, a surrogate pair stays a pair) and a
 * string; template literals are already escaped by esbuild.
 */
export function asciiOnly(code: string): string {
  return code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
