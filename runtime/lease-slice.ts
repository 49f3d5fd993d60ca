// How big a slice of a budget's headroom an instance takes (budget leasing,
// budget-leases.ts). The runtime and bench/lease-sim.mjs both use these, so
// the simulation measures the sizing gwc ships. The GRANT script
// (redis-scripts.ts) applies grantOf inside Redis, on the headroom as it is.

/** "Near the cap": headroom under this many requests per instance. Then slices go back as soon as they are free. */
export const NEAR_CAP_REQUESTS = 4;

/**
 * The slice to ask for: a share of the headroom last seen that shrinks with it
 * (half of it split among the instances, so a late-comer still finds room),
 * at most `maxSlice`, never less than what the request waiting for it lacks.
 */
export function sliceSize(headroom: number, need: number, instances: number, maxSlice: number): number {
  return Math.max(need, Math.min(maxSlice, Math.floor(headroom / (2 * Math.max(1, instances)))));
}

/** What Redis grants of a `want` on the headroom it has: all of it, else just the `need`, else nothing (the request is refused). */
export function grantOf(headroom: number, want: number, need: number): number {
  return headroom >= want ? want : headroom >= need ? need : 0;
}

/** Whether a budget with `headroom` left in Redis is near its cap, for requests of about `need`. */
export function nearCap(headroom: number, need: number, instances: number): boolean {
  return headroom < NEAR_CAP_REQUESTS * Math.max(1, instances) * need;
}
