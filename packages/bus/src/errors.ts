/**
 * Errors of the bus layer that @gust/protocol has no class for. Both follow
 * the protocol's GustError shape (name, code, retryable), so callers can
 * branch on `code` without importing this package.
 */
import { GustError } from "@gust/protocol";
import type { GustErrorOptions } from "@gust/protocol";

/**
 * A subject, key, bucket or header name that the bus refuses. The same rules
 * apply in memory and on NATS, so a name that works in `gust dev` works in a
 * fleet. A programming error: retrying cannot help.
 */
export class InvalidBusArgumentError extends GustError {
  override name = "InvalidBusArgumentError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "invalid-argument", { ...options, retryable: false });
  }
}

/** A message larger than the server's max_payload (8 MB on a Gust NATS server). */
export class PayloadTooLargeError extends GustError {
  override name = "PayloadTooLargeError";
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, options: GustErrorOptions = {}) {
    super(`message of ${size} bytes exceeds the bus limit of ${limit} bytes`, "payload-too-large", {
      ...options,
      retryable: false,
    });
    this.size = size;
    this.limit = limit;
  }
}

/** The bus, store or queue was closed by its owner. */
export class BusClosedError extends GustError {
  override name = "BusClosedError";
  constructor(message = "the bus is closed", options: GustErrorOptions = {}) {
    super(message, "closed", { ...options, retryable: false });
  }
}

/**
 * Runs synchronous store logic and turns a throw into a rejection, as a
 * remote store would report it.
 */
export function rejectOnThrow<T>(operation: () => T): Promise<T> {
  try {
    return Promise.resolve(operation());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
