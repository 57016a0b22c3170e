/**
 * @module
 * A control group per sandbox, so Lambda's limits hold for every process a
 * handler starts, not only the runtime's own: MemorySize for the whole tree,
 * at most 1,024 tasks, a CPU weight, the group frozen between invocations,
 * killed whole at timeout and on recycle (double-forked `setsid` children
 * included: a process can leave its session, not its cgroup), out-of-memory
 * kills and Max Memory Used read from the kernel, and emptiness known before
 * a sandbox's uid is handed out again.
 *
 * cgroup v1 (separate hierarchies per controller, freezer.state, no kill
 * switch) and v2 (one hierarchy, cgroup.freeze, cgroup.kill) are both
 * supported; detectCgroups chooses from what is mounted. Joining is race-free:
 * see join-script.ts.
 *
 * Usage: detectCgroups() → CgroupTree.open(workerName, support) →
 * removeStale() → create(sandboxId, limits) per sandbox → spawn("/bin/sh",
 * group.launcherArgs(cmd, args)) → freeze/thaw around invocations →
 * dispose() on recycle → close() when the worker stops.
 */
export {
  detectCgroups,
  chooseCgroups,
  parseMountInfo,
  parseProcMounts,
  parseProcCgroup,
} from "./detect.js";
export { CgroupTree, GUST_GROUP } from "./cgroup-tree.js";
export { SandboxCgroup, DEFAULT_KILL_WAIT_MS, DEFAULT_FREEZE_WAIT_MS } from "./sandbox-cgroup.js";
export {
  limitWrites,
  memoryLimitWrites,
  cpuSharesForWeight,
  checkLimits,
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

export type { CgroupSupport, CgroupVersion, CgroupHierarchy, CgroupMount } from "./detect.js";
export type { CgroupTreeOptions } from "./cgroup-tree.js";
export type { CgroupLimits, LimitWrite, CgroupController } from "./limits.js";
