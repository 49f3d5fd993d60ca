// gwc/testing: ask a config (or a built bundle) exactly how it splits traffic.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Plan, PlanRoute } from "../runtime/plan.ts";
import { Router } from "../runtime/router.ts";
import { compileSource } from "./compile.ts";
import { formatDiagnostic, type Diagnostic } from "./diagnostics.ts";
import { exactShares, type Share } from "./distribution.ts";

export type { Share };

export interface Query {
  /** The model a caller asks for; omit for the catch-all route. */
  model?: string;
  /** Ids of accounts to treat as down (circuit open, over their limit). */
  down?: readonly string[];
}

export interface Gateway {
  readonly plan: Plan;
  /** Every requested model some route names (`*` for a catch-all). */
  models(): string[];
  /** The exact probability of each of the route's accounts, as reduced fractions. */
  distribution(query?: Query): Share[];
  /** The account a request goes to first for a random number in [0, 1), or null if none can serve. */
  pick(query: Query & { random: number }): string | null;
  /** The accounts tried after `account` fails, in order. */
  failover(query: { model?: string; account: string }): string[];
}

export class ConfigError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(`the config has errors:\n${diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Loads a config (`.json`, compiled in memory) or a bundle built by `gwc build` (`.mjs`). */
export async function load(path: string): Promise<Gateway> {
  if (/\.(mjs|js)$/.test(path)) {
    const bundle = (await import(pathToFileURL(resolve(path)).href)) as { router: Router };
    return wrap(bundle.router);
  }
  return fromConfig(readFileSync(path, "utf8"), path);
}

/** Compiles a config given as text or as an object; throws ConfigError listing every problem. */
export function fromConfig(config: string | object, file = "config.json"): Gateway {
  const { plan, diagnostics } = compileSource(typeof config === "string" ? config : JSON.stringify(config), file);
  if (plan === undefined) throw new ConfigError(diagnostics);
  return wrap(new Router(plan));
}

function wrap(router: Router): Gateway {
  const plan = router.plan;
  const routeFor = (model: string | undefined): PlanRoute => {
    const route = router.route(model);
    if (route === undefined) throw new Error(`no route serves model ${JSON.stringify(model)}`);
    return route;
  };
  const accountSet = (ids: readonly string[] = []): Set<number> =>
    new Set(
      ids.map((id) => {
        const i = router.accountIndex(id);
        if (i === undefined) throw new Error(`no account has id ${JSON.stringify(id)}`);
        return i;
      }),
    );
  return {
    plan,
    models: () => plan.routes.map((r) => r.model),
    distribution: ({ model, down } = {}) => exactShares(router, routeFor(model), accountSet(down)),
    pick: ({ model, down, random }) => {
      if (!(random >= 0 && random < 1)) throw new RangeError(`random must be in [0, 1), got ${random}`);
      const route = routeFor(model);
      const isDown = accountSet(down);
      const p = router.pick(route, random, (a) => isDown.has(a));
      return p < 0 ? null : plan.accounts[route.targets[p].account].id;
    },
    failover: ({ model, account }) => {
      const route = routeFor(model);
      const index = router.accountIndex(account);
      const p = route.targets.findIndex((t) => t.account === index);
      if (p < 0) throw new Error(`account ${JSON.stringify(account)} does not serve this route`);
      return [...router.failover(route, p)].map((q) => plan.accounts[route.targets[q].account].id);
    },
  };
}
