import type { AccountContext, Adapter, Usage } from "./adapter.ts";
import { embeddingInputs, embeddingList, googleAdapter } from "./gemini.ts";

// Vertex AI's Gemini endpoints take and return the Gemini API's JSON; only the
// URL, the credentials and embeddings differ:
//
//   POST {base}/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:generateContent
//        (`:streamGenerateContent?alt=sse` for streams, `:predict` for embeddings)
//   Authorization: Bearer {access token}   (VERTEX_ACCESS_TOKEN, e.g. `gcloud auth print-access-token`)
//
// `project` and `region` come from the account (region defaults to us-central1).

function segment(value: string): string {
  return encodeURIComponent(value);
}

/**
 * The model's resource path: a publisher model by id (`gemini-2.5-pro`), a
 * resource under the location (`endpoints/123`, `publishers/google/models/x`),
 * or a full resource name (`projects/.../endpoints/123`).
 */
function vertexModelPath(account: AccountContext, model: string): string {
  if (model.startsWith("projects/")) return model.split("/").map(segment).join("/");
  const project = account.options.project;
  const region = account.options.region ?? "us-central1";
  if (project === undefined) throw new Error("vertex account without a project (the compiler requires one)");
  const location = `projects/${segment(project)}/locations/${segment(region)}`;
  const resource = model.includes("/") ? model : `publishers/google/models/${model}`;
  return `${location}/${resource.split("/").map(segment).join("/")}`;
}

interface PredictResponse {
  predictions?: { embeddings?: { values?: number[]; statistics?: { token_count?: unknown } } }[];
}

function predictTokens(json: unknown): number | undefined {
  const predictions = (json as PredictResponse | null)?.predictions;
  if (!Array.isArray(predictions)) return undefined;
  let total = 0;
  let counted = false;
  for (const p of predictions) {
    const n = p?.embeddings?.statistics?.token_count;
    if (typeof n === "number") {
      total += n;
      counted = true;
    }
  }
  return counted ? total : undefined;
}

export const vertexAdapter: Adapter = googleAdapter({
  methodPath(account, model, method) {
    const version = /\/v1(beta1)?$/.test(account.basePath) ? "" : "/v1";
    return `${account.basePath}${version}/${vertexModelPath(account, model)}:${method}`;
  },
  auth: (token): Record<string, string> => (token === null ? {} : { authorization: `Bearer ${token}` }),
  embeddings: {
    // Text embedding models are served by the prediction service.
    method: "predict",
    body(json) {
      const out: Record<string, unknown> = { instances: embeddingInputs(json).map((content) => ({ content })) };
      if (typeof json.dimensions === "number") out.parameters = { outputDimensionality: json.dimensions };
      return out;
    },
    response(json, req, model) {
      const predictions = (json as PredictResponse | null)?.predictions ?? [];
      return embeddingList(predictions.map((p) => p?.embeddings?.values ?? []), req.json, model, predictTokens(json) ?? 0);
    },
    usage(json): Usage | undefined {
      const tokens = predictTokens(json);
      return tokens === undefined ? undefined : { input: tokens, output: 0, cached: 0 };
    },
  },
});
