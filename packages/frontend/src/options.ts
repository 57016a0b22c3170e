/**
 * The frontend's options. Defaults follow Lambda where Lambda has a number
 * (retry delays, event age, clock skew, code-location lifetime); the rest are
 * Gust's own and documented here.
 */
import { randomBytes } from "node:crypto";
import {
  resolveAdmissionPolicy,
  type AdmissionPolicy,
  type AdmissionPolicyOptions,
} from "@gust/admission";
import { ConfigError, isSubjectToken } from "@gust/protocol";

export interface FrontendOptions {
  /**
   * This frontend's name on the bus (a subject token), in logs and health
   * answers. Fleet-wide admission needs an id that is new at every start (a
   * restarted frontend must not be taken for the old one, whose reports and
   * loans its peers still hold), so a name given here is suffixed with a
   * random start nonce in gossip (`instanceId`, e.g. `fe1-3fa2c1`).
   * @default a random id (then also the gossip id)
   */
  frontendId?: string;
  /** Region in ARNs a client may pass as a function name. @default "us-east-1" */
  region?: string;
  /**
   * Base URL clients reach this frontend at (behind a load balancer), used
   * for GetFunction's Code.Location. @default the URL of the request being answered
   */
  publicUrl?: string;
  /** A signed request whose X-Amz-Date is further off than this is refused (SigV4's rule). @default 900000 (15 min) */
  maxClockSkewMs?: number;
  /** How long GetFunction's presigned Code.Location stays valid (Lambda: 10 minutes). @default 600 */
  codeLocationTtlSec?: number;
  /**
   * Added to a function's timeout to bound the wait for its worker's reply,
   * leaving room to start a sandbox and to report the function's own timeout.
   * @default 10000
   */
  invokeTimeoutMarginMs?: number;
  /** Workers tried for one invocation when earlier ones reject it as full or vanished. @default 3 */
  maxWorkerTries?: number;
  /** A worker silent for this many of its heartbeat intervals is dropped. @default 3 */
  missedHeartbeatLimit?: number;
  /** `Retry-After` (seconds) on 429 responses. @default 1 */
  throttleRetryAfterSec?: number;
  /**
   * Delays before the 2nd, 3rd, … attempt of an Event invocation whose
   * function failed; attempts in all = length + 1 (Lambda: 2 retries, about 1
   * and 2 minutes apart). @default [60000, 120000]
   */
  eventRetryDelaysMs?: number[];
  /** Events still undelivered after this long are dropped (Lambda's MaximumEventAgeInSeconds). @default 21600000 (6 h) */
  maxEventAgeMs?: number;
  /** Event invocations this frontend runs at once. @default 16 */
  dispatcherConcurrency?: number;
  /** A job not acknowledged (nor kept alive) within this is delivered again. @default 60000 */
  eventAckWaitMs?: number;
  /** First wait after a throttled Event invocation; doubles up to the maximum. @default 250 */
  eventThrottleBackoffMs?: number;
  /** @default 5000 */
  eventThrottleMaxBackoffMs?: number;
  /**
   * How long one delivery keeps retrying a throttled event in process before
   * handing it back to the queue, so one throttled tenant cannot hold every
   * dispatcher slot. @default 30000
   */
  eventThrottleHoldMs?: number;
  /**
   * The only admission point (`gust dev`): no gossip, every tenant's whole
   * limit is admitted here. In a fleet leave it false: frontends then split
   * each tenant's limit by gossip over the bus (DESIGN.md, "Gossip and shares").
   * @default false
   */
  standalone?: boolean;
  /** Frontends expected in the fleet, for the conservative share before any peer is heard. @default 1 */
  fleetSizeHint?: number;
  /**
   * The admission policy: gossip interval, temporary-limit movement, loans
   * (@gust/admission's AdmissionPolicyOptions and their defaults).
   * `minUnreserved` is not used here: the registry checks Lambda's
   * unreserved minimum at PutFunctionConcurrency.
   * @default {}
   */
  admissionPolicy?: AdmissionPolicyOptions;
  /**
   * The bearer token of the operators' endpoints under /gust/admin/ (e.g.
   * `GET /gust/admin/concurrency` for every tenant); at least 16 characters.
   * `gust frontend` takes it from GUST_ADMIN_TOKEN. Without it, the
   * concurrency endpoint shows a SigV4-signed caller its own tenant only.
   * @default none
   */
  adminToken?: string;
  /**
   * Bytes of code uploads (CreateFunction, UpdateFunctionCode bodies) this
   * frontend reads at once; more wait their turn, unread (upload-budget.ts).
   * An upload holds less than its body, so the frontend's memory stays under
   * its baseline plus this. @default 140334422 (two bodies of Lambda's largest, 70167211 bytes)
   */
  codeUploadBytesInFlight?: number;
  /**
   * How long an upload waits for room before a 429 TooManyRequestsException.
   * A client that gives up sooner (the AWS CLI's socket timeout is 60 s)
   * leaves the queue when it closes; this only bounds the wait below
   * node:http's 300 s for receiving a whole request. @default 120000
   */
  codeUploadWaitMs?: number;
}

