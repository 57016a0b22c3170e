/**
 * The noisy-neighbour benchmark's results (noisy-neighbour.ts) and their
 * report: a summary of the victim's p99 alone and beside the noisy tenant in
 * each isolation mode, every cell's distribution with the machine's CPU
 * split, and the noisy tenant's own figures.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { CpuUse } from "./cpu-census.js";
import { fmt, fmtInt, fmtSig, markdownTable } from "./markdown.js";
import {
  VICTIM_HANDLER_NAMES,
  type IsolationReport,
  type NoisyKind,
  type VictimHandler,
} from "./noisy-tenants.js";
import { machineLine } from "./proc.js";

export const MODE_NAMES = ["jail", "jail-shared", "no-jail"] as const;
export type ModeName = (typeof MODE_NAMES)[number];

export interface NoisySettings {
  modes: ModeName[];
  kinds: NoisyKind[];
  clients: number;
  spinners: number;
  spinMs: number;
  cellMs: number;
  warmupMs: number;
  /** Flags given to `gust dev` beyond the benchmark's own. */
  devArgs: string[];
  victimMemoryMb: number;
  spinnerMemoryMb: number;
}

export const MODE_LABELS: Record<ModeName, string> = {
  jail: "jailed, Lambda's CPU model (default)",
  "jail-shared": "jailed, --sandbox-cpu=shared",
  "no-jail": "not jailed (--no-jail)",
};

export type PhaseName = "alone" | NoisyKind | "after";

export function phaseLabel(phase: PhaseName, spinners: number): string {
  switch (phase) {
    case "alone":
      return "alone (baseline)";
    case "node":
      return `${spinners} Node.js spinners`;
    case "bash-escape":
      return `${spinners} bash spinners + ${spinners} escaped`;
    case "after":
      return "alone again";
  }
}

function noisyDescription(kind: NoisyKind, spinners: number): string {
  return kind === "node"
    ? `${spinners} Node.js handlers spinning`
    : `${spinners} bash handlers spinning, each with an escaped spinner`;
}

export interface Cell {
  mode: ModeName;
  phase: PhaseName;
  handler: VictimHandler;
  requests: number;
  errors: number;
  errorsByStatus: Record<string, number>;
  throughput: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * p99 over the same handler's baseline in the same mode: the lower p99 of
   * the two cells alone (before and after), so a baseline that was still
   * warming up cannot flatter the ratio.
   */
  p99Ratio: number;
  cpu: CpuUse;
  loadAverage: string;
}

export interface NoisyPhase {
  mode: ModeName;
  kind: NoisyKind;
  invocations: number;
  errors: number;
  firstError?: string;
  /** Mean share of a core each spinning handler got (its CPU time over its wall time). */
  cpuShare: number;
  /** Escaped spinners found in /proc, once a second while the phase's cells ran. */
  escapedSeen: number[];
  /** …of which in a control group under Gust's `gust/` tree. */
  escapedInSandboxGroup: number[];
  /** Escaped spinners still running once the phase's invocations had all returned (+2 s). */
  leftAfter: number;
}

export interface EscapedCounts {
  seen: number[];
  inSandboxGroup: number[];
}

export interface ModeRun {
  mode: ModeName;
  isolation: IsolationReport;
  cells: Cell[];
  noisy: NoisyPhase[];
  /** Processes gust dev had started that still ran 2 s after it stopped. */
  leftBehind: number;
}

function escapedSummary(samples: number[]): string {
  if (samples.length === 0) return "–";
  const mean = samples.reduce((sum, count) => sum + count, 0) / samples.length;
  return `${fmt(mean, 1)} (${Math.min(...samples)}–${Math.max(...samples)})`;
}

function inGroupSummary(phase: NoisyPhase): string {
  const seen = phase.escapedSeen.reduce((sum, count) => sum + count, 0);
  const inGroup = phase.escapedInSandboxGroup.reduce((sum, count) => sum + count, 0);
  return seen === 0 ? "–" : `${fmt((inGroup / seen) * 100, 0)}%`;
}

function describeIsolation(isolation: IsolationReport): string {
  return (
    isolation.level +
    (isolation.cgroupVersion === undefined ? "" : `, cgroup v${isolation.cgroupVersion}`) +
    (isolation.reason === undefined ? "" : ` (${isolation.reason})`)
  );
}

export function commitLine(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" });
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      encoding: "utf8",
    });
    return `${commit.trim()}${dirty.trim() === "" ? "" : " with uncommitted changes in the tree"}`;
  } catch {
    return "unknown";
  }
}

function sysctl(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "?";
  }
}

export interface NoisyRun {
  date: string;
  loadAtStart: string;
  loadAtEnd: string;
  settings: NoisySettings;
  runs: ModeRun[];
}

