/**
 * What the worker does to a sandbox's control group synchronously: the kill
 * of a worker that is exiting now, and the memory peak read after every
 * invocation.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PreadFile } from "../pread-file.js";
import type { SandboxCgroup } from "./sandbox-cgroup.js";

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
 * The group's memory peak, read synchronously (see ../pread-file.ts): REPORT's
 * Max Memory Used is read after every invocation, and the next invocation
 * waits for the last one's log, so an asynchronous open-read-close there
 * halved a worker's throughput. v1: memory.max_usage_in_bytes; v2:
 * memory.peak (kernel 5.19+), else memory.current.
 */
export class MemoryPeakReader {
  readonly #group: SandboxCgroup;
  #dir: string | undefined;
  #file: PreadFile | undefined;

  constructor(group: SandboxCgroup) {
    this.#group = group;
    this.#open();
  }

  /** Bytes; undefined when the file cannot be read. */
  bytes(): number | undefined {
    // A v2 group that moved under its tenant's group has a new memory.peak.
    if (this.#group.directories[0] !== this.#dir) {
      this.#file?.close();
      this.#open();
    }
    const text = this.#file?.text();
    if (text === undefined) return undefined;
    const value = Number(text.trim());
    return Number.isFinite(value) ? value + this.#group.movedBytes : undefined;
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  #open(): void {
    const group = this.#group;
    const dir = group.directories[0];
    const files =
      group.version === 1 ? ["memory.max_usage_in_bytes"] : ["memory.peak", "memory.current"];
    let file: PreadFile | undefined;
    for (const name of files) {
      if (dir === undefined || file !== undefined) break;
      file = PreadFile.open(path.join(dir, name), 32);
    }
    this.#dir = dir;
    this.#file = file;
  }
}
