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
} from "./options.js";
export { createTenantConcurrencyAdmission, DEFAULT_TENANT_MAX_CONCURRENCY } from "./admission.js";
export { WorkerDirectory, rendezvousScore } from "./worker-directory.js";
export { EVENT_ATTEMPTS_HEADER } from "./event-dispatcher.js";
export { ApiErrors, ThrottleReasons } from "./api-errors.js";
export { InvocationTypes } from "./invoke-api.js";

export type { Frontend, FrontendDeps, ServeOptions, ServedFrontend } from "./frontend.js";
export type { FrontendOptions, ResolvedFrontendOptions } from "./options.js";
export type { Admission, Ticket, Rejection } from "./admission.js";
export type { Claim, WorkerDirectoryOptions } from "./worker-directory.js";
export type { FrontendEnv } from "./http-context.js";
export type { InvocationType } from "./invoke-api.js";
