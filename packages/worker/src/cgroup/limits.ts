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
/**
 * Lambda gives a function CPU in proportion to its MemorySize, one vCPU at
 * 1,769 MB (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
 */
export const LAMBDA_MB_PER_VCPU = 1769;
/**
 * The period a CPU quota is counted over. Shorter than the kernel's 100 ms
 * default so a sandbox at its quota waits a few ms, not tens of ms, and a
 * neighbour waiting behind it waits at most one period's share.
 */
export const CPU_PERIOD_US = 20_000;
/** The kernel's smallest quota (sched-bwc.rst: 1 ms). */
export const CPU_QUOTA_MIN_US = 1_000;

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

/** The cores a function of `memoryMb` gets under Lambda's rule. */
export function cpuCoresForMemory(memoryMb: number): number {
  if (!Number.isFinite(memoryMb) || memoryMb <= 0)
    throw new RangeError(`memoryMb must be a positive number, not ${memoryMb}`);
  return memoryMb / LAMBDA_MB_PER_VCPU;
}

/**
 * The writes that cap a group at `cores` of CPU per CPU_PERIOD_US (undefined:
 * no cap), with a burst of one more quota so a sandbox that was idle runs a
 * short invocation at full speed and only sustained use is held to the quota
 * (sched-bwc.rst: cpu.cfs_burst_us, 5.14+; cgroup-v2.rst: cpu.max.burst).
 * v1 requires burst ≤ quota at every moment, so the burst goes last when a
 * cap is set and first when it is lifted.
 */
export function cpuLimitWrites(version: CgroupVersion, cores: number | undefined): LimitWrite[] {
  if (cores !== undefined && (!Number.isFinite(cores) || cores <= 0))
    throw new RangeError(`cores must be a positive number, not ${cores}`);
  const quota =
    cores === undefined
      ? undefined
      : String(Math.max(CPU_QUOTA_MIN_US, Math.round(cores * CPU_PERIOD_US)));
  const write = (file: string, value: string, ifPresent = false): LimitWrite => ({
    controller: "cpu",
    file,
    value,
    ifPresent,
  });
  if (version === 2) {
    return quota === undefined
      ? [write("cpu.max.burst", "0", true), write("cpu.max", `max ${CPU_PERIOD_US}`)]
      : [write("cpu.max", `${quota} ${CPU_PERIOD_US}`), write("cpu.max.burst", quota, true)];
  }
  return quota === undefined
    ? [write("cpu.cfs_burst_us", "0", true), write("cpu.cfs_quota_us", "-1")]
    : [
        write("cpu.cfs_period_us", String(CPU_PERIOD_US)),
        write("cpu.cfs_quota_us", quota),
        write("cpu.cfs_burst_us", quota, true),
      ];
}

/** The weight write alone: a tenant's group, or a sandbox's group moved under one. */
export function cpuWeightWrite(version: CgroupVersion, weight: number): LimitWrite {
  return version === 2
    ? { controller: "cpu", file: "cpu.weight", value: String(weight), ifPresent: false }
    : {
        controller: "cpu",
        file: "cpu.shares",
        value: String(cpuSharesForWeight(weight)),
        ifPresent: false,
      };
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
  writes.push(cpuWeightWrite(version, limits.cpuWeight));
  return writes;
}

/**
 * How sandboxes share the CPU: `memory` caps each at its MemorySize's share
 * (Lambda's model) on top of equal weights per tenant; `shared` uses the
 * weights alone.
 */
export const SandboxCpuModels = ["memory", "shared"] as const;
export type SandboxCpuModel = (typeof SandboxCpuModels)[number];
