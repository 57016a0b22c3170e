/**
 * The admission policy: every number that shapes how a tenant's temporary
 * limit moves and how it is split across the fleet. Defaults follow Lambda
 * where Lambda publishes a figure (burst of 1,000, then +1,000 concurrent
 * executions per 10 s; at least 100 executions left unreserved) and the
 * simulator's measurements elsewhere (see README.md).
 */
import { ConfigError } from "@gust/protocol";

export interface AdmissionPolicyOptions {
  /** How often a frontend publishes its demand and recomputes shares. @default 100 */
  gossipIntervalMs?: number;
  /**
   * A peer silent for this many of its own intervals is dropped. Five keeps a
   * live peer on the books through a run of lost messages (10% loss: once
   * in 10⁵ intervals) while a dead one's share returns within half a second.
   * @default 5
   */
  peerExpiryIntervals?: number;
  /**
   * Time constant of the demand estimate (exponential smoothing). Shorter
   * follows shifts faster; longer lets Poisson noise move shares less.
   * @default 250
   */
  demandSmoothingMs?: number;
  /**
   * Time constant of the demand estimate while demand is steady (the fast
   * estimate above stays within its noise of it). Longer gives steadier shares.
   * @default 2000
   */
  settledDemandSmoothingMs?: number;
  /** Execution time assumed for a tenant until one of its invocations completes. @default 100 */
  initialDurationMs?: number;
  /** A tenant's maximum concurrency when nobody configured one. @default 1000 */
  defaultMaxConcurrency?: number;
  /** The temporary limit a tenant starts with (clamped to its maximum). @default 1000 */
  initialLimit?: number;
  /** The temporary limit never decays below this (clamped to the maximum). @default 100 */
  minLimit?: number;
  /** The most the temporary limit may rise in one rise interval. @default 1000 */
  riseStep?: number;
  /** See riseStep: the limit may rise by riseStep per riseIntervalMs. @default 10000 */
  riseIntervalMs?: number;
  /**
   * Headroom kept above fleet demand: the limit aims at demand × (1 + headroom),
   * so demand within that margin of the limit "presses" against it.
   * @default 0.25
   */
  limitHeadroom?: number;
  /** Load must stay below the limit's aim this long before the limit decays. @default 60000 */
  decayDelayMs?: number;
  /** While decaying, the limit falls by at most this fraction per decay interval. @default 0.1 */
  decayFraction?: number;
  /** See decayFraction. @default 10000 */
  decayIntervalMs?: number;
  /** Reserved concurrency must leave at least this much of a tenant's maximum unreserved (Lambda: 100). @default 100 */
  minUnreserved?: number;
  /**
   * Spare capacity is handed out in proportion to sqrt(max(demand, this)):
   * a frontend that sees no demand yet still holds a little, so a new burst
   * is admitted at once.
   * @default 1
   */
  spareWeightFloor?: number;
  /**
   * Cut off from gossip, a frontend enforces limit / max(last known fleet
   * size, this): never the whole limit while it may have peers.
   * @default 2
   */
  disconnectedMinFleetSize?: number;
  /** Borrow slots from peers when the local share runs low. @default true */
  lendingEnabled?: boolean;
  /**
   * A frontend asks for a loan when its free slots fall to
   * ceil(loanTriggerFactor × sqrt(demand)), keeps that many free when it
   * lends, and returns borrowed slots beyond that many. 0: borrow only for
   * the request that finds no free slot, return every slot it frees.
   * @default 0
   */
  loanTriggerFactor?: number;
  /**
   * A borrower hands borrowed slots back only while more than
   * ceil(loanReturnKeepFactor × sqrt(demand)) of its slots are free (and at
   * least loanTriggerFactor's). A busy borrower reuses a borrowed slot at
   * once, so returning it only to ask again costs three messages for
   * nothing; keeping a few trades a little pooling for about a third of the
   * loan messages (README.md, "Loans and bandwidth"). 0: return every slot
   * as soon as it is free.
   * @default 1.2
   */
  loanReturnKeepFactor?: number;
  /** A loan request asks for ceil(loanBatchFactor × sqrt(demand)) slots, at least 1. @default 0.05 */
  loanBatchFactor?: number;
  /**
   * A borrower counts a loan for this long after it asked for it; then the
   * invocations still running on it count against its own share.
   * @default 500
   */
  loanLeaseMs?: number;
  /**
   * A loan request unanswered this long is given up (a late grant is still
   * used); a lender with nothing to lend does not answer, so this is also
   * how long a borrower waits before asking again. @default 50
   */
  loanTimeoutMs?: number;
  /** A request rejected while a loan is on its way may be retried after this long (about a round trip). @default 5 */
  loanRetryMs?: number;
  /** After a refused or unanswered loan request, wait this long before asking again. @default 0 */
  loanBackoffMs?: number;
  /** Retry hints never exceed this. @default 1000 */
  maxRetryAfterMs?: number;
}

