/**
 * Enforces a sandbox's MemorySize by sampling its resident set size from
 * /proc (VmRSS) and calling back when it goes over. Node's heap flag only caps
 * the V8 heap; buffers, native modules and custom runtimes are caught here.
 * Sampling is every 100 ms while an invocation runs and once a second while
 * the sandbox idles.
 */
import { readFile, readdir } from "node:fs/promises";

export const WATCHDOG_ACTIVE_INTERVAL_MS = 100;
export const WATCHDOG_IDLE_INTERVAL_MS = 1000;

async function rssBytesOf(pid: number): Promise<number | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  // A zombie has no VmRSS line: it holds no memory any more.
  return match ? Number(match[1]) * 1024 : 0;
}

async function childrenOf(pid: number): Promise<number[]> {
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const task of tasks) {
    try {
      const text = await readFile(`/proc/${pid}/task/${task}/children`, "utf8");
      for (const child of text.split(" ")) if (child.trim() !== "") children.push(Number(child));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return children;
}

/** RSS of a process (and, if asked, all its descendants) in bytes; undefined when it is gone. */
export async function processRssBytes(
  pid: number,
  includeDescendants: boolean,
): Promise<number | undefined> {
  const own = await rssBytesOf(pid);
  if (own === undefined || !includeDescendants) return own;
  let total = own;
  const seen = new Set([pid]);
  const queue = await childrenOf(pid);
  while (queue.length > 0 && seen.size < 4096) {
    const child = queue.shift() as number;
    if (seen.has(child)) continue;
    seen.add(child);
    total += (await rssBytesOf(child)) ?? 0;
    queue.push(...(await childrenOf(child)));
  }
  return total;
}

export interface MemoryWatchdogOptions {
  pid: number;
  limitMb: number;
  /** Sum the RSS of child processes too (custom runtimes fork; Node sandboxes cannot). */
  includeDescendants: boolean;
  onExceeded: (rssMb: number) => void;
}

export class MemoryWatchdog {
  readonly #options: MemoryWatchdogOptions;
  #limitMb: number;
  #intervalMs = WATCHDOG_IDLE_INTERVAL_MS;
  #timer: NodeJS.Timeout | undefined;
  #sampling = false;
  #stopped = false;
  #peakBytes = 0;

  constructor(options: MemoryWatchdogOptions) {
    this.#options = options;
    this.#limitMb = options.limitMb;
    this.#schedule();
  }

  /** A pre-initialized sandbox learns its MemorySize on assignment. */
  set limitMb(limitMb: number) {
    this.#limitMb = limitMb;
  }

  /** Sample often while an invocation runs, rarely while idle. */
  set active(active: boolean) {
    const intervalMs = active ? WATCHDOG_ACTIVE_INTERVAL_MS : WATCHDOG_IDLE_INTERVAL_MS;
    if (intervalMs === this.#intervalMs) return;
    this.#intervalMs = intervalMs;
    if (!this.#sampling) this.#schedule();
  }

  /** Peak RSS since the last reset, in MB. */
  get peakMb(): number {
    return this.#peakBytes / (1024 * 1024);
  }

  resetPeak(): void {
    this.#peakBytes = 0;
  }

  /** Take one sample now (also updates the peak and may trigger the limit). */
  async sample(): Promise<void> {
    const bytes = await processRssBytes(this.#options.pid, this.#options.includeDescendants);
    if (bytes === undefined || this.#stopped) return;
    this.#peakBytes = Math.max(this.#peakBytes, bytes);
    const mb = bytes / (1024 * 1024);
    if (mb > this.#limitMb) this.#options.onExceeded(mb);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#sampling = true;
      this.sample()
        .catch(() => undefined)
        .finally(() => {
          this.#sampling = false;
          this.#schedule();
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
