// Secrets never reach the build output: the config names environment
// variables, the compiler records the names, and the values stay in the
// environment of whoever runs the gateway. A literal secret in the config is an
// error whose message never repeats it.
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildToDir, compileSource, type Manifest } from "../../compiler/compile.ts";
import { formatDiagnostic, type Diagnostic } from "../../compiler/diagnostics.ts";
import { ConfigError, fromConfig } from "../../compiler/testing.ts";

const SECRETS: Record<string, string> = {
  OPENAI_API_KEY: "sk-test-SECRET-VALUE-1234567890",
  ANTHROPIC_API_KEY: "sk-ant-test-SECRET-VALUE-0987654321",
  GROQ_API_KEY: "gsk-test-SECRET-VALUE-1122334455",
  GWC_TEST_VIRTUAL_KEY: "gwc-vk-test-SECRET-VALUE-5566778899",
  GWC_TEST_ADMIN_KEY: "gwc-admin-test-SECRET-VALUE-9988776655",
};

const saved = new Map<string, string | undefined>();
const tempDirs: string[] = [];

function setSecrets(suffix = ""): void {
  for (const [name, value] of Object.entries(SECRETS)) process.env[name] = value + suffix;
}

beforeAll(() => {
  for (const name of Object.keys(SECRETS)) saved.set(name, process.env[name]);
  setSecrets();
});

afterAll(async () => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gwc-secrets-"));
  tempDirs.push(dir);
  return dir;
}

/** Builds a config file into a fresh out dir; returns every file written there, by name. */
async function buildAll(configPath: string): Promise<{ files: Map<string, string>; manifest: Manifest }> {
  const out = join(await tempDir(), "out");
  const result = await buildToDir(configPath, out);
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  expect(result.files).toBeDefined();
  const files = new Map<string, string>();
  for (const name of await readdir(out)) files.set(name, await readFile(join(out, name), "utf8"));
  expect([...files.keys()].sort()).toEqual(["gateway.mjs", "gateway.plan.json", "manifest.json"]);
  return { files, manifest: JSON.parse(files.get("manifest.json")!) as Manifest };
}

function expectNoSecretIn(text: string, secrets: Iterable<string>): void {
  for (const secret of secrets) expect(text).not.toContain(secret);
  // Nor a recognisable fragment of one (a value cut or split on the way).
  expect(text).not.toContain("SECRET-VALUE");
}

