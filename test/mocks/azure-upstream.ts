/**
 * A local mock of Azure OpenAI (dated API versions) for gateway tests.
 *
 *   POST /openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD[-preview]
 *   POST /openai/deployments/{deployment}/completions?api-version=…
 *   POST /openai/deployments/{deployment}/embeddings?api-version=…
 *   api-key: <key>
 *
 * It is a front for the OpenAI mock (./openai-upstream.ts), which produces the
 * bodies and streams: this layer checks what is Azure's own (the `api-key`
 * header, the `api-version` query, the deployment path), answers errors in
 * Azure's shape (`{"error":{"code","message"}}`), reports the deployment's
 * underlying model as Azure does, and adds Azure's content-filter annotations
 * (`prompt_filter_results` on the first stream event and on JSON answers,
 * `content_filter_results` on choices).
 *
 * Order of handling: the request is recorded; `api-key` is checked (401);
 * the route (404) and `api-version` (404 when missing, 400 when malformed)
 * are checked; an unknown deployment is 404 DeploymentNotFound; then one
 * behavior is taken from `queue` (or `fallback`). `status`, `reset` and `hang`
 * are applied here; the others are handed to the OpenAI mock for this request.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { startOpenAIUpstream, type Behavior, type MockUpstream, type RecordedRequest } from "./openai-upstream.ts";
import { mockServer } from "./mock-server.ts";

export interface AzureRecordedRequest extends RecordedRequest {
  /** The query string's `api-version`, or null. */
  apiVersion: string | null;
  /** The deployment named in the path, or null when the path did not match. */
  deployment: string | null;
}

export interface AzureMock {
  /** The resource endpoint, as the Azure SDK's `endpoint`: http://127.0.0.1:PORT */
  url: string;
  name: string;
  requests: AzureRecordedRequest[];
  queue: Behavior[];
  fallback: Behavior;
  /** The OpenAI mock behind this one. */
  inner: MockUpstream;
  close(): Promise<void>;
}

export interface AzureStartOptions {
  name?: string;
  /** Deployments that exist; any name is accepted when absent. */
  deployments?: string[];
  /** The model Azure reports for the deployment (Azure answers with the underlying model's name). */
  modelName?: string;
  stream?: { chunks?: number; intervalMs?: number };
  fallback?: Behavior;
}

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

type Endpoint = "chat/completions" | "completions" | "embeddings";

function azureError(code: string, message: string, extra: object = {}) {
  return { error: { code, message, ...extra } };
}

