/**
 * Enforces a sandbox's MemorySize by sampling its resident set size from
 * /proc (VmRSS) and calling back when it goes over. Node's heap flag only caps
 * the V8 heap; buffers, native modules and custom runtimes are caught here.
 * Sampling is every 100 ms while an invocation runs, once a second while
 * the sandbox idles, and once after each invocation (REPORT's Max Memory
 * Used). A single process is read through /proc/<pid>/statm, kept open: one
 * pread of a few bytes, cheap enough to do synchronously after every
 * invocation.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { PreadFile } from "./pread-file.js";
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

let pageSizeBytes: number | undefined;

/**
 * The kernel's page size, which statm counts in: this process's RSS as Node
 * reports it, over its resident pages, rounded to a power of two.
 */
function pageSize(): number {
  if (pageSizeBytes !== undefined) return pageSizeBytes;
  let size = 4096;
  try {
    const pages = residentPages(readFileSyncText("/proc/self/statm"));
    const rss = process.memoryUsage.rss();
    if (pages !== undefined && pages > 0) size = 2 ** Math.round(Math.log2(rss / pages));
  } catch {
    // No /proc/self: keep the common 4 KiB.
  }
  pageSizeBytes = size >= 1024 ? size : 4096;
  return pageSizeBytes;
}

function readFileSyncText(file: string): string {
  const fd = openSync(file, "r");
  try {
    const buffer = Buffer.alloc(256);
    return buffer.toString("latin1", 0, readSync(fd, buffer, 0, buffer.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** The second field of statm: resident pages. */
function residentPages(statm: string): number | undefined {
  const resident = Number(statm.split(" ", 2)[1]);
  return Number.isFinite(resident) ? resident : undefined;
}

/** One process's RSS through its statm file, kept open. */
class StatmReader {
  readonly #file: PreadFile;

  private constructor(file: PreadFile) {
    this.#file = file;
  }

  static open(pid: number): StatmReader | undefined {
    const file = PreadFile.open(`/proc/${pid}/statm`);
    return file === undefined ? undefined : new StatmReader(file);
  }

  /** RSS in bytes; undefined once the process is gone. */
  read(): number | undefined {
    const text = this.#file.text();
    if (text === undefined) return undefined;
    // A zombie's statm is all zeros: it holds no memory any more.
    const pages = residentPages(text);
    return pages === undefined ? undefined : pages * pageSize();
  }

  close(): void {
    this.#file.close();
  }
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
  /** Absent when descendants count too, or /proc cannot be opened: then files are read anew. */
  #statm: StatmReader | undefined;

  constructor(options: MemoryWatchdogOptions) {
    this.#options = options;
    this.#limitMb = options.limitMb;
    if (!options.includeDescendants) this.#statm = StatmReader.open(options.pid);
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
    const bytes =
      this.#statm !== undefined
        ? this.#statm.read()
        : await processRssBytes(this.#options.pid, this.#options.includeDescendants);
    if (bytes === undefined || this.#stopped) return;
    this.#peakBytes = Math.max(this.#peakBytes, bytes);
    const mb = bytes / (1024 * 1024);
    if (mb > this.#limitMb) this.#options.onExceeded(mb);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#statm?.close();
    this.#statm = undefined;
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
