/**
 * Messages on the bus: discriminated unions on `type`, requests apart from
 * replies. Bodies are msgpack (see codec.ts); binary payloads are Uint8Array.
 */
import type { SerializedError } from "./errors.js";
import type { FunctionRecord } from "./functions.js";
import type { RuntimeVersionRef } from "./runtime-versions.js";

/** How a sandbox was found for an invocation. */
export const StartKinds = {
  /** An idle sandbox that already ran this function revision. */
  warm: "warm",
  /** A started, function-less sandbox from the pool, given this function's code. */
  preinitialized: "preinitialized",
  /** A new process spawned for this invocation. */
  cold: "cold",
} as const;
export type StartKind = (typeof StartKinds)[keyof typeof StartKinds];

/** What happened to one invocation; the runtime-upgrade rollout counts these. */
export const Outcomes = {
  success: "success",
  /** The handler threw or reported an error. */
  functionError: "function-error",
  timeout: "timeout",
  /** The sandbox process died during the invocation (incl. memory limit). */
  crash: "crash",
  /** The handler could not be loaded (init error). */
  initError: "init-error",
} as const;
export type Outcome = (typeof Outcomes)[keyof typeof Outcomes];

// ---- frontend → worker -------------------------------------------------------

/** The subset of a function a worker needs to run it, and the runtime version to run it on. */
export type InvokeTarget = Pick<
  FunctionRecord,
  | "tenantId"
  | "name"
  | "functionArn"
  | "runtime"
  | "handler"
  | "timeoutSec"
  | "memoryMb"
  | "environment"
  | "codeSha256"
  | "revisionId"
> & {
  /**
   * The runtime version the frontend chose for this invocation. Absent (a
   * frontend of an older release), the worker runs the runtime's built-in
   * default.
   */
  runtimeVersion?: RuntimeVersionRef;
  /**
   * Whether runtimeVersion is its runtime's default as the frontend knows it:
   * workers keep a pool of pre-initialized sandboxes of the default version.
   */
  runtimeVersionIsDefault?: boolean;
  /**
   * The tenant may not reach the world from its sandboxes (its `egress` in the
   * tenants file); absent, it may, as in Lambda.
   */
  egress?: "deny";
};

export interface InvokeRequest {
  type: "invoke";
  requestId: string;
  target: InvokeTarget;
  payload: Uint8Array;
  /** Base64 client context, passed to the sandbox as Lambda-Runtime-Client-Context. */
  clientContext?: string;
  /** Return the last 4 KB of the invocation's log. */
  tailLog: boolean;
  /** X-Ray style trace header, handed to the sandbox as Lambda-Runtime-Trace-Id. */
  traceId?: string;
  /**
   * The admission slot the invocation holds: which frontend admitted it
   * (its per-start gossip id) and in which of its admission pools. Workers
   * count running invocations by it, so that when that frontend dies its
   * peers can learn what it left running (WorkerCensus). Absent from
   * frontends without fleet admission.
   */
  admission?: AdmissionSlot;
}

export interface AdmissionSlot {
  frontendId: string;
  /** The admission pool's key, opaque to workers. */
  pool: string;
}

export type WorkerRequest = InvokeRequest;

// ---- worker → frontend -------------------------------------------------------

export interface InvokeResult {
  type: "invoke.result";
  requestId: string;
  outcome: Outcome;
  /** The handler's response, or Lambda's error JSON when outcome is not success. */
  payload: Uint8Array;
  executedVersion: string;
  /** The ARN of the runtime version the invocation ran on (absent from older workers). */
  runtimeVersionArn?: string;
  startKind: StartKind;
  durationMs: number;
  /** Last 4 KB of the log, as text (the frontend base64-encodes it), when asked. */
  logTail?: string;
}

/** The worker did not run the invocation; `error.retryable` says if another may. */
export interface InvokeRejected {
  type: "invoke.rejected";
  requestId: string;
  error: SerializedError;
}