/** Azure-shaped error bodies, as the service and its API Management front send them. */
export function azureErrorBody(status: number, apiVersion = "2024-10-21"): unknown {
  switch (status) {
    case 400:
      return {
        error: {
          message:
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
          type: null,
          param: "prompt",
          code: "content_filter",
          status: 400,
          innererror: {
            code: "ResponsibleAIPolicyViolation",
            content_filter_result: {
              hate: { filtered: false, severity: "safe" },
              self_harm: { filtered: false, severity: "safe" },
              sexual: { filtered: false, severity: "safe" },
              violence: { filtered: true, severity: "medium" },
            },
          },
        },
      };
    case 401:
      return azureError(
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
      );
    case 404:
      return azureError("404", "Resource not found");
    case 429:
      return azureError(
        "429",
        `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
      );
    case 500:
      return azureError("InternalServerError", "The server had an error while processing your request. Sorry about that!");
    case 503:
      return azureError("ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later.");
    default:
      return azureError(String(status), `Request failed with status ${status}.`);
  }
}

const PROMPT_FILTER = [
  {
    prompt_index: 0,
    content_filter_results: {
      hate: { filtered: false, severity: "safe" },
      self_harm: { filtered: false, severity: "safe" },
      sexual: { filtered: false, severity: "safe" },
      violence: { filtered: false, severity: "safe" },
    },
  },
];
const CHOICE_FILTER = PROMPT_FILTER[0].content_filter_results;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

/**
 * Sends a request to another local server and relays its answer: status,
 * content type and body, with `edit` applied to a whole JSON body and
 * `prefix` written before a stream. A connection the other side drops is
 * dropped here too.
 */
export function relay(
  target: string,
  init: { path: string; headers: Record<string, string>; body: Buffer | string },
  res: ServerResponse,
  options: { edit?: (json: any) => unknown; prefix?: string; extraHeaders?: Record<string, string> } = {},
): Promise<void> {
  const url = new URL(target);
  return new Promise((resolve) => {
    const out = httpRequest(
      { host: url.hostname, port: url.port, method: "POST", path: init.path, headers: { ...init.headers, "content-length": String(Buffer.byteLength(init.body)) } },
      (up) => {
        const type = String(up.headers["content-type"] ?? "application/json");
        const drop = () => {
          res.socket?.destroy();
          resolve();
        };
        up.on("error", drop);
        up.on("close", () => {
          if (!up.complete) drop();
        });
        if (type.startsWith("text/event-stream")) {
          res.writeHead(up.statusCode ?? 200, { "content-type": type, "cache-control": "no-cache", ...options.extraHeaders });
          res.flushHeaders();
          if (options.prefix !== undefined) res.write(options.prefix);
          up.on("data", (c: Buffer) => res.write(c));
          up.on("end", () => {
            if (up.complete) res.end();
            else res.socket?.destroy();
            resolve();
          });
          return;
        }
        const parts: Buffer[] = [];
        up.on("data", (c: Buffer) => parts.push(c));
        up.on("end", () => {
          if (!up.complete) return drop();
          let body = Buffer.concat(parts);
          if (options.edit !== undefined && type.startsWith("application/json")) {
            try {
              body = Buffer.from(JSON.stringify(options.edit(JSON.parse(body.toString("utf8")))));
            } catch {
              // not JSON: relay as is
            }
          }
          res.writeHead(up.statusCode ?? 200, { "content-type": type, "content-length": String(body.length), ...options.extraHeaders });
          res.end(body);
          resolve();
        });
      },
    );
    out.on("error", () => {
      res.socket?.destroy();
      resolve();
    });
    out.end(init.body);
  });
}

export async function startAzureUpstream(opts: AzureStartOptions = {}): Promise<AzureMock> {
  const name = opts.name ?? "azure";
  const modelName = opts.modelName ?? "gpt-4o-2024-08-06";
  const inner = await startOpenAIUpstream({ name, stream: opts.stream });
  const srv = mockServer();
  const { server } = srv;

  const mock: AzureMock = {
    url: "",
    name,
    requests: [],
    queue: [],
    fallback: opts.fallback ?? { kind: "ok" },
    inner,
    close: async () => {
      if (srv.closed) return;
      await srv.close();
      await inner.close();
    },
  };

  const send = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) => {
    if (srv.closed || res.destroyed) return;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), "apim-request-id": `mock-${mock.requests.length}`, ...extra });
    res.end(text);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    const raw = await readBody(req).catch(() => Buffer.alloc(0));
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const match = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/.exec(url.pathname);
    const deployment = match ? decodeURIComponent(match[1]) : null;
    const endpoint = (match?.[2] ?? null) as Endpoint | null;
    const apiVersion = url.searchParams.get("api-version");
    let body: any = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        body = raw.toString("utf8");
      }
    }
    mock.requests.push({ method: req.method ?? "GET", path: url.pathname, headers: { ...req.headers }, body, apiVersion, deployment });

    const key = req.headers["api-key"];
    if (typeof key !== "string" || key === "") return send(res, 401, azureErrorBody(401));
    if (req.method !== "POST" || endpoint === null || apiVersion === null) return send(res, 404, azureErrorBody(404));
    if (!API_VERSION.test(apiVersion)) return send(res, 400, azureError("BadRequest", "API version not supported"));
    if (opts.deployments !== undefined && !opts.deployments.includes(deployment!)) {
      return send(
        res,
        404,
        azureError("DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."),
      );
    }

    const behavior: Behavior = mock.queue.length > 0 ? mock.queue.shift()! : mock.fallback;
    switch (behavior.kind) {
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return;
      case "status": {
        const extra: Record<string, string> = {};
        if (behavior.retryAfterSeconds !== undefined) extra["retry-after"] = String(behavior.retryAfterSeconds);
        return send(res, behavior.status, behavior.body !== undefined ? behavior.body : azureErrorBody(behavior.status, apiVersion), extra);
      }
      default: {
        inner.queue.push(behavior);
        const forwarded = body !== null && typeof body === "object" && !Array.isArray(body) ? JSON.stringify({ ...body, model: modelName }) : raw;
        const annotate = endpoint === "chat/completions" && behavior.kind !== "stream-error-first";
        const prefix = annotate ? `data: ${JSON.stringify({ choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: PROMPT_FILTER })}\n\n` : undefined;
        const edit = annotate
          ? (json: any) =>
              Array.isArray(json?.choices)
                ? { ...json, prompt_filter_results: PROMPT_FILTER, choices: json.choices.map((c: object) => ({ ...c, content_filter_results: CHOICE_FILTER })) }
                : json
          : undefined;
        await relay(
          inner.url,
          { path: `/v1/${endpoint}`, headers: { "content-type": "application/json", authorization: "Bearer azure-mock-inner" }, body: forwarded },
          res,
          { edit, prefix, extraHeaders: { "apim-request-id": `mock-${mock.requests.length}` } },
        );
        return;
      }
    }
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, azureErrorBody(500));
      else res.socket?.destroy();
    });
  });

  const port = await srv.listen();
  mock.url = `http://127.0.0.1:${port}`;
  return mock;
}
