/**
 * What an operator sees for one tenant (the admin endpoint, `gust fleet`):
 * the limits, the fleet as this frontend sees it, and every frontend's share,
 * enough to tell why a request was throttled.
 */
import { ShareModes, type Pool, type ShareContext, type ShareMode } from "./pool.js";
import { apportionShares } from "./shares.js";
import type { TenantLimits } from "./tenant-limits.js";

export interface FrontendShare {
  frontendId: string;
  /** This frontend (the one answering). */
  self: boolean;
  /**
   * Its part of the split (loans excluded): as it reported it, or as the
   * split gives it for a peer idle in this pool.
   */
  share: number;
  /** Invocations it holds slots for (its inflight, lent slots in, borrowed ones out). */
  inflight: number;
  /** Smoothed offered load, in concurrent executions. */
  demand: number;
  /** Arrivals in its last gossip interval, throttled ones included. */
  arrivals: number;
}

export interface PoolSnapshot {
  /** "" for the tenant's unreserved pool. */
  functionName: string;
  /** The pool's whole limit: T for the unreserved pool, else the reservation. */
  limit: number;
  /** What this frontend enforces now: its part of the split, less what it lent, plus what it borrowed. */
  share: number;
  inflight: number;
  /** Invocations in flight fleet-wide: this frontend's plus what peers last reported. */
  fleetInflight: number;
  fleetDemand: number;
  borrowed: number;
  lent: number;
  frontends: FrontendShare[];
}

export interface TenantSnapshot {
  tenantId: string;
  /** M: the tenant's maximum concurrency. */
  maxConcurrency: number;
  /** T: the temporary limit on its unreserved pool. */
  temporaryLimit: number;
  /** The floor T never decays below. */
  temporaryLimitFloor: number;
  unreservedConcurrency: number;
  reservedConcurrency: number;
  mode: ShareMode;
  /** Fleet size the conservative share divides by (when not gossiping). */
  fallbackFleetSize: number;
  unreserved: PoolSnapshot;
  /** One per function with reserved concurrency. */
  reserved: PoolSnapshot[];
}

export function poolSnapshot(pool: Pool, context: ShareContext): PoolSnapshot {
  const { entries, selfIndex } = pool.fleet(context);
  const gossiping = context.mode === ShareModes.gossip || context.mode === ShareModes.rejoining;
  const computed = apportionShares(
    pool.limit,
    entries.map((e) => e.demand),
    context.spareWeightFloor,
  );
  const frontends = entries.map((entry, i): FrontendShare => ({
    frontendId: entry.frontendId,
    self: i === selfIndex,
    share: Number.isNaN(entry.share) ? (gossiping ? (computed[i] ?? 0) : 0) : entry.share,
    inflight: entry.inflight,
    demand: entry.demand,
    arrivals: entry.arrivals,
  }));
  return {
    functionName: pool.functionName,
    limit: pool.limit,
    share: pool.share,
    inflight: pool.inflight,
    fleetInflight: entries.reduce((sum, e) => sum + e.inflight, 0),
    fleetDemand: entries.reduce((sum, e) => sum + e.demand, 0),
    borrowed: pool.loans.borrowedTotal,
    lent: pool.loans.lentTotal,
    frontends,
  };
}

export function buildSnapshot(
  limits: TenantLimits,
  unreserved: Pool,
  reserved: readonly Pool[],
  context: ShareContext,
): TenantSnapshot {
  return {
    tenantId: limits.tenantId,
    maxConcurrency: limits.maxConcurrency,
    temporaryLimit: unreserved.limit,
    temporaryLimitFloor: unreserved.temporaryLimit?.bounds.floor ?? 0,
    unreservedConcurrency: limits.unreserved,
    reservedConcurrency: limits.reserved,
    mode: context.mode,
    fallbackFleetSize: context.fallbackFleetSize,
    unreserved: poolSnapshot(unreserved, context),
    reserved: reserved.map((pool) => poolSnapshot(pool, context)),
  };
}
