/**
 * NATS subject grammar, version 1. Every subject Gust uses is built here and
 * nowhere else.
 *
 *   gust.v1.invoke.<workerId>      request/reply  InvokeRequest → InvokeReply
 *                                  (frontend → one chosen worker)
 *   gust.v1.worker.heartbeat       publish        WorkerHeartbeat
 *                                  (every worker, every heartbeat interval)
 *   gust.v1.worker.gone            publish        WorkerGone (a worker that drains)
 *   gust.v1.worker.discover        publish        WorkerDiscover (a frontend that starts
 *                                  asks every worker for a heartbeat now, rather than
 *                                  waiting up to one heartbeat interval to learn of them)
 *   gust.v1.worker.census.<workerId>  request/reply  WorkerCensus → WorkerCensusReply
 *                                  (a frontend whose peer died asks each worker what that
 *                                  peer's invocations still run there, until none do)
 *   gust.v1.events.<tenantId>      JetStream      EventInvocation (the async queue's
 *                                  stream subjects; one stream covers gust.v1.events.>)
 *   gust.v1.gossip.demand          publish        admission DemandReport (every frontend,
 *                                  every gossip interval; msgpack via encodeRecord)
 *   gust.v1.gossip.loan.<frontendId>  publish     admission LoanMessage addressed to one
 *                                  frontend (its per-start gossip id; encodeRecord)
 *   gust.v1.gossip.probe.<frontendId> request/reply  empty; a frontend whose peer is late
 *                                  asks it directly: "no responders" means the peer is gone
 *                                  (its connection and subscriptions closed), so it is
 *                                  dropped at once instead of after the expiry period
 *   gust.v1.rollout.outcomes       publish        batched invocation outcome counts per
 *                                  (function, runtime version) of functions in a runtime
 *                                  rollout (every frontend, about every second; encodeRecord)
 *   gust.v1.rollout.verdict        publish        a rollout's verdict on one function
 *                                  (the coordinator; JSON, for owners' tooling)
 *
 * Tokens are restricted to [A-Za-z0-9_-] so that no caller-supplied name can
 * add a token or a wildcard.
 */
export const PROTOCOL_VERSION = "v1";
export const SUBJECT_PREFIX = `gust.${PROTOCOL_VERSION}`;

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

export function isSubjectToken(token: string): boolean {
  return TOKEN.test(token);
}

function token(value: string, what: string): string {
  if (!TOKEN.test(value)) {
    throw new TypeError(`${what} ${JSON.stringify(value)} is not a valid subject token`);
  }
  return value;
}

export const Subjects = {
  invoke: (workerId: string): string => `${SUBJECT_PREFIX}.invoke.${token(workerId, "workerId")}`,
  workerHeartbeat: `${SUBJECT_PREFIX}.worker.heartbeat`,
  workerGone: `${SUBJECT_PREFIX}.worker.gone`,
  workerDiscover: `${SUBJECT_PREFIX}.worker.discover`,
  workerCensus: (workerId: string): string =>
    `${SUBJECT_PREFIX}.worker.census.${token(workerId, "workerId")}`,
  events: (tenantId: string): string => `${SUBJECT_PREFIX}.events.${token(tenantId, "tenantId")}`,
  allEvents: `${SUBJECT_PREFIX}.events.>`,
  gossipDemand: `${SUBJECT_PREFIX}.gossip.demand`,
  gossipLoan: (frontendId: string): string =>
    `${SUBJECT_PREFIX}.gossip.loan.${token(frontendId, "frontendId")}`,
  gossipProbe: (frontendId: string): string =>
    `${SUBJECT_PREFIX}.gossip.probe.${token(frontendId, "frontendId")}`,
  rolloutOutcomes: `${SUBJECT_PREFIX}.rollout.outcomes`,
  rolloutVerdict: `${SUBJECT_PREFIX}.rollout.verdict`,
} as const;

/** JetStream KV buckets, object stores and streams. */
export const Buckets = {
  functions: "gust_functions",
  tenants: "gust_tenants",
  code: "gust_code",
  /** Runtime versions and each runtime's default (see @gust/registry's RuntimeVersionRegistry). */
  runtimeVersions: "gust_runtime_versions",
  /** Runtime rollouts: state, per-function outcome counts and verdicts (see @gust/registry's RolloutStore). */
  rollouts: "gust_rollouts",
} as const;

export const Streams = {
  events: "GUST_EVENTS",
} as const;
