/**
 * What the simulator measures, and how the figures are derived from the run.
 *
 * - throttled:   requests turned away, of all requests after warm-up.
 * - false vs T:  turned away while the whole fleet ran fewer than T of the
 *                tenant's invocations (T as the throttling frontend saw it):
 *                capacity was there, the split put it elsewhere.
 * - false vs M:  the same against the tenant's maximum M.
 * - peak over T / M: the most the fleet ever ran above T (the largest T any
 *                live frontend held) or above M; ≤ 0 means never above.
 * - converged:   after a shift (or a crash), how long until every live
 *                frontend's share (its part of the split, before loans) is
 *                within 5% of M of the split the true demand calls for, and
 *                stays there.
 */

export interface Sample {
  t: number;
  /** The largest T any live frontend holds for the focus tenant. */
  limit: number;
  max: number;
  fleetInflight: number;
  /** Per frontend: share after loans (NaN when dead or not applicable). */
  shares: number[];
  /** Per frontend: part of the split before loans. */
  baseShares: number[];
  /** Per frontend: what the true demand calls for. */
  targets: number[];
  /** Per frontend: invocations admitted through it and still running. */
  inflight: number[];
  /** Per frontend: its demand estimate (what it gossips). */
  demands: number[];
}

export interface Figures {
  requests: number;
  throttled: number;
  falseVsT: number;
  falseVsM: number;
  peakFleetInflight: number;
  peakOverT: number;
  peakOverM: number;
  /** ms from the shift until shares stayed within 5% of M of target; null: never; undefined: no shift. */
  convergeAfterShiftMs?: number | null;
  /** ms from a crash until survivors' shares stayed within 5% of M of target. */
  recoverAfterCrashMs?: number | null;
  /** ms from the crash until every survivor had dropped the crashed frontend. */
  expiryAfterCrashMs?: number | null;
  gossipReports: number;
  gossipBytesPerReport: number;
  /** Per frontend, on average. */
  gossipBytesPerSecond: number;
  loanMessages: number;
  /** Loan messages' bytes per second, fleet-wide, on the wire. */
  loanBytesPerSecond: number;
  /** Requests admitted after waiting for a loan (a round trip or a few). */
  waitedForLoan: number;
  /** Requests and throttles per frontend, after warm-up. */
  requestsByFrontend: number[];
  throttledByFrontend: number[];
}

export class Counters {
  requests = 0;
  throttled = 0;
  falseVsT = 0;
  falseVsM = 0;
  peakFleetInflight = 0;
  peakOverT = Number.NEGATIVE_INFINITY;
  peakOverM = Number.NEGATIVE_INFINITY;
  gossipReports = 0;
  gossipBytes = 0;
  loanMessages = 0;
  loanBytes = 0;
  waitedForLoan = 0;
  readonly requestsByFrontend: number[];
  readonly throttledByFrontend: number[];

  constructor(frontends: number) {
    this.requestsByFrontend = Array.from({ length: frontends }, () => 0);
    this.throttledByFrontend = Array.from({ length: frontends }, () => 0);
  }
}

/**
 * First time ≥ from after which every sample up to `to` has all live shares
 * within `band` of their targets; null if that never happens.
 */
export function convergence(
  samples: readonly Sample[],
  from: number,
  to: number,
  band: number,
): number | null {
  let settledAt: number | null = null;
  for (const sample of samples) {
    if (sample.t < from || sample.t > to) continue;
    const within = sample.baseShares.every((share, f) => {
      const target = sample.targets[f];
      return (
        Number.isNaN(share) ||
        target === undefined ||
        Number.isNaN(target) ||
        Math.abs(share - target) <= band
      );
    });
    if (!within) settledAt = null;
    else settledAt ??= sample.t;
  }
  return settledAt === null ? null : settledAt - from;
}

export function fraction(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}
