/**
 * The ways a fleet can enforce one limit, each built from the real
 * AdmissionController:
 *
 * - static:  every frontend enforces M / N on its own (Apache OpenWhisk's
 *            split across controllers). A controller cut off from gossip
 *            from the start, told the fleet size, does exactly that.
 * - central: one exact counter for the whole fleet (one standalone
 *            controller all frontends ask; the extra round trip per request
 *            costs latency, not throttles, so it is not modelled).
 * - gossip:  Gust: every frontend gossips its demand and enforces its share;
 *            with loans between frontends.
 * - gossip-no-loans: the same without borrowing, to show what loans add.
 */
import { AdmissionController } from "../controller.js";
import type { LoanMessage } from "../loans.js";
import type { AdmissionPolicyOptions } from "../policy.js";

export const Strategies = {
  static: "static",
  central: "central",
  gossip: "gossip",
  gossipNoLoans: "gossip-no-loans",
} as const;
export type Strategy = (typeof Strategies)[keyof typeof Strategies];

export const ALL_STRATEGIES: readonly Strategy[] = [
  Strategies.static,
  Strategies.central,
  Strategies.gossipNoLoans,
  Strategies.gossip,
];

export interface Fleet {
  /** The controller that decides for requests arriving at frontend f. */
  admitting: AdmissionController[];
  /** Controllers that tick every gossip interval, by frontend (central: one, at index 0). */
  ticking: AdmissionController[];
  /** Whether reports travel between the ticking controllers. */
  gossips: boolean;
}

export interface FleetSetup {
  strategy: Strategy;
  frontends: number;
  policy: AdmissionPolicyOptions;
  tenants: ReadonlyArray<{ id: string; maxConcurrency: number }>;
  /** Loan messages leave through here (the simulator delays or drops them). */
  sendLoan: (from: number, message: LoanMessage) => void;
}

export function frontendId(f: number): string {
  return `frontend-${f}`;
}

export function buildFleet(setup: FleetSetup): Fleet {
  const { strategy, frontends, tenants } = setup;
  const configure = (controller: AdmissionController) => {
    for (const tenant of tenants)
      controller.setTenant(tenant.id, { maxConcurrency: tenant.maxConcurrency });
    return controller;
  };
  switch (strategy) {
    case Strategies.static: {
      // OpenWhisk splits the maximum itself, so T is pinned at M.
      const policy = {
        ...setup.policy,
        initialLimit: Math.max(...tenants.map((t) => t.maxConcurrency)),
      };
      const controllers = Array.from({ length: frontends }, (_, f) => {
        const controller = new AdmissionController({
          frontendId: frontendId(f),
          policy,
          fleetSizeHint: frontends,
        });
        controller.connectivity(false, 0);
        return configure(controller);
      });
      return { admitting: controllers, ticking: controllers, gossips: false };
    }
    case Strategies.central: {
      const controller = configure(
        new AdmissionController({ frontendId: "central", policy: setup.policy, standalone: true }),
      );
      return {
        admitting: Array.from({ length: frontends }, () => controller),
        ticking: [controller],
        gossips: false,
      };
    }
    case Strategies.gossip:
    case Strategies.gossipNoLoans: {
      const lending = strategy === Strategies.gossip;
      const controllers = Array.from({ length: frontends }, (_, f) =>
        configure(
          new AdmissionController({
            frontendId: frontendId(f),
            policy: { ...setup.policy, lendingEnabled: lending },
            fleetSizeHint: frontends,
            ...(lending
              ? { sendLoanMessage: (message: LoanMessage) => setup.sendLoan(f, message) }
              : {}),
          }),
        ),
      );
      return { admitting: controllers, ticking: controllers, gossips: true };
    }
  }
}
