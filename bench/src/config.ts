/**
 * The benchmarks' knobs, read once from the environment (each documented in
 * the header of the benchmark that uses it). A malformed value stops the run
 * before anything starts rather than measuring something else.
 */
import { GENERATORS, type Generator } from "./load.js";

function fail(name: string, raw: string, expected: string): never {
  throw new Error(`${name}=${raw}: expected ${expected}`);
}

export function envNumber(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) fail(name, raw, `a number ≥ ${min}`);
  return value;
}

export function envInteger(name: string, fallback: number, min = 0): number {
  const value = envNumber(name, fallback, min);
  if (!Number.isInteger(value)) fail(name, String(value), "an integer");
  return value;
}

export function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const values = raw.split(",").map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isInteger(value) || value < 1)) {
    fail(name, raw, "a comma-separated list of positive integers");
  }
  return values;
}

export function envChoice<T extends string>(
  name: string,
  choices: readonly T[],
  fallback: readonly T[],
): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return [...fallback];
  const values = raw.split(",").map((part) => part.trim());
  for (const value of values) {
    if (!choices.includes(value as T)) fail(name, raw, `some of ${choices.join(", ")}`);
  }
  return values as T[];
}

export function envGenerator(): Generator {
  const [generator] = envChoice("BENCH_GENERATOR", GENERATORS, ["autocannon"]);
  return generator ?? "autocannon";
}
