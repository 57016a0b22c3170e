/**
 * @module
 * The function registry and tenant directory, on the store seams of
 * @gust/bus (in memory for `gust dev`, JetStream KV and object store in a fleet).
 */
export {
  FunctionRegistry,
  codeBlobName,
  effectiveRuntimeVersion,
  DEFAULT_REGION,
} from "./functions.js";
export { RuntimeVersionRegistry } from "./runtime-versions.js";
export { TenantDirectory } from "./tenants.js";
export {
  TenantKeyring,
  SealedSecretError,
  generateTenantKey,
  formatTenantKey,
  parseTenantKeys,
  readTenantKeyFile,
  writeTenantKeyFile,
  tenantKeyId,
  TENANT_KEY_BYTES,
  SEALED_FORMAT,
} from "./tenant-key.js";
export {
  checkPrivateFile,
  assertPrivateFile,
  describePrivateFileProblems,
  formatMode,
} from "./private-file.js";
export {
  RolloutStore,
  RolloutStates,
  Verdicts,
  emptyCounts,
  emptyTally,
  failuresOf,
  rolloutKey,
  totalOf,
} from "./rollouts.js";
export { resolveFunctionConfig, validateFunctionName } from "./function-config.js";
export {
  loadTenantsConfig,
  parseTenantsConfig,
  parseTenantRecord,
  accountIdFor,
  DEFAULT_MAX_CONCURRENCY,
} from "./tenant-config.js";

export type { CodeInfo, FunctionRegistryOptions, ListOptions, FunctionPage } from "./functions.js";
export type {
  Tenant,
  Credential,
  TenantRecord,
  TenantWebhook,
  KeyLookup,
  TenantDirectoryOptions,
} from "./tenants.js";
export type { PrivateFileCheck } from "./private-file.js";
export type {
  RuntimeVersionRecord,
  RuntimeVersionInput,
  RuntimeVersionChoice,
  RuntimeVersionRegistryOptions,
} from "./runtime-versions.js";
export type { FunctionConfigInput, FunctionConfig } from "./function-config.js";
export type {
  FunctionProgress,
  OutcomeCounts,
  RolloutRecord,
  RolloutSide,
  RolloutState,
  Verdict,
  VerdictRecord,
  VersionTally,
} from "./rollouts.js";
