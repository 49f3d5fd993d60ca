/**
 * OpenAI's Responses API for the OpenAI mock (openai-upstream.ts routes
 * `/v1/responses…` here): `POST /v1/responses` (JSON, and SSE as named events
 * `event: response.created` … `event: response.completed`, no `[DONE]`),
 * `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`
 * for stored responses.
 *
 * Shapes follow the `openai` package's resources/responses/responses.d.ts
 * (`Response`, `ResponseStreamEvent`, `ResponseUsage`) and what Codex, the
 * Vercel AI SDK and LangChain send and read.
 *
 * Answers are deterministic, as the chat mock's: a function call to the first
 * function tool (or the one `tool_choice` names, or the behavior's scripted one)
 * when the last input is the user's; `[name] tool said: <output>` after a
 * function_call_output; otherwise `[name] you said: <last user text>`, or a JSON
 * value of the schema when `text.format` is `json_schema`. With `reasoning` set,
 * a reasoning item comes first, its `encrypted_content` (when included) checked
 * when it comes back. `previous_response_id` continues a stored response, and
 * answers 400 for one the mock does not hold (as the API does with `store: false`).
 */
import { sampleOf } from "./sample-json.ts";

type Item = Record<string, any>;

export interface ResponsesAnswer {
  status: number;
  body: unknown;
  /** The SSE events (each with its `type`), when the request asked for a stream and the answer is 200. */
  events?: { type: string }[];
}

interface Stored {
  response: Record<string, any>;
  /** Every item of the conversation up to and including this response's output. */
  history: Item[];
  input: Item[];
}

let counter = 0;
const id = (prefix: string) => `${prefix}${(++counter).toString(36).padStart(6, "0")}${Math.random().toString(36).slice(2, 12)}`;
const tokens = (chars: number) => Math.max(1, Math.ceil(chars / 4));

function error(status: number, message: string, param: string | null, code: string | null): ResponsesAnswer {
  return { status, body: { error: { message, type: "invalid_request_error", param, code } } };
}

/** Input as items: a string is one user message; EasyInputMessage has no `type`. */
function itemsOf(input: unknown): Item[] {
  if (typeof input === "string") return [{ type: "message", role: "user", content: input }];
  return Array.isArray(input) ? input.map((i: Item) => (i.type === undefined && i.role !== undefined ? { type: "message", ...i } : i)) : [];
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  return Array.isArray(content) ? content.map((c: any) => (typeof c?.text === "string" ? c.text : "")).join("") : "";
}

function split(text: string, n: number): string[] {
  const cps = Array.from(text);
  const count = Math.max(1, Math.min(n, cps.length || 1));
  const size = Math.ceil(cps.length / count) || 1;
  const out: string[] = [];
  for (let at = 0; at < cps.length; at += size) out.push(cps.slice(at, at + size).join(""));
  return out.length > 0 ? out : [""];
}