export type InvokeReply = InvokeResult | InvokeRejected;

// ---- worker announcements ----------------------------------------------------

export interface WarmFunction {
  /** functionKey(tenantId, name) */
  functionKey: string;
  revisionId: string;
  /** Sandboxes of this function idle right now. */
  idle: number;
  /** Sandboxes of this function in all. */
  total: number;
}

export interface WorkerHeartbeat {
  type: "worker.heartbeat";
  workerId: string;
  seq: number;
  /** Sender's clock, ms since epoch; receivers use their own clock for expiry. */
  sentAt: number;
  /** Receivers drop a worker silent for a few of these. */
  intervalMs: number;
  capacity: { sandboxes: number; memoryMb: number };
  used: { sandboxes: number; memoryMb: number };
  warm: WarmFunction[];
  draining: boolean;
}

export interface WorkerGone {
  type: "worker.gone";
  workerId: string;
}

export type WorkerAnnouncement = WorkerHeartbeat | WorkerGone;

/** Asks every worker to publish a heartbeat now. */
export interface WorkerDiscover {
  type: "worker.discover";
  frontendId: string;
}

/**
 * A frontend asks one worker what invocations admitted by these (departed)
 * frontends it still runs, queued for a sandbox included.
 */
/**
 * In a census request, the frontends the asker never heard: every frontend
 * not in `known` (see the admission package's README, "Fleet membership").
 */
export const CENSUS_STRANGERS = "*";

export interface WorkerCensus {
  type: "worker.census";
  /** Frontends to count; `*` also counts every frontend not in `known`. */
  frontendIds: string[];
  /** With `*`: the asker and its live peers, whose own reports count what they run. */
  known?: string[];
}

export interface WorkerCensusReply {
  type: "worker.census.reply";
  workerId: string;
  /** frontendId → admission pool → invocations running; frontends with none are left out. */
  running: Record<string, Record<string, number>>;
}

// ---- the async (Event) queue -------------------------------------------------

export interface EventInvocation {
  type: "event";
  requestId: string;
  tenantId: string;
  functionName: string;
  payload: Uint8Array;
  /** ms since epoch */
  enqueuedAt: number;
  traceId?: string;
}

// ---- runtime rollouts ---------------------------------------------------------

/**
 * One frontend's outcome counts since its last report, for functions in a
 * runtime rollout (Subjects.rolloutOutcomes, msgpack via encodeRecord).
 */
export interface RolloutOutcomeReport {
  type: "rollout.outcomes";
  frontendId: string;
  entries: RolloutOutcomeEntry[];
}

export interface RolloutOutcomeEntry {
  runtime: string;
  tenantId: string;
  name: string;
  functionArn: string;
  /** The version the invocations ran on: the rollout's old or new one. */
  side: "old" | "new";
  /** Outcome → invocations. */
  counts: Partial<Record<Outcome, number>>;
  /** errorType (from the failed replies' error JSON) → invocations. */
  errorTypes: Record<string, number>;
  sampleError?: { errorType: string; errorMessage: string };
}

/** The coordinator's verdict on one function (Subjects.rolloutVerdict, JSON). */
export interface RolloutVerdictEvent {
  type: "rollout.verdict";
  runtime: string;
  fromVersion: string;
  toVersion: string;
  tenantId: string;
  functionName: string;
  functionArn: string;
  verdict: "compatible" | "incompatible";
  reason: string;
  /** The version the function now runs on. */
  runtimeVersionArn: string;
  counts: { old: Partial<Record<Outcome, number>>; new: Partial<Record<Outcome, number>> };
  errorTypes: Record<string, number>;
  sampleError?: { errorType: string; errorMessage: string };
  decidedAt: number;
}

export type Message =
  | WorkerRequest
  | InvokeReply
  | WorkerAnnouncement
  | WorkerDiscover
  | WorkerCensus
  | WorkerCensusReply
  | EventInvocation;
export type MessageType = Message["type"];
