// Invariant (README "Guarantees", what a crash loses): the embedded store's
// timer snapshot, taken in slices while requests keep settling, holds for every
// counter a value it had between the snapshot's start and its end, so at least
// everything settled before its tick; it loads back; and it never replaces a
// later snapshot (close()'s final one) written while it was under way.
import fc from "fast-check";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../runtime/state-store.ts";
import { tempDir } from "../helpers.ts";

const NOW = 1_764_720_000_000;
const DAY = 86_400_000;
const CAP = 2 ** 52;

/** `n` keys' daily budget and request counters, each with some spend and a count. */
function fill(store: MemoryStore, n: number, offset = 0): void {
  for (let k = offset; k < offset + n; k++) {
    const money = `vk:k${k}|daily|${NOW}`;
    store.reserve([{ key: money, cap: CAP, expiresAt: NOW + DAY }], 10);
    store.settle([money], 10, 1 + (k % 7));
    store.count([{ key: `vk:k${k}|req|${NOW}`, limit: CAP, expiresAt: NOW + 60_000 }], 1);
  }
}

type Values = Map<string, number>;

function values(file: string): { money: Values; counts: Values } {
  const data = JSON.parse(readFileSync(file, "utf8")) as { money: [string, number, number][]; counts: [string, number, number][] };
  return { money: new Map(data.money.map(([k, v]) => [k, v])), counts: new Map(data.counts.map(([k, v]) => [k, v])) };
}

function current(store: MemoryStore, keys: number): { money: Values; counts: Values } {
  const money = new Map<string, number>();
  const counts = new Map<string, number>();
  for (let k = 0; k < keys; k++) {
    const m = `vk:k${k}|daily|${NOW}`;
    const c = `vk:k${k}|req|${NOW}`;
    if (store.money(m).spent > 0 || store.money(m).reserved > 0) money.set(m, store.money(m).spent);
    if (store.counter(c) > 0) counts.set(c, store.counter(c));
  }
  return { money, counts };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One thing a request does while the snapshot is being written. */
const op = fc.oneof(
  fc.record({ kind: fc.constant("spend" as const), key: fc.nat({ max: 6999 }), amount: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({ kind: fc.constant("count" as const), key: fc.nat({ max: 6999 }) }),
  fc.record({ kind: fc.constant("close" as const) }),
);

describe("the timer's snapshot, taken in slices", () => {
  it("holds each counter's value from between its start and end, loads back, and never replaces close()'s final snapshot", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2500, max: 6000 }), fc.array(op, { maxLength: 40 }), async (keys, ops) => {
        const dir = tempDir();
        const file = join(dir, "state.json");
        const store = new MemoryStore(dir, 3_600_000, () => NOW, () => {});
        let closed = false;
        let atClose: ReturnType<typeof current> | undefined;
        try {
          fill(store, keys);
          const before = current(store, 7000);
          const written = store.writeSnapshot();
          for (const o of ops) {
            await turn();
            if (o.kind === "spend") {
              const key = `vk:k${o.key}|daily|${NOW}`;
              store.reserve([{ key, cap: CAP, expiresAt: NOW + DAY }], o.amount);
              store.settle([key], o.amount, o.amount);
            } else if (o.kind === "count") {
              store.count([{ key: `vk:k${o.key}|req|${NOW}`, limit: CAP, expiresAt: NOW + 60_000 }], 1);
            } else if (!closed) {
              store.close();
              closed = true;
              atClose = current(store, 7000);
            }
          }
          const after = current(store, 7000);
          expect(await written).toBe(true);
          const got = values(file);
          if (closed) {
            // close() wrote last, with everything: the sliced one, finishing later, left it alone.
            expect(got).toEqual(atClose);
          } else {
            for (const list of ["money", "counts"] as const) {
              // Every counter that existed at the start is in it, at a value it had meanwhile (counters only grow).
              for (const [k, v] of before[list]) {
                expect(got[list].has(k), k).toBe(true);
                expect(got[list].get(k)!).toBeGreaterThanOrEqual(v);
              }
              for (const [k, v] of got[list]) expect(v).toBeLessThanOrEqual(after[list].get(k)!);
            }
            store.close();
            closed = true;
          }
          // It loads back as written (the next start checks every field).
          const reopened = new MemoryStore(dir, 3_600_000, () => NOW, () => {});
          expect(current(reopened, 7000)).toEqual(values(file));
          reopened.close();
          expect(existsSync(`${file}.${process.pid}.tmp`)).toBe(false);
        } finally {
          if (!closed) store.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);

  it("lets the event loop turn while 40,000 counters are written, where one synchronous write held it", async () => {
    const dir = tempDir();
    const file = join(dir, "state.json");
    const store = new MemoryStore(dir, 20, Date.now, () => {});
    try {
      for (let k = 0; k < 20_000; k++) {
        const key = `vk:k${k}|daily|${NOW}`;
        store.reserve([{ key, cap: CAP, expiresAt: Date.now() + DAY }], 1);
        store.settle([key], 1, 1);
        store.count([{ key: `vk:k${k}|req|${NOW}`, limit: CAP, expiresAt: Date.now() + DAY }], 1);
      }
      // Turns of the loop that found the timer's snapshot half-written: with one synchronous write, none can.
      let during = 0;
      const deadline = Date.now() + 20_000;
      while (during < 3 && Date.now() < deadline) {
        await turn();
        if (existsSync(`${file}.${process.pid}.tmp`)) during++;
      }
      expect(during).toBe(3);
      await store.writeSnapshot();
      expect(values(file).money.size).toBe(20_000);
      expect(values(file).counts.size).toBe(20_000);
    } finally {
      store.close();
    }
  }, 30_000);
});
