/**
 * The errors a Node.js handler's callers see, named and shaped as Lambda's
 * Node runtime names and shapes them, so clients that switch on `errorType`
 * keep working. The bootstrap runs without any @gust/* package (the sandbox
 * can read only its own directory), so these are plain Error subclasses.
 */
import type { LambdaErrorBody } from "./runtime-api.mjs";

export const RuntimeErrorTypes = {
  importModule: "Runtime.ImportModuleError",
  handlerNotFound: "Runtime.HandlerNotFound",
  userCodeSyntax: "Runtime.UserCodeSyntaxError",
  malformedHandlerName: "Runtime.MalformedHandlerName",
  callbackHandlerDeprecated: "Runtime.CallbackHandlerDeprecated",
  unhandledPromiseRejection: "Runtime.UnhandledPromiseRejection",
  marshal: "Runtime.MarshalError",
  unmarshal: "Runtime.UnmarshalError",
} as const;

/** An error the runtime raises on the user's behalf; `name` is the Lambda error type. */
export class RuntimeError extends Error {
  constructor(errorType: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = errorType;
    // Show where the user's code failed, not where the runtime wrapped it.
    const frames = frameLines(options.cause);
    if (frames.length > 0) this.stack = [`${errorType}: ${message}`, ...frames].join("\n");
  }
}

function frameLines(error: unknown): string[] {
  if (!(error instanceof Error) || typeof error.stack !== "string") return [];
  return error.stack.split("\n").filter((line) => /^\s+at /.test(line));
}

function describeThrown(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    try {
      const json = JSON.stringify(value);
      if (json !== undefined) return json;
    } catch {
      // Circular or throwing toJSON: fall through to String().
    }
  }
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function isErrorLike(value: unknown): value is Error {
  return (
    value instanceof Error ||
    (value !== null &&
      typeof value === "object" &&
      typeof (value as Error).message === "string" &&
      "stack" in value)
  );
}

/**
 * Serializes what a handler threw or passed to its callback as Lambda does:
 * an Error gives its name, message and stack lines; anything else gives its
 * JavaScript type as errorType (`throw "oops"` → "string").
 */
export function toLambdaError(value: unknown): LambdaErrorBody {
  try {
    if (isErrorLike(value)) {
      const errorType = typeof value.name === "string" && value.name !== "" ? value.name : "Error";
      return {
        errorType,
        errorMessage: value.message,
        trace: typeof value.stack === "string" ? value.stack.split("\n") : [],
      };
    }
    return {
      errorType: value === null ? "null" : typeof value,
      errorMessage: describeThrown(value),
      trace: [],
    };
  } catch {
    // A getter on the error threw; say so rather than crash the runtime.
    return {
      errorType: "handled",
      errorMessage:
        "the handler failed with an error whose name, message or stack could not be read",
      trace: [],
    };
  }
}

/** Lambda's wrapper for a rejection nobody handled, carrying the reason's text and frames. */
export function unhandledRejection(reason: unknown): RuntimeError {
  const message = isErrorLike(reason)
    ? `${reason.name}: ${reason.message}`
    : describeThrown(reason);
  return new RuntimeError(RuntimeErrorTypes.unhandledPromiseRejection, message, { cause: reason });
}
