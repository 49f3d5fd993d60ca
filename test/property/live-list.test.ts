// The in-flight list behaves as a Set of its entries would (the drain counts
// and cuts through it): any sequence of adds and deletes, including deletes of
// entries not in it and deletes during iteration, leaves the same members.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Linked, LiveList } from "../../runtime/live-list.ts";

interface Entry extends Linked<Entry> {
  id: number;
}

describe("LiveList", () => {
  it("holds exactly what a Set would, in any order of adds and deletes", () => {
    const op = fc.record({ add: fc.boolean(), id: fc.integer({ min: 0, max: 15 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 0, max: 15 }), (ops, cutAt) => {
        const entries = Array.from({ length: 16 }, (_, id): Entry => ({ id, prev: undefined, next: undefined }));
        const list = new LiveList<Entry>();
        const model = new Set<number>();
        for (const { add, id } of ops) {
          // As the server does: an entry is added once, when its request starts, and deleted once.
          if (add && !model.has(id)) {
            list.add(entries[id]);
            model.add(id);
          } else if (!add) {
            list.delete(entries[id]);
            model.delete(id);
          }
          expect(list.size).toBe(model.size);
        }
        expect(new Set([...list].map((e) => e.id))).toEqual(model);
        // Deleting while iterating (the drain cuts entries as it walks them) visits every member once.
        const visited: number[] = [];
        for (const e of list) {
          visited.push(e.id);
          if (e.id <= cutAt) list.delete(e);
        }
        expect(visited.sort((a, b) => a - b)).toEqual([...model].sort((a, b) => a - b));
        expect(new Set([...list].map((e) => e.id))).toEqual(new Set([...model].filter((id) => id > cutAt)));
      }),
      { numRuns: 300 },
    );
  });
});
