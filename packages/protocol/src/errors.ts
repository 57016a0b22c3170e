/**
 * Gust's error classes. Each sets `name`, takes `{ cause }`, carries a stable
 * `code`, and says whether retrying can help. Across process boundaries errors
 * travel as SerializedError and are rebuilt by name.
 */
export interface SerializedError {
  name: string;
  message: string;
  code: string;
  retryable: boolean;
  stack?: string;
  /** Lambda error type and HTTP status, for LambdaApiError. */
  errorType?: string;
  statusCode?: number;
  fields?: Record<string, string>;
}

export interface GustErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

export class GustError extends Error {
  override name = "GustError";
  readonly code: string;
  readonly retryable: boolean;
  constructor(message: string, code = "internal", options: GustErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Bytes that do not decode as the expected message. Never retryable. */
export class DecodeError extends GustError {
  override name = "DecodeError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "decode", { ...options, retryable: false });
  }
}

/** A worker has no room for another sandbox; the caller may try another worker. */
export class CapacityError extends GustError {
  override name = "CapacityError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "capacity", { ...options, retryable: true });
  }
}

/** A request on the bus got no reply in time. */
export class BusTimeoutError extends GustError {
  override name = "BusTimeoutError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "timeout", { ...options, retryable: true });
  }
}

/** Nobody listens on the subject a request was sent to. */
export class NoRespondersError extends GustError {
  override name = "NoRespondersError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "no-responders", { ...options, retryable: true });
  }
}

/** A compare-and-set write lost, or a create found the key taken. */
export class ConflictError extends GustError {
  override name = "ConflictError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "conflict", { ...options, retryable: true });
  }
}

/** Bad operator configuration (config file, options). Names what is wrong. */
export class ConfigError extends GustError {
  override name = "ConfigError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "config", { ...options, retryable: false });
  }
}

/**
 * An error a Lambda client sees: `errorType` goes into `x-amzn-ErrorType` and
 * the body's `Type`/`__type`; `fields` adds members such as `Reason`.
 */
export class LambdaApiError extends GustError {
  override name = "LambdaApiError";
  readonly errorType: string;
  readonly statusCode: number;
  readonly fields: Record<string, string>;
  constructor(
    errorType: string,
    statusCode: number,
    message: string,
    fields: Record<string, string> = {},
    options: GustErrorOptions = {},
  ) {
    super(message, errorType, { ...options, retryable: statusCode === 429 || statusCode >= 500 });
    this.errorType = errorType;
    this.statusCode = statusCode;
    this.fields = fields;
  }
}

/** Constructors for the Lambda errors Gust returns, with Lambda's status codes. */
export const LambdaErrors = {
  notFound: (message: string) => new LambdaApiError("ResourceNotFoundException", 404, message),
  conflict: (message: string) => new LambdaApiError("ResourceConflictException", 409, message),
  invalidParameter: (message: string) =>
    new LambdaApiError("InvalidParameterValueException", 400, message),
  invalidRequestContent: (message: string) =>
    new LambdaApiError("InvalidRequestContentException", 400, message),
  requestTooLarge: (message: string) =>
    new LambdaApiError("RequestTooLargeException", 413, message),
  tooManyRequests: (message: string, reason: string) =>
    new LambdaApiError("TooManyRequestsException", 429, message, { Reason: reason }),
  codeStorageExceeded: (message: string) =>
    new LambdaApiError("CodeStorageExceededException", 400, message),
  service: (message: string) => new LambdaApiError("ServiceException", 500, message),
  accessDenied: (message: string) => new LambdaApiError("AccessDeniedException", 403, message),
  invalidSignature: (message: string) =>
    new LambdaApiError("InvalidSignatureException", 403, message),
  unrecognizedClient: (message: string) =>
    new LambdaApiError("UnrecognizedClientException", 403, message),
} as const;

export function serializeError(error: unknown): SerializedError {
  if (error instanceof LambdaApiError) {
    return {
      name: error.name,
      message: error.message,
      code: error.code,
      retryable: error.retryable,
      errorType: error.errorType,
      statusCode: error.statusCode,
      fields: error.fields,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  if (error instanceof GustError) {
    return {
      name: error.name,
      message: error.message,
      code: error.code,
      retryable: error.retryable,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      code: "internal",
      retryable: false,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { name: "Error", message: String(error), code: "internal", retryable: false };
}

const REBUILDERS: Record<string, (s: SerializedError) => GustError> = {
  DecodeError: (s) => new DecodeError(s.message),
  CapacityError: (s) => new CapacityError(s.message),
  BusTimeoutError: (s) => new BusTimeoutError(s.message),
  NoRespondersError: (s) => new NoRespondersError(s.message),
  ConflictError: (s) => new ConflictError(s.message),
  ConfigError: (s) => new ConfigError(s.message),
  LambdaApiError: (s) =>
    new LambdaApiError(
      s.errorType ?? "ServiceException",
      s.statusCode ?? 500,
      s.message,
      s.fields ?? {},
    ),
};

/** Rebuild the class a peer serialized; unknown names become a GustError. */
export function rebuildError(serialized: SerializedError): GustError {
  const rebuild = REBUILDERS[serialized.name];
  const error = rebuild
    ? rebuild(serialized)
    : new GustError(serialized.message, serialized.code, { retryable: serialized.retryable });
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  return error;
}
