/**
 * Lambda's error responses. A client reads the error's name from the
 * `x-amzn-ErrorType` header (the AWS SDK's rest-json protocol looks there
 * first) and its text from the body's `message`; Lambda's body also carries
 * `Type` ("User" for the caller's fault, "Service" for Lambda's) and members
 * such as `Reason`, which the SDK copies onto the exception.
 */
import { LambdaApiError, LambdaErrors } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";

/** The errors Gust returns that @gust/protocol has no constructor for. */
export const ApiErrors = {
  ...LambdaErrors,
  missingAuthentication: () =>
    new LambdaApiError("MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
  incompleteSignature: (message: string) =>
    new LambdaApiError("IncompleteSignatureException", 400, message),
  unknownOperation: (method: string, path: string) =>
    new LambdaApiError("UnknownOperationException", 404, `Unknown operation: ${method} ${path}`),
  entityTooLarge: (limit: number) =>
    new LambdaApiError(
      "RequestEntityTooLargeException",
      413,
      `Request must be smaller than ${limit} bytes for this operation`,
    ),
  preconditionFailed: () =>
    new LambdaApiError(
      "PreconditionFailedException",
      412,
      "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    ),
  validation: (message: string) => new LambdaApiError("ValidationException", 400, message),
} as const;

/**
 * Lambda's throttle answer: same message for every reason, the reason in
 * `Reason`, and when the admission expects a retry may succeed (the
 * response's `Retry-After`).
 */
export class ThrottleError extends LambdaApiError {
  override name = "ThrottleError";
  constructor(
    reason: string,
    /** Undefined: the frontend's default (`throttleRetryAfterSec`). */
    readonly retryAfterMs?: number,
  ) {
    super("TooManyRequestsException", 429, "Rate Exceeded.", { Reason: reason });
  }
}

export function throttled(reason: string, retryAfterMs?: number): LambdaApiError {
  return new ThrottleError(reason, retryAfterMs);
}

/** `Retry-After` is in whole seconds; a hint below one second still says 1, never 0 (a busy loop). */
function retryAfterSeconds(error: LambdaApiError, fallbackSec: number): number {
  if (error instanceof ThrottleError && error.retryAfterMs !== undefined) {
    return Math.max(1, Math.ceil(error.retryAfterMs / 1000));
  }
  return fallbackSec;
}

export const ThrottleReasons = {
  concurrentInvocationLimitExceeded: "ConcurrentInvocationLimitExceeded",
  reservedFunctionConcurrentInvocationLimitExceeded:
    "ReservedFunctionConcurrentInvocationLimitExceeded",
} as const;

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Turn anything thrown while serving a request into Lambda's error shape.
 * Errors that are not LambdaApiError are Gust's own faults: logged in full,
 * answered with a ServiceException that reveals nothing of them.
 */
export function renderError(
  error: unknown,
  context: {
    requestId: string;
    logger: Logger;
    retryAfterSec: number;
    method: string;
    path: string;
  },
): ErrorResponse {
  let apiError: LambdaApiError;
  if (error instanceof LambdaApiError) {
    apiError = error;
    if (apiError.statusCode >= 500) {
      context.logger.warn("request failed", {
        requestId: context.requestId,
        method: context.method,
        path: context.path,
        errorType: apiError.errorType,
        error,
      });
    }
  } else {
    context.logger.error("unexpected error while serving a request", {
      requestId: context.requestId,
      method: context.method,
      path: context.path,
      error,
    });
    apiError = LambdaErrors.service("An internal error occurred. Retry the request.");
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-amzn-ErrorType": apiError.errorType,
    "x-amzn-RequestId": context.requestId,
  };
  if (apiError.statusCode === 429) {
    headers["retry-after"] = String(retryAfterSeconds(apiError, context.retryAfterSec));
  }
  const body = JSON.stringify({
    ...apiError.fields,
    Type: apiError.statusCode >= 500 ? "Service" : "User",
    message: apiError.message,
  });
  return { status: apiError.statusCode, headers, body };
}
