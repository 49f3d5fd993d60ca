// The surfaces' invariants, for any input:
// - nothing is dropped silently: a field a translation cannot carry is refused
//   with a 400 naming it, or (when the route allows) dropped and named;
// - a request in the account's own format goes upstream byte for byte when its
//   model is not rewritten, and with only the model changed when it is.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HttpError } from "../../runtime/errors.ts";
import { anthropicAdapter } from "../../runtime/providers/anthropic.ts";
import type { AccountContext } from "../../runtime/providers/adapter.ts";
import { CARRIED, toChat as anthropicToChat } from "../../runtime/surfaces/anthropic.ts";
import { Carry } from "../../runtime/surfaces/carry.ts";
import { toChat as geminiToChat, TOP } from "../../runtime/surfaces/gemini.ts";
import { MAPPED, toChat as responsesToChat } from "../../runtime/surfaces/responses.ts";

const account: AccountContext = { baseUrl: "http://127.0.0.1:1", basePath: "", apiKey: "sk-upstream", options: {} };

/** Field names no translation knows (and some that look like real ones). */
const unknownKey = fc.oneof(
  fc.constantFrom("top_k", "container", "mcp_servers", "background", "conversation", "cachedContent", "__proto__x", "constructor_", "previous_response_id"),
  fc.stringMatching(/^[a-z][a-z_]{2,12}$/),
);

const SURFACES = [
  { name: "anthropic", known: CARRIED, base: { model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }, toChat: (b: Record<string, unknown>, c: Carry) => anthropicToChat(b, c) },
  { name: "responses", known: MAPPED, base: { model: "m", input: "hi" }, toChat: (b: Record<string, unknown>, c: Carry) => responsesToChat(b, c) },
  { name: "gemini", known: TOP, base: { contents: [{ role: "user", parts: [{ text: "hi" }] }] }, toChat: (b: Record<string, unknown>, c: Carry) => geminiToChat(b, "m", false, c) },
];

describe.each(SURFACES)("$name → chat drops nothing silently", ({ known, base, toChat }) => {
  it("refuses an uncarried field by name, or drops it and names it", () => {
    fc.assert(
      fc.property(unknownKey, fc.jsonValue(), (key, value) => {
        fc.pre(!(key in base));
        const body = { ...base, [key]: value };
        const strict = new Carry("chat", false);
        let refused: HttpError | undefined;
        let chat: Record<string, unknown> | undefined;
        try {
          chat = toChat(body, strict);
        } catch (e) {
          if (!(e instanceof HttpError)) throw e;
          refused = e;
        }
        if (!known.has(key)) {
          // A field the translation does not know is always refused, by its name.
          expect(refused?.param).toBe(key);
        }
        if (refused !== undefined) {
          expect(refused.status).toBe(400);
          expect(refused.code).toBe("unsupported_parameter");
          // The field itself, or a part of it (`output_config.x`).
          expect(refused.param === key || refused.param!.startsWith(`${key}.`) || refused.param!.startsWith(`${key}[`)).toBe(true);
          const lenient = new Carry("chat", true);
          toChat(body, lenient);
          expect(lenient.dropped).toContain(refused.param);
        } else {
          expect(chat).toBeDefined();
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("Anthropic relay", () => {
  const body = fc.record({
    model: fc.stringMatching(/^[a-z0-9.-]{1,20}$/),
    max_tokens: fc.integer({ min: 1, max: 64000 }),
    messages: fc.array(fc.record({ role: fc.constantFrom("user", "assistant"), content: fc.string() }), { minLength: 1, maxLength: 3 }),
    extra: fc.dictionary(fc.stringMatching(/^[a-z_]{1,10}$/), fc.jsonValue(), { maxKeys: 4 }),
  });

  it("sends the caller's bytes when the model stays, and only the model changed when it does not", () => {
    fc.assert(
      fc.property(body, fc.boolean(), fc.string(), (b, pin, beta) => {
        const json = { ...b.extra, model: b.model, max_tokens: b.max_tokens, messages: b.messages };
        const raw = Buffer.from(JSON.stringify(json, null, pin ? 0 : 2));
        const model = pin ? `${b.model}-pinned` : b.model;
        const req = { endpoint: "messages" as const, format: "anthropic" as const, raw, json, stream: false, headers: { "anthropic-beta": beta } };
        const up = anthropicAdapter.relay!(req, account, model);
        if (!pin) expect(up.body).toBe(raw);
        // Compared as JSON carries it: fc.jsonValue() may hold -0, which JSON writes as 0.
        else expect(JSON.parse(up.body.toString())).toEqual(JSON.parse(JSON.stringify({ ...json, model })));
        expect(up.headers["anthropic-beta"]).toBe(beta);
        expect(up.headers["x-api-key"]).toBe("sk-upstream");
      }),
      { numRuns: 200 },
    );
  });
});
