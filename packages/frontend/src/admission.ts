/**
 * Admission: may this invocation start now? The seam the fleet-wide adaptive
 * limits (DESIGN.md, "Gossip and shares") will plug into. What sits here for
 * now is the simplest sound policy, counted on this frontend alone: a
 * function with reserved concurrency runs at most that many at once (0 stops
 * it), in a pool of its own; the tenant's other functions share what is left
 * of `maxConcurrency` after every reservation, as in Lambda.
 *
 * Callers must release every ticket they acquire, in a `finally`, so that no
 * failure path leaks a slot.
 */
import { functionKey, type FunctionRecord } from "@gust/protocol";
import type { Tenant } from "@gust/registry";
import { ThrottleReasons } from "./api-errors.js";

export const DEFAULT_TENANT_MAX_CONCURRENCY = 1000;

export interface Ticket {
  readonly kind: "ticket";
  readonly tenantId: string;
  readonly functionKey: string;
  /** Counted in the function's reserved pool rather than the tenant's unreserved one. */
  readonly reserved: boolean;
}

export interface Rejection {
  readonly kind: "rejection";
  /** Lambda's `Reason` member of TooManyRequestsException. */
  readonly reason: string;
}

export interface Admission {
  tryAcquire(tenant: Tenant, fn: FunctionRecord): Ticket | Rejection;
  /** Idempotent: releasing a ticket twice frees one slot. */
  release(ticket: Ticket): void;
  /** Invocations of the tenant holding a ticket now. */
  inflight(tenantId: string): number;
}

/** The tenant's reserved concurrency summed over its functions (FunctionRegistry.reservedTotal). */
export type ReservedTotal = (tenantId: string) => number;

function increment(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}

class TenantConcurrencyAdmission implements Admission {
  /** Unreserved invocations per tenant, and reserved ones per function. */
  private readonly unreserved = new Map<string, number>();
  private readonly reserved = new Map<string, number>();
  private readonly inflightByTenant = new Map<string, number>();
  private readonly live = new WeakSet<Ticket>();

  constructor(private readonly reservedTotal: ReservedTotal) {}

  tryAcquire(tenant: Tenant, fn: FunctionRecord): Ticket | Rejection {
    const key = functionKey(fn.tenantId, fn.name);
    const reservation = fn.reservedConcurrency;
    if (reservation !== undefined) {
      if ((this.reserved.get(key) ?? 0) >= reservation) {
        return {
          kind: "rejection",
          reason: ThrottleReasons.reservedFunctionConcurrentInvocationLimitExceeded,
        };
      }
      increment(this.reserved, key, 1);
    } else {
      const limit =
        Number.isInteger(tenant.maxConcurrency) && tenant.maxConcurrency > 0
          ? tenant.maxConcurrency
          : DEFAULT_TENANT_MAX_CONCURRENCY;
      const unreservedLimit = limit - this.reservedTotal(tenant.id);
      if ((this.unreserved.get(tenant.id) ?? 0) >= unreservedLimit) {
        return { kind: "rejection", reason: ThrottleReasons.concurrentInvocationLimitExceeded };
      }
      increment(this.unreserved, tenant.id, 1);
    }
    increment(this.inflightByTenant, tenant.id, 1);
    const ticket: Ticket = Object.freeze({
      kind: "ticket",
      tenantId: tenant.id,
      functionKey: key,
      reserved: reservation !== undefined,
    });
    this.live.add(ticket);
    return ticket;
  }

  release(ticket: Ticket): void {
    if (!this.live.delete(ticket)) return;
    if (ticket.reserved) increment(this.reserved, ticket.functionKey, -1);
    else increment(this.unreserved, ticket.tenantId, -1);
    increment(this.inflightByTenant, ticket.tenantId, -1);
  }

  inflight(tenantId: string): number {
    return this.inflightByTenant.get(tenantId) ?? 0;
  }
}

/** Per-tenant and reserved per-function concurrency, counted on this frontend alone. */
export function createTenantConcurrencyAdmission(
  reservedTotal: ReservedTotal = () => 0,
): Admission {
  return new TenantConcurrencyAdmission(reservedTotal);
}
