/**
 * `npm run bench`'s report: Markdown tables (medians of the rounds, ratios
 * to the echo of the same run) and SVG charts of the latency distributions,
 * the serverless-offline run and scale-up.
 */
import type { HandlerName } from "./handlers.js";
import { LatencyHistogram, median } from "./histogram.js";
import type { Generator, LoadResult, LoadWindow } from "./load.js";
import { fmt, fmtInt, fmtSig, markdownTable } from "./markdown.js";
import type { ScaleUpTrial } from "./scale-up.js";
import { timeToRunning } from "./scale-up.js";
import { PALETTE, renderChart, type Panel, type Series } from "./svg-chart.js";

export type TargetId = "echo" | "relay" | "dev" | "fleet" | "frontend" | "sls";

export interface InvokeBenchSettings {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  concurrency: number[];
  targets: TargetId[];
  handlers: HandlerName[];
  generator: Generator;
  generatorCheck: boolean;
  fleetFrontends: number;
  fleetWorkers: number;
  slsWarmupMs: number;
  slsRunMs: number;
  slsRunClients: number;
  coldSamples: number;
  scaleTrials: number;
  scaleN: number;
  scaleSleepMs: number;
}

export interface InvokeBenchData {
  machine: string;
  date: string;
  loadAtStart: string;
  loadAtEnd: string;
  settings: InvokeBenchSettings;
  targetIds: TargetId[];
  targetNames: Partial<Record<TargetId, string>>;
  generatorCheck: Array<{ generator: Generator; concurrency: number; result: LoadResult }>;
  /** Results of each round, by `${handler}@${concurrency}/${target}`. */
  cells: Record<string, LoadResult[]>;
  slsRun?: {
    windows: Array<LoadWindow & { rssMb: number }>;
    rssStartMb: number;
    rssEndMb: number;
    result: LoadResult;
  };
  /** p50 of NATS request/reply on the fleet's server, ms, one per round. */
  natsRoundTripMs?: number[];
  cold?: { preinitialized: number[]; spawned: number[] };
  scale?: ScaleUpTrial[];
}

const HANDLER_TITLES: Record<HandlerName, string> = {
  noop: "no-op handler",
  sleep10: "handler sleeping 10 ms",
};
const COLORS: Record<TargetId, string> = {
  echo: PALETTE[0]!,
  dev: PALETTE[1]!,
  fleet: PALETTE[2]!,
  sls: PALETTE[3]!,
  relay: PALETTE[4]!,
  frontend: PALETTE[5]!,
};

const R = "right" as const;

