/**
 * Admission: may this invocation start now? The seam the fleet-wide adaptive
 * limits (DESIGN.md, "Gossip and shares") will plug into. What sits here for
 * now is the simplest sound policy: per tenant, at most `maxConcurrency`
 * invocations in flight through this frontend.
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

class TenantConcurrencyAdmission implements Admission {
  private readonly inflightByTenant = new Map<string, number>();
  private readonly live = new WeakSet<Ticket>();

  tryAcquire(tenant: Tenant, fn: FunctionRecord): Ticket | Rejection {
    const limit =
      Number.isInteger(tenant.maxConcurrency) && tenant.maxConcurrency > 0
        ? tenant.maxConcurrency
        : DEFAULT_TENANT_MAX_CONCURRENCY;
    const inflight = this.inflightByTenant.get(tenant.id) ?? 0;
    if (inflight >= limit) {
      return { kind: "rejection", reason: ThrottleReasons.concurrentInvocationLimitExceeded };
    }
    this.inflightByTenant.set(tenant.id, inflight + 1);
    const ticket: Ticket = Object.freeze({
      kind: "ticket",
      tenantId: tenant.id,
      functionKey: functionKey(fn.tenantId, fn.name),
    });
    this.live.add(ticket);
    return ticket;
  }

  release(ticket: Ticket): void {
    if (!this.live.delete(ticket)) return;
    const inflight = (this.inflightByTenant.get(ticket.tenantId) ?? 1) - 1;
    if (inflight <= 0) this.inflightByTenant.delete(ticket.tenantId);
    else this.inflightByTenant.set(ticket.tenantId, inflight);
  }

  inflight(tenantId: string): number {
    return this.inflightByTenant.get(tenantId) ?? 0;
  }
}

/** Per-tenant concurrency counted on this frontend alone. */
export function createTenantConcurrencyAdmission(): Admission {
  return new TenantConcurrencyAdmission();
}
