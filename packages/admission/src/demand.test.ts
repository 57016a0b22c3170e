import { describe, expect, it } from "vitest";
import { DemandMeter } from "./demand.js";
import { Random } from "./sim/random.js";

const TICK = 100;

/** Poisson arrivals at `perSecond` for `ticks` ticks, each completing after `durationMs`. */
function run(
  meter: DemandMeter,
  random: Random,
  from: number,
  ticks: number,
  perSecond: number,
  durationMs = 100,
) {
  const estimates: number[] = [];
  let now = from;
  for (let k = 0; k < ticks; k++) {
    let t = now + random.exponential(perSecond / 1000);
    while (t < now + TICK) {
      meter.recordArrival(t);
      meter.recordCompletion(durationMs);
      t += random.exponential(perSecond / 1000);
    }
    now += TICK;
    estimates.push(meter.tick(now, (perSecond * durationMs) / 1000));
  }
  return { estimates, now };
}

describe("DemandMeter", () => {
  it("estimates offered load as arrival rate × execution time", () => {
    const meter = new DemandMeter(250, 2000, 100);
    const { estimates } = run(meter, new Random(1), 0, 100, 5000, 200);
    // 5,000/s × 0.2 s = 1,000 concurrent executions.
    expect(estimates.at(-1)).toBeGreaterThan(950);
    expect(estimates.at(-1)).toBeLessThan(1050);
  });

  it("holds steady demand steadier than a 250 ms average would", () => {
    const meter = new DemandMeter(250, 2000, 100);
    const { estimates } = run(meter, new Random(2), 0, 300, 7200);
    const settled = estimates.slice(100);
    const mean = settled.reduce((a, b) => a + b, 0) / settled.length;
    const sd = Math.sqrt(settled.reduce((a, b) => a + (b - mean) ** 2, 0) / settled.length);
    expect(mean).toBeGreaterThan(700);
    expect(mean).toBeLessThan(740);
    // An exponential average of 7,200/s Poisson arrivals wobbles by
    // sqrt(λ / 2τ) × 0.1 s: about 12 executions over 250 ms, 4 over 2 s.
    expect(sd).toBeLessThan(6);
  });

  it("follows a real shift within a few ticks, down or up", () => {
    const meter = new DemandMeter(250, 2000, 100);
    const random = new Random(3);
    const before = run(meter, random, 0, 50, 7200);
    const down = run(meter, random, before.now, 4, 450);
    expect(down.estimates.at(-1)).toBeLessThan(60);
    const up = run(meter, random, down.now, 4, 7200);
    expect(up.estimates.at(-1)).toBeGreaterThan(650);
  });

  it("counts invocations in flight before any has completed (long executions)", () => {
    const meter = new DemandMeter(250, 2000, 100);
    for (let t = 0; t < 1000; t += 10) meter.recordArrival(t);
    // 100 arrivals, none finished, 500 running from before this frontend knew the pool.
    expect(meter.tick(1000, 500)).toBeGreaterThan(450);
  });

  it("ignores nonsense durations", () => {
    const meter = new DemandMeter(250, 2000, 100);
    meter.recordArrival(0);
    meter.recordCompletion(Number.NaN);
    meter.recordCompletion(-5);
    meter.tick(100, 0);
    expect(meter.durationMs).toBe(100);
  });
});
