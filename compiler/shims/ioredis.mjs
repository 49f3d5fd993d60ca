// ioredis, loaded on first use: evaluating it at start took 11 MiB of resident
// memory in every gateway, and only a config with `state.redis` uses it.
// compiler/bundle.ts resolves the runtime's `ioredis` here; esbuild bundles the
// require() below as a CommonJS module evaluated only when it is first called.
// Importing something else from "ioredis" fails the build: add it here.
let loaded;
const ioredis = () => (loaded ??= require("ioredis"));

// `new Redis(...)` and `new Cluster(...)` build the real clients (a constructor may return another object).
export class Redis {
  constructor(...args) {
    return new (ioredis().Redis)(...args);
  }
}

export class Cluster {
  constructor(...args) {
    return new (ioredis().Cluster)(...args);
  }
}
