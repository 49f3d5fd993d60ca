// Invariant (DESIGN.md): spend survives restarts, and bad input never loses or
// corrupts it. A snapshot on disk, however it was damaged or hand-edited,
// either loads to exactly what it says or stops start-up naming the file, the
// field and the value: never a silent zero.
import fc from "fast-check";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StartupError } from "../../runtime/secrets.ts";
import { MemoryStore } from "../../runtime/state-store.ts";
import { tempDir } from "../helpers.ts";

const NOW = 1_764_720_000_000;
const DAY = 86_400_000;

const owner = fc.oneof(
  fc.constantFrom("org:acme", "team:backend", "vk:svc", "vk:svc/provider:openai", "account:main"),
  fc.string({ minLength: 1, maxLength: 8 }).map((id) => `vk:${id.replace(/[%/:]/g, "_")}`),
);
const start = fc.integer({ min: NOW - 30 * DAY, max: NOW });
const moneyEntry = fc.tuple(owner, fc.constantFrom("daily", "weekly", "monthly"), start, fc.nat({ max: 2 ** 50 }), fc.integer({ min: 1, max: 40 * DAY })).map(
  ([o, period, s, spent, len]) => [`${o}|${period}|${s}`, spent, s + len] as unknown[],
);
const countEntry = fc.tuple(owner, fc.constantFrom("req", "tok"), start, fc.nat({ max: 2 ** 40 }), fc.integer({ min: 1, max: DAY })).map(
  ([o, kind, s, count, len]) => [`${o}|${kind}|${s}`, count, s + len] as unknown[],
);
const uniqueByKey = (entries: unknown[][]) => [...new Map(entries.map((e) => [e[0], e])).values()];
const snapshot = fc.record({
  version: fc.constant(1 as unknown),
  money: fc.array(moneyEntry, { maxLength: 6 }).map(uniqueByKey),
  counts: fc.array(countEntry, { maxLength: 6 }).map(uniqueByKey),
});

/** A hand edit or a damaged write: one value anywhere replaced, removed, or a field added. */
type Edit = (data: Record<string, unknown>) => void;
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom("12.5", "", null, -1, 0.5, 1e300, -0, [], {}, "vk:x|daily|1", Number.MAX_SAFE_INTEGER + 2),
);
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.tuple(fc.constantFrom("money", "counts"), fc.nat(), fc.nat({ max: 3 }), anyValue).map(([list, i, j, v]): Edit => (data) => {
    const entries = data[list];
    if (!Array.isArray(entries) || entries.length === 0) return;
    const entry = entries[i % entries.length];
    if (!Array.isArray(entry)) return;
    if (j < 3) entry[j] = v;
    else entry.push(v);
  }),
  fc.tuple(fc.constantFrom("money", "counts"), fc.nat()).map(([list, i]): Edit => (data) => {
    const entries = data[list];
    if (Array.isArray(entries) && Array.isArray(entries[i % entries.length])) entries[i % entries.length].pop();
  }),
  fc.tuple(fc.constantFrom("money", "counts"), fc.nat()).map(([list, i]): Edit => (data) => {
    const entries = data[list];
    if (Array.isArray(entries) && Array.isArray(entries[i % entries.length])) entries.push([...entries[i % entries.length]]);
  }),
  fc.tuple(fc.constantFrom("version", "money", "counts", "extra", "__proto__"), anyValue).map(([field, v]): Edit => (data) => {
    Object.defineProperty(data, field, { value: v, enumerable: true, configurable: true, writable: true });
  }),
  fc.constantFrom("version", "money", "counts").map((field): Edit => (data) => {
    delete data[field];
  }),
);

describe("a snapshot on load", () => {
  it("loads to exactly what it says, or refuses naming the file and the field", () => {
    const root = tempDir();
    let n = 0;
    fc.assert(
      fc.property(snapshot, fc.array(edit, { maxLength: 3 }), fc.boolean(), (data, edits, truncate) => {
        for (const e of edits) e(data as Record<string, unknown>);
        let text = JSON.stringify(data);
        if (truncate) text = text.slice(0, Math.floor(text.length / 2));
        const dir = join(root, String(n++));
        mkdirSync(dir);
        const file = join(dir, "state.json");
        writeFileSync(file, text);
        let store: MemoryStore;
        try {
          store = new MemoryStore(dir, 60_000, () => NOW, () => {});
        } catch (e) {
          expect(e).toBeInstanceOf(StartupError);
          expect((e as Error).message).toContain(file);
          expect((e as Error).message).toMatch(/move it aside/);
          return;
        }
        // Loaded: the snapshot it writes back is the one it read, less what had expired.
        store.close();
        const parsed = JSON.parse(text) as { money: unknown[][]; counts: unknown[][] };
        const written = JSON.parse(readFileSync(file, "utf8")) as { money: unknown[][]; counts: unknown[][] };
        const live = (entries: unknown[][]) => entries.filter((e) => (e[2] as number) > NOW);
        expect(written.money).toEqual(live(parsed.money));
        expect(written.counts).toEqual(live(parsed.counts));
        for (const [key, spent] of live(parsed.money)) expect(typeof spent === "number" && Number.isSafeInteger(spent) && typeof key === "string").toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses the issue's hand edit, a spent of \"12.5\", naming file, field and value", () => {
    const dir = tempDir();
    const file = join(dir, "state.json");
    writeFileSync(file, JSON.stringify({ version: 1, money: [["vk:svc|monthly|1764547200000", "12.5", 1767225600000]], counts: [] }));
    expect(() => new MemoryStore(dir, 60_000, () => NOW)).toThrow(
      new StartupError(
        `the state snapshot ${file} has "12.5" at /money/0/1, the spent (nano-USD) of 'vk:svc|monthly|1764547200000': not a whole number of 0 or more; fix it, or move it aside to start with every budget and rate-limit counter at zero`,
      ),
    );
  });
});
