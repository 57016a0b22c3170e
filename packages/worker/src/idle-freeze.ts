/**
 * Lambda freezes an execution environment between invocations: whatever a
 * handler left running (a timer, a spinning child, a background upload)
 * stops until the next invocation arrives. A sandbox's control group is
 * frozen once it has been idle for IDLE_FREEZE_MS and thawed before its next
 * invocation is handed over. The short delay keeps back-to-back invocations
 * free of the freeze's cost (a few writes to the cgroup filesystem) and lets
 * the runtime's last output and its next poll arrive first.
 */
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "@gust/telemetry";
import type { SandboxCgroup } from "./cgroup/index.js";

/** How long a sandbox idles before it is frozen. */
export const IDLE_FREEZE_MS = 100;

type State = "running" | "freezing" | "frozen";

export class IdleFreezer {
  readonly #group: SandboxCgroup;
  readonly #logger: Logger;
  readonly #delayMs: number;
  #state: State = "running";
  #timer: NodeJS.Timeout | undefined;
  #freezing: Promise<void> | undefined;
  #closed = false;

  constructor(group: SandboxCgroup, logger: Logger, delayMs = IDLE_FREEZE_MS) {
    this.#group = group;
    this.#logger = logger;
    this.#delayMs = delayMs;
  }

  get frozen(): boolean {
    return this.#state === "frozen";
  }

  /** The sandbox has nothing to do: freeze it unless work arrives first. */
  idle(): void {
    if (this.#closed || this.#state !== "running") return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#freeze(), this.#delayMs);
    this.#timer.unref();
  }

  /** Work arrives: cancel a pending freeze, and thaw the sandbox if it was frozen. */
  async wake(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state === "freezing") await this.#freezing;
    if (this.#state !== "frozen") return;
    await this.#group.thaw();
    this.#state = "running";
  }

  /** No more freezing (the sandbox is being disposed of; its group's kill thaws it). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #freeze(): void {
    if (this.#closed || this.#state !== "running") return;
    this.#state = "freezing";
    this.#freezing = this.#group.freeze().then(
      () => {
        this.#state = "frozen";
      },
      async (error: unknown) => {
        this.#logger.warn("could not freeze an idle sandbox", { error });
        await this.#group.thaw().catch(() => undefined);
        this.#state = "running";
      },
    );
  }
}

/**
 * Thaw a group and SIGKILL every process in it, synchronously: for a worker
 * that is exiting now and cannot wait (its groups are removed by the next
 * worker of the same uid block; see CgroupTree.removeStale).
 */
export function killGroupNow(group: SandboxCgroup): void {
  for (const dir of group.directories) {
    for (const [file, value] of [
      ["freezer.state", "THAWED"],
      ["cgroup.freeze", "0"],
    ] as const) {
      try {
        writeFileSync(path.join(dir, file), value);
      } catch {
        // Not this hierarchy's file, or already gone.
      }
    }
  }
  for (const file of group.procsFiles) {
    let pids: string[];
    try {
      pids = readFileSync(file, "utf8").split("\n");
    } catch {
      continue;
    }
    for (const pid of pids) {
      if (pid === "") continue;
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
  }
}

/**
 * The group's memory peak, read synchronously through a descriptor kept open
 * (one pread of a few bytes): REPORT's Max Memory Used is read after every
 * invocation, and the next invocation waits for the last one's log, so an
 * asynchronous open-read-close there halved a worker's throughput.
 * v1: memory.max_usage_in_bytes; v2: memory.peak (kernel 5.19+), else
 * memory.current. Undefined when the file cannot be read.
 */
export class MemoryPeakReader {
  readonly #fd: number | undefined;
  readonly #buffer = Buffer.alloc(32);

  constructor(group: SandboxCgroup) {
    const dir = group.directories[0];
    let fd: number | undefined;
    const files =
      group.version === 1 ? ["memory.max_usage_in_bytes"] : ["memory.peak", "memory.current"];
    for (const file of files) {
      if (dir === undefined || fd !== undefined) break;
      try {
        fd = openSync(path.join(dir, file), "r");
      } catch {
        // Not on this kernel: try the next.
      }
    }
    this.#fd = fd;
  }

  bytes(): number | undefined {
    if (this.#fd === undefined) return undefined;
    try {
      const read = readSync(this.#fd, this.#buffer, 0, this.#buffer.length, 0);
      const value = Number(this.#buffer.toString("latin1", 0, read).trim());
      return Number.isFinite(value) ? value : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed.
    }
  }
}
