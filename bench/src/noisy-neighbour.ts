/**
 * `npm run bench:noisy`: how much one tenant's spinning handlers slow down
 * another tenant's, with sandboxes jailed (a control group each, equal CPU
 * weight, frozen between invocations) and with jails off (`--no-jail`), in
 * one run.
 *
 * For each isolation mode: `gust dev` as its own process with two tenants.
 * The victim runs a closed loop of BENCH_NOISY_CLIENTS clients (autocannon,
 * in a process of its own) on a no-op handler and, separately, on one that
 * burns 10 ms of CPU, in phases:
 *   1. alone (the baseline);
 *   2. while the noisy tenant keeps BENCH_NOISY_SPINNERS Node.js handlers
 *      busy-looping for BENCH_NOISY_SPIN_MS each, re-invoked as soon as one
 *      returns, so that four always spin;
 *   3. the same with a bash custom runtime whose handler also double-forks a
 *      spinner into a session of its own (`setsid`), escaping the runtime's
 *      process: eight spinning processes, four of them outside the runtime's
 *      tree;
 *   4. alone again, to show the machine recovered.
 * Reports p50, p90, p99 and max per cell and p99 over the baseline's, the
 * noisy tenant's own figures (CPU per spinner, where its escaped spinners
 * ran), and the machine's CPU split between the benchmark and other work,
 * with the load average at the start and end. Markdown to stdout and
 * bench/out/noisy-<date>.md, the data to bench/out/noisy-<date>.json.
 *
 * Options (environment), defaults in parentheses:
 *   BENCH_NOISY_MODES (jail,no-jail)         isolation modes, in this order
 *   BENCH_NOISY_KINDS (node,bash-escape)     noisy phases
 *   BENCH_NOISY_CLIENTS (4)                  the victim's closed-loop clients
 *   BENCH_NOISY_SPINNERS (4)                 the noisy tenant's spinning handlers
 *   BENCH_NOISY_SPIN_MS (5000)               each spinning invocation
 *   BENCH_NOISY_CELL_MS (12000)              each measurement, after…
 *   BENCH_NOISY_WARMUP_MS (1000)             …this much load not counted
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { envChoice, envInteger } from "./config.js";
import { cpuCgroupOf, cpuSnapshot, cpuUseBetween, type CpuUse } from "./cpu-census.js";
import { PAYLOAD, invokePath, type GustEndpoint } from "./handlers.js";
import { LatencyHistogram } from "./histogram.js";
import { closedLoop, type LoadResult } from "./load.js";
import { fmt, fmtInt, fmtSig, markdownTable } from "./markdown.js";
import {
  NOISY_KINDS,
  SPINNER_MARKER,
  VICTIM_HANDLER_NAMES,
  createFunction,
  invokeJson,
  noisyFunction,
  startTwoTenantDev,
  victimFunction,
  type IsolationReport,
  type NoisyKind,
  type TwoTenantDev,
  type VictimHandler,
} from "./noisy-tenants.js";
import { loadLine, machineLine } from "./proc.js";
import { Progress } from "./progress.js";
import { signedHeaders } from "./signing.js";

const MODE_NAMES = ["jail", "no-jail"] as const;
type ModeName = (typeof MODE_NAMES)[number];

const MODES = envChoice("BENCH_NOISY_MODES", MODE_NAMES, MODE_NAMES);
const KINDS = envChoice("BENCH_NOISY_KINDS", NOISY_KINDS, NOISY_KINDS);
const CLIENTS = envInteger("BENCH_NOISY_CLIENTS", 4, 1);
const SPINNERS = envInteger("BENCH_NOISY_SPINNERS", 4, 1);
const SPIN_MS = envInteger("BENCH_NOISY_SPIN_MS", 5000, 100);
const CELL_MS = envInteger("BENCH_NOISY_CELL_MS", 12_000, 1000);
const WARMUP_MS = envInteger("BENCH_NOISY_WARMUP_MS", 1000, 0);
/** Once every lane's first spinning invocation has begun, this long before measuring. */
const SPIN_UP_MS = 1000;

const MODE_LABELS: Record<ModeName, string> = {
  jail: "jailed (control groups)",
  "no-jail": "not jailed (--no-jail)",
};

