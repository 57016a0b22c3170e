import { describe, expect, it } from "vitest";
import { renderChart } from "./chart.js";
import { bestPartition, erlangB, staticSplit } from "./erlang.js";
import { scenarios } from "./scenarios.js";
import { simulate } from "./simulation.js";
import { formatResults } from "./table.js";

const rate = (f: { throttled: number; requests: number }) => f.throttled / f.requests;

describe("Erlang's formulas", () => {
  it("give the issue's reference figures", () => {
    expect(erlangB(100, 90)).toBeCloseTo(0.027, 3);
    expect(erlangB(1000, 900)).toBeLessThan(0.0001);
    expect(staticSplit(1000, [720, 135, 45])).toBeCloseTo(0.43, 2);
    expect(bestPartition(1000, [720, 135, 45]).throttled).toBeCloseTo(0.0018, 4);
    expect(bestPartition(100, [72, 13.5, 4.5]).throttled).toBeCloseTo(0.059, 3);
  });
});

describe("simulator (small run)", () => {
  // M = 100 over 8 simulated seconds: about 7,000 requests per strategy.
  const scenario = scenarios["reference-100"]!({ durationMs: 8000 });

  it("reproduces the static split and the central counter, and gossip lands between them", () => {
    const figures = Object.fromEntries(
      (["static", "central", "gossip-no-loans", "gossip"] as const).map((s) => [
        s,
        simulate(scenario, s, 7).figures,
      ]),
    );
    expect(rate(figures["static"]!)).toBeGreaterThan(0.38);
    expect(rate(figures["static"]!)).toBeLessThan(0.5);
    expect(rate(figures["central"]!)).toBeLessThan(0.06);
    expect(figures["central"]!.falseVsT).toBe(0);
    expect(rate(figures["gossip-no-loans"]!)).toBeLessThan(0.12);
    expect(rate(figures["gossip"]!)).toBeLessThan(rate(figures["gossip-no-loans"]!));
    for (const f of Object.values(figures)) expect(f.peakOverM).toBeLessThanOrEqual(0);
    expect(figures["gossip"]!.loanMessages).toBeGreaterThan(0);
    expect(formatResults(scenario, [simulate(scenario, "gossip", 7)])).toMatch(/gossip/);
  });

  it("is deterministic for a seed", () => {
    const short = scenarios["shift-1000"]!({ durationMs: 3000 });
    const a = simulate(short, "gossip", 3);
    const b = simulate(short, "gossip", 3);
    expect(a.figures).toEqual(b.figures);
    expect(simulate(short, "gossip", 4).figures.requests).not.toBe(a.figures.requests);
  });

  it("measures convergence after a shift and recovery after a crash", () => {
    const shift = simulate(scenarios["shift-1000"]!({ durationMs: 4000 }), "gossip", 1).figures;
    expect(shift.convergeAfterShiftMs).not.toBeNull();
    expect(shift.convergeAfterShiftMs).toBeLessThan(1500);
    const crash = simulate(
      scenarios["crash-1000"]!({ durationMs: 4000 }),
      "gossip-no-loans",
      1,
    ).figures;
    expect(crash.expiryAfterCrashMs).not.toBeNull();
    expect(crash.recoverAfterCrashMs).not.toBeNull();
  });

  it("draws a chart", () => {
    const result = simulate(scenarios["spike"]!({ durationMs: 3000 }), "gossip", 1);
    const svg = renderChart("spike — gossip", "a & b < c", result.samples);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("a &amp; b &lt; c");
    expect(svg.match(/<path /g)?.length).toBeGreaterThanOrEqual(5);
    expect(renderChart("empty", "", [])).toContain("no samples");
  });
});
