import { createServer } from "node:http";
import type { Plan } from "./plan.ts";

/**
 * The serving runtime is still to come (issue: the runtime). Until then the
 * bundle answers health checks and lists its models, and says plainly that
 * it does not proxy yet.
 */
export function serve(plan: Plan): void {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? "127.0.0.1";
  const models = plan.routes.map((r) => r.model).filter((m) => m !== "*");
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) return json(200, { status: "ok" });
    if (req.method === "GET" && path === "/v1/models") {
      return json(200, { object: "list", data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "gwc" })) });
    }
    json(501, { error: { message: "This gwc build does not proxy requests yet.", type: "server_error", code: "not_implemented", param: null } });
  });
  server.listen(port, host, () => console.log(`gwc: listening on http://${host}:${port} (${plan.routes.length} routes)`));
  process.once("SIGTERM", () => server.close(() => process.exit(0)));
}
