import type { AliasTable } from "../runtime/plan.ts";

/**
 * Vose's alias method in integers. Weights are divided by their gcd, each
 * column is `total` units tall, and entry i brings weight·n units; every
 * transfer between columns is an integer subtraction, so the table reproduces
 * the weights exactly (see AliasTable in runtime/plan.ts for the picture).
 *
 * `positions` names what each weight stands for (a target position in the
 * route); zero weights get no column. Returns null when nothing has weight.
 */
export function buildAliasTable(positions: readonly number[], weights: readonly number[]): AliasTable | null {
  const entries: number[] = [];
  for (let i = 0; i < weights.length; i++) if (weights[i] > 0) entries.push(i);
  if (entries.length === 0) return null;
  const g = entries.reduce((acc, i) => gcd(acc, weights[i]), 0);
  const n = entries.length;
  const scaled = entries.map((i) => (weights[i] / g) * n);
  const total = scaled.reduce((a, b) => a + b, 0) / n;

  const prob = new Uint32Array(n);
  const target = new Uint32Array(n);
  const alias = new Uint32Array(n);
  const small: number[] = [];
  const large: number[] = [];
  for (let c = 0; c < n; c++) {
    target[c] = positions[entries[c]];
    alias[c] = target[c];
    (scaled[c] < total ? small : large).push(c);
  }
  // Process in a fixed order so the same weights always give the same bytes.
  small.reverse();
  large.reverse();
  while (small.length > 0 && large.length > 0) {
    const s = small.pop()!;
    const l = large.pop()!;
    prob[s] = scaled[s];
    alias[s] = target[l];
    scaled[l] -= total - scaled[s];
    (scaled[l] < total ? small : large).push(l);
  }
  // In exact arithmetic whatever remains is exactly full.
  for (const c of large) prob[c] = total;
  for (const c of small) prob[c] = total;
  return { n, total, prob, target, alias };
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
