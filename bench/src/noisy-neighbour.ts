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
 *   BENCH_NOISY_MODES (jail,jail-shared,no-jail)
 *                                            isolation modes, in this order: jailed
 *                                            with Lambda's CPU model (the default),
 *                                            jailed with --sandbox-cpu=shared, not jailed
 *   BENCH_NOISY_KINDS (node,bash-escape)     noisy phases
 *   BENCH_NOISY_CLIENTS (4)                  the victim's closed-loop clients
 *   BENCH_NOISY_SPINNERS (4)                 the noisy tenant's spinning handlers
 *   BENCH_NOISY_SPIN_MS (5000)               each spinning invocation
 *   BENCH_NOISY_CELL_MS (12000)              each measurement, after…
 *   BENCH_NOISY_WARMUP_MS (5000)             …this much load not counted (after 1 s
 *                                            the no-op victim's p99 alone was still
 *                                            2–3× what it was at the end of the run)
 *   BENCH_NOISY_VICTIM_MB (1769)             the victim's MemorySize: one vCPU under
 *                                            Lambda's model, so it is never held
 *                                            back by its own cap on 2 cores
 *   BENCH_NOISY_SPINNER_MB (128)             the spinners' MemorySize (Lambda's default)
 *   BENCH_NOISY_DEV_ARGS ()                  more flags for `gust dev`, space-separated
 *                                            (e.g. "--dispatch-slots=0")
 */
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { envChoice, envInteger } from "./config.js";
import {
  cpuCgroupOf,
  cpuSnapshot,
  cpuUseBetween,
  markedProcesses,
  processTree,
  stillRunning,
} from "./cpu-census.js";
import { PAYLOAD, invokePath, type GustEndpoint } from "./handlers.js";
import { LatencyHistogram } from "./histogram.js";
import { closedLoop, type LoadResult } from "./load.js";
import { fmt, fmtInt, fmtSig } from "./markdown.js";
import {
  MODE_LABELS,
  MODE_NAMES,
  commitLine,
  noisyReport,
  phaseLabel,
  type Cell,
  type EscapedCounts,
  type ModeName,
  type ModeRun,
  type NoisyPhase,
  type NoisySettings,
  type PhaseName,
} from "./noisy-report.js";
import {
  NOISY_KINDS,
  SPINNER_MARKER,
  VICTIM_HANDLER_NAMES,
  createFunction,
  invokeJson,
  noisyFunction,
  startTwoTenantDev,
  victimFunction,
  type TwoTenantDev,
  type VictimHandler,
} from "./noisy-tenants.js";
import { loadLine, machineLine } from "./proc.js";
import { Progress } from "./progress.js";
import { signedHeaders } from "./signing.js";

const MODES = envChoice("BENCH_NOISY_MODES", MODE_NAMES, MODE_NAMES);
const KINDS = envChoice("BENCH_NOISY_KINDS", NOISY_KINDS, NOISY_KINDS);
const CLIENTS = envInteger("BENCH_NOISY_CLIENTS", 4, 1);
const SPINNERS = envInteger("BENCH_NOISY_SPINNERS", 4, 1);
const SPIN_MS = envInteger("BENCH_NOISY_SPIN_MS", 5000, 100);
const CELL_MS = envInteger("BENCH_NOISY_CELL_MS", 12_000, 1000);
const WARMUP_MS = envInteger("BENCH_NOISY_WARMUP_MS", 5000, 0);
const VICTIM_MB = envInteger("BENCH_NOISY_VICTIM_MB", 1769, 128);
const SPINNER_MB = envInteger("BENCH_NOISY_SPINNER_MB", 128, 128);
const DEV_ARGS = (process.env["BENCH_NOISY_DEV_ARGS"] ?? "").split(/\s+/).filter(Boolean);
/** Once every lane's first spinning invocation has begun, this long before measuring. */
const SPIN_UP_MS = 1000;

/** Lanes (four by default), each re-invoking the spinner as soon as it returns, until stopped. */
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

/**
 * Counts the escaped spinners once a second while the noisy tenant spins:
 * how many run, and how many of those are in a control group under Gust's
 * `gust/` tree (a sandbox's), which is what keeps them in their tenant's
 * share. A single look could fall between one invocation and the next.
 */
class EscapeWatch {
  readonly counts: EscapedCounts = { seen: [], inSandboxGroup: [] };
  readonly #timer: NodeJS.Timeout;
  #sampling: Promise<void> = Promise.resolve();

  constructor() {
    this.#timer = setInterval(() => {
      this.#sampling = this.#sample();
    }, 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sampling;
  }

  async #sample(): Promise<void> {
    const found = await escapedSpinners();
    this.counts.seen.push(found.seen);
    this.counts.inSandboxGroup.push(found.inSandboxGroup);
  }
}

