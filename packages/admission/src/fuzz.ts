/**
 * `npm run fuzz:admission`: the fleet-safety properties of gossip.test.ts
 * (fleet-steps.ts) from random seeds, until a number of generated steps or a
 * time has passed, printing any counterexample with the seed that finds it.
 * Each seed runs each property FLEET_PROPERTY_RUNS times, as `npm test` does
 * with its fixed seed, so `FC_SEED=<seed> npx vitest run
 * packages/admission/src/gossip.test.ts` reproduces a failure; a
 * counterexample found is then kept there as a named regression case.
 *
 *   npm run fuzz:admission -- [--steps N] [--seconds S] [--seed FIRST] [--out FILE]
 *
 * --steps (default 1,000,000) and --seconds stop the run, whichever comes
 * first; --seed starts from a given seed (default: a random one) and goes up
 * by one; --out (default bench/out/fuzz-admission-<date>.json) records what
 * ran: seeds, runs, steps, time and the result.
 */
import { randomInt } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { FLEET_PROPERTY_RUNS, fleetProperties, fleetStepsRun } from "./fleet-steps.js";

interface Failure {
  property: string;
  seed: number;
  path: string | undefined;
  counterexample: string;
  error: string;
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new RangeError(`--${name} must be a non-negative integer, got ${value}`);
  }
  return parsed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      steps: { type: "string" },
      seconds: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
    },
  });
  const stepBudget = positive("steps", values.steps) ?? 1_000_000;
  const seconds = positive("seconds", values.seconds);
  const firstSeed = positive("seed", values.seed) ?? randomInt(1, 2 ** 31 - 1);
  const started = new Date();
  const deadline = seconds === undefined ? Infinity : Date.now() + seconds * 1000;
  const out =
    values.out ??
    path.join("bench", "out", `fuzz-admission-${started.toISOString().replaceAll(":", "-")}.json`);

  let seed = firstSeed;
  let runs = 0;
  let failure: Failure | undefined;
  while (failure === undefined && fleetStepsRun() < stepBudget && Date.now() < deadline) {
    for (const [property, make] of Object.entries(fleetProperties)) {
      // Two properties of different argument types: checked alike.
      const checked = make() as unknown as fc.IProperty<unknown[]>;
      const result = fc.check(checked, { seed, numRuns: FLEET_PROPERTY_RUNS });
      runs += result.numRuns;
      if (result.failed) {
        failure = {
          property,
          seed,
          path: result.counterexamplePath ?? undefined,
          counterexample: fc.stringify(result.counterexample),
          error:
            result.errorInstance instanceof Error
              ? result.errorInstance.message
              : String(result.errorInstance),
        };
        break;
      }
    }
    if (failure !== undefined) break;
    seed++;
    if ((seed - firstSeed) % 20 === 0) {
      process.stderr.write(
        `seeds ${firstSeed}–${seed - 1}: ${runs.toLocaleString("en")} runs, ${fleetStepsRun().toLocaleString("en")} steps\n`,
      );
    }
  }
  const elapsedMs = Date.now() - started.getTime();
  const record = {
    date: started.toISOString(),
    seeds: { first: firstSeed, last: failure?.seed ?? seed - 1 },
    runsPerSeedAndProperty: FLEET_PROPERTY_RUNS,
    runs,
    steps: fleetStepsRun(),
    elapsedMs,
    result: failure === undefined ? "no counterexample" : "counterexample",
    ...(failure === undefined ? {} : { failure }),
  };
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(record, null, 2)}\n`);
  const summary =
    `${record.steps.toLocaleString("en")} steps in ${runs.toLocaleString("en")} runs, ` +
    `seeds ${record.seeds.first}–${record.seeds.last}, ${(elapsedMs / 1000).toFixed(1)} s`;
  if (failure === undefined) {
    process.stdout.write(`no counterexample: ${summary}. Recorded in ${out}.\n`);
    return 0;
  }
  process.stdout.write(
    [
      `COUNTEREXAMPLE in "${failure.property}" (${summary})`,
      `  seed: ${failure.seed}, path: ${failure.path ?? "?"}`,
      `  ${failure.error}`,
      `  steps: ${failure.counterexample}`,
      `  reproduce: FC_SEED=${failure.seed} npx vitest run packages/admission/src/gossip.test.ts`,
      `  recorded in ${out}`,
      "",
    ].join("\n"),
  );
  return 1;
}

process.exitCode = await main();
