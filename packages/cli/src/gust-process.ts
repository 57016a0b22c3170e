/**
 * Running `gust` commands as separate processes, as a fleet does, and
 * reading their structured log lines (JSON on stderr). Tests, benchmarks and
 * local fleets start processes through this.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const GUST_MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

export interface GustProcess {
  child: ChildProcess;
  /** Resolves with the first log record whose message matches. */
  waitForLog(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Everything the process printed so far, stdout and stderr. */
  output(): string;
  /**
   * Sends the signal (SIGTERM: drain, then exit; SIGINT: exit now) and waits
   * for the exit, killing the process after `graceMs`. @default graceMs 10000
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** `nodeArgs` go to node before the script (flags NODE_OPTIONS refuses, such as --cpu-prof). */
export function spawnGust(
  args: string[],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): GustProcess {
  const child = spawn(process.execPath, [...nodeArgs, GUST_MAIN, ...args], {
    env: { ...process.env, GUST_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const records: Array<Record<string, unknown>> = [];
  const waiters: Array<{ message: string; resolve: (record: Record<string, unknown>) => void }> =
    [];
  let pending = "";
  child.stdout?.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => {
    const data = chunk.toString("utf8");
    text += data;
    pending += data;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        records.push(record);
        for (const waiter of [...waiters]) {
          if (record["message"] === waiter.message) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(record);
          }
        }
      } catch {
        // Not a log record.
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    output: () => text,
    waitForLog(message, timeoutMs = 20_000) {
      const seen = records.find((record) => record["message"] === message);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${message}" log within ${timeoutMs} ms; output:\n${text}`)),
          timeoutMs,
        );
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`gust ${args[0]} exited (${code}) before "${message}":\n${text}`));
        });
        waiters.push({
          message,
          resolve: (record) => {
            clearTimeout(timer);
            resolve(record);
          },
        });
      });
    },
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
