/**
 * What an admission decision hands back to the frontend: a ticket to release
 * when the invocation ends, or a rejection shaped like Lambda's throttle.
 */

/**
 * Lambda's `Reason` member of TooManyRequestsException for concurrency
 * throttles (Lambda API reference, Invoke errors).
 */
export const ThrottleReasons = {
  /** The tenant's unreserved concurrency (its share of the temporary limit here) is used up. */
  concurrentInvocationLimitExceeded: "ConcurrentInvocationLimitExceeded",
  /** The function's reserved concurrency is used up, or is 0. */
  reservedFunctionConcurrentInvocationLimitExceeded:
    "ReservedFunctionConcurrentInvocationLimitExceeded",
} as const;
export type ThrottleReason = (typeof ThrottleReasons)[keyof typeof ThrottleReasons];

/**
 * Proof of admission. Release it exactly once when the invocation ends,
 * whatever the outcome (in a `finally`), or the slot stays taken.
 */
export interface Ticket {
  readonly kind: "ticket";
  readonly tenantId: string;
  readonly functionName: string;
  /** The key of the pool whose slot it holds (reports and worker censuses name pools by it). */
  readonly pool: string;
  /** When it was admitted, on the controller's clock. */
  readonly admittedAt: number;
}

export interface Rejection {
  readonly kind: "rejection";
  readonly tenantId: string;
  readonly functionName: string;
  readonly reason: ThrottleReason;
  /**
   * When a retry may succeed: about when a slot frees or the shares are next
   * recomputed. A hint, never a promise.
   */
  readonly retryAfterMs: number;
  /**
   * A loan of slots from a peer, or a raise of this frontend's share that
   * waits for its peers' acknowledgement (a pool waking from idle), is on its
   * way: call `retryAdmit` after retryAfterMs before answering 429. False:
   * answer now.
   */
  readonly borrowing: boolean;
  /** The bound this frontend enforced (its share), for logs and operators. */
  readonly share: number;
  /** This frontend's invocations of the pool in flight when it said no. */
  readonly inflight: number;
}

export type AdmissionDecision = Ticket | Rejection;

export function isTicket(decision: AdmissionDecision): decision is Ticket {
  return decision.kind === "ticket";
}
