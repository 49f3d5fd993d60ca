import type { PlanRoute } from "../runtime/plan.ts";
import type { Router } from "../runtime/router.ts";

export interface Share {
  account: string;
  numerator: number;
  denominator: number;
}

/**
 * The exact share of first picks each member of a route gets, as reduced
 * fractions, given the accounts marked down. Read off the tables the router
 * would pick from, not recomputed from weights.
 */
export function exactShares(router: Router, route: PlanRoute, down: ReadonlySet<number>): Share[] {
  const { counts, denominator } = router.distributionCounts(route, (a) => down.has(a));
  return route.targets.slice(0, route.members).map((t, p) => {
    const g = gcd(counts[p], denominator);
    return { account: router.plan.accounts[t.account].id, numerator: counts[p] / g, denominator: denominator / g };
  });
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export function percent(s: Share): string {
  return `${((100 * s.numerator) / s.denominator).toFixed(2)}%`;
}