export type ResolvedFrontendOptions = Required<
  Omit<FrontendOptions, "publicUrl" | "adminToken" | "admissionPolicy">
> & {
  publicUrl: string | undefined;
  adminToken: string | undefined;
  admissionPolicy: AdmissionPolicy;
  /** This process start's id in gossip and loan messages: unique per start. */
  instanceId: string;
};

export const DEFAULT_REGION = "us-east-1";
export const DEFAULT_MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
export const DEFAULT_CODE_LOCATION_TTL_SEC = 600;
export const DEFAULT_INVOKE_TIMEOUT_MARGIN_MS = 10_000;
export const DEFAULT_MAX_WORKER_TRIES = 3;
export const DEFAULT_MISSED_HEARTBEAT_LIMIT = 3;
export const DEFAULT_THROTTLE_RETRY_AFTER_SEC = 1;
export const DEFAULT_EVENT_RETRY_DELAYS_MS: readonly number[] = [60_000, 120_000];
export const DEFAULT_MAX_EVENT_AGE_MS = 6 * 60 * 60 * 1000;
export const DEFAULT_DISPATCHER_CONCURRENCY = 16;
export const DEFAULT_EVENT_ACK_WAIT_MS = 60_000;
export const DEFAULT_EVENT_THROTTLE_BACKOFF_MS = 250;
export const DEFAULT_EVENT_THROTTLE_MAX_BACKOFF_MS = 5_000;
export const DEFAULT_EVENT_THROTTLE_HOLD_MS = 30_000;
export const DEFAULT_FLEET_SIZE_HINT = 1;
/** Lambda's request limit for CreateFunction and UpdateFunctionCode (a 50 MB zip in base64, and the rest). */
export const MAX_CODE_REQUEST_BYTES = 70_167_211;
export const DEFAULT_CODE_UPLOADS_IN_FLIGHT = 2;
export const DEFAULT_CODE_UPLOAD_BYTES_IN_FLIGHT =
  DEFAULT_CODE_UPLOADS_IN_FLIGHT * MAX_CODE_REQUEST_BYTES;
