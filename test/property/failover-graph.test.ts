// Invariant (DESIGN.md): a request tries each account at most once and always
// terminates — for any route graph, including fallback cycles the checker
// would reject.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { flattenRoute, type RouteNode } from "../../compiler/failover-graph.ts";

const graph = fc.integer({ min: 1, max: 8 }).chain((routes) =>
  fc.array(
    fc.record({
      members: fc.array(fc.record({ account: fc.integer({ min: 0, max: 15 }), weight: fc.integer({ min: 0, max: 100 }) }), { minLength: 1, maxLength: 6 }),
      fallbacks: fc.array(fc.integer({ min: 0, max: routes - 1 }), { maxLength: 4 }),
    }),
    { minLength: routes, maxLength: routes },
  ),
);

function dedupeMembers(nodes: { members: { account: number; weight: number }[]; fallbacks: number[] }[]): RouteNode[] {
  // A route lists an account once (the checker enforces it).
  return nodes.map((n) => ({
    fallbacks: n.fallbacks,
    members: [...new Map(n.members.map((m) => [m.account, { account: m.account, weight: m.weight, model: null }])).values()],
  }));
}

describe("failover graph", () => {
  it("every chain visits each account at most once and is finite", () => {
    fc.assert(
      fc.property(graph, (raw) => {
        const nodes = dedupeMembers(raw);
        nodes.forEach((_, start) => {
          const { targets, order } = flattenRoute(nodes, start);
          const accounts = targets.map((t) => t.account);
          expect(new Set(accounts).size).toBe(accounts.length);
          expect([...order].sort((a, b) => a - b)).toEqual(targets.map((_, i) => i));
          for (let first = 0; first < nodes[start].members.length; first++) {
            const chain = order.filter((p) => p !== first);
            expect(chain).not.toContain(first);
            expect(chain.length).toBe(targets.length - 1);
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it("tries the route's own accounts by weight before any fallback", () => {
    fc.assert(
      fc.property(graph, (raw) => {
        const nodes = dedupeMembers(raw);
        const { targets, order } = flattenRoute(nodes, 0);
        const members = nodes[0].members.length;
        expect(order.slice(0, members).sort((a, b) => a - b)).toEqual([...Array(members).keys()]);
        for (let i = 1; i < members; i++) expect(targets[order[i - 1]].weight).toBeGreaterThanOrEqual(targets[order[i]].weight);
        // Every account reachable through fallbacks is in the list.
        const reachable = new Set<number>();
        const seen = new Set<number>();
        const walk = (r: number) => {
          if (seen.has(r)) return;
          seen.add(r);
          nodes[r].members.forEach((m) => reachable.add(m.account));
          nodes[r].fallbacks.forEach(walk);
        };
        walk(0);
        expect(new Set(targets.map((t) => t.account))).toEqual(reachable);
      }),
    );
  });
});
