/**
 * A tenant's temporary limit T: the concurrency the fleet lets the tenant use
 * now, somewhere between a floor and the tenant's maximum M (less what its
 * functions reserve). It exists so that a sudden burst cannot take the whole
 * maximum at once (DESIGN.md, "Gossip and shares").
 *
 * T aims at fleet demand × (1 + headroom). Above T, the aim rises T at a
 * bounded rate: a budget of slots refills at riseStep per riseInterval and
 * holds at most one step, which is Lambda's scaling rule (+1,000 concurrent
 * executions per 10 s) — a tenant idle for a while may jump one full step at
 * once, a tenant pressing for a long time climbs one step per interval. Below
 * T for decayDelay, T falls towards the aim by at most decayFraction of
 * itself per decayInterval, so a short lull does not cost a tenant the
 * capacity it earned.
 *
 * Every frontend computes T from the same gossiped demand, so their values
 * agree up to gossip delay; nothing here needs a coordinator.
 */
import type { AdmissionPolicy } from "./policy.js";

export class TemporaryLimit {
  private limit: number;
  private floor: number;
  private ceiling: number;
  private budget = 0;
  private lastUpdateAt: number | undefined;
  private lowSince: number | undefined;

  constructor(
    private readonly policy: AdmissionPolicy,
    ceiling: number,
  ) {
    this.ceiling = Math.max(0, ceiling);
    this.floor = Math.min(policy.minLimit, this.ceiling);
    this.limit = clamp(policy.initialLimit, this.floor, this.ceiling);
  }

  /** The limit now. Shares are apportioned from its integer part. */
  get value(): number {
    return this.limit;
  }

  get bounds(): { floor: number; ceiling: number } {
    return { floor: this.floor, ceiling: this.ceiling };
  }

  /** The tenant's maximum (or what reservations leave of it) changed. */
  setCeiling(ceiling: number): void {
    this.ceiling = Math.max(0, ceiling);
    this.floor = Math.min(this.policy.minLimit, this.ceiling);
    this.limit = clamp(this.limit, this.floor, this.ceiling);
  }

  /** The level T aims at for this fleet demand (in concurrent executions). */
  aim(fleetDemand: number): number {
    const wanted = Math.ceil(Math.max(0, fleetDemand) * (1 + this.policy.limitHeadroom));
    return clamp(wanted, this.floor, this.ceiling);
  }

  /** Move T for the demand the fleet reports now; returns the new T. */
  update(now: number, fleetDemand: number): number {
    const dt = this.lastUpdateAt === undefined ? 0 : Math.max(0, now - this.lastUpdateAt);
    this.lastUpdateAt = now;
    const { riseStep, riseIntervalMs, decayDelayMs, decayFraction, decayIntervalMs } = this.policy;
    this.budget = Math.min(riseStep, this.budget + (riseStep * dt) / riseIntervalMs);

    const aim = this.aim(fleetDemand);
    if (aim > this.limit) {
      this.lowSince = undefined;
      const rise = Math.min(aim - this.limit, Math.floor(this.budget));
      this.limit += rise;
      this.budget -= rise;
    } else if (aim < this.limit) {
      this.lowSince ??= now;
      if (now - this.lowSince >= decayDelayMs) {
        const fall = Math.min(
          this.limit - aim,
          (this.limit * decayFraction * dt) / decayIntervalMs,
        );
        this.limit -= fall;
      }
    } else {
      this.lowSince = undefined;
    }
    this.limit = clamp(this.limit, this.floor, this.ceiling);
    return this.limit;
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
