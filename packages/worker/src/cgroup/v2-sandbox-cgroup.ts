/**
 * A sandbox's group on cgroup v2: one directory, joined once, with the
 * controllers its parent enabled in cgroup.subtree_control.
 * Documentation/admin-guide/cgroup-v2.rst: cgroup.freeze and cgroup.events'
 * "frozen" (5.2+), cgroup.kill (5.14+), memory.events' oom_kill,
 * memory.peak (5.19+; resettable per open file since 6.12), "populated" in
 * cgroup.events for emptiness.
 */
import { HeldFile, exists, readText, readTextIfPresent, writeText } from "./cgroup-fs.js";
import { MEMORY_BYTES_MIN, checkMemoryBytes, limitWrites, memoryLimitWrites } from "./limits.js";
import type { CgroupLimits } from "./limits.js";
import { SandboxCgroup, applyWrites, keyedValue, pollUntil } from "./sandbox-cgroup.js";
import type { SandboxCgroupTimeouts } from "./sandbox-cgroup.js";

export class V2SandboxCgroup extends SandboxCgroup {
  override readonly version = 2;
  #dir: string;
  /**
   * Memory charged before the group moved under its tenant's group: it stays
   * with the old group (v2 does not move charges) and is added to what this
   * group reports.
   */
  #movedBytes = 0;
  /** memory.peak held open so a reset through it is seen by reads through it. */
  #peakFile: HeldFile | undefined;
  /** No resettable memory.peak: the largest memory.current seen since the last reset. */
  #sampledPeak = 0;
  #peakResetUnsupported = false;
  #hasKill: boolean | undefined;

  constructor(
    sandboxId: string,
    dir: string,
    timeouts: SandboxCgroupTimeouts,
    onDisposed?: () => void,
  ) {
    super(sandboxId, [dir], timeouts, onDisposed);
    this.#dir = dir;
  }

  protected get cpuDirectory(): string {
    return this.#dir;
  }

  /** What the group was charged before it moved (see moveTo). */
  override get movedBytes(): number {
    return this.#movedBytes;
  }

  /**
   * Move the group to `dir` (under its tenant's group) with `limits`. v2 has
   * one hierarchy, so every controller moves, and memory charged so far stays
   * with the old group: the new group's memory.max is the function's
   * MemorySize less that charge, so the two together never exceed it, and the
   * old group is removed (its charge passes to the worker's group and shrinks
   * as the pages are freed).
   */
  async moveTo(dir: string, limits: CgroupLimits): Promise<void> {
    const from = this.#dir;
    if (from === dir) return;
    const charged = Number(await readText(`${from}/memory.current`));
    const memoryBytes = Math.max(MEMORY_BYTES_MIN, limits.memoryBytes - charged);
    await this.released();
    await this.migrate(from, dir, limitWrites(2, { ...limits, memoryBytes }));
    this.#dir = dir;
    this.#movedBytes = charged;
  }

  async setMemoryLimit(bytes: number): Promise<void> {
    checkMemoryBytes(bytes);
    const own = Math.max(MEMORY_BYTES_MIN, bytes - this.#movedBytes);
    await applyWrites(() => this.#dir, memoryLimitWrites(2, own));
  }

  async freeze(): Promise<void> {
    await this.freezeUntil(Date.now() + this.timeouts.freezeWaitMs);
  }

  protected async freezeUntil(deadline: number): Promise<void> {
    await writeText(`${this.#dir}/cgroup.freeze`, "1");
    // cgroup.freeze is the wish; cgroup.events' "frozen 1" says every task has stopped.
    const frozen = await pollUntil(async () => (await this.#event("frozen")) === 1, deadline);
    if (!frozen) {
      await writeText(`${this.#dir}/cgroup.freeze`, "0").catch(() => undefined);
      throw this.freezeTimeoutError(`${this.#dir}/cgroup.events`);
    }
  }

  async thaw(): Promise<void> {
    await writeText(`${this.#dir}/cgroup.freeze`, "0");
  }

  async oomKills(): Promise<number> {
    return keyedValue(await readText(`${this.#dir}/memory.events`), "oom_kill") ?? 0;
  }

  async memoryPeakBytes(): Promise<number> {
    const current = await this.memoryCurrentBytes();
    const moved = this.#movedBytes;
    if (this.#peakFile) return Math.max(current, moved + Number(await this.#peakFile.read()));
    if (!this.#peakResetUnsupported) {
      const peak = await readTextIfPresent(`${this.#dir}/memory.peak`);
      if (peak !== undefined) return Math.max(current, moved + Number(peak));
    }
    return this.#sampledPeak;
  }

  async resetPeak(): Promise<void> {
    this.#peakFile ??= this.#peakResetUnsupported
      ? undefined
      : await HeldFile.open(`${this.#dir}/memory.peak`);
    if (this.#peakFile) {
      try {
        await this.#peakFile.write("reset");
        return;
      } catch {
        await this.#peakFile.close();
        this.#peakFile = undefined;
      }
    }
    // Before 6.12 memory.peak cannot be reset: from here on the peak is sampled.
    this.#peakResetUnsupported = true;
    this.#sampledPeak = 0;
    await this.memoryCurrentBytes();
  }

  /** Including what was charged before a move (an upper bound: that part only shrinks). */
  async memoryCurrentBytes(): Promise<number> {
    const current = this.#movedBytes + Number(await readText(`${this.#dir}/memory.current`));
    this.#sampledPeak = Math.max(this.#sampledPeak, current);
    return current;
  }

  /** "populated 0": no process in the group or below it. */
  async isEmpty(): Promise<boolean> {
    const populated = await this.#event("populated");
    return populated === undefined ? (await this.pids()).length === 0 : populated === 0;
  }

  protected async killByKernel(): Promise<boolean> {
    this.#hasKill ??= await exists(`${this.#dir}/cgroup.kill`);
    if (!this.#hasKill) return false;
    await writeText(`${this.#dir}/cgroup.kill`, "1");
    return true;
  }

  protected override async released(): Promise<void> {
    await this.#peakFile?.close();
    this.#peakFile = undefined;
  }

  async #event(key: string): Promise<number | undefined> {
    const events = await readTextIfPresent(`${this.#dir}/cgroup.events`);
    return events === undefined ? undefined : keyedValue(events, key);
  }
}
