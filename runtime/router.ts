import { impliedCounts, pickAlias } from "./alias-pick.ts";
import type { AliasTable, Plan, PlanRoute } from "./plan.ts";

/**
 * Route lookup and weighted picks over a plan. Everything here reads tables the
 * compiler built; the only loop is the exact scan used when a large route has
 * two or more members down at once.
 */
export class Router {
  readonly plan: Plan;
  readonly #byModel: Map<string, number>;
  readonly #accountIndex: Map<string, number>;

  constructor(plan: Plan) {
    this.plan = plan;
    this.#byModel = new Map(plan.routeByModel);
    this.#accountIndex = new Map(plan.accounts.map((a, i) => [a.id, i]));
  }

  /** The route serving a requested model, or undefined when none does. */
  route(model: string | undefined): PlanRoute | undefined {
    const i = model === undefined ? undefined : this.#byModel.get(model);
    if (i !== undefined) return this.plan.routes[i];
    return this.plan.catchAllRoute >= 0 ? this.plan.routes[this.plan.catchAllRoute] : undefined;
  }

  accountIndex(id: string): number | undefined {
    return this.#accountIndex.get(id);
  }

  /**
   * Picks a target position among the route's healthy members, or -1 when no
   * member with weight is up. `down` answers for an account index at a target
   * position (breakers are per account and, where a route pins one, model).
   */
  pick(route: PlanRoute, u: number, down?: (account: number, position: number) => boolean): number {
    if (down === undefined) return route.table === null ? -1 : pickAlias(route.table, u);
    const table = this.healthyTable(route, down);
    if (table !== undefined) return table === null ? -1 : pickAlias(table, u);
    return scanPick(route, u, down);
  }

  /**
   * The precomputed table for the current healthy set: null when nothing with
   * weight is up, undefined when the set has no table (scan instead).
   */
  healthyTable(route: PlanRoute, down: (account: number, position: number) => boolean): AliasTable | null | undefined {
    let mask = 0;
    let downCount = 0;
    let lastDown = -1;
    for (let p = 0; p < route.members; p++) {
      if (down(route.targets[p].account, p)) {
        downCount++;
        lastDown = p;
      } else {
        mask |= 1 << p;
      }
    }
    if (downCount === 0) return route.table;
    if (route.subsets !== null) return route.subsets[mask];
    if (downCount === 1 && route.without !== null) return route.without[lastDown];
    return undefined;
  }

  /**
   * The exact probability of each target position as integer counts over a
   * common denominator (all zero when nothing can be picked).
   */
  distributionCounts(route: PlanRoute, down: (account: number, position: number) => boolean): { counts: number[]; denominator: number } {
    const table = this.healthyTable(route, down);
    if (table === null) return { counts: new Array<number>(route.targets.length).fill(0), denominator: 1 };
    if (table !== undefined) {
      return { counts: impliedCounts(table, route.targets.length), denominator: table.n * table.total };
    }
    const counts = route.targets.map((t, p) => (p < route.members && !down(t.account, p) ? t.weight : 0));
    const denominator = counts.reduce((a, b) => a + b, 0);
    return { counts, denominator: denominator === 0 ? 1 : denominator };
  }

  /**
   * Target positions to try after `first` fails: the route's order without it.
   * Each account appears at most once in `order`, so a request tries each once.
   */
  *failover(route: PlanRoute, first: number): Generator<number> {
    for (const p of route.order) if (p !== first) yield p;
  }
}

/** Exact weighted pick over healthy members by cumulative weight (rare path). */
function scanPick(route: PlanRoute, u: number, down: (account: number, position: number) => boolean): number {
  let total = 0;
  for (let p = 0; p < route.members; p++) if (!down(route.targets[p].account, p)) total += route.targets[p].weight;
  if (total === 0) return -1;
  let r = Math.floor(u * total);
  for (let p = 0; p < route.members; p++) {
    const t = route.targets[p];
    if (down(t.account, p)) continue;
    if (r < t.weight) return p;
    r -= t.weight;
  }
  return -1;
}
