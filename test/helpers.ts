import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export function tempDir(prefix = "gwc-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `gwc build`s a config into a fresh dir (config.json, gateway.mjs) and returns the dir. */
export function buildBundle(config: object): string {
  const dir = tempDir();
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const r = spawnSync(process.execPath, [resolve("build/gwc.mjs"), "build", join(dir, "config.json"), "-o", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`gwc build failed: ${r.stderr}`);
  return dir;
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}
