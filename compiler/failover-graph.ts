import type { PlanTarget } from "../runtime/plan.ts";

export interface RouteNode {
  /** The route's own weighted targets. */
  members: PlanTarget[];
  /** Indices of the routes to fall back to, in order. */
  fallbacks: number[];
}

/**
 * Flattens a route and everything reachable through its fallbacks into one
 * target list and one try order.
 *
 *   route A: [a1 w=3, a2 w=7]  fallbacks: [B]
 *   route B: [b1, a2]          fallbacks: [C]
 *   route C: [c1]
 *   targets: a1 a2 | b1 c1     (a2 again in B is skipped: each account once)
 *   order:   a2 a1 b1 c1       (members by weight, ties in config order)
 *
 * Routes are visited depth-first and at most once, so even a cyclic fallback
 * graph (rejected by check, but never trusted here) yields a finite order.
 */
export function flattenRoute(routes: readonly RouteNode[], start: number): { targets: PlanTarget[]; order: number[] } {
  const members = routes[start].members;
  const targets: PlanTarget[] = [...members];
  const seenAccounts = new Set(members.map((t) => t.account));
  const order = members
    .map((t, p) => p)
    .sort((a, b) => members[b].weight - members[a].weight || a - b);
  const visited = new Set<number>([start]);
  const visit = (r: number): void => {
    for (const f of routes[r].fallbacks) {
      if (visited.has(f)) continue;
      visited.add(f);
      const byWeight = [...routes[f].members].map((t, i) => ({ t, i })).sort((a, b) => b.t.weight - a.t.weight || a.i - b.i);
      for (const { t } of byWeight) {
        if (seenAccounts.has(t.account)) continue;
        seenAccounts.add(t.account);
        order.push(targets.length);
        // A fallback target never joins the weighted split.
        targets.push({ ...t, weight: 0 });
      }
      visit(f);
    }
  };
  visit(start);
  return { targets, order };
}
