import type { AliasTable } from "./plan.ts";

/**
 * One weighted pick in O(1): one random draw u ∈ [0, 1), one compare, two
 * array reads. x = u·n selects column ⌊x⌋; its fractional part, scaled to the
 * column height, lands under prob[c] (the column's own target) or above (its alias).
 */
export function pickAlias(table: AliasTable, u: number): number {
  const x = u * table.n;
  const c = x | 0;
  return (x - c) * table.total < table.prob[c] ? table.target[c] : table.alias[c];
}

/**
 * The exact distribution a table implies, as integer counts over n·total
 * units per target position. Enumerates columns, so it checks the table
 * itself, not the weights it was built from.
 */
export function impliedCounts(table: AliasTable, positions: number): number[] {
  const counts = new Array<number>(positions).fill(0);
  for (let c = 0; c < table.n; c++) {
    counts[table.target[c]] += table.prob[c];
    counts[table.alias[c]] += table.total - table.prob[c];
  }
  return counts;
}
