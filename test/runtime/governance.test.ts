// Governance as a caller meets it, through the official openai client: keys,
// budgets that refuse (402) or reroute, request and token limits, the usage view.
// All of it twice: over the embedded store, which answers at once (and the
// gateway then awaits nothing), and over one that answers a turn later, as a
// store across the network does.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimate } from "../../runtime/governance.ts";
import { MemoryStore, type CountLine, type MoneyLine, type StateStore } from "../../runtime/state-store.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, until, type RunningGateway } from "./harness.ts";

const KEYS = {
  GWC_KEY_CAPPED: "gwc-capped-0123456789",
  GWC_KEY_SOFT: "gwc-soft-0123456789",
  GWC_KEY_LIMITED: "gwc-limited-0123456789",
  GWC_KEY_TOKENS: "gwc-tokens-0123456789",
  GWC_KEY_MINI_ONLY: "gwc-mini-0123456789",
  GWC_ADMIN: "gwc-admin-0123456789",
};
const env = { OPENAI_API_KEY: "sk-test", ...KEYS };

/** The embedded store behind a delay: every change lands a turn later, whole, as a remote store's script would. */
class LaterStore implements StateStore {
  readonly #inner = new MemoryStore();
  reserve(lines: readonly MoneyLine[], amount: number) {
    return later(() => this.#inner.reserve(lines, amount));
  }
  settle(keys: readonly string[], reserved: number, actual: number) {
    return later(() => this.#inner.settle(keys, reserved, actual));
  }
  cancel(keys: readonly string[], reserved: number) {
    return later(() => this.#inner.cancel(keys, reserved));
  }
  count(lines: readonly CountLine[], cost: number, force?: boolean) {
    return later(() => this.#inner.count(lines, cost, force));
  }
  money(key: string) {
    return this.#inner.money(key);
  }
  counter(key: string) {
    return this.#inner.counter(key);
  }
  close() {
    return later(() => this.#inner.close());
  }
}
const later = <T>(f: () => T) => new Promise<T>((ok) => setImmediate(() => ok(f())));

const stores: { name: string; makeStore: () => StateStore }[] = [
  { name: "embedded store", makeStore: () => new MemoryStore() },
  { name: "store that answers later", makeStore: () => new LaterStore() },
];
describe.each(stores)("with the $name", ({ makeStore }) => {
  let main: MockUpstream;
  let cheap: MockUpstream;
  let gw: RunningGateway;
  const client = (key: string) => new OpenAI({ baseURL: gw.v1, apiKey: key, maxRetries: 0 });
  const chat = (key: string, extra: object = {}) =>
    client(key)
      .chat.completions.create({ model: "pricey", messages: [{ role: "user", content: "hello there" }], max_tokens: 5, ...extra })
      .withResponse();

  beforeAll(async () => {
    main = await startOpenAIUpstream({ name: "main" });
    cheap = await startOpenAIUpstream({ name: "cheap" });
    gw = await startGateway(
      {
        accounts: [account("main", main.url, 1), account("cheap", cheap.url, 0, { model: "gpt-4o-mini" })],
        routes: [
          { model: "pricey", targets: [{ account: "main" }] },
          { model: "gpt-4o-mini", targets: [{ account: "cheap", weight: 1 }] },
        ],
        // $100 per million tokens: $0.0001 a token, so $0.01 is about a hundred tokens.
        pricing: { pricey: { input_per_mtok_usd: 100, output_per_mtok_usd: 100 } },
        virtual_keys: [
          { id: "capped", key: "${GWC_KEY_CAPPED}", budget: { daily_limit_usd: 0.01 } },
          { id: "soft", key: "${GWC_KEY_SOFT}", budget: { daily_limit_usd: 0.01 }, on_budget_exceeded: { reroute_to_account: "cheap" } },
          { id: "limited", key: "${GWC_KEY_LIMITED}", rate_limit: { request_max_limit: 5, request_reset_duration: "1h" } },
          { id: "tokens", key: "${GWC_KEY_TOKENS}", rate_limit: { token_max_limit: 60, token_reset_duration: "1h" } },
          { id: "mini-only", key: "${GWC_KEY_MINI_ONLY}", models: ["gpt-4o-mini"] },
        ],
        server: { admin_key: "${GWC_ADMIN}" },
      },
      env,
      makeStore(),
    );
  });

  afterAll(async () => {
    await gw.close();
    await main.close();
    await cheap.close();
  });

  describe("virtual keys", () => {
    it("refuses a missing or unknown key with 401, and a model the key may not use with 403", async () => {
      const missing = await fetch(`${gw.v1}/chat/completions`, { method: "POST", body: "{}" });
      expect(missing.status).toBe(401);
      await expect(chat("not-a-key")).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      await expect(chat(KEYS.GWC_KEY_MINI_ONLY)).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
      const ok = await client(KEYS.GWC_KEY_MINI_ONLY).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
      expect(ok.choices[0].message.content).toContain("[cheap]");
    });

    it("accepts the key as x-api-key too, and never forwards it upstream", async () => {
      const res = await fetch(`${gw.v1}/chat/completions`, {
        method: "POST",
        headers: { "x-api-key": KEYS.GWC_KEY_MINI_ONLY },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }),
      });
      expect(res.status).toBe(200);
      expect(JSON.stringify(cheap.requests.at(-1)!.headers)).not.toContain(KEYS.GWC_KEY_MINI_ONLY);
    });
  });

  describe("budgets", () => {
    it("a key with a $0.01 daily budget is refused with 402 naming the budget once spent", async () => {
      let served = 0;
      let refusal: unknown;
      for (let i = 0; i < 30 && refusal === undefined; i++) {
        await chat(KEYS.GWC_KEY_CAPPED).then(
          () => served++,
          (e: unknown) => (refusal = e),
        );
      }
      // Each reserves its 86-byte body as 86 input tokens plus 5 output, $0.0091, and settles to about $0.0007.
      expect(served).toBeGreaterThanOrEqual(2);
      const err = refusal as InstanceType<typeof OpenAI.APIError>;
      expect(err.status).toBe(402);
      expect(err.code).toBe("budget_exceeded");
      const tomorrow = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1)).toISOString();
      expect(err.message).toContain("daily budget of virtual key 'capped'");
      expect(err.message).toMatch(/spent of \$0\.01/);
      expect(err.message).toContain(`resets at ${tomorrow}`);
    });

    it("a soft-failover key is rerouted to its cheaper account instead", async () => {
      const accounts: string[] = [];
      for (let i = 0; i < 30; i++) {
        const { response } = await chat(KEYS.GWC_KEY_SOFT);
        accounts.push(response.headers.get("x-gwc-account")!);
      }
      expect(accounts[0]).toBe("main");
      expect(accounts.at(-1)).toBe("cheap");
      // Once rerouted, it stays rerouted: the budget does not refill within the day.
      expect(accounts.slice(accounts.indexOf("cheap"))).toEqual(accounts.slice(accounts.indexOf("cheap")).map(() => "cheap"));
      expect(cheap.requests.at(-1)!.body.model).toBe("gpt-4o-mini");
    });

    it("shows a key its own spend, and the admin every key's", async () => {
      const own = (await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${KEYS.GWC_KEY_CAPPED}` } })).json()) as {
        key: string;
        budgets: { period: string; limit_usd: string; spent_usd: string; remaining_usd: string }[];
      };
      expect(own.key).toBe("capped");
      expect(own.budgets).toHaveLength(1);
      expect(own.budgets[0]).toMatchObject({ period: "daily", limit_usd: "0.01" });
      // Refused once the remaining $ could not cover the next reservation (91 tokens at $0.0001).
      expect(Number(own.budgets[0].spent_usd)).toBeGreaterThan(0.01 - 0.0091);
      expect(Number(own.budgets[0].spent_usd)).toBeLessThanOrEqual(0.01);
      const admin = (await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${KEYS.GWC_ADMIN}` } })).json()) as { data: { key: string }[] };
      expect(admin.data.map((k) => k.key)).toEqual(["capped", "soft", "limited", "tokens", "mini-only"]);
    });
  });

  describe("rate limits", () => {
    it("the 6th request under request_max_limit 5 is refused with retry-after", async () => {
      const remaining: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { response } = await chat(KEYS.GWC_KEY_LIMITED);
        remaining.push(response.headers.get("x-ratelimit-remaining-requests")!);
      }
      expect(remaining).toEqual(["4", "3", "2", "1", "0"]);
      const res = await fetch(`${gw.v1}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEYS.GWC_KEY_LIMITED}` },
        body: JSON.stringify({ model: "pricey", messages: [{ role: "user", content: "x" }] }),
      });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(Number(res.headers.get("retry-after"))).toBeLessThanOrEqual(3600);
      expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("0");
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
    });

    it("token limits count streamed usage, which the caller did not ask to see", async () => {
      let refused: unknown;
      let streams = 0;
      for (let i = 0; i < 20 && refused === undefined; i++) {
        try {
          const stream = await client(KEYS.GWC_KEY_TOKENS).chat.completions.create({ model: "pricey", messages: [{ role: "user", content: "hello there" }], stream: true });
          for await (const chunk of stream) {
            // The gateway asked upstream for usage on its own account; the caller never sees that chunk.
            expect(chunk.choices).toHaveLength(1);
          }
          streams++;
        } catch (e) {
          refused = e;
        }
      }
      expect(main.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });
      expect(streams).toBeGreaterThanOrEqual(2);
      expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
      expect((refused as InstanceType<typeof OpenAI.APIError>).message).toContain("tokens");
    });
  });

  describe("reload", () => {
    it("keeps every counter", async () => {
      const spentBefore = await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${KEYS.GWC_KEY_CAPPED}` } })).json();
      // Weights changed, one key removed: the remaining counters carry over.
      gw.reload({
        accounts: [account("main", main.url, 1), account("cheap", cheap.url, 0, { model: "gpt-4o-mini" })],
        routes: [
          { model: "pricey", targets: [{ account: "main", weight: 2 }] },
          { model: "gpt-4o-mini", targets: [{ account: "cheap", weight: 1 }] },
        ],
        pricing: { pricey: { input_per_mtok_usd: 100, output_per_mtok_usd: 100 } },
        virtual_keys: [
          { id: "capped", key: "${GWC_KEY_CAPPED}", budget: { daily_limit_usd: 0.01 } },
          { id: "limited", key: "${GWC_KEY_LIMITED}", rate_limit: { request_max_limit: 5, request_reset_duration: "1h" } },
        ],
      });
      const spentAfter = await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${KEYS.GWC_KEY_CAPPED}` } })).json();
      expect(spentAfter).toEqual(spentBefore);
      await expect(chat(KEYS.GWC_KEY_CAPPED)).rejects.toMatchObject({ status: 402 });
      await expect(chat(KEYS.GWC_KEY_LIMITED)).rejects.toMatchObject({ status: 429 });
    });
  });
});

