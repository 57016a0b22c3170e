/**
 * What the benchmark reads about processes and the machine: resident memory
 * of a process (and of its descendants, e.g. a worker's sandboxes), free
 * ports, a one-line description of the machine for the reports, and a
 * child process's stop.
 */
import type { ChildProcess } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { cpus, loadavg, release, totalmem } from "node:os";

/** Resident set of one process in MB, or NaN when it is gone. */
export async function rssMb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function parentOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: read after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/** Resident set of a process and all its descendants in MB, and how many processes that is. */
export async function treeRssMb(root: number): Promise<{ mb: number; processes: number }> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const children = new Map<number, number[]>();
  await Promise.all(
    pids.map(async (pid) => {
      const parent = await parentOf(pid);
      if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), pid]);
    }),
  );
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  const sizes = await Promise.all(tree.map(rssMb));
  const alive = sizes.filter((size) => Number.isFinite(size));
  return { mb: alive.reduce((sum, size) => sum + size, 0), processes: alive.length };
}

/** A port free at the time of asking (another process may still take it before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function machineLine(): string {
  const model = (cpus()[0]?.model ?? "cpu").replace(/\s+/g, " ").trim();
  return (
    `${cpus().length} × ${model}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `Linux ${release()}, Node ${process.version}`
  );
}

export function loadLine(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(" / ");
}

/**
 * A stop for `child`: `signal` unless it has exited, SIGKILL after
 * `graceMs`, resolved once it has exited (its exit awaited from now on, so
 * one before the stop is not missed).
 */
export function childStopper(
  child: ChildProcess,
  signal: NodeJS.Signals,
  graceMs: number,
): () => Promise<void> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
}