async function escapedSpinners(): Promise<{ seen: number; inSandboxGroup: number }> {
  const pids = await markedProcesses(SPINNER_MARKER);
  const groups = await Promise.all(pids.map((pid) => cpuCgroupOf(pid)));
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
): Promise<Omit<Cell, "p99Ratio">> {
  const path = invokePath(handler);
  const headers = await signedHeaders(dev.url, "POST", path, PAYLOAD, dev.victim.credential);
  const before = await cpuSnapshot(SPINNER_MARKER);
  const result: LoadResult = await closedLoop(
    { url: dev.url + path, headers },
    { concurrency: CLIENTS, warmupMs: WARMUP_MS, durationMs: CELL_MS },
  );
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
  const dev = await startTwoTenantDev({
    jail: mode !== "no-jail",
    pool: 2,
    maxSandboxes: 40,
    extraArgs: [...(mode === "jail-shared" ? ["--sandbox-cpu=shared"] : []), ...DEV_ARGS],
  });
  const cells: Cell[] = [];
  const noisy: NoisyPhase[] = [];
  let tree = new Map<number, string>();
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
      await createFunction(dev.victim, victimFunction(handler, VICTIM_MB));
      await invokeJson(dev.victim, handler, {});
    }
    for (const kind of KINDS) {
      const spec = noisyFunction(kind, SPIN_MS, SPINNER_MB);
      await createFunction(dev.noisy, spec);
      // Every spinner's sandbox started now, so that a phase spins from its first second:
      // overlapping invocations, each long enough that none can reuse another's sandbox.
      await Promise.all(
        Array.from({ length: SPINNERS }, () => invokeJson(dev.noisy, spec.name, { spinMs: 300 })),
      );
    }
    progress.done();
    const phases: PhaseName[] = ["alone", ...KINDS, "after"];
    // While the run goes on, ratios to the first cell alone; at the end, to the lower of both.
    const baseline = new Map<VictimHandler, number>();
    for (const phase of phases) {
      const kind = phase === "alone" || phase === "after" ? undefined : phase;
      const spinning = kind
        ? new SpinningTenant(dev.noisy, noisyFunction(kind, SPIN_MS, SPINNER_MB).name)
        : undefined;
      if (spinning) await spinning.start(SPINNERS);
      const watch = kind === "bash-escape" ? new EscapeWatch() : undefined;
      try {
        for (const handler of VICTIM_HANDLER_NAMES) {
          progress.step(`${MODE_LABELS[mode]}: ${phaseLabel(phase, SPINNERS)}, victim ${handler}`);
          const cell = await measureCell(dev, mode, phase, handler);
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
        await watch?.stop();
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
          escapedSeen: watch?.counts.seen ?? [],
          escapedInSandboxGroup: watch?.counts.inSandboxGroup ?? [],
          leftAfter: left,
        });
        progress.note(
          `noisy ${kind}: ${spinning.invocations} invocations, ${spinning.errors} errors, ` +
            `${fmt(spinning.cpuShare)} of a core per spinner` +
            (watch
              ? `; escaped spinners seen each second ${watch.counts.seen.join(" ")}, in a sandbox's group ${watch.counts.inSandboxGroup.join(" ")}, left after ${left}`
              : "") +
            (spinning.firstError ? `; first error: ${spinning.firstError}` : ""),
        );
      }
    }
    for (const handler of VICTIM_HANDLER_NAMES) {
      const alone = cells.filter(
        (cell) => cell.handler === handler && (cell.phase === "alone" || cell.phase === "after"),
      );
      const lowest = Math.min(...alone.map((cell) => cell.p99Ms));
      for (const cell of cells) if (cell.handler === handler) cell.p99Ratio = cell.p99Ms / lowest;
    }
  } finally {
    tree = await processTree(dev.pid);
    await dev.stop();
  }
  // Everything gust dev started should end with it: sandboxes, jails, what handlers left behind.
  await sleep(2000);
  const leftBehind = await stillRunning(tree);
  if (leftBehind > 0) {
    progress.note(
      `${leftBehind} of gust dev's ${tree.size} processes still ran 2 s after it stopped`,
    );
  }
  return { mode, isolation: dev.isolation, cells, noisy, leftBehind };
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
  const settings: NoisySettings = {
    modes: MODES,
    kinds: KINDS,
    clients: CLIENTS,
    spinners: SPINNERS,
    spinMs: SPIN_MS,
    cellMs: CELL_MS,
    warmupMs: WARMUP_MS,
    devArgs: DEV_ARGS,
    victimMemoryMb: VICTIM_MB,
    spinnerMemoryMb: SPINNER_MB,
  };
  const text = noisyReport({ date, loadAtStart, loadAtEnd, settings, runs });
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
        settings,
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
