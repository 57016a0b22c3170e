/**
 * @module
 * The worker manager: runs invocations in sandboxes (pre-initialized, warm or
 * cold) on the runtime version each names, serves each sandbox the Lambda
 * Runtime API, enforces timeouts and memory limits, and advertises its
 * capacity on the bus.
 */
export { startWorker } from "./worker.js";
export {
  resolveWorkerOptions,
  randomWorkerId,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_KEEP_ALIVE_MS,
  DEFAULT_PREINITIALIZED_POOL_SIZE,
  DEFAULT_MAX_SANDBOXES,
  DEFAULT_MEMORY_SHARE,
  DEFAULT_SANDBOX_UID_BASE,
  DEFAULT_REGION,
  DEFAULT_INIT_TIMEOUT_MS,
  DEFAULT_EPHEMERAL_STORAGE_MB,
} from "./options.js";
export { detectJail, JAIL_OPEN_FILES, JAIL_RUNTIME_API } from "./jail.js";
export { decideIsolation, IsolationLevels } from "./isolation.js";
export { detectCgroups, SandboxCpuModels } from "./cgroup/index.js";
export { CodeUnavailableError, codeSha256Of } from "./code-cache.js";
export { ProcessSandboxFactory } from "./process-sandbox-factory.js";
export { defaultNodeRuntimeFiles, nodeRuntimeFilesFor } from "./runtime-files.js";
export { RuntimeUnavailableError } from "./runtime-version.js";
export { MAX_RUNTIME_BODY_BYTES } from "./runtime-api-server.js";
export { LOG_TAIL_BYTES } from "./log-buffer.js";
export { SandboxExitedError } from "./sandbox.js";

export type { Worker, WorkerDeps, WorkerStats } from "./worker.js";
export type { WorkerOptions, ResolvedWorkerOptions } from "./options.js";
export type { CodeSource } from "./code-cache.js";
export type {
  Sandbox,
  SandboxFactory,
  SandboxInvocation,
  SandboxResult,
  SandboxExit,
} from "./sandbox.js";
export type { PoolStats, RuntimeVersionPoolStats } from "./sandbox-pool.js";
export type { ProcessSandboxFactoryOptions } from "./process-sandbox-factory.js";
export type { NodeRuntimeFiles } from "./runtime-files.js";
export type { JailSupport } from "./jail.js";
export type { SandboxCpuModel } from "./cgroup/index.js";
export type { Isolation, IsolationLevel } from "./isolation.js";
export type { CgroupSupport } from "./cgroup/index.js";
