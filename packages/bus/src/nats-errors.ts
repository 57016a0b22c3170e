/**
 * Turns what nats.js throws into Gust's error classes, so callers see the
 * same errors from NATS as from the in-memory implementations.
 */
import { BusTimeoutError, ConflictError, GustError, NoRespondersError } from "@gust/protocol";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/transport-node";
import { BusClosedError, InvalidBusArgumentError, PayloadTooLargeError } from "./errors.js";

export function toGustError(
  error: unknown,
  context: string,
  payloadSize?: number,
  maxPayload?: number,
): Error {
  if (error instanceof GustError) return error;
  if (error instanceof natsErrors.TimeoutError) {
    return new BusTimeoutError(`${context}: timed out`, { cause: error });
  }
  if (
    error instanceof natsErrors.NoRespondersError ||
    (error instanceof natsErrors.RequestError && error.isNoResponders())
  ) {
    return new NoRespondersError(`${context}: no responders`, { cause: error });
  }
  // nats.js reports a JetStream publish nobody answers (no stream takes the
  // subject, or JetStream is off) under this name, without exporting the class.
  if (error instanceof Error && error.name === "JetStreamNotEnabled") {
    return new NoRespondersError(`${context}: no JetStream stream answers`, { cause: error });
  }
  if (
    error instanceof natsErrors.ClosedConnectionError ||
    error instanceof natsErrors.DrainingConnectionError
  ) {
    return new BusClosedError(`${context}: the NATS connection is closed`, { cause: error });
  }
  if (error instanceof JetStreamApiError && isWrongLastSequence(error.code)) {
    return new ConflictError(`${context}: ${error.message}`, { cause: error });
  }
  const refused = permissionViolation(error);
  if (refused !== undefined) {
    // Only the coordinator creates buckets (nats-permissions.ts): a process
    // that starts first finds one missing and may wait for it, briefly.
    const missingBucket = refused.includes(".STREAM.CREATE.");
    return new GustError(
      `${context}: NATS refused it: this process's role may not use ${refused}` +
        (missingBucket
          ? " (the bucket does not exist yet, and only the coordinator creates it: start the coordinator first)"
          : ""),
      "forbidden",
      { cause: error, retryable: missingBucket },
    );
  }
  if (error instanceof natsErrors.InvalidArgumentError && /max_payload/.test(error.message)) {
    return new PayloadTooLargeError(payloadSize ?? 0, maxPayload ?? 0, { cause: error });
  }
  if (
    error instanceof natsErrors.InvalidSubjectError ||
    error instanceof natsErrors.InvalidArgumentError
  ) {
    return new InvalidBusArgumentError(`${context}: ${error.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new GustError(`${context}: ${message}`, "bus", { cause: error, retryable: true });
}

/** The subject of a permission violation nats.js reports (itself, or as a request's cause). */
function permissionViolation(error: unknown): string | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 3; at = at.cause, depth++) {
    if (at instanceof natsErrors.PermissionViolationError) return at.subject;
    const match = /Permissions Violation for (?:Publish|Subscription) to "([^"]+)"/.exec(
      at.message,
    );
    if (match !== null) return match[1];
  }
  return undefined;
}

function isWrongLastSequence(code: number): boolean {
  return (
    code === JetStreamApiCodes.StreamWrongLastSequence ||
    code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
  );
}

export function isNotFound(error: unknown): boolean {
  if (error instanceof JetStreamApiError) {
    return (
      error.code === JetStreamApiCodes.StreamNotFound ||
      error.code === JetStreamApiCodes.ConsumerNotFound
    );
  }
  return error instanceof Error && /not found/i.test(error.message);
}
