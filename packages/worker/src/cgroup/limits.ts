/**
 * A sandbox's limits and the cgroup files that carry them, as pure data so
 * the mapping is testable without a kernel. The values follow Lambda's quotas
 * (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
 * memory is the function's MemorySize for everything the runtime starts, with
 * no swap to stretch it; 1,024 processes/threads; CPU shared by weight so a
 * spinning tenant gets its share and no more.
 *
 * v1 and v2 name the same limits differently (Documentation/admin-guide/
 * cgroup-v1/memory.rst, pids.rst, scheduler/sched-design-CFS.rst for
 * cpu.shares; cgroup-v2.rst for memory.max, memory.swap.max, pids.max,
 * cpu.weight).
 */
import type { CgroupVersion } from "./detect.js";

export interface CgroupLimits {
  /** Memory for the whole process tree, page cache and tmpfs pages included: the function's MemorySize. */
  memoryBytes: number;
  /** Processes and threads together (the kernel counts tasks). */
  pidsMax: number;
  /** 1..10000 on cgroup v2's scale, where 100 is the default share. */
  cpuWeight: number;
}

/** Lambda's limit on processes and threads in an execution environment. */
export const LAMBDA_PIDS_MAX = 1024;
/** Every sandbox the same share: v2's default weight. */
export const DEFAULT_CPU_WEIGHT = 100;

export const CPU_WEIGHT_MIN = 1;
export const CPU_WEIGHT_MAX = 10_000;
/** Below this a runtime cannot even start; a smaller number is a unit mistake (MB for bytes). */
export const MEMORY_BYTES_MIN = 4 * 1024 * 1024;

export type CgroupController = "memory" | "pids" | "cpu";

/** One value to write into one controller's file of a sandbox's group. */
export interface LimitWrite {
  controller: CgroupController;
  file: string;
  value: string;
  /** Written only where the file exists: swap accounting is a kernel option (v1 swapaccount=1, v2 CONFIG_MEMCG_SWAP). */
  ifPresent: boolean;
}

/** Throws a RangeError naming the bad property; returns the limits unchanged. */
export function checkLimits(limits: CgroupLimits): CgroupLimits {
  checkMemoryBytes(limits.memoryBytes);
  if (!Number.isSafeInteger(limits.pidsMax) || limits.pidsMax < 1) {
    throw new RangeError(`pidsMax must be a positive integer, not ${limits.pidsMax}`);
  }
  if (
    !Number.isInteger(limits.cpuWeight) ||
    limits.cpuWeight < CPU_WEIGHT_MIN ||
    limits.cpuWeight > CPU_WEIGHT_MAX
  ) {
    throw new RangeError(
      `cpuWeight must be an integer in ${CPU_WEIGHT_MIN}..${CPU_WEIGHT_MAX}, not ${limits.cpuWeight}`,
    );
  }
  return limits;
}

export function checkMemoryBytes(memoryBytes: number): void {
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes < MEMORY_BYTES_MIN) {
    throw new RangeError(
      `memoryBytes must be an integer of at least ${MEMORY_BYTES_MIN}, not ${memoryBytes}`,
    );
  }
}

/**
 * cpu.shares for a v2 weight. v1's default share is 1024 where v2's default
 * weight is 100, so weight×1024/100 keeps the default at the default; the
 * kernel accepts shares 2..262144.
 */
export function cpuSharesForWeight(weight: number): number {
  return Math.min(262_144, Math.max(2, Math.round((weight * 1024) / 100)));
}

/**
 * The writes that set a group's memory limit, in an order the kernel
 * accepts. v1 requires memory.limit_in_bytes ≤ memory.memsw.limit_in_bytes at
 * every moment, so a limit going up moves memsw first and one going down
 * moves it last (a new group starts unlimited: going down). v2's limits are
 * independent; memory.swap.max = 0 keeps the whole MemorySize in RAM, as
 * Lambda has no swap.
 */
export function memoryLimitWrites(
  version: CgroupVersion,
  memoryBytes: number,
  direction: "down" | "up" = "down",
): LimitWrite[] {
  const value = String(memoryBytes);
  if (version === 2) {
    return [
      { controller: "memory", file: "memory.max", value, ifPresent: false },
      { controller: "memory", file: "memory.swap.max", value: "0", ifPresent: true },
    ];
  }
  const ram: LimitWrite = {
    controller: "memory",
    file: "memory.limit_in_bytes",
    value,
    ifPresent: false,
  };
  // memsw limits memory plus swap: equal to the memory limit means no swap at all.
  const ramAndSwap: LimitWrite = {
    controller: "memory",
    file: "memory.memsw.limit_in_bytes",
    value,
    ifPresent: true,
  };
  return direction === "down" ? [ram, ramAndSwap] : [ramAndSwap, ram];
}

/** Every write that puts `limits` on a new (unlimited) sandbox group. */
export function limitWrites(version: CgroupVersion, limits: CgroupLimits): LimitWrite[] {
  checkLimits(limits);
  const writes = memoryLimitWrites(version, limits.memoryBytes, "down");
  writes.push({
    controller: "pids",
    file: "pids.max",
    value: String(limits.pidsMax),
    ifPresent: false,
  });
  writes.push(
    version === 2
      ? { controller: "cpu", file: "cpu.weight", value: String(limits.cpuWeight), ifPresent: false }
      : {
          controller: "cpu",
          file: "cpu.shares",
          value: String(cpuSharesForWeight(limits.cpuWeight)),
          ifPresent: false,
        },
  );
  return writes;
}
