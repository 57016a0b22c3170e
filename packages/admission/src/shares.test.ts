import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bestPartition, erlangB } from "./sim/erlang.js";
import { apportionShares, idealShares } from "./shares.js";

const demand = fc.oneof(fc.double({ min: 0, max: 5000, noNaN: true }), fc.constant(0));
const demands = fc.array(demand, { minLength: 1, maxLength: 12 });
const limit = fc.integer({ min: 0, max: 100_000 });

describe("apportionShares", () => {
  it("hands out the square-root split that matches Erlang's best fixed partition", () => {
    // 80/15/5 of 900 Erlangs over 1,000 slots (the reference setup).
    expect(apportionShares(1000, [720, 135, 45], 1)).toEqual([779, 161, 60]);
    expect(bestPartition(1000, [720, 135, 45]).partition).toEqual([779, 161, 60]);
    // At M = 100 rounding lands one slot off the optimum, at the same loss to 0.01 points.
    const loads = [72, 13.5, 4.5];
    const split = apportionShares(100, loads, 1);
    const lost = (partition: number[]) =>
      partition.reduce((sum, c, i) => sum + loads[i]! * erlangB(c, loads[i]!), 0) / 90;
    expect(lost(split)).toBeLessThan(bestPartition(100, loads).throttled + 0.0001);
  });

  it("splits in proportion to demand when demand exceeds the limit", () => {
    expect(apportionShares(100, [300, 100, 100], 1)).toEqual([60, 20, 20]);
  });

  it("gives idle frontends a little of the spare, so a new burst is admitted at once", () => {
    const [busy, idle] = apportionShares(1000, [400, 0], 1);
    expect(idle).toBeGreaterThan(0);
    expect(busy! + idle!).toBe(1000);
    // With nobody busy, the limit is split evenly.
    expect(apportionShares(90, [0, 0, 0], 1)).toEqual([30, 30, 30]);
  });

  it("treats nonsense demands as none", () => {
    expect(apportionShares(10, [Number.NaN, -5, Number.POSITIVE_INFINITY], 1)).toEqual([4, 3, 3]);
    expect(apportionShares(Number.NaN, [1, 2], 1)).toEqual([0, 0]);
    expect(apportionShares(10, [], 1)).toEqual([]);
  });

  it("property: shares are whole, non-negative and sum to floor(limit)", () => {
    fc.assert(
      fc.property(limit, demands, fc.double({ min: 0.01, max: 10, noNaN: true }), (t, d, floor) => {
        const shares = apportionShares(t, d, floor);
        expect(shares).toHaveLength(d.length);
        for (const s of shares) {
          expect(Number.isInteger(s)).toBe(true);
          expect(s).toBeGreaterThanOrEqual(0);
        }
        expect(shares.reduce((a, b) => a + b, 0)).toBe(Math.floor(t));
      }),
      { numRuns: 500 },
    );
  });

  it("property: when demand fits, every frontend gets at least its demand", () => {
    fc.assert(
      fc.property(limit, demands, (t, d) => {
        fc.pre(d.reduce((a, b) => a + b, 0) <= t);
        const shares = apportionShares(t, d, 1);
        d.forEach((x, i) => expect(shares[i]).toBeGreaterThanOrEqual(Math.floor(x)));
      }),
      { numRuns: 300 },
    );
  });

  it("property: more demand never means a smaller share, the others' demand fixed", () => {
    fc.assert(
      fc.property(limit, demands, fc.double({ min: 0, max: 1000, noNaN: true }), (t, d, more) => {
        const before = idealShares(t, d, 1)[0]!;
        const after = idealShares(t, [d[0]! + more, ...d.slice(1)], 1)[0]!;
        expect(after).toBeGreaterThanOrEqual(before - 1e-9);
      }),
      { numRuns: 300 },
    );
  });
});
