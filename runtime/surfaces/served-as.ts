// The one decision the attempt loop asks of surfaces: what goes to this account.
// An account that speaks the caller's format gets the caller's request as it
// came (relayed); any other gets its OpenAI chat form (translated by the
// adapter), and its answer goes back through the surface's sink.
import { HttpError } from "../errors.ts";
import type { Adapter, InboundRequest } from "../providers/adapter.ts";

export interface Served {
  req: InboundRequest;
  /** True when the account speaks the caller's format: the answer is written to the caller untouched. */
  relayed: boolean;
}

/**
 * Whether an account with `adapter` can serve the request: natively (its own format's
 * endpoint; adapters translating from OpenAI take OpenAI's endpoints they declare), or
 * through the request's chat form.
 */
export function canServe(req: InboundRequest, adapter: Adapter | undefined): boolean {
  if (adapter === undefined) return false;
  const format = req.format ?? "openai";
  if ((adapter.format === format || format === "openai") && adapter.supports(req.endpoint)) return true;
  return req.toChat !== undefined && adapter.supports("chat");
}

/** What `canServe` depends on, as a key. */
export function operationKey(req: InboundRequest): string {
  return `${req.format ?? "openai"} ${req.endpoint}${req.toChat === undefined ? "" : " chat"}`;
}

/** What to send to an account with `adapter`; a refusal (a field its format cannot carry) as an HttpError value. */
export function servedAs(req: InboundRequest, adapter: Adapter, dropUnsupported: boolean): Served | HttpError {
  if (adapter.format === (req.format ?? "openai") && adapter.supports(req.endpoint)) return { req, relayed: true };
  if (req.toChat === undefined) return { req: dropUnsupported ? { ...req, dropUnsupported } : req, relayed: false };
  try {
    const chat = req.toChat(dropUnsupported);
    return { req: dropUnsupported ? { ...chat, dropUnsupported } : chat, relayed: false };
  } catch (e) {
    if (e instanceof HttpError) return e;
    throw e;
  }
}

/** A 400 for a field a format cannot carry; the route may opt into dropping such fields instead (`drop_unsupported_params`). */
export function unsupported(param: string, target: string, why = ""): HttpError {
  return new HttpError(
    400,
    "invalid_request_error",
    "unsupported_parameter",
    `'${param}' cannot be sent to ${target}${why === "" ? "" : ` (${why})`}. Remove it, or set "drop_unsupported_params": true on the route to drop such fields.`,
    {},
    param,
  );
}
