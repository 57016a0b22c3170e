/**
 * Scale-up: how long dev mode takes to go from no sandbox for a function to
 * N of its invocations running at once. A fresh dev process per trial (its
 * usual pool of 2 pre-initialized sandboxes, room for N more), a new
 * function whose handler sleeps and returns when it started and ended, and
 * N invocations sent at once. Every process reads the same wall clock, so
 * the handlers' own timestamps say when the k-th execution started and how
 * many ran at once at any instant.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TIMED_SLEEP_HANDLER, createFunction, invokePath } from "./handlers.js";
import { childStopper } from "./proc.js";
import { signedHeaders } from "./signing.js";
import { writeTenantsFile } from "./targets.js";

const DEV_HOST = fileURLToPath(new URL("./dev-host.js", import.meta.url));
/** Lambda's smallest MemorySize, what the benchmark's functions get. */
const SANDBOX_MB = 128;

export interface ScaleUpTrial {
  /** When each execution started, ms after the invocations were sent, sorted. */
  startsMs: number[];
  /** [start, end] of each execution, ms after the invocations were sent. */
  runs: Array<[number, number]>;
  errors: string[];
  /** When the last answer arrived. */
  lastAnswerMs: number;
  /** The end of the dev process's log, when invocations failed. */
  log?: string;
}

export interface ScaleUpOptions {
  invocations: number;
  sleepMs: number;
  pool: number;
}

/** The first instant at which `count` executions ran at once, or NaN if they never did. */
export function timeToRunning(runs: Array<[number, number]>, count: number): number {
  const events: Array<[number, number]> = [];
  for (const [start, end] of runs) events.push([start, 1], [end, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  for (const [at, delta] of events) {
    running += delta;
    if (running >= count) return at;
  }
  return Number.NaN;
}

async function startDevHost(tenantsFile: string, options: ScaleUpOptions) {
  const sandboxes = options.invocations + options.pool + 8;
  const child = spawn(
    process.execPath,
    [
      DEV_HOST,
      JSON.stringify({
        tenantsFile,
        maxSandboxes: sandboxes,
        pool: options.pool,
        memoryMb: sandboxes * SANDBOX_MB,
      }),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, GUST_LOG_LEVEL: process.env["GUST_LOG_LEVEL"] ?? "warn" },
    },
  );
  let output = "";
  child.stderr.on("data", (chunk: Buffer) => (output = (output + String(chunk)).slice(-8_000)));
  const stop = childStopper(child, "SIGTERM", 30_000);
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once("data", (chunk: Buffer) => resolve(String(chunk).trim()));
    child.once("exit", (code) => reject(new Error(`dev host exited (${code}): ${output}`)));
  });
  return { url, stop, log: () => output };
}

function post(agent: Agent, url: URL, headers: Record<string, string>, body: Uint8Array) {
  return new Promise<{ status: number; text: string; functionError: boolean }>((resolve) => {
    const req = request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
            functionError: res.headers["x-amz-function-error"] !== undefined,
          }),
        );
        res.on("error", (error) =>
          resolve({ status: 0, text: String(error), functionError: false }),
        );
      },
    );
    req.on("error", (error) => resolve({ status: 0, text: String(error), functionError: false }));
    req.end(body);
  });
}

export async function scaleUpTrial(options: ScaleUpOptions): Promise<ScaleUpTrial> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-scale-"));
  const credential = {
    accessKeyId: `GKBENCH${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
  };
  const tenantsFile = await writeTenantsFile(dir, credential, options.invocations * 5);
  const host = await startDevHost(tenantsFile, options);
  const agent = new Agent({ keepAlive: false, maxSockets: options.invocations * 2 });
  try {
    const endpoint = { name: "gust dev (scale-up)", url: host.url, credential };
    await createFunction(endpoint, "scale", TIMED_SLEEP_HANDLER, 120);
    // Let the pre-initialized pool fill, as it would have on a dev process that has been up.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const path = invokePath("scale");
    const body = new TextEncoder().encode(JSON.stringify({ sleepMs: options.sleepMs }));
    const headers = await signedHeaders(host.url, "POST", path, body, credential);
    const url = new URL(host.url + path);
    const sentAt = Date.now();
    const answers = await Promise.all(
      Array.from({ length: options.invocations }, async () => {
        const answer = await post(agent, url, headers, body);
        return { ...answer, at: Date.now() - sentAt };
      }),
    );
    const runs: Array<[number, number]> = [];
    const errors: string[] = [];
    for (const answer of answers) {
      try {
        if (answer.status !== 200 || answer.functionError) throw new Error("failed");
        const { start, end } = JSON.parse(answer.text) as { start: number; end: number };
        runs.push([start - sentAt, end - sentAt]);
      } catch {
        errors.push(`${answer.status} ${answer.text.slice(0, 200)}`);
      }
    }
    return {
      startsMs: runs.map(([start]) => start).sort((a, b) => a - b),
      runs,
      errors,
      lastAnswerMs: Math.max(...answers.map((answer) => answer.at)),
      ...(errors.length > 0 ? { log: host.log().slice(-2_000) } : {}),
    };
  } finally {
    agent.destroy();
    await host.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
