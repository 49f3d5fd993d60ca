// Errors as callers see them: OpenAI's shape, words a caller can act on.
import { errorTypeOfStatus, type ErrorType } from "./error-type.ts";

export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly param: string | null = null,
    /** What went wrong, in the one vocabulary metrics, logs and the dashboard share. */
    readonly errorType: ErrorType = errorTypeOfStatus(status),
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

export const badRequest = (message: string, code = "invalid_request", param: string | null = null) =>
  new HttpError(400, "invalid_request_error", code, message, {}, param);