// Issue #11 item 1: 200 requests at once on a $0.01 budget, against an upstream
// that bills every token a request allows (every choice to its max_tokens, CJK
// at a token a character). Whatever fan-out or script, spend stays within the
// cap plus one request's reservation (in fact within the cap itself).
describe("the reservation bounds what a provider can bill", () => {
  const KEY = "gwc-burst-0123456789";
  let upstream: MockUpstream;
  let gw: RunningGateway;
  const LIMIT = 0.01;

  beforeAll(async () => {
    upstream = await startOpenAIUpstream({ name: "biller", writesToLimit: true, fallback: { kind: "ok", delayMs: 200 } });
  });
  afterAll(async () => {
    await upstream.close();
  });

  // $10 a million tokens: the $0.01 cap is 1,000 tokens.
  const PRICE = 10;
  const cases: { name: string; path: string; body: Record<string, unknown>; price?: number }[] = [
    { name: "n: 8", path: "chat/completions", body: { messages: [{ role: "user", content: "hello there" }], max_tokens: 50, n: 8 } },
    { name: "a prompt array of 8", path: "completions", body: { prompt: Array.from({ length: 8 }, (_, i) => `prompt ${i}`), max_tokens: 50 } },
    // About a token a character, three UTF-8 bytes each: at $1 a million, forty-odd fit at once.
    { name: "a CJK prompt", path: "chat/completions", body: { messages: [{ role: "user", content: "日本語の文章です。".repeat(33) }], max_tokens: 1 }, price: 1 },
    // The model may write as much as it likes: at $1 a million, about two of the 4,096-token default fit.
    { name: "no max_tokens", path: "chat/completions", body: { messages: [{ role: "user", content: "hello there" }] }, price: 1 },
  ];

  it.each(cases)("with $name, 200 concurrent requests spend at most the cap plus one reservation", async ({ path, body, price = PRICE }) => {
    gw = await startGateway(
      {
        accounts: [account("biller", upstream.url, 1)],
        routes: [{ model: "pricey", targets: [{ account: "biller" }] }],
        pricing: { pricey: { input_per_mtok_usd: price, output_per_mtok_usd: price } },
        virtual_keys: [{ id: "burst", key: "${GWC_KEY_BURST}", budget: { daily_limit_usd: LIMIT } }],
      },
      { OPENAI_API_KEY: "sk-test", GWC_KEY_BURST: KEY },
    );
    try {
      const raw = JSON.stringify({ model: "pricey", ...body });
      const statuses = await Promise.all(
        Array.from({ length: 200 }, () =>
          fetch(`${gw.v1}/${path}`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: raw }).then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          }),
        ),
      );
      expect(statuses.filter((s) => s !== 200 && s !== 402)).toEqual([]);
      expect(statuses).toContain(200);
      const usage = (await (await fetch(`${gw.v1}/usage`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { budgets: { spent_usd: string; reserved_usd: string }[] };
      const spent = Number(usage.budgets[0].spent_usd);
      expect(Number(usage.budgets[0].reserved_usd)).toBe(0);
      const reservation = estimate(gw.server.gateway.governance.price("pricey")!, { endpoint: path === "completions" ? "completions" : "chat", raw: Buffer.from(raw), json: JSON.parse(raw), stream: false }, "openai") / 1e9;
      // The bound: the cap plus one request's reservation. Every reservation covering what its request is billed, not even that.
      expect(spent).toBeLessThanOrEqual(LIMIT + reservation);
      expect(spent).toBeLessThanOrEqual(LIMIT);
    } finally {
      await gw.close();
    }
  });

  it("a 402 while reservations are what block names spent, reserved and the limit", async () => {
    gw = await startGateway(
      {
        accounts: [account("biller", upstream.url, 1)],
        routes: [{ model: "pricey", targets: [{ account: "biller" }] }],
        pricing: { pricey: { input_per_mtok_usd: 10, output_per_mtok_usd: 10 } },
        virtual_keys: [{ id: "burst", key: "${GWC_KEY_BURST}", budget: { daily_limit_usd: LIMIT } }],
      },
      { OPENAI_API_KEY: "sk-test", GWC_KEY_BURST: KEY },
    );
    try {
      const send = () =>
        fetch(`${gw.v1}/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ model: "pricey", messages: [{ role: "user", content: "hi" }], max_tokens: 600 }),
        });
      // The first holds about $0.0067 of the $0.01 while its upstream takes 200 ms; nothing is spent yet.
      const seen = upstream.requests.length;
      const first = send();
      await until(() => upstream.requests.length > seen);
      const refused = await send();
      expect(refused.status).toBe(402);
      const { error } = (await refused.json()) as { error: { message: string } };
      expect(error.message).toMatch(/\$0\.00 spent and \$0\.0067\d+ reserved by requests in flight, of \$0\.01/);
      expect((await first).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});
