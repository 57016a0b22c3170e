/**
 * The situations the simulator plays: who sends how much, through which
 * load balancer, over what kind of gossip, and what goes wrong. The
 * `reference-*` scenarios are the queueing model (one tenant,
 * 3 frontends, Poisson arrivals, 100 ms executions, demand at 90% of M,
 * 80/15/5 skew) with T pinned at M so that the figures compare with
 * Erlang's formula.
 */
import type { AdmissionPolicyOptions } from "../policy.js";

/** Offered load (concurrent executions) over time: piecewise linear through these [ms, load] points. */
export type LoadCurve = ReadonlyArray<readonly [atMs: number, load: number]>;

export interface TenantSpec {
  id: string;
  maxConcurrency: number;
  load: LoadCurve;
  executionMs: number;
}

export type BalancerSpec =
  | { kind: "round-robin" }
  /** Weighted random; each phase's weights hold from its `fromMs`. */
  | { kind: "weighted"; phases: ReadonlyArray<{ fromMs: number; weights: readonly number[] }> }
  /** Each client sticks to one frontend; client sizes follow Zipf's law (s = 1). */
  | { kind: "sticky"; clients: number };

export interface Scenario {
  name: string;
  description: string;
  durationMs: number;
  /** Throttle figures ignore the first warmupMs (peaks count from the start). */
  warmupMs: number;
  frontends: number;
  tenants: TenantSpec[];
  /** The tenant charted and measured for convergence. */
  focusTenant: string;
  balancer: BalancerSpec;
  gossip: { delayMs: number; lossRate: number };
  /** One-way delay of loan messages (they share gossip's loss rate). */
  loanDelayMs: number;
  crash?: { frontend: number; atMs: number };
  /** When traffic shifts between frontends, for the convergence figure. */
  shiftAtMs?: number;
  policy: AdmissionPolicyOptions;
  sampleMs: number;
}

export interface ScenarioParams {
  /** Override the scenario's length. */
  durationMs?: number;
}

const SKEW = [0.8, 0.15, 0.05] as const;
const SHIFTED = [0.05, 0.15, 0.8] as const;
const LAN_GOSSIP = { delayMs: 2, lossRate: 0 };

function oneTenant(maxConcurrency: number, load: LoadCurve, executionMs = 100): TenantSpec[] {
  return [{ id: "tenant-a", maxConcurrency, load, executionMs }];
}

function reference(
  name: string,
  max: number,
  durationMs: number,
  extra: Partial<Scenario> = {},
): Scenario {
  return {
    name,
    description: `M=${max}, 3 frontends, weighted 80/15/5, Poisson arrivals at 90% of M, 100 ms executions`,
    durationMs,
    warmupMs: 2000,
    frontends: 3,
    tenants: oneTenant(max, [[0, 0.9 * max]]),
    focusTenant: "tenant-a",
    balancer: { kind: "weighted", phases: [{ fromMs: 0, weights: SKEW }] },
    gossip: LAN_GOSSIP,
    loanDelayMs: 1,
    policy: { initialLimit: max },
    sampleMs: 25,
    ...extra,
  };
}

function shifted(name: string, max: number, durationMs: number, gossip = LAN_GOSSIP): Scenario {
  const shiftAtMs = Math.round(durationMs / 2);
  return reference(name, max, durationMs, {
    description: `M=${max}, 80/15/5 → 5/15/80 at ${shiftAtMs / 1000} s, gossip delay ${gossip.delayMs} ms, loss ${gossip.lossRate * 100}%`,
    balancer: {
      kind: "weighted",
      phases: [
        { fromMs: 0, weights: SKEW },
        { fromMs: shiftAtMs, weights: SHIFTED },
      ],
    },
    gossip,
    shiftAtMs,
  });
}

/** Many tenants of very different sizes on one fleet (Zipf), each capped at M = 200. */
function manyTenants(durationMs: number): Scenario {
  const tenants: TenantSpec[] = [];
  for (let i = 0; i < 300; i++) {
    tenants.push({
      id: `tenant-${String(i).padStart(3, "0")}`,
      maxConcurrency: 200,
      load: [[0, 150 / (i + 1)]],
      executionMs: 100,
    });
  }
  return {
    name: "many-tenants",
    description:
      "300 tenants with Zipf-sized demand (150, 75, 50, … Erlangs), M=200 each, round robin",
    durationMs,
    warmupMs: 2000,
    frontends: 3,
    tenants,
    focusTenant: "tenant-000",
    balancer: { kind: "round-robin" },
    gossip: LAN_GOSSIP,
    loanDelayMs: 1,
    policy: { initialLimit: 200 },
    sampleMs: 25,
  };
}