type PhaseName = "alone" | NoisyKind | "after";
const PHASE_LABELS: Record<PhaseName, string> = {
  alone: "alone (baseline)",
  node: `${SPINNERS} Node.js spinners`,
  "bash-escape": `${SPINNERS} bash spinners + ${SPINNERS} escaped`,
  after: "alone again",
};
const NOISY_DESCRIPTIONS: Record<NoisyKind, string> = {
  node: `${SPINNERS} Node.js handlers spinning`,
  "bash-escape": `${SPINNERS} bash handlers spinning, each with an escaped spinner`,
};

interface Cell {
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
  /** p99 over the same handler's baseline in the same mode. */
  p99Ratio: number;
  cpu: CpuUse;
  loadAverage: string;
}

interface NoisyPhase {
  mode: ModeName;
  kind: NoisyKind;
  invocations: number;
  errors: number;
  firstError?: string;
  /** Mean share of a core each spinning handler got (its CPU time over its wall time). */
  cpuShare: number;
  /** Escaped spinners found in /proc halfway through each cell. */
  escapedSeen: number[];
  /** …of which in a control group under Gust's `gust/` tree. */
  escapedInSandboxGroup: number[];
  /** Escaped spinners still running once the phase's invocations had all returned (+2 s). */
  leftAfter: number;
}

interface EscapedCounts {
  seen: number[];
  inSandboxGroup: number[];
}

interface ModeRun {
  mode: ModeName;
  isolation: IsolationReport;
  cells: Cell[];
  noisy: NoisyPhase[];
}

/** Four lanes, each re-invoking the spinner as soon as it returns, until stopped. */
class SpinningTenant {
  readonly #endpoint: GustEndpoint;
  readonly #name: string;
  #stopped = false;
  #lanes: Array<Promise<void>> = [];
  #started = 0;
  invocations = 0;
  errors = 0;
  firstError: string | undefined;
  readonly #shares: number[] = [];

  constructor(endpoint: GustEndpoint, name: string) {
    this.#endpoint = endpoint;
    this.#name = name;
  }

