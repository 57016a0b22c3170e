/**
 * The tenants a frontend knows and their pools: one unreserved pool per
 * tenant (limit: its temporary limit) and one per function with reserved
 * concurrency (limit: the reservation), indexed by pool key for gossip.
 */
import type { AdmissionPolicy } from "./policy.js";
import { Pool } from "./pool.js";
import { TenantLimits } from "./tenant-limits.js";

export interface TenantState {
  limits: TenantLimits;
  unreserved: Pool;
  reserved: Map<string, Pool>;
}

export class TenantPools {
  /** Every pool, by poolKey. */
  readonly byKey = new Map<string, Pool>();
  private readonly tenants = new Map<string, TenantState>();

  constructor(private readonly policy: AdmissionPolicy) {}

  get(tenantId: string): TenantState | undefined {
    return this.tenants.get(tenantId);
  }

  /** Create a tenant with maximum `max`; it must not exist yet. */
  create(tenantId: string, max: number): TenantState {
    const limits = new TenantLimits(tenantId, max, this.policy.minUnreserved);
    const unreserved = new Pool(tenantId, "", this.policy, limits.unreserved);
    const tenant = { limits, unreserved, reserved: new Map<string, Pool>() };
    this.tenants.set(tenantId, tenant);
    this.byKey.set(unreserved.key, unreserved);
    return tenant;
  }

  /** The pool an invocation of `functionName` runs in. */
  poolFor(tenant: TenantState, functionName: string): Pool {
    return tenant.reserved.get(functionName) ?? tenant.unreserved;
  }

  /** Forget a tenant; returns the pools it had. */
  remove(tenantId: string): Pool[] {
    const tenant = this.tenants.get(tenantId);
    if (!tenant) return [];
    this.tenants.delete(tenantId);
    const pools = [tenant.unreserved, ...tenant.reserved.values()];
    for (const pool of pools) this.byKey.delete(pool.key);
    return pools;
  }

  /**
   * Apply a reservation already accepted by the tenant's limits. A removed
   * reservation's invocations in flight move to the shared pool, where they
   * end; returns the pool that went away, if one did.
   */
  reserve(
    tenant: TenantState,
    functionName: string,
    reserved: number | undefined,
  ): Pool | undefined {
    const existing = tenant.reserved.get(functionName);
    if (reserved === undefined) {
      if (!existing) return undefined;
      tenant.reserved.delete(functionName);
      this.byKey.delete(existing.key);
      existing.mergedInto = tenant.unreserved;
      tenant.unreserved.inflight += existing.inflight;
      existing.inflight = 0;
      return existing;
    }
    if (existing) {
      existing.reservation = reserved;
    } else {
      const pool = new Pool(tenant.limits.tenantId, functionName, this.policy, reserved);
      tenant.reserved.set(functionName, pool);
      this.byKey.set(pool.key, pool);
    }
    return undefined;
  }
}
