/**
 * A sandbox's group on cgroup v1: one directory per controller hierarchy
 * (memory, pids, cpu, freezer), each joined separately.
 * Documentation/admin-guide/cgroup-v1/: memory.rst (limit_in_bytes,
 * memsw.limit_in_bytes, max_usage_in_bytes reset by writing 0, oom_control's
 * oom_kill counter), pids.rst, freezer-subsystem.rst (FREEZING until every
 * task is stopped, then FROZEN). v1 has no kill switch: killing is the
 * freeze-kill-thaw loop of SandboxCgroup.
 */
import { readText, writeText } from "./cgroup-fs.js";
import type { V1Controller } from "./detect.js";
import { checkMemoryBytes, memoryLimitWrites } from "./limits.js";
import type { LimitWrite } from "./limits.js";
import { SandboxCgroup, applyWrites, keyedValue, pollUntil } from "./sandbox-cgroup.js";
import type { SandboxCgroupTimeouts } from "./sandbox-cgroup.js";

export class V1SandboxCgroup extends SandboxCgroup {
  override readonly version = 1;
  #dirs: Readonly<Record<V1Controller, string>>;

  constructor(
    sandboxId: string,
    dirs: Readonly<Record<V1Controller, string>>,
    timeouts: SandboxCgroupTimeouts,
    onDisposed?: () => void,
  ) {
    super(sandboxId, [dirs.memory, dirs.pids, dirs.cpu, dirs.freezer], timeouts, onDisposed);
    this.#dirs = dirs;
  }

  protected get cpuDirectory(): string {
    return this.#dirs.cpu;
  }

  /**
   * Move the group's cpu membership to `cpuDir` (its tenant's group) with
   * `writes` (its weight) applied first. Only the cpu hierarchy changes: memory,
   * pids and the freezer stay where the launcher put them, with what they
   * have counted.
   */
  async moveCpu(cpuDir: string, writes: readonly LimitWrite[]): Promise<void> {
    const from = this.#dirs.cpu;
    if (from === cpuDir) return;
    await this.migrate(from, cpuDir, writes);
    this.#dirs = { ...this.#dirs, cpu: cpuDir };
  }

  async setMemoryLimit(bytes: number): Promise<void> {
    checkMemoryBytes(bytes);
    const current = Number(await readText(`${this.#dirs.memory}/memory.limit_in_bytes`));
    const writes = memoryLimitWrites(1, bytes, bytes > current ? "up" : "down");
    await applyWrites(() => this.#dirs.memory, writes);
  }

  async freeze(): Promise<void> {
    await this.freezeUntil(Date.now() + this.timeouts.freezeWaitMs);
  }

  protected async freezeUntil(deadline: number): Promise<void> {
    const state = `${this.#dirs.freezer}/freezer.state`;
    await writeText(state, "FROZEN");
    // The write returns while tasks may still be FREEZING; only FROZEN means all stopped.
    const frozen = await pollUntil(
      async () => (await readText(state)).trim() === "FROZEN",
      deadline,
    );
    if (!frozen) {
      await writeText(state, "THAWED").catch(() => undefined);
      throw this.freezeTimeoutError(state);
    }
  }

  async thaw(): Promise<void> {
    await writeText(`${this.#dirs.freezer}/freezer.state`, "THAWED");
  }

  /**
   * oom_control's oom_kill counter (Linux 4.13+). Older kernels only count
   * limit hits (memory.failcnt), which include hits reclaim resolved without
   * a kill: the best answer they offer, and an over-count.
   */
  async oomKills(): Promise<number> {
    const control = await readText(`${this.#dirs.memory}/memory.oom_control`);
    const kills = keyedValue(control, "oom_kill");
    if (kills !== undefined) return kills;
    return Number(await readText(`${this.#dirs.memory}/memory.failcnt`));
  }

  async memoryPeakBytes(): Promise<number> {
    return Number(await readText(`${this.#dirs.memory}/memory.max_usage_in_bytes`));
  }

  /** Writing 0 sets the recorded maximum to the current usage. */
  async resetPeak(): Promise<void> {
    await writeText(`${this.#dirs.memory}/memory.max_usage_in_bytes`, "0");
  }

  async memoryCurrentBytes(): Promise<number> {
    return Number(await readText(`${this.#dirs.memory}/memory.usage_in_bytes`));
  }

  async isEmpty(): Promise<boolean> {
    return (await this.pids()).length === 0;
  }

  protected async killByKernel(): Promise<boolean> {
    return Promise.resolve(false);
  }
}
