/**
 * One sandbox's control group: what every version offers the launcher and the
 * worker. The version-specific files are in v1-sandbox-cgroup.ts and
 * v2-sandbox-cgroup.ts; what is the same in both lives here: killing by
 * freeze, SIGKILL every member, thaw, repeated until nothing is left (a frozen
 * group cannot fork a new member between the reading of cgroup.procs and the
 * kill), and removal once empty, so the worker knows when nothing of a sandbox
 * remains and its uid can be given to another.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { makeDirectory, readTextIfPresent, removeDirectory, writeText } from "./cgroup-fs.js";
import type { CgroupVersion } from "./detect.js";
import { CgroupError } from "./errors.js";
import { joinScriptFor, launcherArgsFor } from "./join-script.js";
import { cpuLimitWrites } from "./limits.js";
import type { CgroupController, LimitWrite } from "./limits.js";

/** How long killAll waits for a group to empty before giving up (retryably). */
export const DEFAULT_KILL_WAIT_MS = 5_000;
/** How long freeze waits for the kernel to report every task frozen. */
export const DEFAULT_FREEZE_WAIT_MS = 5_000;

export interface SandboxCgroupTimeouts {
  killWaitMs: number;
  freezeWaitMs: number;
}

const POLL_FIRST_MS = 2;
const POLL_MAX_MS = 50;

/** Poll `done` with growing pauses until it is true or `deadline` (epoch ms) passes. */
export async function pollUntil(done: () => Promise<boolean>, deadline: number): Promise<boolean> {
  let pauseMs = POLL_FIRST_MS;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(pauseMs, Math.max(1, deadline - Date.now())));
    pauseMs = Math.min(POLL_MAX_MS, pauseMs * 2);
  }
}

/** Pids listed in cgroup.procs files (missing files: a group already removed, no pids). */
export async function readPids(procsFiles: readonly string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const file of procsFiles) {
    const text = await readTextIfPresent(file);
    for (const line of (text ?? "").split("\n")) if (line !== "") pids.add(Number(line));
  }
  return [...pids];
}

/** Remove a group's directory; rmdir answers EBUSY while the last exiting task is still being unlinked. */
export async function removeWhenEmpty(dir: string, deadline: number): Promise<void> {
  let lastError: unknown;
  const removed = await pollUntil(async () => {
    try {
      await removeDirectory(dir);
      return true;
    } catch (error) {
      lastError = error;
      if (error instanceof CgroupError && error.retryable) return false;
      throw error;
    }
  }, deadline);
  if (!removed) throw lastError;
}

/** Perform `writes` in order, skipping an `ifPresent` file this kernel does not have. */
export async function applyWrites(
  directoryOf: (controller: CgroupController) => string,
  writes: readonly LimitWrite[],
): Promise<void> {
  for (const write of writes) {
    try {
      await writeText(`${directoryOf(write.controller)}/${write.file}`, write.value);
    } catch (error) {
      if (write.ifPresent && error instanceof CgroupError && error.code === "ENOENT") continue;
      throw error;
    }
  }
}

/** A numeric line "key N" of a flat keyed file (memory.events, memory.oom_control, cgroup.events). */
export function keyedValue(text: string, key: string): number | undefined {
  const match = new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : undefined;
}

export abstract class SandboxCgroup {
  readonly sandboxId: string;
  abstract readonly version: CgroupVersion;
  #directories: readonly string[];
  #procsFiles: readonly string[];
  protected readonly timeouts: SandboxCgroupTimeouts;
  #disposed = false;
  #disposing: Promise<void> | undefined;
  readonly #onDisposed: (() => void) | undefined;

  protected constructor(
    sandboxId: string,
    directories: readonly string[],
    timeouts: SandboxCgroupTimeouts,
    onDisposed?: () => void,
  ) {
    this.sandboxId = sandboxId;
    this.#directories = directories;
    this.#procsFiles = directories.map((dir) => `${dir}/cgroup.procs`);
    this.timeouts = timeouts;
    this.#onDisposed = onDisposed;
  }