export const DEFAULT_CODE_UPLOAD_WAIT_MS = 120_000;
/** Shorter admin tokens are refused: the token opens every tenant's figures. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < min || resolved > max) {
    throw new ConfigError(
      `frontend option ${name} must be an integer from ${min} to ${max}, got ${String(resolved)}`,
    );
  }
  return resolved;
}

export function resolveFrontendOptions(options: FrontendOptions = {}): ResolvedFrontendOptions {
  const region = options.region ?? DEFAULT_REGION;
  if (!REGION.test(region)) {
    throw new ConfigError(
      `frontend option region must look like us-east-1, got ${JSON.stringify(region)}`,
    );
  }
  let publicUrl: string | undefined;
  if (options.publicUrl !== undefined) {
    try {
      publicUrl = new URL(options.publicUrl).origin;
    } catch (cause) {
      throw new ConfigError(
        `frontend option publicUrl is not a URL: ${JSON.stringify(options.publicUrl)}`,
        { cause },
      );
    }
  }
  const eventRetryDelaysMs = [...(options.eventRetryDelaysMs ?? DEFAULT_EVENT_RETRY_DELAYS_MS)];
  eventRetryDelaysMs.forEach((delay, i) => integer(`eventRetryDelaysMs[${i}]`, delay, 0, 0));
  const eventThrottleBackoffMs = integer(
    "eventThrottleBackoffMs",
    options.eventThrottleBackoffMs,
    DEFAULT_EVENT_THROTTLE_BACKOFF_MS,
    1,
  );
  const frontendId = options.frontendId ?? `fe-${randomBytes(4).toString("hex")}`;
  // A subject token has at most 128 characters; the gossip id adds 7.
  if (!isSubjectToken(frontendId) || frontendId.length > 120) {
    throw new ConfigError(
      `frontend option frontendId must be 1–120 letters, digits, '-' or '_', got ${JSON.stringify(frontendId)}`,
    );
  }
  const instanceId =
    options.frontendId === undefined
      ? frontendId
      : `${frontendId}-${randomBytes(3).toString("hex")}`;
  const adminToken = options.adminToken;
  if (
    adminToken !== undefined &&
    (typeof adminToken !== "string" ||
      adminToken.length < MIN_ADMIN_TOKEN_LENGTH ||
      /\s/.test(adminToken))
  ) {
    throw new ConfigError(
      `frontend option adminToken must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters without spaces`,
    );
  }
  const standalone = options.standalone ?? false;
  if (typeof standalone !== "boolean") {
    throw new ConfigError(
      `frontend option standalone must be a boolean, got ${String(standalone)}`,
    );
  }
  return {
    frontendId,
    instanceId,
    standalone,
    fleetSizeHint: integer(
      "fleetSizeHint",
      options.fleetSizeHint,
      DEFAULT_FLEET_SIZE_HINT,
      1,
      1000,
    ),
    admissionPolicy: resolveAdmissionPolicy(options.admissionPolicy),
    adminToken,
    region,
    publicUrl,
    maxClockSkewMs: integer("maxClockSkewMs", options.maxClockSkewMs, DEFAULT_MAX_CLOCK_SKEW_MS, 0),
    // SigV4 presigned URLs may live at most 7 days.
    codeLocationTtlSec: integer(
      "codeLocationTtlSec",
      options.codeLocationTtlSec,
      DEFAULT_CODE_LOCATION_TTL_SEC,
      1,
      604_800,
    ),
    invokeTimeoutMarginMs: integer(
      "invokeTimeoutMarginMs",
      options.invokeTimeoutMarginMs,
      DEFAULT_INVOKE_TIMEOUT_MARGIN_MS,
      0,
    ),
    maxWorkerTries: integer(
      "maxWorkerTries",
      options.maxWorkerTries,
      DEFAULT_MAX_WORKER_TRIES,
      1,
      100,
    ),
    missedHeartbeatLimit: integer(
      "missedHeartbeatLimit",
      options.missedHeartbeatLimit,
      DEFAULT_MISSED_HEARTBEAT_LIMIT,
      1,
    ),
    throttleRetryAfterSec: integer(
      "throttleRetryAfterSec",
      options.throttleRetryAfterSec,
      DEFAULT_THROTTLE_RETRY_AFTER_SEC,
      0,
    ),
    eventRetryDelaysMs,
    maxEventAgeMs: integer("maxEventAgeMs", options.maxEventAgeMs, DEFAULT_MAX_EVENT_AGE_MS, 1),
    dispatcherConcurrency: integer(
      "dispatcherConcurrency",
      options.dispatcherConcurrency,
      DEFAULT_DISPATCHER_CONCURRENCY,
      1,
      10_000,
    ),
    eventAckWaitMs: integer(
      "eventAckWaitMs",
      options.eventAckWaitMs,
      DEFAULT_EVENT_ACK_WAIT_MS,
      100,
    ),
    eventThrottleBackoffMs,
    eventThrottleMaxBackoffMs: integer(
      "eventThrottleMaxBackoffMs",
      options.eventThrottleMaxBackoffMs,
      Math.max(DEFAULT_EVENT_THROTTLE_MAX_BACKOFF_MS, eventThrottleBackoffMs),
      eventThrottleBackoffMs,
    ),
    eventThrottleHoldMs: integer(
      "eventThrottleHoldMs",
      options.eventThrottleHoldMs,
      DEFAULT_EVENT_THROTTLE_HOLD_MS,
      0,
    ),
    codeUploadBytesInFlight: integer(
      "codeUploadBytesInFlight",
      options.codeUploadBytesInFlight,
      DEFAULT_CODE_UPLOAD_BYTES_IN_FLIGHT,
      1,
    ),
    codeUploadWaitMs: integer(
      "codeUploadWaitMs",
      options.codeUploadWaitMs,
      DEFAULT_CODE_UPLOAD_WAIT_MS,
      0,
    ),
  };
}