export type AdmissionPolicy = Readonly<Required<AdmissionPolicyOptions>>;

export const DEFAULT_GOSSIP_INTERVAL_MS = 100;
export const DEFAULT_PEER_EXPIRY_INTERVALS = 5;
export const DEFAULT_DEMAND_SMOOTHING_MS = 250;
export const DEFAULT_SETTLED_DEMAND_SMOOTHING_MS = 2000;
export const DEFAULT_INITIAL_DURATION_MS = 100;
export const DEFAULT_MAX_CONCURRENCY = 1000;
export const DEFAULT_INITIAL_LIMIT = 1000;
export const DEFAULT_MIN_LIMIT = 100;
export const DEFAULT_RISE_STEP = 1000;
export const DEFAULT_RISE_INTERVAL_MS = 10_000;
export const DEFAULT_LIMIT_HEADROOM = 0.25;
export const DEFAULT_DECAY_DELAY_MS = 60_000;
export const DEFAULT_DECAY_FRACTION = 0.1;
export const DEFAULT_DECAY_INTERVAL_MS = 10_000;
export const DEFAULT_MIN_UNRESERVED = 100;
export const DEFAULT_SPARE_WEIGHT_FLOOR = 1;
export const DEFAULT_DISCONNECTED_MIN_FLEET_SIZE = 2;
export const DEFAULT_LENDING_ENABLED = true;
export const DEFAULT_LOAN_TRIGGER_FACTOR = 0;
export const DEFAULT_LOAN_RETURN_KEEP_FACTOR = 1.2;
export const DEFAULT_LOAN_BATCH_FACTOR = 0.05;
export const DEFAULT_LOAN_LEASE_MS = 500;
export const DEFAULT_LOAN_TIMEOUT_MS = 50;
export const DEFAULT_LOAN_RETRY_MS = 5;
export const DEFAULT_LOAN_BACKOFF_MS = 0;
export const DEFAULT_MAX_RETRY_AFTER_MS = 1000;

type NumberKey = {
  [K in keyof AdmissionPolicyOptions]-?: AdmissionPolicyOptions[K] extends number | undefined
    ? K
    : never;
}[keyof AdmissionPolicyOptions];

function pick(
  options: AdmissionPolicyOptions,
  key: NumberKey,
  fallback: number,
  check: "positive" | "nonNegative" | "positiveInteger" | "nonNegativeInteger",
): number {
  const value = options[key] ?? fallback;
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (check === "positive" || check === "positiveInteger" ? value > 0 : value >= 0) &&
    (check === "positiveInteger" || check === "nonNegativeInteger"
      ? Number.isInteger(value)
      : true);
  if (!ok) {
    const what = {
      positive: "a positive number",
      nonNegative: "a non-negative number",
      positiveInteger: "a positive integer",
      nonNegativeInteger: "a non-negative integer",
    }[check];
    throw new ConfigError(`admission policy: ${key} must be ${what}, got ${String(value)}`);
  }
  return value;
}

