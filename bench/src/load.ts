/**
 * Load, from the benchmark's side: each run starts the load generator
 * (load-runner.ts) as a process of its own, hands it a LoadSpec and reads
 * back its windows and result. A separate process keeps the generator off
 * the event loop that starts targets and keeps books, and lets it use a core
 * the benchmark process would otherwise compete for.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PAYLOAD } from "./handlers.js";
import type { HistogramPairs } from "./histogram.js";
import type { Credential } from "./signing.js";

export const GENERATORS = ["autocannon", "node"] as const;
export type Generator = (typeof GENERATORS)[number];

export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  bodyBase64: string;
  /** closed: `concurrency` clients, each waiting for its answer; open: `rate` requests/s regardless. */
  mode: "closed" | "open";
  /** For the closed loop; the open loop always uses node:http. */
  generator: Generator;
  concurrency: number;
  rate: number;
  /** Load before measuring, to warm connections and sandboxes; not counted. */
  warmupMs: number;
  durationMs: number;
  /** Status the target must answer with; anything else counts as an error. */
  expectStatus: number;
  /** Report a window every this many ms of the measured period; 0 for none. */
  windowMs?: number;
  /** Re-sign the request this often (open loop), for runs longer than the signature's validity. */
  resign?: { credential: Credential; path: string; everyMs: number };
}

export interface LoadWindow {
  index: number;
  /** From the start of the measured period. */
  startMs: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  throughput: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** Errors by the status answered ("no answer": connection error or timeout). */
  errorsByStatus: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answered requests per second of the measured period. */
  throughput: number;
  histogram: HistogramPairs;
}

const RUNNER = fileURLToPath(new URL("./load-runner.js", import.meta.url));

type RunnerLine = { type: "window"; window: LoadWindow } | { type: "result"; result: LoadResult };

/** JSON can't carry NaN (an empty run's percentiles); it arrives as null. */
function revive<T extends object>(value: T): T {
  for (const [key, field] of Object.entries(value)) {
    if (field === null) (value as Record<string, unknown>)[key] = Number.NaN;
  }
  return value;
}

export function runLoad(
  spec: LoadSpec,
  onWindow?: (window: LoadWindow) => void,
): Promise<LoadResult> {
  const child = spawn(process.execPath, [RUNNER, JSON.stringify(spec)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let result: LoadResult | undefined;
  let pending = "";
  let errors = "";
  child.stdout.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = JSON.parse(pending.slice(0, newline)) as RunnerLine;
      pending = pending.slice(newline + 1);
      if (line.type === "window") onWindow?.(revive(line.window));
      else result = revive(line.result);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString("utf8")));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0 && result) resolve(result);
      else reject(new Error(`load runner exited (${code}): ${errors.trim()}`));
    });
  });
}

/** A closed loop of `concurrency` clients posting the benchmark's payload to one URL. */
export function closedLoop(
  request: { url: string; headers: Record<string, string> },
  options: { concurrency: number; warmupMs: number; durationMs: number; generator?: Generator },
): Promise<LoadResult> {
  return runLoad({
    url: request.url,
    headers: request.headers,
    bodyBase64: Buffer.from(PAYLOAD).toString("base64"),
    mode: "closed",
    generator: options.generator ?? "autocannon",
    concurrency: options.concurrency,
    rate: 0,
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
    expectStatus: 200,
  });
}