  /**
   * The group's directory in every hierarchy it spans (one on v2, one per
   * controller on v1). One of them changes when the sandbox moves under its
   * tenant's group (CgroupTree.assignTenant).
   */
  get directories(): readonly string[] {
    return this.#directories;
  }

  /** The cgroup.procs files a launcher writes its own pid into, one per hierarchy. */
  get procsFiles(): readonly string[] {
    return this.#procsFiles;
  }

  /** Memory charged to a group this one moved out of (v2 only; see V2SandboxCgroup.moveTo). */
  get movedBytes(): number {
    return 0;
  }

  /** The directory whose cpu.* files hold the group's weight and quota. */
  protected abstract get cpuDirectory(): string;

  /**
   * Cap the group at `cores` of CPU (undefined: no cap), e.g. Lambda's share
   * for the function's MemorySize (limits.ts cpuLimitWrites).
   */
  async setCpuLimit(cores: number | undefined): Promise<void> {
    await applyWrites(() => this.cpuDirectory, cpuLimitWrites(this.version, cores));
  }

  /**
   * Make `to`, a new directory of the same hierarchy as `from`, with
   * `writes`; move every process of the group there and remove `from` (`to`
   * is removed again if that fails). The processes are moved one by one (a
   * write to cgroup.procs takes a whole thread group); one forked meanwhile
   * is born in `from` and taken in the next round.
   */
  protected async migrate(from: string, to: string, writes: readonly LimitWrite[]): Promise<void> {
    await makeDirectory(to);
    try {
      await applyWrites(() => to, writes);
      await this.#moveAll(from, to);
    } catch (error) {
      await removeDirectory(to).catch(() => undefined);
      throw error;
    }
    this.#directories = this.#directories.map((dir) => (dir === from ? to : dir));
    this.#procsFiles = this.#directories.map((dir) => `${dir}/cgroup.procs`);
  }