/** Scenarios that exercise the temporary limit: T starts at 1,000 and must follow demand. */
function limitScenario(
  name: string,
  description: string,
  load: LoadCurve,
  durationMs: number,
): Scenario {
  return {
    name,
    description,
    durationMs,
    warmupMs: 0,
    frontends: 3,
    tenants: oneTenant(5000, load, 1000),
    focusTenant: "tenant-a",
    balancer: { kind: "weighted", phases: [{ fromMs: 0, weights: SKEW }] },
    gossip: LAN_GOSSIP,
    loanDelayMs: 1,
    policy: { decayDelayMs: 10_000 },
    sampleMs: 100,
  };
}

type Factory = (params: ScenarioParams) => Scenario;

export const scenarios: Readonly<Record<string, Factory>> = {
  "reference-1000": (p) => reference("reference-1000", 1000, p.durationMs ?? 30_000),
  "reference-100": (p) => reference("reference-100", 100, p.durationMs ?? 120_000),
  "round-robin-1000": (p) =>
    reference("round-robin-1000", 1000, p.durationMs ?? 30_000, {
      description: "M=1000, 3 frontends, round robin, 90% of M",
      balancer: { kind: "round-robin" },
    }),
  "sticky-1000": (p) =>
    reference("sticky-1000", 1000, p.durationMs ?? 30_000, {
      description: "M=1000, 3 frontends, 40 sticky clients of Zipf sizes, 90% of M",
      balancer: { kind: "sticky", clients: 40 },
    }),
  "shift-1000": (p) => shifted("shift-1000", 1000, p.durationMs ?? 20_000),
  "shift-lossy-1000": (p) =>
    shifted("shift-lossy-1000", 1000, p.durationMs ?? 20_000, { delayMs: 20, lossRate: 0.1 }),
  "shift-100": (p) => shifted("shift-100", 100, p.durationMs ?? 60_000),
  "crash-1000": (p) => {
    const durationMs = p.durationMs ?? 20_000;
    const atMs = Math.round(durationMs / 2);
    return reference("crash-1000", 1000, durationMs, {
      description: `M=1000, 80/15/5, the 80% frontend crashes at ${atMs / 1000} s; the balancer moves its traffic at once`,
      crash: { frontend: 0, atMs },
    });
  },
  step: (p) =>
    limitScenario(
      "step",
      "M=5000, T starts at 1000: demand steps 500 → 3000 at 5 s, back to 300 at 60 s; 1 s executions",
      [
        [0, 500],
        [5000, 500],
        [5000, 3000],
        [60_000, 3000],
        [60_000, 300],
      ],
      p.durationMs ?? 150_000,
    ),
  ramp: (p) =>
    limitScenario(
      "ramp",
      "M=5000, T starts at 1000: demand ramps 0 → 4500 over 60 s, then holds; 1 s executions",
      [
        [0, 0],
        [60_000, 4500],
      ],
      p.durationMs ?? 90_000,
    ),
  spike: (p) =>
    limitScenario(
      "spike",
      "M=5000, T starts at 1000: demand 400 with a 3 s spike to 2500 at 10 s; 1 s executions",
      [
        [0, 400],
        [10_000, 400],
        [10_000, 2500],
        [13_000, 2500],
        [13_000, 400],
      ],
      p.durationMs ?? 30_000,
    ),
  "many-tenants": (p) => manyTenants(p.durationMs ?? 20_000),
};

/** Offered load at time t. */
export function loadAt(curve: LoadCurve, t: number): number {
  let previous: readonly [number, number] | undefined;
  for (const point of curve) {
    if (point[0] > t) {
      if (!previous) return point[1];
      const span = point[0] - previous[0];
      return span <= 0
        ? point[1]
        : previous[1] + ((point[1] - previous[1]) * (t - previous[0])) / span;
    }
    previous = point;
  }
  return previous?.[1] ?? 0;
}

export function peakLoad(curve: LoadCurve): number {
  return curve.reduce((max, point) => Math.max(max, point[1]), 0);
}
