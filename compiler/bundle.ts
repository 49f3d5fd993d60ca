import * as esbuild from "esbuild";
import { readFileSync } from "node:fs";
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
    logLevel: "silent",
    // The dashboard page (built by compiler/build-self.mjs), served at /ui with nothing beside the bundle.
    define: { __GWC_UI_PAGE__: JSON.stringify(readFileSync(join(PACKAGE_ROOT, "build", "ui.html"), "utf8")) },
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
