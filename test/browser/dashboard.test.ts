// The dashboard as a person sees it: Debian's chromium, driven by
// playwright-core, against a real gateway with traffic flowing through two
// mock providers. Screenshots land in test/browser/output/ (and, with
// GWC_UPDATE_SCREENSHOT=1, in test/browser/dashboard.png, which README shows).
import { copyFileSync, mkdirSync } from "node:fs";
import OpenAI from "openai";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, type RunningGateway } from "../runtime/harness.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = "test/browser/output";
const ENV = { OPENAI_API_KEY: "sk-test-openai", GWC_ADMIN_KEY: "admin-secret-1234", GWC_KEY_BACKEND: "vk-backend-5678", GWC_KEY_RESEARCH: "vk-research-9012" };

let primary: MockUpstream;
let secondary: MockUpstream;
let gw: RunningGateway;
let browser: Browser;
let page: Page;

async function traffic(n: number, key = ENV.GWC_KEY_BACKEND): Promise<void> {
  const client = new OpenAI({ baseURL: gw.v1, apiKey: key, maxRetries: 0 });
  for (let i = 0; i < n; i++) {
    await client.chat.completions.create({ model: "gpt-4o", max_tokens: 16, messages: [{ role: "user", content: `hello ${i}` }] }).catch(() => undefined);
  }
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  primary = await startOpenAIUpstream({ name: "primary" });
  secondary = await startOpenAIUpstream({ name: "secondary" });
  gw = await startGateway(
    {
      accounts: [account("openai-primary", primary.url, 70), account("openai-secondary", secondary.url, 30)],
      organization: { id: "acme", budget: { daily_limit_usd: 50 } },
      teams: [
        { id: "backend", budget: { daily_limit_usd: 10 } },
        { id: "research", budget: { daily_limit_usd: 0.003 } },
      ],
      virtual_keys: [
        { id: "backend-service", key: "${GWC_KEY_BACKEND}", team: "backend", budget: { daily_limit_usd: 5 } },
        { id: "research-notebook", key: "${GWC_KEY_RESEARCH}", team: "research" },
      ],
      pricing: { "gpt-4o": { input_per_mtok_usd: 2.5, output_per_mtok_usd: 10 } },
      server: { admin_key: "${GWC_ADMIN_KEY}" },
    },
    ENV,
  );
  // Some of the primary's answers fail over to the secondary; the research team runs out of budget.
  primary.queue.push({ kind: "status", status: 503 }, { kind: "ok" }, { kind: "status", status: 500 });
  await traffic(40);
  // Until the research team's budget refuses: each request reserves ~15% of its cap, so it stops above 80%.
  await traffic(90, ENV.GWC_KEY_RESEARCH);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1700 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await primary?.close();
  await secondary?.close();
});

