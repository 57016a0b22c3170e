/**
 * @module
 * Gust's frontend: Lambda's Invoke and control API over HTTP (hono), SigV4
 * authentication, admission, routing to workers and the Event queue's
 * dispatcher.
 */
export { createFrontend, serveFrontend } from "./frontend.js";
export {
  resolveFrontendOptions,
  DEFAULT_REGION,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_CODE_LOCATION_TTL_SEC,
  DEFAULT_INVOKE_TIMEOUT_MARGIN_MS,
  DEFAULT_MAX_WORKER_TRIES,
  DEFAULT_MISSED_HEARTBEAT_LIMIT,
  DEFAULT_THROTTLE_RETRY_AFTER_SEC,
  DEFAULT_EVENT_RETRY_DELAYS_MS,
  DEFAULT_MAX_EVENT_AGE_MS,
  DEFAULT_DISPATCHER_CONCURRENCY,
  DEFAULT_EVENT_ACK_WAIT_MS,
  DEFAULT_EVENT_THROTTLE_BACKOFF_MS,
  DEFAULT_EVENT_THROTTLE_MAX_BACKOFF_MS,
  DEFAULT_EVENT_THROTTLE_HOLD_MS,
  DEFAULT_FLEET_SIZE_HINT,
  MIN_ADMIN_TOKEN_LENGTH,
  MAX_CODE_REQUEST_BYTES,
  DEFAULT_CODE_UPLOADS_IN_FLIGHT,
  DEFAULT_CODE_UPLOAD_BYTES_IN_FLIGHT,
  DEFAULT_CODE_UPLOAD_WAIT_MS,
} from "./options.js";
export { UploadBudget } from "./upload-budget.js";
export { acquire } from "./admission.js";
export { FleetAdmission, createFleetAdmission } from "./admission-fleet.js";
export { GossipTransport } from "./gossip.js";
export { ADMIN_CONCURRENCY_PATH } from "./admin-api.js";
export { RUNTIME_ADMIN_PATH } from "./runtime-management-api.js";
export {
  registerRolloutApi,
  DEFAULT_ROLLOUT_FRACTION,
  DEFAULT_ROLLOUT_MIN_SAMPLES,
  DEFAULT_ROLLOUT_FAILURE_BUDGET,
} from "./rollout-api.js";
export { RolloutReporter, DEFAULT_ROLLOUT_REPORT_MS } from "./rollout-reporter.js";
export { rolloutViewOf } from "./rollout-view.js";
export { presignUrl } from "./sigv4.js";
export { WorkerDirectory, rendezvousScore } from "./worker-directory.js";
export { EVENT_ATTEMPTS_HEADER, SERVICE_ERROR_RETRY_DELAY_MS } from "./event-dispatcher.js";
export { resolveDrainOptions, DEFAULT_DRAIN_DELAY_MS, DEFAULT_DRAIN_TIMEOUT_MS } from "./drain.js";
export { ApiErrors, ThrottleReasons, ThrottleError } from "./api-errors.js";
export { InvocationTypes } from "./invoke-api.js";

export type { Frontend, FrontendDeps, ServeOptions, ServedFrontend } from "./frontend.js";
export type { FrontendOptions, ResolvedFrontendOptions } from "./options.js";
export type { Admission, Ticket, Rejection } from "./admission.js";
export type { LocalWorker } from "./invoker.js";
export type {
  FleetAdmissionDeps,
  FleetAdmissionOptions,
  FleetAdmissionRuntime,
} from "./admission-fleet.js";
export type { GossipEndpoint, GossipTransportOptions } from "./gossip.js";
export type { ConcurrencyView, ConcurrencyReport } from "./admin-api.js";
export type { RuntimeView, RuntimeVersionView } from "./runtime-management-api.js";
export type { Claim, WorkerDirectoryOptions } from "./worker-directory.js";
export type { FrontendEnv } from "./http-context.js";
export type { DrainOptions, ResolvedDrainOptions, DrainHook } from "./drain.js";
export type { InvocationType } from "./invoke-api.js";