/** Fill in defaults and check every value; throws ConfigError naming the bad property. */
export function resolveAdmissionPolicy(options: AdmissionPolicyOptions = {}): AdmissionPolicy {
  const lendingEnabled = options.lendingEnabled ?? DEFAULT_LENDING_ENABLED;
  if (typeof lendingEnabled !== "boolean") {
    throw new ConfigError(
      `admission policy: lendingEnabled must be a boolean, got ${String(lendingEnabled)}`,
    );
  }
  const policy: AdmissionPolicy = Object.freeze({
    gossipIntervalMs: pick(options, "gossipIntervalMs", DEFAULT_GOSSIP_INTERVAL_MS, "positive"),
    peerExpiryIntervals: pick(
      options,
      "peerExpiryIntervals",
      DEFAULT_PEER_EXPIRY_INTERVALS,
      "positive",
    ),
    demandSmoothingMs: pick(options, "demandSmoothingMs", DEFAULT_DEMAND_SMOOTHING_MS, "positive"),
    settledDemandSmoothingMs: pick(
      options,
      "settledDemandSmoothingMs",
      DEFAULT_SETTLED_DEMAND_SMOOTHING_MS,
      "positive",
    ),
    initialDurationMs: pick(options, "initialDurationMs", DEFAULT_INITIAL_DURATION_MS, "positive"),
    defaultMaxConcurrency: pick(
      options,
      "defaultMaxConcurrency",
      DEFAULT_MAX_CONCURRENCY,
      "positiveInteger",
    ),
    initialLimit: pick(options, "initialLimit", DEFAULT_INITIAL_LIMIT, "positiveInteger"),
    minLimit: pick(options, "minLimit", DEFAULT_MIN_LIMIT, "positiveInteger"),
    riseStep: pick(options, "riseStep", DEFAULT_RISE_STEP, "positiveInteger"),
    riseIntervalMs: pick(options, "riseIntervalMs", DEFAULT_RISE_INTERVAL_MS, "positive"),
    limitHeadroom: pick(options, "limitHeadroom", DEFAULT_LIMIT_HEADROOM, "nonNegative"),
    decayDelayMs: pick(options, "decayDelayMs", DEFAULT_DECAY_DELAY_MS, "nonNegative"),
    decayFraction: pick(options, "decayFraction", DEFAULT_DECAY_FRACTION, "nonNegative"),
    decayIntervalMs: pick(options, "decayIntervalMs", DEFAULT_DECAY_INTERVAL_MS, "positive"),
    minUnreserved: pick(options, "minUnreserved", DEFAULT_MIN_UNRESERVED, "nonNegativeInteger"),
    spareWeightFloor: pick(options, "spareWeightFloor", DEFAULT_SPARE_WEIGHT_FLOOR, "positive"),
    disconnectedMinFleetSize: pick(
      options,
      "disconnectedMinFleetSize",
      DEFAULT_DISCONNECTED_MIN_FLEET_SIZE,
      "positiveInteger",
    ),
    lendingEnabled,
    loanTriggerFactor: pick(
      options,
      "loanTriggerFactor",
      DEFAULT_LOAN_TRIGGER_FACTOR,
      "nonNegative",
    ),
    loanReturnKeepFactor: pick(
      options,
      "loanReturnKeepFactor",
      DEFAULT_LOAN_RETURN_KEEP_FACTOR,
      "nonNegative",
    ),
    loanBatchFactor: pick(options, "loanBatchFactor", DEFAULT_LOAN_BATCH_FACTOR, "positive"),
    loanLeaseMs: pick(options, "loanLeaseMs", DEFAULT_LOAN_LEASE_MS, "positive"),
    loanTimeoutMs: pick(options, "loanTimeoutMs", DEFAULT_LOAN_TIMEOUT_MS, "positive"),
    loanRetryMs: pick(options, "loanRetryMs", DEFAULT_LOAN_RETRY_MS, "positive"),
    loanBackoffMs: pick(options, "loanBackoffMs", DEFAULT_LOAN_BACKOFF_MS, "nonNegative"),
    maxRetryAfterMs: pick(options, "maxRetryAfterMs", DEFAULT_MAX_RETRY_AFTER_MS, "positive"),
  });
  if (policy.decayFraction > 1) {
    throw new ConfigError(
      `admission policy: decayFraction must be at most 1, got ${policy.decayFraction}`,
    );
  }
  return policy;
}
