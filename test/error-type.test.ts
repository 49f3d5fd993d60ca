import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_TYPES, errorTypeOfStatus, isErrorType } from "../runtime/error-type.ts";
import { HttpError } from "../runtime/errors.ts";

describe("error_type vocabulary", () => {
  it("classifies every HTTP status into the closed set", () => {
    fc.assert(fc.property(fc.integer({ min: 100, max: 599 }), (status) => {
        expect(ERROR_TYPES).toContain(errorTypeOfStatus(status));
      }),
    );
  });

  it("names the statuses a caller acts on", () => {
    expect([429, 401, 402, 404, 400, 500, 529, 504].map(errorTypeOfStatus)).toEqual([
      "rate_limited", "auth", "budget_exceeded", "not_found", "invalid_request", "server_error", "overloaded", "timeout",
    ]);
  });

  it("every gateway error carries one", () => {
    expect(new HttpError(402, "insufficient_quota", "budget_exceeded", "spent").errorType).toBe("budget_exceeded");
    expect(isErrorType(new HttpError(503, "server_error", "pool_full", "full", {}, null, "pool_full").errorType)).toBe(true);
    expect(isErrorType("teapot")).toBe(false);
  });
});
