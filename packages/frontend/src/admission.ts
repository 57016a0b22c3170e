/**
 * Admission: may this invocation start now? The seam between the invocation
 * path and the concurrency policy. The frontend's own implementation is
 * FleetAdmission (admission-fleet.ts), backed by @gust/admission's
 * controller: per tenant a temporary limit, Lambda's reserved concurrency,
 * and this frontend's share of both, kept by gossip with its peers. Tests may
 * inject another.
 *
 * Deciding is synchronous and O(1). The one wait on this path is for a loan
 * of slots from a peer (one round trip, on the rare path where this
 * frontend's share is used up while the fleet has room): `acquire` then
 * retries until the loan arrives or `loanWaitMs` has passed. Nothing holds a
 * slot across that wait. Callers must release every ticket they acquire, in
 * a `finally`, so that no failure path leaks a slot.
 */
import type { AdmissionSlot, FunctionRecord } from "@gust/protocol";
import type { Tenant } from "@gust/registry";

/**
 * Proof of admission. `share` and `temporaryLimit`, when the admission knows
 * them, show on the invocation's span (gust.admission.share,
 * gust.admission.temporary_limit).
 */
export interface Ticket {
  readonly kind: "ticket";
  readonly tenantId: string;
  /** The bound this frontend enforced for the function's pool. */
  readonly share?: number;
  /** The tenant's temporary limit T. */
  readonly temporaryLimit?: number;
  /**
   * The slot as workers count it (InvokeRequest.admission), when peers may
   * need to ask what this frontend left running (WorkerCensus).
   */
  readonly slot?: AdmissionSlot;
}

export interface Rejection {
  readonly kind: "rejection";
  /** Lambda's `Reason` member of TooManyRequestsException. */
  readonly reason: string;
  /** When a retry may succeed; a hint for `Retry-After`. */
  readonly retryAfterMs?: number;
  /**
   * A loan of slots from a peer is on its way: retry (`retryAcquire`) after
   * retryAfterMs before answering 429.
   */
  readonly borrowing?: boolean;
  readonly share?: number;
  readonly temporaryLimit?: number;
}

export interface Admission {
  /** Decide at once; never waits. */
  tryAcquire(tenant: Tenant, fn: FunctionRecord): Ticket | Rejection;
  /**
   * Decide again for a rejection with `borrowing` set, without counting a
   * new arrival. Absent: rejections are final.
   */
  retryAcquire?(rejection: Rejection): Ticket | Rejection;
  /** The longest an invocation waits for a loan before it is throttled. @default 0 */
  readonly loanWaitMs?: number;
  /** Idempotent: releasing a ticket twice frees one slot. */
  release(ticket: Ticket): void;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Admit, waiting for a loan when the admission says one is on its way. The
 * wait is bounded by `loanWaitMs` (the loan timeout of the admission
 * policy): past it, the last rejection stands.
 */
export async function acquire(
  admission: Admission,
  tenant: Tenant,
  fn: FunctionRecord,
): Promise<Ticket | Rejection> {
  let decision = admission.tryAcquire(tenant, fn);
  if (decision.kind === "ticket" || decision.borrowing !== true) return decision;
  const retry = admission.retryAcquire?.bind(admission);
  if (retry === undefined) return decision;
  const deadline = performance.now() + (admission.loanWaitMs ?? 0);
  while (decision.kind === "rejection" && decision.borrowing === true) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    await pause(Math.max(1, Math.min(left, decision.retryAfterMs ?? 1)));
    decision = retry(decision);
  }
  return decision;
}
