/**
 * The simulator's command line:
 *
 *   npm run sim -w @gust/admission -- <scenario|all|list> [--seed N]
 *       [--duration SECONDS] [--strategies static,central,gossip-no-loans,gossip]
 *       [--policy name=value,...] [--out DIR]
 *
 * Prints one table per scenario and writes a chart per strategy to
 * DIR/<scenario>-<strategy>.svg (DIR defaults to ./sim-out).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { AdmissionPolicyOptions } from "../policy.js";
import { renderChart } from "./chart.js";
import { scenarios } from "./scenarios.js";
import { simulate, type SimulationResult } from "./simulation.js";
import { ALL_STRATEGIES, type Strategy } from "./strategies.js";
import { formatResults } from "./table.js";

interface Arguments {
  names: string[];
  seed: number;
  durationMs: number | undefined;
  strategies: Strategy[];
  out: string;
  /** Policy knobs over the scenario's own, e.g. demandSmoothingMs=500. */
  policy: Record<string, number | boolean>;
}

class UsageError extends Error {
  override name = "UsageError";
}

function parseArguments(argv: readonly string[]): Arguments {
  const args: Arguments = {
    names: [],
    seed: 1,
    durationMs: undefined,
    strategies: [...ALL_STRATEGIES],
    out: "sim-out",
    policy: {},
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    if (arg === "--seed") args.seed = Number(value());
    else if (arg === "--duration") args.durationMs = Number(value()) * 1000;
    else if (arg === "--out") args.out = value();
    else if (arg === "--policy") {
      for (const pair of value().split(",")) {
        const [key, raw] = pair.split("=");
        if (!key || raw === undefined)
          throw new UsageError(`--policy wants name=value, got ${pair}`);
        args.policy[key] = raw === "true" ? true : raw === "false" ? false : Number(raw);
      }
    } else if (arg === "--strategies") {
      const wanted = value().split(",");
      const unknown = wanted.filter((s) => !(ALL_STRATEGIES as readonly string[]).includes(s));
      if (unknown.length > 0) throw new UsageError(`unknown strategies: ${unknown.join(", ")}`);
      args.strategies = wanted as Strategy[];
    } else if (arg.startsWith("--")) throw new UsageError(`unknown option ${arg}`);
    else args.names.push(arg);
  }
  if (!Number.isInteger(args.seed)) throw new UsageError("--seed must be an integer");
  if (args.durationMs !== undefined && !(args.durationMs > 0))
    throw new UsageError("--duration must be positive");
  if (args.names.length === 0) throw new UsageError("name a scenario, `all` or `list`");
  if (args.names.includes("all")) args.names = Object.keys(scenarios);
  return args;
}

function listScenarios(): string {
  return Object.entries(scenarios)
    .map(([name, make]) => `  ${name.padEnd(18)} ${make({}).description}`)
    .join("\n");
}

function main(argv: readonly string[]): number {
  let args: Arguments;
  try {
    args = parseArguments(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`sim: ${error.message}\nscenarios:\n${listScenarios()}\n`);
    return 2;
  }
  if (args.names.includes("list")) {
    process.stdout.write(`${listScenarios()}\n`);
    return 0;
  }
  const unknown = args.names.filter((name) => !scenarios[name]);
  if (unknown.length > 0) {
    process.stderr.write(
      `sim: unknown scenario ${unknown.join(", ")}\nscenarios:\n${listScenarios()}\n`,
    );
    return 2;
  }
  const out = resolve(args.out);
  mkdirSync(out, { recursive: true });
  for (const name of args.names) {
    const make = scenarios[name];
    if (!make) continue;
    const base = make(args.durationMs === undefined ? {} : { durationMs: args.durationMs });
    const scenario = {
      ...base,
      policy: { ...base.policy, ...(args.policy as AdmissionPolicyOptions) },
    };
    const results: SimulationResult[] = [];
    for (const strategy of args.strategies) {
      const started = performance.now();
      const result = simulate(scenario, strategy, args.seed);
      results.push(result);
      const file = join(out, `${scenario.name}-${strategy}.svg`);
      writeFileSync(
        file,
        renderChart(`${scenario.name} — ${strategy}`, scenario.description, result.samples),
      );
      process.stderr.write(
        `  ${scenario.name}/${strategy}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    }
    process.stdout.write(`${formatResults(scenario, results)}\n`);
  }
  process.stdout.write(`charts in ${out}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
