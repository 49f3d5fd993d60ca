import * as esbuild from "esbuild";
import { join } from "node:path";
import { PACKAGE_ROOT } from "./package-root.ts";

/**
 * Bundles the runtime with an emitted plan module into one self-contained ES
 * module that runs with plain `node`. Paths are relative to the package root,
 * so the same input gives the same bytes wherever gwc is installed.
 */
export async function bundleGateway(planModule: string, header: string): Promise<string> {
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
    // undici is CommonJS and requires node: built-ins; give the ES module a require.
    banner: { js: `${header}\nimport { createRequire as __gwcCreateRequire } from "node:module";\nconst require = __gwcCreateRequire(import.meta.url);` },
    plugins: [
      {
        name: "gwc-plan",
        setup(build) {
          build.onResolve({ filter: /^gwc:plan$/ }, () => ({ path: "plan.generated.mjs", namespace: "gwc-plan" }));
          build.onLoad({ filter: /.*/, namespace: "gwc-plan" }, () => ({ contents: planModule, loader: "js" }));
        },
      },
    ],
  });
  return result.outputFiles[0].text;
}
