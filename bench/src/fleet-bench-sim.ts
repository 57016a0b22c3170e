/**
 * The simulator beside the fleet benchmark: the issue's `reference-100`
 * through its command line, and the same scenario with the benchmark's
 * execution time.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export async function runSimulator(repo: string): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), "gust-sim-"));
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(
        "npm",
        [
          "run",
          "sim",
          "--silent",
          "-w",
          "@gust/admission",
          "--",
          "reference-100",
          "--duration",
          "60",
          "--out",
          out,
        ],
        { cwd: repo, stdio: ["ignore", "pipe", "inherit"] },
      );
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      child.once("exit", (code) =>
        code === 0 ? resolve(text) : reject(new Error(`simulator exited ${code}`)),
      );
    });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * The simulator on this benchmark's own setup: `reference-100` with
 * executions as long as the handler's sleep, 600 simulated seconds, seed 1.
 * @gust/admission exports no simulator API and its command line runs named
 * scenarios only, so the simulator's modules are loaded from the package's
 * build, by path.
 */
export interface SameSetup {
  /** How long each invocation holds its slot. */
  executionMs: number;
  /** Offered load (arrival rate × executionMs). */
  erlangs: number;
  /** One-way delay of a loan message. */
  loanDelayMs: number;
}

export async function simulateSameSetup(setup: SameSetup): Promise<string> {
  const { scenario, results, formatResults } = await simulateReference(
    setup.executionMs,
    600_000,
    ["static", "central", "gossip-no-loans", "gossip"],
    { erlangs: setup.erlangs, loanDelayMs: setup.loanDelayMs },
  );
  return formatResults(scenario, results);
}

/**
 * How much a throttle fraction measured over one benchmark window moves by
 * chance alone: the simulator on the same load, one window as long as the
 * benchmark's, over `seeds` seeds. Returns "mean ± sd (min–max)" in %.
 */
export async function windowNoise(
  setup: SameSetup,
  windowMs: number,
  seeds: number,
): Promise<string> {
  const fractions: number[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const { results } = await simulateReference(
      setup.executionMs,
      windowMs + 2000,
      ["gossip"],
      {
        erlangs: setup.erlangs,
        loanDelayMs: setup.loanDelayMs,
      },
      seed,
    );
    const figures = (results[0] as { figures: { throttled: number; requests: number } }).figures;
    fractions.push((100 * figures.throttled) / Math.max(1, figures.requests));
  }
  const mean = fractions.reduce((a, b) => a + b, 0) / fractions.length;
  const sd = Math.sqrt(
    fractions.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, fractions.length - 1),
  );
  return `${mean.toFixed(2)}% ± ${sd.toFixed(2)} (${Math.min(...fractions).toFixed(2)}–${Math.max(...fractions).toFixed(2)}%)`;
}

/**
 * Loan messages per request in the simulator's `reference-100` as the issue
 * defines it (100 ms executions, 900 invocations/s): what a tenant with
 * `M` = 100 at 1,000 invocations/s would send, which two cores cannot run.
 */
export async function simulatedLoansPerRequest(): Promise<number> {
  const { results } = await simulateReference(100, 60_000, ["gossip"]);
  const figures = (results[0] as { figures: { loanMessages: number; requests: number } }).figures;
  return figures.loanMessages / Math.max(1, figures.requests);
}

type Scenario = { tenants: Array<Record<string, unknown>> } & Record<string, unknown>;

async function simulateReference(
  executionMs: number,
  durationMs: number,
  strategies: string[],
  carried?: { erlangs: number; loanDelayMs: number },
  seed = 1,
): Promise<{
  scenario: Scenario;
  results: unknown[];
  formatResults: (scenario: Scenario, results: unknown[]) => string;
}> {
  const simDir = join(dirname(fileURLToPath(import.meta.resolve("@gust/admission"))), "sim");
  const load = (file: string) => import(pathToFileURL(join(simDir, file)).href);
  const { scenarios } = (await load("scenarios.js")) as {
    scenarios: Record<string, (params: { durationMs?: number }) => Scenario>;
  };
  const { simulate } = (await load("simulation.js")) as {
    simulate: (scenario: Scenario, strategy: string, seed: number) => unknown;
  };
  const { formatResults } = (await load("table.js")) as {
    formatResults: (scenario: Scenario, results: unknown[]) => string;
  };
  const reference = scenarios["reference-100"];
  if (!reference) throw new Error("the simulator has no reference-100 scenario");
  const base = reference({ durationMs });
  const scenario: Scenario = carried
    ? {
        ...base,
        description:
          `${String(base["description"])}; here as the fleet ran: ${executionMs.toFixed(0)} ms held per ` +
          `invocation, ${carried.erlangs.toFixed(1)} Erlangs, loan messages ${carried.loanDelayMs.toFixed(1)} ms one way`,
        loanDelayMs: carried.loanDelayMs,
        tenants: base.tenants.map((tenant) => ({
          ...tenant,
          executionMs,
          load: [[0, carried.erlangs]],
        })),
      }
    : {
        ...base,
        description: `${String(base["description"])}; here ${executionMs} ms executions`,
        tenants: base.tenants.map((tenant) => ({ ...tenant, executionMs })),
      };
  const results = strategies.map((strategy) => simulate(scenario, strategy, seed));
  return { scenario, results, formatResults };
}
