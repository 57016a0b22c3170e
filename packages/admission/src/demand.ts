/**
 * One frontend's estimate of the concurrency a pool (a tenant's unreserved
 * capacity, or one function's reserved concurrency) would use here if nothing
 * were throttled: its offered load in executions.
 *
 * Little's law: concurrency = arrival rate × mean execution time. Arrivals
 * count throttled requests too, so demand that a limit turns away still
 * presses on the limit.
 *
 * Poisson arrivals make a raw 100 ms count far too noisy to split a limit
 * by, and every wobble costs: a share falls at once but rises only after the
 * peers acknowledge it. So the rate is smoothed twice: a fast estimate (time
 * constant `smoothingMs`, 0.25 s by default) that follows shifts, and a
 * settled one (`settledMs`, 2 s) that is used while demand holds steady.
 * When arrivals leave the settled level by more than their Poisson noise can
 * explain, the settled estimate jumps: steady demand gets the long average,
 * a real shift is followed within two ticks (README.md, "Measured").
 *
 * The estimate never falls far below the invocations in flight now (less two
 * standard deviations of their Poisson fluctuation, so that the floor adds
 * no noise), which covers long executions before the first has completed.
 */

/** How far (in standard deviations of its noise) the fast estimate must stray to count as a shift. */
const SHIFT_SIGMAS = 4;

export class DemandMeter {
  /** Arrivals (admitted and throttled) since the last tick. */
  arrivals = 0;
  private durationSumMs = 0;
  private completions = 0;
  private fastRatePerMs = 0;
  private ratePerMs = 0;
  /** Direction (−1, 0, 1) in which the last window strayed beyond its noise. */
  private lastDeviation = 0;
  private meanDurationMs: number;
  private lastTickAt: number | undefined;
  /** The last tick's estimate: what this frontend publishes. */
  demand = 0;
  /** Arrivals counted in the last completed window. */
  lastArrivals = 0;

  constructor(
    private readonly smoothingMs: number,
    private readonly settledMs: number,
    initialDurationMs: number,
  ) {
    this.meanDurationMs = initialDurationMs;
  }

  recordArrival(now: number): void {
    // A new pool's first window starts with its first arrival.
    this.lastTickAt ??= now;
    this.arrivals++;
  }

  recordCompletion(durationMs: number): void {
    if (!(durationMs >= 0) || !Number.isFinite(durationMs)) return;
    this.durationSumMs += durationMs;
    this.completions++;
  }

  /** Close the window that ends now and update the estimate. */
  tick(now: number, inflight: number): number {
    this.lastTickAt ??= now;
    const dt = now - this.lastTickAt;
    if (dt <= 0) return this.demand;
    const alpha = 1 - Math.exp(-dt / this.smoothingMs);
    const windowRate = this.arrivals / dt;
    this.fastRatePerMs += alpha * (windowRate - this.fastRatePerMs);
    this.ratePerMs += (1 - Math.exp(-dt / this.settledMs)) * (windowRate - this.ratePerMs);
    // Two tests for a real shift. A window's count has Poisson noise
    // sqrt(λ·dt), taken at the lower of the two levels so that a drop is seen
    // as soon as a rise; two windows in a row beyond SHIFT_SIGMAS mean the
    // level moved, and the latest window already measures the new level. The
    // fast average straying from the settled one (an exponential average of
    // λ over τ has variance about λ / 2τ) catches slower drifts such as ramps.
    const level = Math.max(Math.min(this.ratePerMs, windowRate), 1 / dt);
    const deviation = (windowRate - this.ratePerMs) / Math.sqrt(level / dt);
    const direction = deviation > SHIFT_SIGMAS ? 1 : deviation < -SHIFT_SIGMAS ? -1 : 0;
    const drift = Math.sqrt(
      Math.max(this.ratePerMs, 1 / this.smoothingMs) / (2 * this.smoothingMs),
    );
    if (direction !== 0 && direction === this.lastDeviation) {
      this.ratePerMs = windowRate;
      this.fastRatePerMs = windowRate;
      this.lastDeviation = 0;
    } else {
      this.lastDeviation = direction;
      if (Math.abs(this.fastRatePerMs - this.ratePerMs) > SHIFT_SIGMAS * drift)
        this.ratePerMs = this.fastRatePerMs;
    }
    if (this.completions > 0) {
      const windowMean = this.durationSumMs / this.completions;
      this.meanDurationMs += alpha * (windowMean - this.meanDurationMs);
    }
    this.lastTickAt = now;
    this.lastArrivals = this.arrivals;
    this.arrivals = 0;
    this.durationSumMs = 0;
    this.completions = 0;
    this.demand = Math.max(
      this.ratePerMs * this.meanDurationMs,
      inflight - 2 * Math.sqrt(inflight),
    );
    return this.demand;
  }

  /** Mean execution time as currently estimated. */
  get durationMs(): number {
    return this.meanDurationMs;
  }
}
