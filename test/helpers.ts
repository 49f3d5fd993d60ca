import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
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
