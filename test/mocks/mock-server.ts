/**
 * The server lifecycle shared by the wire-format mocks: an HTTP server whose
 * open sockets are tracked, a `sleep` that `close()` cuts short so no timer
 * outlives the mock, and `close()` that stops listening and destroys every
 * socket (hanging ones included).
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface MockServer {
  /** The underlying server; the mock adds its own `request` handler. */
  server: Server;
  /** True once `close()` was called. */
  readonly closed: boolean;
  /** Waits `ms`; resolves at once if closed, and early when `close()` runs. */
  sleep(ms: number): Promise<void>;
  /** True once the client went away or the mock closed; writes must stop. */
  gone(res: ServerResponse): boolean;
  /** Listens on 127.0.0.1 at a free port and resolves with the port. */
  listen(): Promise<number>;
  /** Resolves pending sleeps, closes the server and destroys open sockets. Idempotent. */
  close(): Promise<void>;
}

export function mockServer(): MockServer {
  const sockets = new Set<Socket>();
  /** Pending waits, resolved early by close() so no timer outlives the mock. */
  const waits = new Map<NodeJS.Timeout, () => void>();
  let closed = false;

  const server = createServer();

  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    if (closed) socket.destroy();
  });

  return {
    server,
    get closed() {
      return closed;
    },
    sleep: (ms: number): Promise<void> =>
      new Promise((resolve) => {
        if (closed) return resolve();
        const t = setTimeout(() => {
          waits.delete(t);
          resolve();
        }, ms);
        waits.set(t, resolve);
      }),
    gone: (res: ServerResponse) => closed || res.destroyed || res.socket?.destroyed === true,
    listen: () =>
      new Promise<number>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const [t, resolve] of waits) {
        clearTimeout(t);
        resolve();
      }
      waits.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await done;
    },
  };
}
