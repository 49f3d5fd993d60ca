// What the gateway can serve, for every surface's model list: each route's
// model (or its accounts' pinned models, on the catch-all), and — for accounts
// on the catch-all that pass the caller's model through — what their upstream
// lists, asked once a few minutes at most. An upstream that does not answer
// leaves its models out rather than failing the list.
import type { AccountRuntime, Gateway } from "../gateway.ts";
import { parseJson } from "../upstream.ts";

const FRESH_MS = 5 * 60_000;
const TIMEOUT_MS = 5_000;

/** Account id → its upstream's model ids and when they were read. */
const cache = new Map<string, { at: number; ids: Promise<string[]> }>();

async function upstreamIds(acct: AccountRuntime): Promise<string[]> {
  const adapter = acct.adapter;
  if (adapter?.listModels === undefined || adapter.modelIds === undefined) return [];
  const { path, headers } = adapter.listModels(acct.context);
  try {
    const r = await acct.pool.dispatcher.request({ method: "GET", path, headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = Buffer.from(await r.body.arrayBuffer());
    return r.statusCode === 200 ? adapter.modelIds(parseJson(body)) : [];
  } catch {
    return [];
  }
}

/** Every model name the gateway serves, passthrough accounts' upstream lists included. */
export async function servedModels(gateway: Gateway, now = Date.now()): Promise<string[]> {
  const names = new Set(gateway.models());
  const lists = gateway.passthroughAccounts().map((acct) => {
    let hit = cache.get(acct.id);
    if (hit === undefined || now - hit.at > FRESH_MS) cache.set(acct.id, (hit = { at: now, ids: upstreamIds(acct) }));
    return hit.ids;
  });
  for (const ids of await Promise.all(lists)) for (const id of ids) names.add(id);
  return [...names];
}
