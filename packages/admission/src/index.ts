/**
 * @module
 * Fleet-wide adaptive concurrency for Gust's frontends (DESIGN.md, "Gossip
 * and shares"): per tenant a maximum M, a temporary limit T that follows
 * demand at a bounded rate, Lambda's reserved concurrency, and each
 * frontend's share of the limits, derived from gossiped demand. Pure and
 * deterministic: the clock is a parameter and nothing here does I/O.
 */
export { AdmissionController, STRANGERS } from "./controller.js";
export { resolveAdmissionControllerOptions } from "./controller-options.js";
export { ThrottleReasons, isTicket } from "./decision.js";
export {
  resolveAdmissionPolicy,
  DEFAULT_GOSSIP_INTERVAL_MS,
  DEFAULT_PEER_EXPIRY_INTERVALS,
  DEFAULT_DEMAND_SMOOTHING_MS,
  DEFAULT_SETTLED_DEMAND_SMOOTHING_MS,
  DEFAULT_INITIAL_DURATION_MS,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_INITIAL_LIMIT,
  DEFAULT_MIN_LIMIT,
  DEFAULT_RISE_STEP,
  DEFAULT_RISE_INTERVAL_MS,
  DEFAULT_LIMIT_HEADROOM,
  DEFAULT_DECAY_DELAY_MS,
  DEFAULT_DECAY_FRACTION,
  DEFAULT_DECAY_INTERVAL_MS,
  DEFAULT_MIN_UNRESERVED,
  DEFAULT_SPARE_WEIGHT_FLOOR,
  DEFAULT_DISCONNECTED_MIN_FLEET_SIZE,
  DEFAULT_LENDING_ENABLED,
  DEFAULT_LOAN_TRIGGER_FACTOR,
  DEFAULT_LOAN_RETURN_KEEP_FACTOR,
  DEFAULT_LOAN_BATCH_FACTOR,
  DEFAULT_LOAN_LEASE_MS,
  DEFAULT_LOAN_TIMEOUT_MS,
  DEFAULT_LOAN_RETRY_MS,
  DEFAULT_LOAN_BACKOFF_MS,
  DEFAULT_MAX_RETRY_AFTER_MS,
} from "./policy.js";
export { DEMAND_REPORT_TYPE, parseDemandReport } from "./report.js";
export { LoanMessageTypes, parseLoanMessage } from "./loans.js";
export {
  GOSSIP_WIRE_VERSION,
  loanFromWire,
  loanToWire,
  reportFromWire,
  reportSender,
  reportToWire,
} from "./wire.js";
export { ShareModes } from "./pool.js";
export { apportionShares, idealShares } from "./shares.js";
export { TemporaryLimit } from "./temporary-limit.js";

export type {
  AdmissionControllerOptions,
  ResolvedAdmissionControllerOptions,
  TenantSettings,
  LocalPoolState,
} from "./controller-options.js";
export type { Ticket, Rejection, AdmissionDecision, ThrottleReason } from "./decision.js";
export type { AdmissionPolicy, AdmissionPolicyOptions } from "./policy.js";
export type { DemandReport, PoolDemand } from "./report.js";
export type { LoanMessage, LoanMessageType } from "./loans.js";
export type { ShareMode } from "./pool.js";
export type { TenantSnapshot, PoolSnapshot, FrontendShare } from "./snapshot.js";
export type { AccountConcurrency } from "./tenant-limits.js";
