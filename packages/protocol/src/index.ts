/**
 * @module
 * Gust's wire protocol: NATS subjects, message types, the msgpack codec,
 * header names and serializable errors. No I/O.
 */
export {
  PROTOCOL_VERSION,
  SUBJECT_PREFIX,
  Subjects,
  Buckets,
  Streams,
  isSubjectToken,
} from "./subjects.js";
export { BusHeaders, LambdaHeaders, RuntimeHeaders, MSGPACK_CONTENT_TYPE } from "./headers.js";
export {
  Runtimes,
  FunctionLimits,
  RESERVED_ENVIRONMENT_VARIABLES,
  isRuntime,
  isCustomRuntime,
  functionKey,
  functionArn,
  lambdaTimestamp,
} from "./functions.js";
export { StartKinds, Outcomes, CENSUS_STRANGERS } from "./messages.js";
export {
  RuntimeUpdateModes,
  NODE_BOOTSTRAP_VERSIONS,
  RECIPE_NODE_FLAGS,
  grantedPermissions,
  RUNTIME_VERSION_PATTERN,
  BUILT_IN_RUNTIME_VERSIONS,
  isRuntimeUpdateMode,
  runtimeVersionName,
  runtimeVersionLabel,
  runtimeVersionHash,
  runtimeVersionArn,
  parseRuntimeVersionArn,
  parseRuntimeRecipe,
  parseRuntimeVersionRef,
  builtInRuntimeVersionRef,
  builtInDefaultRuntimeVersion,
} from "./runtime-versions.js";
export { encode, decode, decodeAs, encodeRecord, decodeRecord } from "./codec.js";
export {
  GustError,
  DecodeError,
  CapacityError,
  BusTimeoutError,
  NoRespondersError,
  ConflictError,
  ConfigError,
  LambdaApiError,
  LambdaErrors,
  serializeError,
  rebuildError,
} from "./errors.js";

export type { Runtime, FunctionRecord } from "./functions.js";
export type {
  StartKind,
  Outcome,
  InvokeTarget,
  InvokeRequest,
  WorkerRequest,
  InvokeResult,
  InvokeRejected,
  InvokeReply,
  WarmFunction,
  WorkerHeartbeat,
  WorkerGone,
  WorkerAnnouncement,
  WorkerDiscover,
  WorkerCensus,
  WorkerCensusReply,
  AdmissionSlot,
  EventInvocation,
  RolloutOutcomeReport,
  RolloutOutcomeEntry,
  RolloutVerdictEvent,
  Message,
  MessageType,
} from "./messages.js";
export type { SerializedError, GustErrorOptions } from "./errors.js";
export type {
  RuntimeUpdateMode,
  RuntimeManagementConfig,
  NodeRuntimeRecipe,
  NodeRuntimePermissions,
  ProvidedRuntimeRecipe,
  RuntimeRecipe,
  RuntimeVersionRef,
  BuiltInRuntimeVersion,
} from "./runtime-versions.js";
