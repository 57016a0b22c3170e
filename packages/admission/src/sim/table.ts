/**
 * The simulator's printed report: one row per strategy, plus the queueing
 * model's figures for the reference setup where they apply.
 */
import { bestPartition, erlangB, staticSplit } from "./erlang.js";
import { fraction, type Figures } from "./metrics.js";
import type { Scenario } from "./scenarios.js";
import type { SimulationResult } from "./simulation.js";

function percent(part: number, whole: number): string {
  return `${(fraction(part, whole) * 100).toFixed(2)}%`;
}

function ms(value: number | null | undefined): string {
  if (value === undefined) return "–";
  if (value === null) return "never";
  return `${Math.round(value)} ms`;
}

function peak(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value > 0 ? `+${value}` : "≤ 0";
}

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((cell, i) => cell.padEnd(widths[i] ?? 0))
    .join("  ")
    .trimEnd();
}

const HEADER = [
  "strategy",
  "requests",
  "throttled",
  "false vs T",
  "false vs M",
  "peak over T",
  "peak over M",
  "converged",
  "gossip B/s",
  "loans/s (B/s)",
];

function row(result: SimulationResult): string[] {
  const f: Figures = result.figures;
  let converged = ms(f.convergeAfterShiftMs);
  if (f.recoverAfterCrashMs !== undefined) {
    converged = `${ms(f.recoverAfterCrashMs)} (expiry ${ms(f.expiryAfterCrashMs)})`;
  }
  return [
    result.strategy,
    String(f.requests),
    percent(f.throttled, f.requests),
    percent(f.falseVsT, f.requests),
    percent(f.falseVsM, f.requests),
    peak(f.peakOverT),
    peak(f.peakOverM),
    converged,
    f.gossipBytesPerSecond > 0
      ? `${Math.round(f.gossipBytesPerSecond)} (${Math.round(f.gossipBytesPerReport)}/rep)`
      : "–",
    f.loanMessages > 0
      ? `${Math.round(f.loanMessages / (result.durationMs / 1000))} (${Math.round(f.loanBytesPerSecond)})`
      : "–",
  ];
}

export function formatResults(scenario: Scenario, results: readonly SimulationResult[]): string {
  const rows = [HEADER, ...results.map(row)];
  const widths = HEADER.map((_h, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const lines = [`${scenario.name}: ${scenario.description}`, ""];
  for (const r of rows) lines.push(`  ${pad(r, widths)}`);
  const model = referenceModel(scenario);
  if (model) lines.push("", `  queueing model: ${model}`);
  return lines.join("\n") + "\n";
}

/**
 * Erlang's figures for a one-tenant, constant-load weighted scenario: static
 * split, central counter, best fixed partition.
 */
export function referenceModel(scenario: Scenario): string | undefined {
  const tenant = scenario.tenants[0];
  const balancer = scenario.balancer;
  if (
    scenario.tenants.length !== 1 ||
    !tenant ||
    tenant.load.length !== 1 ||
    balancer.kind !== "weighted"
  ) {
    return undefined;
  }
  const weights = balancer.phases[0]?.weights ?? [];
  const load = tenant.load[0]?.[1] ?? 0;
  const loads = weights.map((w) => w * load);
  const best = bestPartition(tenant.maxConcurrency, loads);
  return [
    `static ${(staticSplit(tenant.maxConcurrency, loads) * 100).toFixed(2)}%`,
    `central ${(erlangB(tenant.maxConcurrency, load) * 100).toFixed(2)}%`,
    `best fixed partition ${(best.throttled * 100).toFixed(2)}% (${best.partition.join("/")})`,
  ].join(", ");
}
