// What the bundled runtime takes from undici, without undici's index: that
// requires fetch, WebSocket, the cache, mocks and every other dispatcher, about
// 580 KiB of source that every gateway held in memory and evaluated at start
// (7 MiB more resident). compiler/bundle.ts resolves the runtime's `undici` here.
// Importing something else from "undici" fails the build: add it here.
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import api from "undici/lib/api/index.js";
import Pool from "undici/lib/dispatcher/pool.js";
import errors from "undici/lib/core/errors.js";

// As undici's index does: request(), stream() and the rest on every dispatcher.
Object.assign(Dispatcher.prototype, api);

export { Pool, errors };
