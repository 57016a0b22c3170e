/**
 * A three-frontend fleet driven by arbitrary steps (fast-check): admissions,
 * bursts, releases, ticks, reports delivered late, out of order or lost,
 * kills with invocations that die or run on, probes and worker censuses,
 * and time passing. After every step the fleet must hold the tenant's limit
 * M. Used by the property tests (gossip.test.ts, fixed seeds) and by
 * `npm run fuzz:admission` (random seeds, counts the steps it ran).
 */
import fc from "fast-check";
import { TestFleet } from "./test-fleet.js";

let stepsRun = 0;

/** Steps run by runFleetSteps in this process so far (the fuzzer reports it). */
export function fleetStepsRun(): number {
  return stepsRun;
}

/** What a step sequence broke: the fleet above M, or an admission beyond a local share. */
export class FleetStepViolation extends Error {
  override readonly name = "FleetStepViolation";
}

export const fleetStep = fc.oneof(
  { weight: 60, arbitrary: fc.record({ kind: fc.constant("admit" as const), f: fc.nat(2) }) },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("burst" as const),
      f: fc.nat(2),
      n: fc.integer({ min: 1, max: 10 }),
    }),
  },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("settle" as const) }) },
  {
    weight: 40,
    arbitrary: fc.record({ kind: fc.constant("release" as const), f: fc.nat(2), pick: fc.nat() }),
  },
  { weight: 20, arbitrary: fc.record({ kind: fc.constant("tick" as const), f: fc.nat(2) }) },
  { weight: 40, arbitrary: fc.record({ kind: fc.constant("deliver" as const), pick: fc.nat() }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("drop" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("kill" as const),
      f: fc.nat(2),
      runOn: fc.boolean(),
    }),
  },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("notice" as const), f: fc.nat(2) }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("census" as const), f: fc.nat(2) }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("end" as const), pick: fc.nat() }) },
  {
    weight: 20,
    arbitrary: fc.record({
      kind: fc.constant("wait" as const),
      ms: fc.integer({ min: 1, max: 150 }),
    }),
  },
);

export type FleetStep = typeof fleetStep extends fc.Arbitrary<infer T> ? T : never;

/**
 * Run `steps` on a 3-frontend fleet with limit `max`; after each, the
 * fleet must hold it. A killed frontend's invocations may run on until
 * `end` steps end them; survivors then count them by worker census, which
 * (as the transport does, four times an interval) also runs as time
 * passes.
 */
export function runFleetSteps(steps: ReadonlyArray<FleetStep>, lending: boolean): void {
  stepsRun += steps.length;
  const max = 12;
  const fleet = new TestFleet(
    3,
    {
      initialLimit: max,
      minLimit: 1,
      gossipIntervalMs: 50,
      demandSmoothingMs: 50,
      settledDemandSmoothingMs: 100,
    },
    { lending, workerCensus: true },
  );
  fleet.controllers.forEach((c) => c.setTenant("t", { maxConcurrency: max }));
  for (const s of steps) {
    if ("f" in s && !fleet.alive[s.f]) continue;
    if (s.kind === "admit") {
      const before = fleet.controller(s.f).localPool("t");
      const decision = fleet.admit(s.f, "t");
      if (decision.kind === "ticket" && before && before.inflight >= before.share)
        throw new FleetStepViolation(
          `frontend ${s.f} admitted with ${before.inflight} in flight and a share of ${before.share}`,
        );
    } else if (s.kind === "burst") for (let i = 0; i < s.n; i++) fleet.admit(s.f, "t");
    else if (s.kind === "settle") {
      fleet.now += 50;
      fleet.tickAll();
      fleet.deliverAll();
    } else if (s.kind === "release") fleet.release(s.f, s.pick);
    else if (s.kind === "tick") fleet.tick(s.f);
    else if (s.kind === "deliver" && fleet.inFlight.length > 0)
      fleet.deliver(s.pick % fleet.inFlight.length);
    else if (s.kind === "drop" && fleet.inFlight.length > 0)
      fleet.drop(s.pick % fleet.inFlight.length);
    else if (s.kind === "wait") {
      // Time passes in steps short enough for the promise below to hold.
      for (let left = s.ms; left > 0; left -= 50) {
        fleet.now += Math.min(left, 50);
        fleet.keepAlive(150);
        fleet.controllers.forEach((_c, f) => fleet.census(f));
      }
    } else if (s.kind === "kill" && fleet.alive.filter(Boolean).length > 1)
      fleet.kill(s.f, { invocationsRunOn: s.runOn });
    else if (s.kind === "notice") fleet.notice(s.f, true);
    else if (s.kind === "census") fleet.census(s.f);
    else if (s.kind === "end") {
      const dead = fleet.alive.findIndex((alive) => !alive);
      if (dead >= 0) fleet.endInvocationOf(dead, s.pick);
    }
    // Reports are late or lost at will, but a live frontend is heard within
    // 3 of the 5 intervals that expire it: a longer silence is a partition,
    // where each side may take what the other holds (see the README).
    fleet.keepAlive(150);
    if (fleet.fleetInflight() > max)
      throw new FleetStepViolation(
        `the fleet ran ${fleet.fleetInflight()} at once, over M = ${max}`,
      );
  }
}

/** The second property's shape: busy first, then a frontend killed with its invocations running on. */
export const killAfterBusy = fc.tuple(
  fc.array(fleetStep, { minLength: 20, maxLength: 150 }),
  fc.nat(2),
  fc.array(fleetStep, { minLength: 1, maxLength: 200 }),
  fc.boolean(),
);

/** The steps `killAfterBusy` stands for. */
export function killAfterBusySteps(
  before: ReadonlyArray<FleetStep>,
  victim: number,
  after: ReadonlyArray<FleetStep>,
): FleetStep[] {
  return [...before, { kind: "kill", f: victim, runOn: true }, ...after];
}

/** Runs per seed: the property tests' count, so a seed the fuzzer reports reproduces there. */
export const FLEET_PROPERTY_RUNS = 400;

/**
 * The two properties, as gossip.test.ts asserts them: any sequence of steps;
 * and a busy fleet, one frontend killed with its invocations running on, then
 * anything.
 */
export const fleetProperties = {
  "any order, delay or loss of messages": () =>
    fc.property(fc.array(fleetStep, { minLength: 1, maxLength: 400 }), fc.boolean(), runFleetSteps),
  "survivors take a killed frontend's share": () =>
    fc.property(killAfterBusy, ([before, victim, after, lending]) =>
      runFleetSteps(killAfterBusySteps(before, victim, after), lending),
    ),
};
