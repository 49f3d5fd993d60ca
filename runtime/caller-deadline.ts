import { badRequest } from "./errors.ts";

export const DEADLINE_HEADER = "x-gwc-deadline-ms";

/**
 * The caller's own deadline for a request, `x-gwc-deadline-ms: <ms>`:
 * undefined when absent. It can only shorten the route's deadline.
 */
export function callerDeadline(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers[DEADLINE_HEADER];
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : value;
  if (!/^\d{1,10}$/.test(text) || Number(text) === 0) {
    throw badRequest(`The ${DEADLINE_HEADER} header must be a whole number of milliseconds above 0, not '${text.slice(0, 40)}'.`, "invalid_deadline", DEADLINE_HEADER);
  }
  return Number(text);
}
