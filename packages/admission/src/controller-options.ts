/**
 * What a frontend tells its AdmissionController when it creates it, and the
 * plain views the controller hands back.
 */
import { ConfigError } from "@gust/protocol";
import type { LoanMessage } from "./loans.js";
import {
  resolveAdmissionPolicy,
  type AdmissionPolicy,
  type AdmissionPolicyOptions,
} from "./policy.js";

export interface AdmissionControllerOptions {
  /** This frontend's id in gossip. Unique per process start. */
  frontendId: string;
  policy?: AdmissionPolicyOptions;
  /** Frontends expected in the fleet, for the conservative share before any peer is heard. @default 1 */
  fleetSizeHint?: number;
  /** The only admission point (`gust dev`, a central counter): no gossip, the whole limit. @default false */
  standalone?: boolean;
  /**
   * Deliver a loan message to the frontend named in its `to`. Called
   * synchronously; must not throw (a lost message is tolerated). Without it
   * this frontend neither borrows nor lends.
   */
  sendLoanMessage?: (message: LoanMessage) => void;
  /**
   * The transport asks the workers what departed or never-heard frontends
   * left running (a worker census, `applyCensus`): their slots then stay
   * counted exactly as long as those invocations run, rather than for an
   * estimate of how long they run. @default false
   */
  workerCensus?: boolean;
}

export interface LocalPoolState {
  /** T for the unreserved pool, else the reservation. */
  limit: number;
  /** The share after loans: what admission enforces. */
  share: number;
  /** This frontend's part of the split, before loans. */
  baseShare: number;
  inflight: number;
  demand: number;
}

export interface TenantSettings {
  maxConcurrency: number;
}

export interface ResolvedAdmissionControllerOptions {
  frontendId: string;
  policy: AdmissionPolicy;
  fleetSizeHint: number;
  standalone: boolean;
  sendLoanMessage: ((message: LoanMessage) => void) | undefined;
  workerCensus: boolean;
}

/** Check the options and fill in defaults; throws ConfigError naming the bad property. */
export function resolveAdmissionControllerOptions(
  options: AdmissionControllerOptions,
): ResolvedAdmissionControllerOptions {
  const { frontendId } = options;
  if (typeof frontendId !== "string" || frontendId === "" || frontendId.length > 256) {
    throw new ConfigError(
      "admission controller: frontendId must be a non-empty string of at most 256 characters",
    );
  }
  const fleetSizeHint = options.fleetSizeHint ?? 1;
  if (!Number.isInteger(fleetSizeHint) || fleetSizeHint < 1) {
    throw new ConfigError(
      `admission controller: fleetSizeHint must be a positive integer, got ${String(fleetSizeHint)}`,
    );
  }
  return {
    frontendId,
    policy: resolveAdmissionPolicy(options.policy),
    fleetSizeHint,
    standalone: options.standalone ?? false,
    sendLoanMessage: options.sendLoanMessage,
    workerCensus: options.workerCensus ?? false,
  };
}