export function noisyReport({ date, loadAtStart, loadAtEnd, settings, runs }: NoisyRun): string {
  const { clients, spinners, spinMs, cellMs, warmupMs } = settings;
  const find = (mode: ModeName, phase: PhaseName, handler: VictimHandler) =>
    runs
      .flatMap((run) => run.cells)
      .find((cell) => cell.mode === mode && cell.phase === phase && cell.handler === handler);
  const lines = [
    `Machine: ${machineLine()}; sched_autogroup_enabled ${sysctl("/proc/sys/kernel/sched_autogroup_enabled")}.`,
    "",
    `Date: ${date}; Gust at ${commitLine()}; load average (1/5/15 min) ${loadAtStart} at the start, ${loadAtEnd} at the end.`,
    "",
    `Isolation as the worker logged it: ${runs.map((run) => `${MODE_LABELS[run.mode]}: ${describeIsolation(run.isolation)}`).join("; ")}.`,
    "",
    `The victim: ${clients} closed-loop clients (autocannon), ${fmtInt(cellMs / 1000)} s per cell after ${fmtInt(warmupMs)} ms of warm-up. ` +
      `The noisy tenant: ${spinners} handlers spinning ${fmtInt(spinMs)} ms each, re-invoked as soon as they return. ` +
      `MemorySize: victim ${fmtInt(settings.victimMemoryMb)} MB, spinners ${fmtInt(settings.spinnerMemoryMb)} MB.` +
      (settings.devArgs.length === 0 ? "" : ` gust dev given ${settings.devArgs.join(" ")}.`),
    "",
  ];
  const summaryRows: string[][] = [];
  for (const handler of VICTIM_HANDLER_NAMES) {
    for (const kind of settings.kinds) {
      const row = [handler, noisyDescription(kind, spinners)];
      for (const mode of settings.modes) {
        const alone = find(mode, "alone", handler);
        const noisy = find(mode, kind, handler);
        row.push(
          alone && noisy
            ? `${fmt(alone.p99Ms)} → ${fmt(noisy.p99Ms)} (**${fmtSig(noisy.p99Ratio)} ×**)`
            : "–",
        );
      }
      summaryRows.push(row);
    }
    const row = [handler, "none (alone again)"];
    for (const mode of settings.modes) {
      const after = find(mode, "after", handler);
      row.push(after ? `${fmt(after.p99Ms)} (${fmtSig(after.p99Ratio)} ×)` : "–");
    }
    summaryRows.push(row);
  }
  lines.push(
    "Victim p99 alone → with the noisy tenant, ms (× alone; alone is the lower p99 of the cells before and after):",
    "",
    markdownTable(
      ["victim", "noisy tenant", ...settings.modes.map((mode) => MODE_LABELS[mode])],
      summaryRows,
    ),
    "",
  );
  const cellRows = runs.flatMap((run) =>
    run.cells.map((cell) => [
      MODE_LABELS[cell.mode],
      cell.handler,
      phaseLabel(cell.phase, spinners),
      fmtInt(cell.throughput),
      fmt(cell.p50Ms),
      fmt(cell.p90Ms),
      fmt(cell.p99Ms),
      fmt(cell.maxMs),
      fmtSig(cell.p99Ratio),
      String(cell.errors),
      fmt(cell.cpu.machineCores, 2),
      fmt(cell.cpu.otherCores, 2),
    ]),
  );
  lines.push(
    markdownTable(
      [
        "isolation",
        "victim",
        "phase",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "p99 × alone",
        "errors",
        "cores busy",
        "other work",
      ],
      cellRows,
      [
        "left",
        "left",
        "left",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
      ],
    ),
    "",
    `"cores busy": the whole machine's CPU during the cell (of ${runs[0]?.cells[0]?.cpu.cores ?? "?"}); ` +
      `"other work": processes that are not this benchmark's (a lower bound, see bench/src/cpu-census.ts).`,
    "",
  );
  const noisyRows = runs.flatMap((run) =>
    run.noisy.map((phase) => [
      MODE_LABELS[phase.mode],
      phase.kind,
      String(phase.invocations),
      String(phase.errors),
      fmt(phase.cpuShare),
      phase.kind === "bash-escape" ? escapedSummary(phase.escapedSeen) : "",
      phase.kind === "bash-escape" ? inGroupSummary(phase) : "",
      phase.kind === "bash-escape" ? String(phase.leftAfter) : "",
    ]),
  );
  lines.push(
    "The noisy tenant:",
    "",
    markdownTable(
      [
        "isolation",
        "spinner",
        "invocations",
        "errors",
        "core per spinner",
        "escaped spinners running (mean, min–max)",
        "of them in a sandbox's group",
        "left after",
      ],
      noisyRows,
      ["left", "left", "right", "right", "right", "right", "right", "right"],
    ),
    "",
    `"core per spinner": each spinning handler's CPU time over its wall time (the bash handler's own shell, not its escaped spinner); ` +
      `escaped spinners counted in /proc once a second while the phase's cells ran.`,
  );
  for (const run of runs) {
    if (run.leftBehind > 0) {
      lines.push(
        "",
        `${MODE_LABELS[run.mode]}: ${run.leftBehind} of the processes gust dev had started still ran 2 s after it stopped.`,
      );
    }
    for (const phase of run.noisy) {
      if (phase.firstError) {
        lines.push("", `First noisy error (${run.mode}, ${phase.kind}): ${phase.firstError}`);
      }
    }
  }
  return lines.join("\n");
}
