// Applying a config draft from the dashboard (server.ui_apply) under a real
// `gwc serve <config>`: a draft that compiles replaces the config file and is
// reloaded; one that does not is refused with gwc check's diagnostics and
// changes nothing.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, tempDir } from "../helpers.ts";

const ADMIN = "admin-apply-test-key";
let serve: ChildProcess | undefined;

afterAll(() => serve?.kill("SIGTERM"));


const config = (weight: number, uiApply = true) =>
  JSON.stringify(
    {
      accounts: [
        { id: "a", provider: "openai", base_url: "http://127.0.0.1:9/v1", weight },
        { id: "b", provider: "openai", base_url: "http://127.0.0.1:9/v1", weight: 100 - weight },
      ],
      server: { admin_key: "${GWC_ADMIN_KEY}", ui_apply: uiApply },
    },
    null,
    2,
  ) + "\n";

describe("applying a draft from the dashboard", () => {
  it("compiles, writes and reloads a good draft; refuses a bad one with its diagnostics", async () => {
    const dir = tempDir();
    const file = join(dir, "gateway.config.json");
    writeFileSync(file, config(70));
    const port = await freePort();
    serve = spawn(process.execPath, ["build/gwc.mjs", "serve", file, "--port", String(port)], {
      env: { ...process.env, GWC_ADMIN_KEY: ADMIN, OPENAI_API_KEY: "sk-test" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    serve.stderr!.on("data", (c: Buffer) => (log += c));
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${ADMIN}` };
    await expect.poll(() => fetch(`${base}/readyz`).then((r) => r.status, () => 0), { timeout: 20_000 }).toBe(200);
    const running = await (await fetch(`${base}/admin/api/config`, { headers: auth })).json();
    expect(running).toMatchObject({ source: config(70), apply: "enabled" });

    const bad = config(70).replace('"provider": "openai"', '"provider": "opneai"');
    const refused = await fetch(`${base}/admin/api/config`, { method: "POST", headers: auth, body: bad });
    expect(refused.status).toBe(400);
    const why = await refused.json();
    expect(why.error.code).toBe("config_invalid");
    expect(why.diagnostics.join("\n")).toMatch(/gateway\.config\.json:\d+:\d+\s+GWC_E_UNKNOWN_PROVIDER\s+\/accounts\/0\/provider/);
    expect(readFileSync(file, "utf8")).toBe(config(70));

    const applied = await fetch(`${base}/admin/api/config`, { method: "POST", headers: auth, body: config(50) });
    expect(applied.status, log).toBe(200);
    const { version } = await applied.json();
    expect(readFileSync(file, "utf8")).toBe(config(50));
    // The gateway reloaded: its snapshot shows the new version and the new split.
    await expect.poll(async () => (await (await fetch(`${base}/admin/api/snapshot`, { headers: auth })).json()).config.version, { timeout: 20_000 }).toBe(version);
    const snap = await (await fetch(`${base}/admin/api/snapshot`, { headers: auth })).json();
    expect(snap.routes[0].split.map((s: { configured: number }) => s.configured)).toEqual([0.5, 0.5]);

    expect((await fetch(`${base}/admin/api/config`, { method: "POST", body: config(60) })).status).toBe(401);
  });
});
