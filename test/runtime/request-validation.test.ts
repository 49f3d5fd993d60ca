// Malformed requests answer 400 naming the field, on every surface; arbitrary
// JSON and mutations of valid requests, through the real server, never get a
// 5xx (a 5xx would mean the gateway itself broke on the caller's input).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findProblem, type Surface } from "../../runtime/request-validate.ts";
import { startAnthropicUpstream, type MockAnthropicUpstream } from "../mocks/anthropic-upstream.ts";
import { startOpenAIUpstream, type MockUpstream } from "../mocks/openai-upstream.ts";
import { account, startGateway, type RunningGateway } from "./harness.ts";

let openai: MockUpstream;
let anthropic: MockAnthropicUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  openai = await startOpenAIUpstream({ name: "openai", stream: { chunks: 2 } });
  anthropic = await startAnthropicUpstream({ name: "anthropic" } as never);
  gw = await startGateway(
    {
      accounts: [account("o", openai.url, 1), { id: "a", provider: "anthropic", base_url: anthropic.url, model: "claude-x" }],
      // `m` is served by passthrough, `c` through the OpenAI→Anthropic translation.
      routes: [
        { model: "m", targets: [{ account: "o" }] },
        { model: "c", targets: [{ account: "a" }] },
      ],
    },
    { OPENAI_API_KEY: "sk-test", ANTHROPIC_API_KEY: "sk-ant-test" },
  );
});

afterAll(async () => {
  await gw?.close();
  await openai?.close();
  await anthropic?.close();
});

const PATHS: Record<Surface, string> = {
  chat: "/v1/chat/completions",
  completions: "/v1/completions",
  embeddings: "/v1/embeddings",
  anthropic: "/anthropic/v1/messages",
};

async function send(surface: Surface, body: string): Promise<{ status: number; json: any }> {
  const r = await fetch(gw.url + PATHS[surface], { method: "POST", headers: { "content-type": "application/json" }, body });
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json };
}

const user = { role: "user", content: "hi" };

describe("malformed fields answer 400 with the field named", () => {
  const cases: [Surface, object, string][] = [
    ["chat", { model: "m", messages: [user], max_tokens: 0.5 }, "max_tokens"],
    ["chat", { model: "m", messages: [user], max_tokens: 1e400 }, "max_tokens"],
    ["chat", { model: "m", messages: [user], max_completion_tokens: 0 }, "max_completion_tokens"],
    ["chat", { model: "m", messages: [user], n: 1e309 }, "n"],
    ["chat", { model: "m", messages: [user], temperature: "hot" }, "temperature"],
    ["chat", { model: "m", messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
    ["chat", { model: "m", messages: [user, { role: "user", content: [null] }] }, "messages[1].content[0]"],
    ["chat", { model: "m", messages: [{ content: "hi" }] }, "messages[0].role"],
    ["chat", { model: "m", messages: "hi" }, "messages"],
    ["chat", { model: 7, messages: [user] }, "model"],
    ["chat", { messages: [user] }, "model"],
    ["chat", { model: "m", messages: [user], stream: "yes" }, "stream"],
    ["chat", { model: "m", messages: [user], stop: [1] }, "stop[0]"],
    ["completions", { model: "m", prompt: 5 }, "prompt"],
    ["completions", { model: "m", prompt: "x", best_of: 2.5 }, "best_of"],
    ["embeddings", { model: "m", input: { text: "x" } }, "input"],
    ["embeddings", { model: "m", input: "x", dimensions: -1 }, "dimensions"],
  ];
  it.each(cases)("%s %j → 400 param %s", async (surface, body, param) => {
    // Numbers JSON.stringify cannot write (Infinity) are sent as the literal text a client would send.
    const text = JSON.stringify(body, (_k, v) => (v === Infinity ? "__INF__" : v)).replace('"__INF__"', "1e400");
    const r = await send(surface, text);
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe(param);
    expect(r.json.error.type).toBe("invalid_request_error");
    expect(r.json.error.message).toContain(`'${param}'`);
  });

  const anthropicCases: [object, string][] = [
    [{ model: "c", max_tokens: 10, messages: [{ role: "user", content: 5 }] }, "messages.0.content"],
    [{ model: "c", max_tokens: 10, messages: [{ role: "user", content: [null] }] }, "messages.0.content.0"],
    [{ model: "c", max_tokens: 0.5, messages: [user] }, "max_tokens"],
    [{ model: "c", messages: [user] }, "max_tokens"],
    [{ model: "c", max_tokens: 10, messages: [{ role: "user", content: [{ type: "image" }] }] }, "messages.0.content.0.source"],
    [{ model: "c", max_tokens: 10, system: [null], messages: [user] }, "system.0"],
    [{ model: "c", max_tokens: 10, messages: [{ role: "robot", content: "hi" }] }, "messages.0.role"],
  ];
  it.each(anthropicCases)("anthropic %j → 400 naming %s, in Anthropic's shape", async (body, dotted) => {
    const r = await send("anthropic", JSON.stringify(body));
    expect(r.status).toBe(400);
    expect(r.json.type).toBe("error");
    expect(r.json.error.type).toBe("invalid_request_error");
    expect(r.json.error.message.startsWith(`${dotted}: `)).toBe(true);
  });

  it("valid requests still pass, on every surface", async () => {
    expect((await send("chat", JSON.stringify({ model: "m", messages: [user], max_tokens: 5, n: 1, stop: null }))).status).toBe(200);
    expect((await send("chat", JSON.stringify({ model: "c", messages: [{ role: "system", content: "s" }, user], max_tokens: 5 }))).status).toBe(200);
    expect((await send("completions", JSON.stringify({ model: "m", prompt: ["a", "b"], max_tokens: 5 }))).status).toBe(200);
    expect((await send("embeddings", JSON.stringify({ model: "m", input: [[1, 2, 3]] }))).status).toBe(200);
    expect((await send("anthropic", JSON.stringify({ model: "c", max_tokens: 5, system: [{ type: "text", text: "s" }], messages: [user] }))).status).toBe(200);
  });
});

// Valid bodies per surface; the property mutates them at one place.
const VALID: Record<Surface, object> = {
  chat: { model: "m", messages: [{ role: "system", content: "s" }, { role: "user", content: [{ type: "text", text: "hi" }] }], max_tokens: 5, temperature: 0.5, stream: false, tools: [{ type: "function", function: { name: "f", parameters: {} } }] },
  completions: { model: "m", prompt: ["a"], max_tokens: 5, n: 1 },
  embeddings: { model: "m", input: ["a", "b"], dimensions: 8 },
  anthropic: { model: "c", max_tokens: 5, system: "s", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }, { role: "assistant", content: "ok" }, { role: "user", content: "more" }] },
};