describe("dashboard in a real browser", () => {
  it("asks for the admin key, and refuses a wrong one", async () => {
    await page.goto(`${gw.url}/ui`);
    await page.getByLabel("Admin key").fill("not-the-key");
    await page.getByRole("button", { name: "Open" }).click();
    await expect.poll(() => page.locator(".error").textContent()).toContain("not accepted");
    expect(await page.getByLabel("Admin key").isVisible()).toBe(true);
  });

  it("shows the configured split beside the live share, accounts, budgets and the last requests", async () => {
    await page.goto(`${gw.url}/ui#admin_key=${ENV.GWC_ADMIN_KEY}`);
    // The key moved from the URL into the tab's sessionStorage.
    await page.waitForSelector("[data-route]");
    expect(page.url()).not.toContain("admin_key");
    const share = await page.locator('[data-share="openai-primary"]').textContent();
    expect(share).toMatch(/^70% configured · \d+(\.\d)?% live$/);
    const live = Number(/· ([\d.]+)% live/.exec(share!)![1]);
    expect(live).toBeGreaterThan(30);
    // The failover chain and both accounts, each with its breaker state.
    expect(await page.locator(".chain").first().textContent()).toBe("failover: openai-primary → openai-secondary");
    expect(await page.locator('table.accounts tr[data-account="openai-secondary"] .badge').first().textContent()).toBe("closed");
    // The primary's 503 and 429 are counted by type.
    const errors = await page.locator('table.accounts tr[data-account="openai-primary"]').textContent();
    expect(errors).toContain("overloaded 1");
    expect(errors).toContain("server_error 1");
    // The budget tree: the research team spent its cap until requests were refused, and is flagged; backend is not.
    const snap = await (await fetch(`${gw.url}/admin/api/snapshot`, { headers: { authorization: `Bearer ${ENV.GWC_ADMIN_KEY}` } })).json();
    const research = snap.budgets.children.find((t: { id: string }) => t.id === "research").periods[0];
    expect(research.used).toBeGreaterThanOrEqual(0.8);
    expect(snap.requests.some((r: { keyId: string; status: number }) => r.keyId === "research-notebook" && r.status === 402)).toBe(true);
    expect(await page.locator('[data-budget="team:research"] .period').getAttribute("class")).toContain(research.used >= 1 ? "red" : "amber");
    expect(await page.locator('[data-budget="team:backend"] .period').getAttribute("class")).not.toMatch(/amber|red/);
    // The last requests, newest first, with the attempt chain of a failed-over one.
    const rows = page.locator("table.requests tbody tr");
    expect(await rows.count()).toBe(25);
    await page.screenshot({ path: `${OUT}/dashboard.png`, fullPage: true });
    if (process.env.GWC_UPDATE_SCREENSHOT === "1") copyFileSync(`${OUT}/dashboard.png`, "test/browser/dashboard.png");
    await page.getByRole("button", { name: "show all 130" }).click();
    expect(await rows.count()).toBe(130);
    expect(await page.locator("table.requests").textContent()).toMatch(/openai-primary overloaded → openai-secondary/);
  });

  it("updates live without a reload", async () => {
    const kpi = page.locator('[data-kpi="requests (15 min)"]');
    const before = Number((await kpi.textContent())!.replace(/,/g, ""));
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
    await traffic(5);
    await expect.poll(async () => Number((await kpi.textContent())!.replace(/,/g, "")), { timeout: 10_000 }).toBe(before + 5);
    // Same document: the page was never reloaded.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
  });

  it("edits a config draft: weights through a form, the compiler's checks and the diff in the browser", async () => {
    await page.getByRole("button", { name: "Config draft" }).click();
    const weight = page.locator('[data-weight="account openai-primary"]');
    await weight.waitFor();
    expect(await weight.inputValue()).toBe("70");
    await weight.fill("50");
    // The exact new split, and what changes against the running config.
    await expect.poll(() => page.locator("pre.diff").textContent()).toContain("openai-primary 7/10 → 5/8");
    expect(await page.locator(".results").textContent()).toContain("Compiles");
    expect(await page.locator("textarea").inputValue()).toContain('"weight": 50');
    // A mistake is located as `gwc check` locates it.
    const draft = await page.locator("textarea").inputValue();
    await page.locator("textarea").fill(draft.replace('"provider": "openai"', '"provider": "opneai"'));
    await expect.poll(() => page.locator(".diagnostics").textContent()).toMatch(/gateway\.config\.json:\d+:\d+\s+GWC_E_\w+\s+\/accounts\/0\/provider/);
    expect(await page.locator(".results").textContent()).toContain("would not build");
    // Applying is opt-in (server.ui_apply), and says so.
    expect(await page.getByRole("button", { name: "Apply live" }).isDisabled()).toBe(true);
    expect(await page.getByRole("button", { name: "Apply live" }).getAttribute("title")).toContain("server.ui_apply");
    await page.screenshot({ path: `${OUT}/config-draft.png`, fullPage: true });
    await page.getByRole("button", { name: "Live", exact: true }).click();
  });

  it("never shows a secret, and the admin API answers 401 without the key", async () => {
    const html = await page.content();
    for (const secret of Object.values(ENV)) expect(html).not.toContain(secret);
    const res = await fetch(`${gw.url}/admin/api/snapshot`);
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe("invalid_admin_key");
    const ok = await fetch(`${gw.url}/admin/api/snapshot`, { headers: { authorization: `Bearer ${ENV.GWC_ADMIN_KEY}` } });
    const body = await ok.text();
    for (const secret of Object.values(ENV)) expect(body).not.toContain(secret);
  });
});