function cellFigures(runs: LoadResult[]) {
  return {
    p50: median(runs.map((r) => r.p50Ms)),
    p99: median(runs.map((r) => r.p99Ms)),
    rps: median(runs.map((r) => r.throughput)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

function throughputTable(data: InvokeBenchData, handler: HandlerName): string {
  const rows: string[][] = [];
  for (const concurrency of data.settings.concurrency) {
    const base = cellFigures(data.cells[`${handler}@${concurrency}/echo`] ?? []);
    for (const id of data.targetIds) {
      const runs = data.cells[`${handler}@${concurrency}/${id}`] ?? [];
      const cell = cellFigures(runs);
      rows.push([
        String(concurrency),
        data.targetNames[id] ?? id,
        fmt(cell.p50),
        fmt(cell.p99),
        fmtInt(cell.rps),
        fmtSig(cell.p50 / base.p50),
        fmtSig(cell.p99 / base.p99),
        fmt(cell.rps / base.rps, 3),
        `${cell.errors}${runs.length < data.settings.rounds ? ` (${runs.length} rounds)` : ""}`,
      ]);
    }
  }
  return markdownTable(
    [
      "clients",
      "target",
      "p50 ms",
      "p99 ms",
      "req/s",
      "p50 × echo",
      "p99 × echo",
      "req/s ÷ echo",
      "errors",
    ],
    rows,
    ["left", "left", R, R, R, R, R, R, R],
  );
}

/** Percentile curve of the rounds pooled, up to where the sample count still resolves it. */
function percentileCurve(runs: LoadResult[]): Array<[number, number]> {
  const pooled = new LatencyHistogram();
  for (const run of runs) pooled.merge(LatencyHistogram.fromPairs(run.histogram));
  if (pooled.total === 0) return [];
  const maxNines = Math.min(3, Math.log10(pooled.total));
  const points: Array<[number, number]> = [];
  for (let nines = 0; nines <= maxNines + 1e-9; nines += 0.025) {
    const p = 1 - 10 ** -nines;
    points.push([p, pooled.quantile(p)]);
  }
  return points;
}

function latencyChart(data: InvokeBenchData, handler: HandlerName): string {
  const panels: Panel[] = data.settings.concurrency.map((concurrency) => ({
    title: `${concurrency} client${concurrency === 1 ? "" : "s"}`,
    x: { label: "percentile", scale: "nines", min: 0 },
    y: { label: "latency, ms (log)", scale: "log" },
    series: data.targetIds.map((id) => ({
      name: data.targetNames[id] ?? id,
      color: COLORS[id],
      points: percentileCurve(data.cells[`${handler}@${concurrency}/${id}`] ?? []),
    })),
  }));
  return renderChart(
    `Latency distribution, ${HANDLER_TITLES[handler]} (${data.settings.rounds} round${data.settings.rounds === 1 ? "" : "s"} pooled)`,
    panels,
  );
}

function slsChart(run: NonNullable<InvokeBenchData["slsRun"]>): string {
  const at = (window: LoadWindow) => (window.startMs + 5000) / 1000;
  const series = (name: string, points: Array<[number, number]>): Series[] => [
    { name, color: COLORS.sls, points },
  ];
  return renderChart("serverless-offline over one run (5 s windows)", [
    {
      title: "throughput",
      x: { label: "seconds", scale: "linear", min: 0 },
      y: { label: "req/s", scale: "linear", min: 0 },
      series: series(
        "serverless-offline",
        run.windows.map((w) => [at(w), w.throughput]),
      ),
    },
    {
      title: "p99 latency",
      x: { label: "seconds", scale: "linear", min: 0 },
      y: { label: "ms (log)", scale: "log" },
      series: series(
        "serverless-offline",
        run.windows.map((w) => [at(w), w.p99Ms]),
      ),
    },
    {
      title: "resident memory",
      x: { label: "seconds", scale: "linear", min: 0 },
      y: { label: "MB", scale: "linear", min: 0 },
      series: series("serverless-offline", [
        [0, run.rssStartMb],
        ...run.windows.map((w): [number, number] => [at(w), w.rssMb]),
      ]),
    },
  ]);
}

function peakRunning(runs: Array<[number, number]>): number {
  return Math.max(0, ...runningSteps(runs).map(([, running]) => running));
}

/** Executions running at once over time, as steps. */
function runningSteps(runs: Array<[number, number]>): Array<[number, number]> {
  const events: Array<[number, number]> = [];
  for (const [start, end] of runs) events.push([start, 1], [end, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const points: Array<[number, number]> = [[0, 0]];
  let running = 0;
  for (const [at, delta] of events) {
    points.push([at / 1000, running]);
    running += delta;
    points.push([at / 1000, running]);
  }
  return points;
}

function scaleChart(trials: ScaleUpTrial[], n: number): string {
  return renderChart(`Scale-up: ${n} invocations of a new function sent at once (gust dev)`, [
    {
      title: "executions running at once",
      x: { label: "seconds after sending", scale: "linear", min: 0 },
      y: { label: "running", scale: "linear", min: 0 },
      series: trials.map((trial, index) => ({
        name: `trial ${index + 1}`,
        color: PALETTE[(index + 1) % PALETTE.length]!,
        points: runningSteps(trial.runs),
      })),
    },
  ]);
}

/** Over the trials that got there: how many did, the median and the slowest. */
function reached(values: number[], trials: number): [string, string, string] {
  const done = values.filter((value) => Number.isFinite(value));
  return [
    `${done.length}/${trials}`,
    fmtInt(median(done)),
    done.length > 0 ? fmtInt(Math.max(...done)) : "–",
  ];
}

function scaleTable(trials: ScaleUpTrial[], n: number): string {
  const counts = [50, 100, 200, n].filter(
    (count, i, all) => count <= n && all.indexOf(count) === i,
  );
  const rows = counts.map((count) => [
    String(count),
    ...reached(
      trials.map((trial) => trial.startsMs[count - 1] ?? Number.NaN),
      trials.length,
    ),
    ...reached(
      trials.map((trial) => timeToRunning(trial.runs, count)),
      trials.length,
    ),
  ]);
  return markdownTable(
    [
      "N",
      "trials with N started",
      "median ms",
      "max ms",
      "trials with N at once",
      "median ms",
      "max ms",
    ],
    rows,
    ["left", R, R, R, R, R, R],
  );
}

export function renderInvokeReport(
  data: InvokeBenchData,
  chartFile: (name: string) => string,
): { markdown: string; charts: Record<string, string> } {
  const s = data.settings;
  const charts: Record<string, string> = {};
  const lines: string[] = [];
  lines.push(`Machine: ${data.machine}`, "");
  lines.push(
    `Date: ${data.date}; load average (1/5/15 min) ${data.loadAtStart} at the start, ${data.loadAtEnd} at the end.`,
    "",
    `${s.rounds} interleaved round${s.rounds === 1 ? "" : "s"} × ${s.durationMs} ms per cell after ${s.warmupMs} ms of warm-up ` +
      `(serverless-offline: a fresh instance per cell, ${Math.max(s.warmupMs, s.slsWarmupMs)} ms warm-up); ` +
      `closed loop, load from ${s.generator} in its own process, 100-byte JSON body; medians of the rounds.`,
    "",
  );
  if (data.generatorCheck.length > 0) {
    lines.push("Load generators on the echo (no-op), one run each:", "");
    lines.push(
      markdownTable(
        ["generator", "clients", "p50 ms", "p99 ms", "req/s"],
        data.generatorCheck.map(({ generator, concurrency, result }) => [
          generator,
          String(concurrency),
          fmt(result.p50Ms, 3),
          fmt(result.p99Ms, 3),
          fmtInt(result.throughput),
        ]),
        ["left", R, R, R, R],
      ),
      "",
    );
  }
  for (const handler of s.handlers) {
    charts[`latency-${handler}.svg`] = latencyChart(data, handler);
    lines.push(`${HANDLER_TITLES[handler]}:`, "", throughputTable(data, handler), "");
    const failed = Object.entries(data.cells)
      .filter(([key]) => key.startsWith(`${handler}@`))
      .flatMap(([key, runs]) => {
        const byStatus: Record<string, number> = {};
        for (const run of runs) {
          for (const [status, count] of Object.entries(run.errorsByStatus)) {
            byStatus[status] = (byStatus[status] ?? 0) + count;
          }
        }
        const text = Object.entries(byStatus).map(([status, count]) => `${count} × ${status}`);
        return text.length > 0 ? [`${key}: ${text.join(", ")}`] : [];
      });
    if (failed.length > 0) lines.push(`Errors by status: ${failed.join("; ")}.`, "");
    lines.push(
      `![latency, ${HANDLER_TITLES[handler]}](${chartFile(`latency-${handler}.svg`)})`,
      "",
    );
  }
  const rtts = data.natsRoundTripMs ?? [];
  if (rtts.length > 0) {
    const rtt = median(rtts);
    const p50 = (id: TargetId) =>
      median((data.cells[`noop@1/${id}`] ?? []).map((run) => run.p50Ms));
    const added = p50("fleet") - p50("dev");
    lines.push(
      `NATS request/reply on the fleet's nats-server (JS client, two connections, 300 bytes), ` +
        `p50 per round: ${rtts.map((ms) => fmt(ms, 3)).join(", ")} ms; median ${fmt(rtt, 3)} ms. ` +
        (Number.isFinite(added)
          ? `The fleet's no-op p50 at 1 client over dev's: +${fmt(added, 2)} ms, ${fmt(added / rtt, 1)} round trips` +
            (Number.isFinite(p50("frontend"))
              ? `; of which the load balancer ${fmt(p50("fleet") - p50("frontend"), 2)} ms (${fmt((p50("fleet") - p50("frontend")) / rtt, 1)}) and the rest of the fleet, straight at a frontend, ${fmt(p50("frontend") - p50("dev"), 2)} ms (${fmt((p50("frontend") - p50("dev")) / rtt, 1)}).`
              : ".")
          : ""),
      "",
    );
  }
  if (data.slsRun) {
    const run = data.slsRun;
    const first = run.windows[0];
    const last = run.windows[run.windows.length - 1];
    charts["sls-run.svg"] = slsChart(run);
    lines.push(
      `serverless-offline over one ${Math.round(s.slsRunMs / 1000)} s run, no-op, ${s.slsRunClients} clients: ` +
        `${fmtInt(run.result.requests)} invocations; ${fmtInt(first?.throughput ?? Number.NaN)} req/s in the first 5 s, ` +
        `${fmtInt(last?.throughput ?? Number.NaN)} in the last; p99 ${fmt(first?.p99Ms ?? Number.NaN)} → ${fmt(last?.p99Ms ?? Number.NaN)} ms; ` +
        `RSS ${fmtInt(run.rssStartMb)} MB after start, ${fmtInt(run.rssEndMb)} MB at the end.`,
      "",
      `req/s per 5 s window: ${run.windows.map((w) => fmtInt(w.throughput)).join(", ")}.`,
      "",
      `RSS (MB) at the end of each window: ${run.windows.map((w) => fmtInt(w.rssMb)).join(", ")}.`,
      "",
      `![serverless-offline over one run](${chartFile("sls-run.svg")})`,
      "",
    );
  }
  if (data.cold) {
    const { preinitialized, spawned } = data.cold;
    lines.push(
      markdownTable(
        ["first invocation of a new function", "samples", "median ms", "min ms", "max ms"],
        [
          ["pre-initialized sandbox (pool)", preinitialized],
          ["spawned sandbox (no pool)", spawned],
        ].map(([name, samples]) => [
          name as string,
          String((samples as number[]).length),
          fmt(median(samples as number[])),
          fmt(Math.min(...(samples as number[]))),
          fmt(Math.max(...(samples as number[]))),
        ]),
        ["left", R, R, R, R],
      ),
      "",
      `Spawned ÷ pre-initialized (medians): ${fmt(median(spawned) / median(preinitialized))}.`,
      "",
    );
  }
  if (data.scale && data.scale.length > 0) {
    const trials = data.scale;
    charts["scale-up.svg"] = scaleChart(trials, s.scaleN);
    const errors = trials.reduce((sum, trial) => sum + trial.errors.length, 0);
    lines.push(
      `Scale-up, ${trials.length} trial${trials.length === 1 ? "" : "s"}: ${s.scaleN} invocations of a new function sent at once to a fresh ` +
        `dev process (pool of 2), the handler sleeping ${s.scaleSleepMs} ms; ${errors} failed; ` +
        `last answer after ${fmtInt(median(trials.map((t) => t.lastAnswerMs)))} ms (median).`,
      "",
      scaleTable(trials, s.scaleN),
      "",
      `Most running at once, per trial: ${trials.map((t) => peakRunning(t.runs)).join(", ")}.`,
      ...trials.flatMap((trial, index) =>
        trial.errors.length === 0
          ? []
          : [
              `Trial ${index + 1}: ${trial.errors.length} of ${s.scaleN} failed, e.g. \`${trial.errors[0]}\`.`,
            ],
      ),
      "",
      `![scale-up](${chartFile("scale-up.svg")})`,
      "",
    );
  }
  return { markdown: lines.join("\n").trimEnd(), charts };
}