  /** Resolves once every lane's first invocation has been sent and SPIN_UP_MS has passed. */
  async start(lanes: number): Promise<void> {
    this.#lanes = Array.from({ length: lanes }, () => this.#lane());
    while (this.#started < lanes) await sleep(20);
    await sleep(SPIN_UP_MS);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#lanes);
  }

  get cpuShare(): number {
    if (this.#shares.length === 0) return Number.NaN;
    return this.#shares.reduce((sum, share) => sum + share, 0) / this.#shares.length;
  }

  async #lane(): Promise<void> {
    while (!this.#stopped) {
      this.#started++;
      try {
        const answer = (await invokeJson(this.#endpoint, this.#name, { spinMs: SPIN_MS })) as {
          wallMs?: number;
          cpuMs?: number;
        };
        this.invocations++;
        if (answer.wallMs && answer.cpuMs !== undefined)
          this.#shares.push(answer.cpuMs / answer.wallMs);
      } catch (error) {
        this.errors++;
        this.firstError ??= error instanceof Error ? error.message : String(error);
        await sleep(100);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Escaped spinners running now, and how many are in a control group under Gust's tree. */
async function escapedSpinners(): Promise<{ seen: number; inSandboxGroup: number }> {
  const snapshot = await cpuSnapshot(SPINNER_MARKER);
  // A marked process's own parent may be marked too for an instant (the subshell before it exits).
  const groups = await Promise.all([...snapshot.marked].map((pid) => cpuCgroupOf(pid)));
  return {
    seen: groups.length,
    inSandboxGroup: groups.filter((group) => group?.includes("/gust/") ?? false).length,
  };
}

async function measureCell(
  dev: TwoTenantDev,
  mode: ModeName,
  phase: PhaseName,
  handler: VictimHandler,
  escaped: EscapedCounts | undefined,
): Promise<Omit<Cell, "p99Ratio">> {
  const path = invokePath(handler);
  const headers = await signedHeaders(dev.url, "POST", path, PAYLOAD, dev.victim.credential);
  const before = await cpuSnapshot(SPINNER_MARKER);
  const probe = escaped
    ? sleep(WARMUP_MS + CELL_MS / 2)
        .then(escapedSpinners)
        .then((found) => {
          escaped.seen.push(found.seen);
          escaped.inSandboxGroup.push(found.inSandboxGroup);
        })
    : Promise.resolve();
  const result: LoadResult = await closedLoop(
    { url: dev.url + path, headers },
    { concurrency: CLIENTS, warmupMs: WARMUP_MS, durationMs: CELL_MS },
  );
  await probe;
  const after = await cpuSnapshot(SPINNER_MARKER);
  return {
    mode,
    phase,
    handler,
    requests: result.requests,
    errors: result.errors,
    errorsByStatus: result.errorsByStatus,
    throughput: result.throughput,
    p50Ms: result.p50Ms,
    p90Ms: LatencyHistogram.fromPairs(result.histogram).quantile(0.9),
    p99Ms: result.p99Ms,
    maxMs: result.maxMs,
    cpu: cpuUseBetween(before, after, process.pid),
    loadAverage: loadLine(),
  };
}

async function runMode(mode: ModeName, progress: Progress): Promise<ModeRun> {
  progress.step(`${MODE_LABELS[mode]}: starting gust dev, two tenants`);
  const dev = await startTwoTenantDev({ jail: mode === "jail", pool: 2, maxSandboxes: 40 });
  const cells: Cell[] = [];
  const noisy: NoisyPhase[] = [];
  try {
    progress.note(
      `isolation: ${dev.isolation.level}` +
        (dev.isolation.cgroupVersion === undefined
          ? ""
          : `, cgroup v${dev.isolation.cgroupVersion}`) +
        (dev.isolation.reason === undefined ? "" : ` (${dev.isolation.reason})`),
    );
    // The victim's further sandboxes start during each cell's warm-up.
    for (const handler of VICTIM_HANDLER_NAMES) {
      await createFunction(dev.victim, victimFunction(handler));
      await invokeJson(dev.victim, handler, {});
    }
    for (const kind of KINDS) {
      const spec = noisyFunction(kind, SPIN_MS);
      await createFunction(dev.noisy, spec);
      // Every spinner's sandbox started now, so that a phase spins from its first second:
      // overlapping invocations, each long enough that none can reuse another's sandbox.
      await Promise.all(
        Array.from({ length: SPINNERS }, () => invokeJson(dev.noisy, spec.name, { spinMs: 300 })),
      );
    }
    progress.done();
    const phases: PhaseName[] = ["alone", ...KINDS, "after"];
    const baseline = new Map<VictimHandler, number>();
    for (const phase of phases) {
      const kind = phase === "alone" || phase === "after" ? undefined : phase;
      const spinning = kind
        ? new SpinningTenant(dev.noisy, noisyFunction(kind, SPIN_MS).name)
        : undefined;
      const escaped: EscapedCounts | undefined =
        kind === "bash-escape" ? { seen: [], inSandboxGroup: [] } : undefined;
      if (spinning) await spinning.start(SPINNERS);
      try {
        for (const handler of VICTIM_HANDLER_NAMES) {
          progress.step(`${MODE_LABELS[mode]}: ${PHASE_LABELS[phase]}, victim ${handler}`);
          const cell = await measureCell(dev, mode, phase, handler, escaped);
          if (phase === "alone") baseline.set(handler, cell.p99Ms);
          const p99Ratio = cell.p99Ms / (baseline.get(handler) ?? Number.NaN);
          cells.push({ ...cell, p99Ratio });
          progress.note(
            `${handler}: ${fmtInt(cell.throughput)} req/s, p50 ${fmt(cell.p50Ms)} ms, p99 ${fmt(cell.p99Ms)} ms ` +
              `(${fmtSig(p99Ratio)} × alone), max ${fmt(cell.maxMs)} ms, ${cell.errors} errors; ` +
              `machine ${fmt(cell.cpu.machineCores)} cores busy, other work ${fmt(cell.cpu.otherCores)}`,
          );
          progress.done();
        }
      } finally {
        await spinning?.stop();
      }
      if (spinning && kind) {
        // The last invocations' escaped spinners stop when they do; give them a moment.
        await sleep(2000);
        const left = kind === "bash-escape" ? (await escapedSpinners()).seen : 0;
        noisy.push({
          mode,
          kind,
          invocations: spinning.invocations,
          errors: spinning.errors,
          ...(spinning.firstError === undefined ? {} : { firstError: spinning.firstError }),
          cpuShare: spinning.cpuShare,
          escapedSeen: escaped?.seen ?? [],
          escapedInSandboxGroup: escaped?.inSandboxGroup ?? [],
          leftAfter: left,
        });
        progress.note(
          `noisy ${kind}: ${spinning.invocations} invocations, ${spinning.errors} errors, ` +
            `${fmt(spinning.cpuShare)} of a core per spinner` +
            (escaped
              ? `; escaped spinners seen ${escaped.seen.join(", ")}, in a sandbox's group ${escaped.inSandboxGroup.join(", ")}, left after ${left}`
              : "") +
            (spinning.firstError ? `; first error: ${spinning.firstError}` : ""),
        );
      }
    }
  } finally {
    await dev.stop();
  }
  return { mode, isolation: dev.isolation, cells, noisy };
}

function describeIsolation(isolation: IsolationReport): string {
  return (
    isolation.level +
    (isolation.cgroupVersion === undefined ? "" : `, cgroup v${isolation.cgroupVersion}`) +
    (isolation.reason === undefined ? "" : ` (${isolation.reason})`)
  );
}

function commitLine(): string {
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

function report(runs: ModeRun[], date: string, loadAtStart: string, loadAtEnd: string): string {
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
    `The victim: ${CLIENTS} closed-loop clients (autocannon), ${fmtInt(CELL_MS / 1000)} s per cell after ${fmtInt(WARMUP_MS)} ms of warm-up. ` +
      `The noisy tenant: ${SPINNERS} handlers spinning ${fmtInt(SPIN_MS)} ms each, re-invoked as soon as they return.`,
    "",
  ];
  const summaryRows: string[][] = [];
  for (const handler of VICTIM_HANDLER_NAMES) {
    for (const kind of KINDS) {
      const row = [handler, NOISY_DESCRIPTIONS[kind]];
      for (const mode of MODES) {
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
    for (const mode of MODES) {
      const after = find(mode, "after", handler);
      row.push(after ? `${fmt(after.p99Ms)} (${fmtSig(after.p99Ratio)} ×)` : "–");
    }
    summaryRows.push(row);
  }
  lines.push(
    "Victim p99 alone → with the noisy tenant, ms (× alone):",
    "",
    markdownTable(
      ["victim", "noisy tenant", ...MODES.map((mode) => MODE_LABELS[mode])],
      summaryRows,
    ),
    "",
  );
  const cellRows = runs.flatMap((run) =>
    run.cells.map((cell) => [
      MODE_LABELS[cell.mode],
      cell.handler,
      PHASE_LABELS[cell.phase],
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
      phase.kind === "bash-escape" ? phase.escapedSeen.join(", ") : "",
      phase.kind === "bash-escape" ? phase.escapedInSandboxGroup.join(", ") : "",
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
        "escaped spinners seen",
        "in a sandbox's group",
        "left after",
      ],
      noisyRows,
      ["left", "left", "right", "right", "right", "right", "right", "right"],
    ),
    "",
    `"core per spinner": each spinning handler's CPU time over its wall time (the bash handler's own shell, not its escaped spinner); ` +
      `escaped spinners counted in /proc halfway through each of the phase's cells.`,
  );
  for (const run of runs) {
    for (const phase of run.noisy) {
      if (phase.firstError) {
        lines.push("", `First noisy error (${run.mode}, ${phase.kind}): ${phase.firstError}`);
      }
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const date = new Date().toISOString();
  const loadAtStart = loadLine();
  const phases = 2 + KINDS.length;
  const progress = new Progress(MODES.length * (1 + phases * VICTIM_HANDLER_NAMES.length));
  progress.note(`load average at the start: ${loadAtStart}`);
  const runs: ModeRun[] = [];
  for (const mode of MODES) runs.push(await runMode(mode, progress));
  progress.finish();
  const loadAtEnd = loadLine();
  const text = report(runs, date, loadAtStart, loadAtEnd);
  const outDir = fileURLToPath(new URL("../out/", import.meta.url));
  const stamp = date.replace(/[:.]/g, "-");
  await mkdir(outDir, { recursive: true });
  await writeFile(`${outDir}noisy-${stamp}.md`, `${text}\n`);
  await writeFile(
    `${outDir}noisy-${stamp}.json`,
    `${JSON.stringify(
      {
        date,
        machine: machineLine(),
        commit: commitLine(),
        loadAverage: { start: loadAtStart, end: loadAtEnd },
        settings: {
          clients: CLIENTS,
          spinners: SPINNERS,
          spinMs: SPIN_MS,
          cellMs: CELL_MS,
          warmupMs: WARMUP_MS,
          modes: MODES,
          kinds: KINDS,
        },
        runs,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`${text}\n\nWritten to bench/out/noisy-${stamp}.{md,json}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `noisy-neighbour failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