/** Every path into a JSON value: the places a mutation may hit. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function mutate(base: object, at: (string | number)[], replacement: unknown, remove: boolean): unknown {
  if (at.length === 0) return replacement;
  const copy = structuredClone(base) as any;
  let node = copy;
  for (const key of at.slice(0, -1)) node = node[key];
  const last = at[at.length - 1];
  if (remove) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = replacement;
  return copy;
}

// Values that once reached arithmetic or a BigInt: fractions, huge exponents, negatives, wrong types.
const nasty = fc.oneof(fc.jsonValue(), fc.constantFrom(0.5, -1, 0, 1e300, 2 ** 53 + 2, "1e400", null, [null], {}, [], "", "__proto__"), fc.double());

describe("never a 5xx, whatever the body", () => {
  for (const surface of Object.keys(VALID) as Surface[]) {
    it(`${surface}: arbitrary JSON and one-place mutations of a valid request`, async () => {
      const base = VALID[surface];
      const all = paths(base);
      const body = fc.oneof(
        fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"),
        fc.tuple(fc.nat(all.length - 1), nasty, fc.boolean()).map(([i, v, remove]) => JSON.stringify(mutate(base, all[i], v, remove)) ?? "null"),
        // Numbers outside double range, which JSON.parse turns into ±Infinity.
        fc.tuple(fc.nat(all.length - 1), fc.constantFrom("1e400", "-1e309", "1e-400")).map(([i, n]) => (JSON.stringify(mutate(base, all[i], "__N__", false)) ?? "null").replace('"__N__"', n)),
      );
      await fc.assert(
        fc.asyncProperty(body, async (text) => {
          const r = await send(surface, text);
          expect(r.status, `${text} → ${JSON.stringify(r.json)}`).toBeLessThan(500);
        }),
        { numRuns: 120 },
      );
    });
  }

  it("the validators never throw, and refuse ±Infinity wherever a number goes", () => {
    fc.assert(
      fc.property(fc.constantFrom<Surface>("chat", "completions", "embeddings", "anthropic"), fc.jsonValue(), (surface, v) => {
        const body = v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
        findProblem(surface, body);
      }),
    );
    expect(findProblem("chat", { model: "m", messages: [user], temperature: Infinity })?.param).toBe("temperature");
  });
});
