import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The gwc package's root, whether running from source or from build/. */
export const PACKAGE_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "runtime", "main.ts"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("gwc: cannot find the runtime sources beside the compiler");
    dir = parent;
  }
  return dir;
})();
