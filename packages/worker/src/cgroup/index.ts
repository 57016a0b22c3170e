/**
 * @module
 * A control group per sandbox, so that Lambda's limits hold for every process
 * a handler starts and not only for the runtime it was spawned as. A process
 * can leave its process group and session (`setsid … &`); it cannot leave its
 * cgroup. Per-process rlimits and /proc sampling (memory-watchdog.ts) lose
 * such processes; the kernel does not.
 *
 * What Lambda promises, and the files that keep it
 * (Documentation/admin-guide/cgroup-v1/*.rst, cgroup-v2.rst):
 *
 *   limit / event            v1 (one hierarchy each)          v2 (one hierarchy)
 *   MemorySize, whole tree   memory.limit_in_bytes            memory.max
 *   …and no swap             memory.memsw.limit_in_bytes      memory.swap.max = 0
 *   1,024 tasks              pids.max                         pids.max
 *   fair CPU per tenant      cpu.shares (weight×1024/100)     cpu.weight
 *   CPU ∝ MemorySize         cpu.cfs_quota_us, cfs_burst_us   cpu.max, cpu.max.burst
 *   frozen between calls     freezer.state FROZEN, polled     cgroup.freeze, cgroup.events "frozen 1"
 *   killed at timeout        freeze, SIGKILL each, thaw, loop cgroup.kill (5.14+), else the same loop
 *   OOM kill reported        memory.oom_control oom_kill      memory.events oom_kill
 *   Max Memory Used          memory.max_usage_in_bytes (0 resets)  memory.peak (6.12+ resets), else sampled
 *   nothing left             every cgroup.procs empty         cgroup.events "populated 0"
 *
 * v1 needs four directories per sandbox and four joins; v2 needs one of each,
 * but controllers reach a group only through its parent's
 * cgroup.subtree_control, and a group that hands them out may hold no
 * processes, so Gust's groups live at `<top>/gust/<worker>/<sandbox>` rather
 * than under the worker's own group. detectCgroups chooses from what is
 * mounted and says why when neither is usable (the worker then refuses
 * untrusted tenants).
 *
 * CPU is shared in two levels: every tenant with sandboxes on the worker has
 * a group of equal weight (`<worker>/tenant-<id>/`), and its sandboxes share
 * it, so a tenant's share does not grow with the number of sandboxes it keeps
 * busy. On v1 only the cpu hierarchy has that level; on v2 the sandbox's
 * whole group sits below its tenant's. A pre-initialized sandbox, started
 * before its tenant is known, moves there when assigned
 * (CgroupTree.assignTenant). Under Lambda's CPU model a sandbox is also capped
 * at MemorySize / 1,769 MB of a CPU once its init is done (setCpuLimit):
 * weights divide the CPU that is contended, but only the cap keeps a
 * neighbour's wake-up latency from waiting behind a spinning function.
 *
 * Joining is race-free: the launcher is /bin/sh running as root, which writes
 * its own pid into each cgroup.procs and then execs — into the runtime, after
 * dropping to the sandbox's uid — so nothing it forks is ever outside
 * (join-script.ts):
 *
 *   spawn("/bin/sh", group.launcherArgs("setpriv",
 *     ["--reuid", uid, "--regid", gid, "--clear-groups", "--", runtime, ...args]))
 *
 * Lifecycle: detectCgroups() → CgroupTree.open(workerName, support) →
 * removeStale() before handing out uids → create(sandboxId, limits) per
 * sandbox → launch → assignTenant and setMemoryLimit at assignment →
 * setCpuLimit after init → thaw/freeze around each
 * invocation, oomKills() and memoryPeakBytes() after it → killAll() at a
 * timeout → dispose() on recycle (the uid is free once it resolves) →
 * close() when the worker stops. An out-of-memory kill takes one process
 * (the kernel's choice, usually the largest), not the group: a rise in
 * oomKills() is the worker's cue to end the sandbox and report it as Lambda
 * does.
 */
export { detectCgroups, chooseCgroups, parseMountInfo, parseProcMounts } from "./detect.js";
export { CgroupTree, GUST_GROUP, TENANT_GROUP_PREFIX, tenantGroupName } from "./cgroup-tree.js";
export { SandboxCgroup, DEFAULT_KILL_WAIT_MS, DEFAULT_FREEZE_WAIT_MS } from "./sandbox-cgroup.js";
export {
  limitWrites,
  memoryLimitWrites,
  cpuSharesForWeight,
  cpuCoresForMemory,
  cpuLimitWrites,
  cpuWeightWrite,
  checkLimits,
  LAMBDA_MB_PER_VCPU,
  CPU_PERIOD_US,
  SandboxCpuModels,
  LAMBDA_PIDS_MAX,
  DEFAULT_CPU_WEIGHT,
} from "./limits.js";
export {
  joinScriptFor,
  launcherArgsFor,
  shellQuote,
  JOIN_FAILED_EXIT_CODE,
} from "./join-script.js";
export { CgroupError } from "./errors.js";
export { MemoryPeakReader, killGroupNow } from "./sync-access.js";

export type { CgroupSupport, CgroupVersion, CgroupHierarchy, CgroupMount } from "./detect.js";
export type { CgroupTreeOptions } from "./cgroup-tree.js";
export type { CgroupLimits, LimitWrite, CgroupController, SandboxCpuModel } from "./limits.js";