  async #moveAll(from: string, to: string): Promise<void> {
    const deadline = Date.now() + this.timeouts.killWaitMs;
    // Moved, then removed; a process that joins `from` late (a launcher still writing
    // its own pid into each hierarchy) makes the removal fail, and is moved in turn.
    const moved = await pollUntil(async () => {
      const pids = await readPids([`${from}/cgroup.procs`]);
      for (const pid of pids) {
        try {
          await writeText(`${to}/cgroup.procs`, String(pid));
        } catch (error) {
          // Exited since the list was read.
          if (!(error instanceof CgroupError && error.code === "ESRCH")) throw error;
        }
      }
      if (pids.length > 0) return false;
      try {
        await removeDirectory(from);
        return true;
      } catch (error) {
        if (error instanceof CgroupError && error.retryable) return false;
        throw error;
      }
    }, deadline);
    if (!moved) {
      throw new CgroupError(
        `could not move sandbox ${this.sandboxId}'s processes from ${from} to ${to} within ${this.timeouts.killWaitMs} ms`,
        { path: from, code: "NOT_EMPTY", retryable: true },
      );
    }
  }

  /** The /bin/sh snippet that moves the shell into this group (see join-script.ts). */
  joinScript(): string {
    return joinScriptFor(this.procsFiles);
  }

  /** spawn("/bin/sh", launcherArgs(cmd, args)) runs cmd inside this group from its first instruction. */
  launcherArgs(command: string, args: readonly string[] = []): string[] {
    return launcherArgsFor(this.procsFiles, command, args);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * A new MemorySize for a live group (a pre-initialized sandbox assigned to
   * a function). Lowering it below what the group uses makes the kernel
   * reclaim first and, failing that, refuse with a retryable EBUSY (v1) or
   * OOM-kill inside the group (v2): assign before the runtime has grown.
   */
  abstract setMemoryLimit(bytes: number): Promise<void>;
  /** Stop every task of the group; resolves once the kernel reports the whole group frozen. */
  abstract freeze(): Promise<void>;
  abstract thaw(): Promise<void>;
  /** Out-of-memory kills inside the group since it was created. */
  abstract oomKills(): Promise<number>;
  /** Highest memory use since creation or the last resetPeak: REPORT's Max Memory Used. */
  abstract memoryPeakBytes(): Promise<number>;
  abstract resetPeak(): Promise<void>;
  abstract memoryCurrentBytes(): Promise<number>;
  abstract isEmpty(): Promise<boolean>;

  /** Every process in the group (in any of its hierarchies). */
  async pids(): Promise<number[]> {
    return readPids(this.procsFiles);
  }

  /**
   * SIGKILL everything in the group, including processes that left their
   * process group or session: membership cannot be shed. Resolves when the
   * group is empty; throws a retryable CgroupError after killWaitMs if
   * something survives (a task stuck in uninterruptible sleep).
   */
  async killAll(): Promise<void> {
    const deadline = Date.now() + this.timeouts.killWaitMs;
    if (await this.killByKernel()) {
      if (await pollUntil(() => this.isEmpty(), deadline)) return;
    }
    let pauseMs = POLL_FIRST_MS;
    for (;;) {
      if (await this.isEmpty()) return;
      if (Date.now() >= deadline) {
        const left = await this.pids();
        throw new CgroupError(
          `control group of sandbox ${this.sandboxId} still has ${left.length} process(es) after ${this.timeouts.killWaitMs} ms: ${left.slice(0, 10).join(", ")}`,
          { path: this.directories[0] ?? "", code: "NOT_EMPTY", retryable: true },
        );
      }
      await this.#freezeKillThaw(deadline);
      await sleep(pauseMs);
      pauseMs = Math.min(POLL_MAX_MS, pauseMs * 2);
    }
  }

  async #freezeKillThaw(deadline: number): Promise<void> {
    // Frozen, no member can fork or exit, so the pids read next are exactly
    // the members, none of them reused by an unrelated process. A group that
    // cannot freeze in time (a task in uninterruptible sleep) is killed
    // unfrozen: a fork that slips past this round is caught by the next.
    await this.freezeUntil(Math.min(deadline, Date.now() + this.timeouts.freezeWaitMs)).catch(
      () => undefined,
    );
    for (const pid of await this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Exited since the list was read.
      }
    }
    // Killed tasks die once thawed (a frozen task does not run its exit).
    await this.thaw().catch(() => undefined);
  }

  /**
   * Kill, wait until empty, and remove the group's directories. After this
   * resolves nothing the sandbox started is running, and its uid is free.
   * Calls while one is under way share it; after a failure (retryable: a
   * task that would not die in time) a later call tries again.
   */
  dispose(): Promise<void> {
    if (this.#disposed) return Promise.resolve();
    this.#disposing ??= this.#dispose().finally(() => {
      this.#disposing = undefined;
    });
    return this.#disposing;
  }

  async #dispose(): Promise<void> {
    await this.killAll();
    const deadline = Date.now() + this.timeouts.killWaitMs;
    for (const dir of this.directories) await removeWhenEmpty(dir, deadline);
    this.#disposed = true;
    await this.released();
    this.#onDisposed?.();
  }

  /** Writes the kernel's own kill switch if it has one (v2 cgroup.kill); false if not. */
  protected abstract killByKernel(): Promise<boolean>;
  /** Freeze with a deadline (epoch ms) instead of freezeWaitMs. */
  protected abstract freezeUntil(deadline: number): Promise<void>;
  /** Release anything held open for the group (v2's memory.peak descriptor). */
  protected async released(): Promise<void> {}

  protected freezeTimeoutError(file: string): CgroupError {
    return new CgroupError(
      `control group of sandbox ${this.sandboxId} did not freeze within ${this.timeouts.freezeWaitMs} ms`,
      { path: file, code: "FREEZE_TIMEOUT", retryable: true },
    );
  }
}
