import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveAdmissionPolicy } from "./policy.js";
import { TemporaryLimit } from "./temporary-limit.js";

const policy = resolveAdmissionPolicy({
  initialLimit: 1000,
  minLimit: 100,
  riseStep: 1000,
  riseIntervalMs: 10_000,
  limitHeadroom: 0.25,
  decayDelayMs: 60_000,
  decayFraction: 0.1,
  decayIntervalMs: 10_000,
});

/** Feed a constant fleet demand every `tickMs` for `forMs`; returns the limit afterwards. */
function drive(
  limit: TemporaryLimit,
  from: number,
  forMs: number,
  demand: number,
  tickMs = 100,
): number {
  for (let t = from; t <= from + forMs; t += tickMs) limit.update(t, demand);
  return limit.value;
}

describe("TemporaryLimit", () => {
  it("starts at the initial limit, clamped to the tenant's maximum", () => {
    expect(new TemporaryLimit(policy, 5000).value).toBe(1000);
    expect(new TemporaryLimit(policy, 300).value).toBe(300);
    expect(new TemporaryLimit(policy, 50).bounds).toEqual({ floor: 50, ceiling: 50 });
  });

  it("rises while demand presses, by at most riseStep per riseInterval (Lambda: +1,000 per 10 s)", () => {
    const limit = new TemporaryLimit(policy, 10_000);
    limit.update(0, 0);
    // Demand of 8,000 wants 10,000; the budget refills at 100 per second.
    expect(drive(limit, 100, 9_900, 8000)).toBeCloseTo(2000, -1);
    expect(drive(limit, 10_100, 9_900, 8000)).toBeCloseTo(3000, -1);
    // Idle long enough to refill the budget, a tenant may jump one full step.
    const rested = new TemporaryLimit(policy, 10_000);
    rested.update(0, 800);
    rested.update(30_000, 800);
    expect(rested.update(30_100, 8000)).toBe(2000);
  });

  it("aims at demand plus headroom and never above the maximum", () => {
    const limit = new TemporaryLimit(policy, 10_000);
    limit.update(0, 0);
    expect(drive(limit, 100, 120_000, 2000)).toBe(2500);
    const capped = new TemporaryLimit(policy, 1200);
    capped.update(0, 0);
    expect(drive(capped, 100, 60_000, 5000)).toBe(1200);
  });

  it("holds through a short lull and decays after decayDelay, never below the floor", () => {
    const limit = new TemporaryLimit(policy, 10_000);
    limit.update(0, 0);
    drive(limit, 100, 120_000, 2000);
    expect(limit.value).toBe(2500);
    // 59 s of low load: no decay yet.
    expect(drive(limit, 120_200, 59_000, 10)).toBe(2500);
    // Then at most 10% per 10 s: after another 10 s, about 2,500 × 0.9.
    const after = drive(limit, 179_300, 11_000, 10);
    expect(after).toBeLessThan(2500);
    expect(after).toBeGreaterThan(2200);
    expect(drive(limit, 190_400, 3_600_000, 10, 1000)).toBe(100);
  });

  it("follows a lower maximum at once", () => {
    const limit = new TemporaryLimit(policy, 5000);
    limit.setCeiling(400);
    expect(limit.value).toBe(400);
    limit.setCeiling(50);
    expect(limit.bounds).toEqual({ floor: 50, ceiling: 50 });
  });

  it("property: T stays within [floor, M] and rises no faster than the budget allows", () => {
    const steps = fc.array(
      fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0, max: 50_000, noNaN: true })),
      {
        minLength: 1,
        maxLength: 200,
      },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), steps, (max, sequence) => {
        const limit = new TemporaryLimit(policy, max);
        const { floor, ceiling } = limit.bounds;
        let now = 0;
        limit.update(now, 0);
        let risen = 0;
        for (const [dt, demand] of sequence) {
          now += dt;
          const before = limit.value;
          const after = limit.update(now, demand);
          expect(after).toBeGreaterThanOrEqual(floor);
          expect(after).toBeLessThanOrEqual(ceiling);
          risen += Math.max(0, after - before);
        }
        // The budget starts empty and refills at riseStep per riseInterval.
        expect(risen).toBeLessThanOrEqual((policy.riseStep * now) / policy.riseIntervalMs + 1e-6);
      }),
      { numRuns: 300 },
    );
  });
});