describe("secrets stay in the environment", () => {
  it("examples/article-70-30.json: names in the manifest, values nowhere", async () => {
    const { files, manifest } = await buildAll("examples/article-70-30.json");
    expect(manifest.environment).toEqual(["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]);
    for (const text of files.values()) expectNoSecretIn(text, Object.values(SECRETS));
  });

  const config = {
    accounts: [
      { id: "openai-primary", provider: "openai", api_key: "${OPENAI_API_KEY}", weight: 70 },
      { id: "anthropic-secondary", provider: "anthropic", api_key: "${ANTHROPIC_API_KEY}", weight: 30 },
      // No api_key: the provider's usual variable, GROQ_API_KEY.
      { id: "groq-fallback", provider: "groq", weight: 0 },
    ],
    virtual_keys: [{ id: "team-backend", key: "${GWC_TEST_VIRTUAL_KEY}" }],
    server: { admin_key: "${GWC_TEST_ADMIN_KEY}" },
  };
  const names = Object.keys(SECRETS).sort();

  it("accounts, virtual keys and the admin key: names in the manifest, values nowhere", async () => {
    const dir = await tempDir();
    const configPath = join(dir, "gateway.json");
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const { files, manifest } = await buildAll(configPath);
    expect(manifest.environment).toEqual(names);
    for (const [name, text] of files) {
      expectNoSecretIn(text, Object.values(SECRETS));
      if (name === "manifest.json") for (const v of names) expect(text).toContain(v);
    }

    // The plan holds the names, never the values.
    const { plan } = compileSource(JSON.stringify(config), "gateway.json");
    expect(plan!.accounts.map((a) => a.apiKeyEnv)).toEqual(["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"]);
    expect(plan!.virtualKeys.map((k) => k.keyEnv)).toEqual(["GWC_TEST_VIRTUAL_KEY"]);
    expect(plan!.server.adminKeyEnv).toBe("GWC_TEST_ADMIN_KEY");
    expectNoSecretIn(JSON.stringify(plan, (_, v: unknown) => (v instanceof Uint32Array ? [...v] : v)), Object.values(SECRETS));

    // The build does not depend on the values at all: other values, same bytes.
    setSecrets("-ROTATED");
    try {
      const again = await buildAll(configPath);
      expect(again.files).toEqual(files);
    } finally {
      setSecrets();
    }
  });
});

// ── Literal secrets are errors that never echo the value ──────────────────────

const LITERAL = "sk-live-abc";

function account(extra: object): object {
  return { accounts: [{ id: "a", provider: "openai", ...extra }] };
}

const literalCases: { name: string; config: object | string; code: string }[] = [
  { name: "account api_key", config: account({ api_key: LITERAL }), code: "GWC_E_LITERAL_SECRET" },
  { name: "virtual key", config: { ...account({}), virtual_keys: [{ id: "k", key: LITERAL }] }, code: "GWC_E_LITERAL_SECRET" },
  { name: "admin key", config: { ...account({}), server: { admin_key: LITERAL } }, code: "GWC_E_LITERAL_SECRET" },
  { name: "api_key with a stray $", config: account({ api_key: `$${LITERAL}` }), code: "GWC_E_ENV_REF" },
  { name: "api_key with a reference and more", config: account({ api_key: `\${OPENAI_API_KEY}${LITERAL}` }), code: "GWC_E_ENV_REF" },
  { name: "key_sha256 holding the key", config: { ...account({}), virtual_keys: [{ id: "k", key_sha256: LITERAL }] }, code: "GWC_E_KEY_SHA256" },
  { name: "credentials in base_url", config: account({ base_url: `https://user:${LITERAL}@api.example.com/v1` }), code: "GWC_E_BASE_URL" },
  { name: "key in base_url's query", config: account({ base_url: `https://api.example.com/v1?api_key=${LITERAL}` }), code: "GWC_E_BASE_URL" },
  { name: "api_key under providers", config: { ...account({}), providers: { openai: { api_key: LITERAL } } }, code: "GWC_E_UNKNOWN_PROPERTY" },
  {
    name: "api_key in a config with a syntax error",
    config: `{ "accounts": [{ "id": "a", "provider": "openai", "api_key": "${LITERAL}", }] }`,
    code: "GWC_E_JSON_SYNTAX",
  },
];

function expectNotEchoed(diagnostics: Diagnostic[]): void {
  for (const d of diagnostics) {
    expect(d.message).not.toContain(LITERAL);
    expect(formatDiagnostic(d)).not.toContain(LITERAL);
  }
  expect(JSON.stringify(diagnostics)).not.toContain(LITERAL);
}

describe("a literal secret is an error and is never echoed", () => {
  for (const { name, config, code } of literalCases) {
    it(`${name}: ${code}`, () => {
      const text = typeof config === "string" ? config : JSON.stringify(config);
      expect(text).toContain(LITERAL); // test sanity
      const { plan, diagnostics } = compileSource(text, "gateway.json");
      expect(plan).toBeUndefined();
      expect(diagnostics.filter((d) => d.severity === "error").map((d) => d.code)).toContain(code);
      expectNotEchoed(diagnostics);

      let thrown: unknown;
      try {
        fromConfig(text);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).not.toContain(LITERAL);
    });
  }

  it("buildToDir with a literal api_key writes nothing and does not echo it", async () => {
    const dir = await tempDir();
    const configPath = join(dir, "gateway.json");
    await writeFile(configPath, JSON.stringify(account({ api_key: LITERAL })));
    const out = join(dir, "out");
    const result = await buildToDir(configPath, out);
    expect(result.files).toBeUndefined();
    expect(result.diagnostics.map((d) => d.code)).toEqual(["GWC_E_LITERAL_SECRET"]);
    expect(result.diagnostics[0].pointer).toBe("/accounts/0/api_key");
    expectNotEchoed(result.diagnostics);
    expect(existsSync(out)).toBe(false);
  });
});