export function responsesApi(name: string, streamChunks: number) {
  const stored = new Map<string, Stored>();
  /** encrypted_content handed out with reasoning items, by item id. */
  const sealed = new Map<string, string>();

  function create(body: any, scripted?: { name: string; input: Record<string, unknown> }): ResponsesAnswer {
    if (!body || typeof body !== "object" || Array.isArray(body)) return error(400, "We could not parse the JSON body of your request.", null, null);
    if (typeof body.model !== "string" || body.model === "") return error(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter");
    let history: Item[] = [];
    if (body.previous_response_id !== undefined && body.previous_response_id !== null) {
      const prev = stored.get(body.previous_response_id);
      if (!prev) return error(400, `Previous response with id '${body.previous_response_id}' not found.`, "previous_response_id", "previous_response_not_found");
      history = [...prev.history];
    }
    const input = itemsOf(body.input);
    if (input.length === 0 && history.length === 0) return error(400, "Missing required parameter: 'input'.", "input", "missing_required_parameter");
    const all = [...history, ...input];
    for (const item of input) {
      if (item.type === "function_call_output" && !all.some((i) => i.type === "function_call" && i.call_id === item.call_id)) {
        return error(400, `No tool call found for function call output with call_id ${item.call_id}.`, "input", null);
      }
      if (item.type === "reasoning" && item.encrypted_content !== undefined && sealed.get(item.id) !== item.encrypted_content) {
        return error(400, `The encrypted content for item ${item.id} could not be verified.`, "input", "invalid_encrypted_content");
      }
    }

    const last = all[all.length - 1];
    const tools: Item[] = (Array.isArray(body.tools) ? body.tools : []).filter((t: Item) => t.type === "function");
    const output: Item[] = [];
    let reasoningTokens = 0;
    if (body.reasoning && typeof body.reasoning === "object") {
      const rs: Item = { id: id("rs_"), type: "reasoning", summary: [] };
      if (body.reasoning.summary) rs.summary = [{ type: "summary_text", text: `[${name}] reasoned` }];
      if (Array.isArray(body.include) && body.include.includes("reasoning.encrypted_content")) {
        rs.encrypted_content = Buffer.from(`${name}:${rs.id}`).toString("base64");
        sealed.set(rs.id, rs.encrypted_content);
      }
      output.push(rs);
      reasoningTokens = 8;
    }
    const choice = body.tool_choice;
    const wantsCall = tools.length > 0 && last?.type === "message" && last.role === "user" && choice !== "none";
    let text = "";
    if (wantsCall) {
      const named = typeof choice === "object" && choice?.name ? choice.name : scripted?.name;
      const tool = tools.find((t) => t.name === named) ?? tools[0];
      const args = scripted && scripted.name === tool.name ? scripted.input : sampleOf(tool.parameters ?? { type: "object" }, textOf(last.content));
      output.push({ id: id("fc_"), type: "function_call", status: "completed", arguments: JSON.stringify(args), call_id: id("call_"), name: tool.name });
    } else {
      const format = body.text?.format;
      const results = input.filter((i) => i.type === "function_call_output");
      const lastUser = [...all].reverse().find((i) => i.type === "message" && i.role === "user");
      text =
        format?.type === "json_schema"
          ? JSON.stringify(sampleOf(format.schema, textOf(lastUser?.content)))
          : results.length > 0
            ? `[${name}] tool said: ${results.map((r) => (typeof r.output === "string" ? r.output : JSON.stringify(r.output))).join(" | ")}`
            : `[${name}] you said: ${textOf(lastUser?.content)}`;
      output.push({ id: id("msg_"), type: "message", status: "completed", content: [{ type: "output_text", annotations: [], logprobs: [], text }], role: "assistant" });
    }

    const inputTokens = tokens(JSON.stringify([body.instructions ?? "", all, body.tools ?? []]).length);
    const outputTokens = tokens(JSON.stringify(output).length) + reasoningTokens;
    const response: Record<string, any> = {
      id: id("resp_"),
      object: "response",
      created_at: Math.floor(Date.now() / 1000),
      status: "completed",
      background: false,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model: body.model,
      output,
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: body.previous_response_id ?? null,
      prompt_cache_key: body.prompt_cache_key ?? null,
      reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
      service_tier: "default",
      store: body.store !== false,
      temperature: body.temperature ?? 1,
      text: { format: body.text?.format ?? { type: "text" }, verbosity: body.text?.verbosity ?? "medium" },
      tool_choice: body.tool_choice ?? "auto",
      tools: body.tools ?? [],
      top_p: body.top_p ?? 1,
      truncation: body.truncation ?? "disabled",
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: reasoningTokens },
        total_tokens: inputTokens + outputTokens,
      },
      user: body.user ?? null,
      metadata: body.metadata ?? {},
    };
    if (response.store) stored.set(response.id, { response, history: [...all, ...output], input: input.map((i) => ({ id: i.id ?? id("msg_"), ...i })) });
    return { status: 200, body: response, events: body.stream === true ? events(response, text) : undefined };
  }

  /** The stream's events for a finished response, in the API's order. */
  function events(response: Record<string, any>, text: string): { type: string }[] {
    let seq = 0;
    const out: { type: string }[] = [];
    const push = (e: Record<string, any>) => out.push({ ...e, sequence_number: seq++ } as unknown as { type: string });
    const pending = { ...response, status: "in_progress", output: [], usage: null };
    push({ type: "response.created", response: pending });
    push({ type: "response.in_progress", response: pending });
    response.output.forEach((item: Item, output_index: number) => {
      const item_id = item.id;
      if (item.type === "message") {
        push({ type: "response.output_item.added", output_index, item: { ...item, status: "in_progress", content: [] } });
        const part = { type: "output_text", annotations: [], logprobs: [], text: "" };
        push({ type: "response.content_part.added", item_id, output_index, content_index: 0, part });
        for (const delta of split(text, streamChunks)) push({ type: "response.output_text.delta", item_id, output_index, content_index: 0, delta, logprobs: [] });
        push({ type: "response.output_text.done", item_id, output_index, content_index: 0, text, logprobs: [] });
        push({ type: "response.content_part.done", item_id, output_index, content_index: 0, part: { ...part, text } });
      } else if (item.type === "function_call") {
        push({ type: "response.output_item.added", output_index, item: { ...item, status: "in_progress", arguments: "" } });
        for (const delta of split(item.arguments, streamChunks)) push({ type: "response.function_call_arguments.delta", item_id, output_index, delta });
        push({ type: "response.function_call_arguments.done", item_id, output_index, name: item.name, arguments: item.arguments });
      } else {
        push({ type: "response.output_item.added", output_index, item: { ...item, summary: [] } });
        item.summary.forEach((s: Item, summary_index: number) => {
          push({ type: "response.reasoning_summary_part.added", item_id, output_index, summary_index, part: { type: "summary_text", text: "" } });
          push({ type: "response.reasoning_summary_text.delta", item_id, output_index, summary_index, delta: s.text });
          push({ type: "response.reasoning_summary_text.done", item_id, output_index, summary_index, text: s.text });
          push({ type: "response.reasoning_summary_part.done", item_id, output_index, summary_index, part: s });
        });
      }
      push({ type: "response.output_item.done", output_index, item });
    });
    push({ type: "response.completed", response });
    return out;
  }

  /** GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items. */
  function read(method: string, path: string): ResponsesAnswer {
    const m = /^\/v1\/responses\/([^/]+)(\/input_items)?$/.exec(path)!;
    const entry = stored.get(decodeURIComponent(m[1]));
    if (!entry) return { status: 404, body: { error: { message: `Response with id '${m[1]}' not found.`, type: "invalid_request_error", param: null, code: null } } };
    if (m[2]) {
      const data = [...entry.input].reverse();
      return { status: 200, body: { object: "list", data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: false } };
    }
    if (method === "DELETE") {
      stored.delete(entry.response.id);
      return { status: 200, body: { id: entry.response.id, object: "response.deleted", deleted: true } };
    }
    return { status: 200, body: entry.response };
  }

  return { create, read };
}

/** Which Responses route a request is, if any. */
export function responsesRouteOf(method: string, path: string): "create" | "read" | null {
  if (method === "POST" && path === "/v1/responses") return "create";
  if ((method === "GET" || method === "DELETE") && /^\/v1\/responses\/[^/]+$/.test(path)) return "read";
  if (method === "GET" && /^\/v1\/responses\/[^/]+\/input_items$/.test(path)) return "read";
  return null;
}
