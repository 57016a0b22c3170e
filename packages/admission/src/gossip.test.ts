import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AdmissionController } from "./controller.js";
import {
  FLEET_PROPERTY_RUNS,
  fleetProperties,
  killAfterBusySteps,
  runFleetSteps,
  type FleetStep,
} from "./fleet-steps.js";
import { TestFleet } from "./test-fleet.js";

const TICK = 100;
const policy = { initialLimit: 1000, gossipIntervalMs: TICK };

/** Each tick, frontend f receives perTick[f] requests that run for one tick. */
function load(fleet: TestFleet, perTick: readonly number[], ticks: number): void {
  for (let k = 0; k < ticks; k++) {
    fleet.controllers.forEach((_c, f) => {
      while (fleet.tickets[f]!.length > 0) fleet.release(f);
      for (let i = 0; i < (perTick[f] ?? 0); i++) fleet.admit(f, "t");
    });
    fleet.now += TICK;
    fleet.tickAll();
    fleet.deliverAll();
  }
}

const shares = (fleet: TestFleet) => fleet.controllers.map((c) => c.localPool("t")?.share ?? 0);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("gossip shares", () => {
  it("split the limit by the traffic each frontend sees, and follow a shift within a second", () => {
    const fleet = new TestFleet(3, policy);
    load(fleet, [720, 135, 45], 30);
    let s = shares(fleet);
    expect(sum(s)).toBeLessThanOrEqual(1000);
    expect(s[0]).toBeGreaterThanOrEqual(760);
    expect(s[2]).toBeLessThan(80);
    load(fleet, [45, 135, 720], 10);
    s = shares(fleet);
    expect(s[2]).toBeGreaterThanOrEqual(760);
    expect(s[0]).toBeLessThan(80);
    expect(sum(s)).toBeLessThanOrEqual(1000);
  });

  it("hand a silent frontend's share back to the others once it expires", () => {
    const fleet = new TestFleet(3, policy);
    load(fleet, [300, 300, 300], 20);
    expect(shares(fleet)[0]).toBeLessThan(400);
    // Frontend 2 dies: it neither ticks nor receives.
    const living = [0, 1];
    for (let k = 0; k < 12; k++) {
      fleet.now += TICK;
      for (const f of living) fleet.tick(f);
      fleet.inFlight = fleet.inFlight.filter((m) => m.to !== 2);
      fleet.deliverAll();
    }
    const s = shares(fleet);
    expect(fleet.controller(0).peerCount).toBe(1);
    expect(s[0]! + s[1]!).toBe(1000);
  });

  it("give a killed frontend's share to the survivors once what it left running can have ended", () => {
    const fleet = new TestFleet(3, policy);
    load(fleet, [300, 300, 300], 20);
    expect(sum(shares(fleet))).toBe(1000);
    // Killed with 300 invocations running on the workers: 100 ms each here.
    fleet.kill(2, { invocationsRunOn: true });
    fleet.notice(0);
    fleet.notice(1);
    expect(fleet.controller(0).peerCount).toBe(1);
    // The survivors hear each other, but its invocations may still run.
    fleet.settle(2, 50);
    const early = shares(fleet);
    expect(early[0]! + early[1]! + 300).toBeLessThanOrEqual(1000);
    // They end within two mean executions of its death (one interval after
    // its last report); then each survivor takes its equal part at once,
    // before hearing the other.
    fleet.now += 150;
    fleet.endInvocationsOf(2);
    fleet.tick(0);
    fleet.tick(1);
    const waiting = shares(fleet);
    expect(waiting[0]! + waiting[1]!).toBeLessThanOrEqual(1000 - 300);
    fleet.now += 60;
    fleet.tick(0);
    fleet.tick(1);
    // Most of the 333 slots it held are taken at once, without an
    // acknowledgement (the rest waits for the demand estimates to agree).
    const freed = shares(fleet);
    expect(freed[0]! + freed[1]!).toBeGreaterThanOrEqual(waiting[0]! + waiting[1]! + 250);
    expect(freed[0]! + freed[1]!).toBeLessThanOrEqual(1000);
    // A few rounds later the split is exact again, once the demand estimates agree.
    fleet.inFlight = [];
    fleet.settle(4, TICK);
    const after = shares(fleet);
    expect(after[0]! + after[1]!).toBe(fleet.controller(0).localPool("t")!.limit);
  });

  it("fall back to limit / known fleet size when cut off, never the whole limit, and recover", () => {
    const fleet = new TestFleet(3, policy);
    load(fleet, [700, 100, 100], 20);
    const c = fleet.controller(0);
    expect(c.localPool("t")!.share).toBeGreaterThan(700);
    c.connectivity(false, fleet.now);
    expect(c.mode(fleet.now)).toBe("disconnected");
    expect(c.localPool("t")!.share).toBe(333);
    expect(c.snapshot("t", fleet.now)?.fallbackFleetSize).toBe(3);
    // Reconnected: conservative for one expiry period, then gossip again.
    c.connectivity(true, fleet.now);
    expect(c.mode(fleet.now)).toBe("rejoining");
    expect(c.localPool("t")!.share).toBeLessThanOrEqual(333);
    load(fleet, [700, 100, 100], 10);
    expect(c.mode(fleet.now)).toBe("gossip");
    expect(c.localPool("t")!.share).toBeGreaterThan(700);
  });

  it("a frontend that knows no peer still keeps back half the limit when cut off", () => {
    const c = new AdmissionController({ frontendId: "alone", policy: { ...policy, minLimit: 1 } });
    c.setTenant("t", { maxConcurrency: 1000 });
    // Busy, so that its claim is the split's and not the idle claim.
    c.tryAdmit("t", "fn", 0);
    c.demandReport(0);
    c.demandReport(10_000);
    expect(c.localPool("t")!.share).toBe(1000);
    c.connectivity(false, 10_000);
    expect(c.localPool("t")!.share).toBe(500);
  });

  it("claim an idle pool alike everywhere, and leave it out of every report once nobody uses it", () => {
    const fleet = new TestFleet(3, { ...policy, minLimit: 300 });
    fleet.controllers.forEach((c) => c.setTenant("t", { maxConcurrency: 1000 }));
    load(fleet, [300, 0, 0], 30);
    // Busy on 0 alone: 1 and 2 report the pool too, with their small claims, so 0 gets the room.
    const busy = fleet.controller(1).demandReport(fleet.now);
    expect(busy.pools.map((entry) => entry[0])).toEqual(["t"]);
    expect(fleet.controller(0).localPool("t")!.share).toBeGreaterThan(900);
    // Idle everywhere, long enough for demand to fade: nobody reports it, and each
    // frontend's share is its idle claim, floor(T's floor, 300, / 3).
    load(fleet, [0, 0, 0], 100);
    for (const c of fleet.controllers) {
      expect(c.demandReport(fleet.now).pools).toEqual([]);
      expect(c.localPool("t")!.share).toBe(100);
    }
  });

  it("wake an idle pool within a round trip of reports: the request waits, the reports go out at once", () => {
    const fleet = new TestFleet(2, { ...policy, minLimit: 1 });
    fleet.controllers.forEach((c) => c.setTenant("t", { maxConcurrency: 2 }));
    load(fleet, [0, 0], 10);
    expect(fleet.controllers.map((c) => c.reportSoon())).toEqual([false, false]);
    // Idle everywhere: each claims floor(1 / 2) = 0, so the first request must wait.
    const first = fleet.admit(0, "t");
    expect(first.kind).toBe("rejection");
    expect(first.kind === "rejection" && first.borrowing).toBe(true);
    // The transport asks, a few times an interval: frontend 0 reports now (it waits for a
    // raise), and 1, having heard a report that awaits acknowledgement, answers at once.
    expect(fleet.controller(0).reportSoon()).toBe(true);
    expect(fleet.controller(1).reportSoon()).toBe(false);
    fleet.tick(0);
    fleet.deliverAll();
    expect(fleet.controller(1).reportSoon()).toBe(true);
    fleet.tick(1);
    fleet.deliverAll();
    const retried =
      first.kind === "rejection" ? fleet.controller(0).retryAdmit(first, fleet.now) : first;
    expect(retried.kind).toBe("ticket");
    // Nothing waits any more: reports go back to their interval.
    expect(fleet.controllers.map((c) => c.reportSoon())).toEqual([false, false]);
  });

  it("ignore malformed, stale and own reports without throwing", () => {
    const fleet = new TestFleet(2, policy);
    const c = fleet.controller(0);
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        expect(c.receiveReport(junk, 0)).toBe(false);
        expect(() => c.receiveLoanMessage(junk, 0)).not.toThrow();
      }),
      { numRuns: 300 },
    );
    const first = fleet.controller(1).demandReport(100);
    const second = fleet.controller(1).demandReport(200);
    expect(c.receiveReport(second, 200)).toBe(true);
    expect(c.receiveReport(first, 200)).toBe(false);
    expect(c.receiveReport(c.demandReport(200), 200)).toBe(false);
    // A bad pool entry is dropped, the rest of the report kept.
    const mixed = {
      ...fleet.controller(1).demandReport(300),
      pools: [["t", "", 1, 2, 3, 4], ["t", 5], "x"],
    };
    expect(c.receiveReport(mixed, 300)).toBe(true);
    expect(
      c.snapshot("t", 300)?.unreserved.frontends.find((f) => f.frontendId === "fe-1")?.demand,
    ).toBe(2);
  });

  it("report to operators what each frontend holds", () => {
    const fleet = new TestFleet(3, policy);
    load(fleet, [500, 200, 100], 20);
    const snapshot = fleet.controller(1).snapshot("t", fleet.now)!;
    expect(snapshot).toMatchObject({
      tenantId: "t",
      maxConcurrency: 1000,
      temporaryLimit: 1000,
      mode: "gossip",
    });
    expect(snapshot.unreserved.frontends.map((f) => [f.frontendId, f.self])).toEqual([
      ["fe-0", false],
      ["fe-1", true],
      ["fe-2", false],
    ]);
    expect(sum(snapshot.unreserved.frontends.map((f) => f.share))).toBeLessThanOrEqual(1000);
    expect(snapshot.unreserved.fleetInflight).toBe(800);
  });
});

describe("fleet-wide safety", () => {
  /**
   * `size` frontends sharing tenant "t" with M = `max`, their demand
   * estimates following the last window exactly: races are easy to stage.
   */
  function exactFleet(size: number, max: number): TestFleet {
    const fleet = new TestFleet(size, {
      initialLimit: max,
      minLimit: 1,
      gossipIntervalMs: TICK,
      demandSmoothingMs: 1,
      settledDemandSmoothingMs: 1,
    });
    fleet.controllers.forEach((c) => c.setTenant("t", { maxConcurrency: max }));
    return fleet;
  }

  it("raises a share only after the peers acknowledged it, so a share given up is not taken twice", () => {
    const fleet = exactFleet(2, 10);
    load(fleet, [4, 4], 10);
    expect(shares(fleet)).toEqual([5, 5]);
    // Frontend 0 goes quiet and says so; frontend 1 is busy and hears it.
    while (fleet.tickets[0]!.length > 0) fleet.release(0);
    while (fleet.tickets[1]!.length > 0) fleet.release(1);
    fleet.now += TICK;
    for (let i = 0; i < 9; i++) fleet.admit(1, "t");
    fleet.tick(0);
    fleet.inFlight = fleet.inFlight.filter((m) => m.to === 1);
    fleet.deliverAll();
    // Before frontend 0 hears back, its own traffic returns.
    fleet.now += TICK;
    for (let i = 0; i < 9; i++) fleet.admit(0, "t");
    fleet.tick(1);
    fleet.tick(0);
    fleet.inFlight = [];
    for (let i = 0; i < 9; i++) {
      fleet.admit(0, "t");
      fleet.admit(1, "t");
    }
    expect(fleet.fleetInflight()).toBeLessThanOrEqual(10);
  });

  it("with a worker census, keep exactly what a killed frontend left running counted, however long it runs", () => {
    const fleet = exactFleet(3, 12);
    load(fleet, [4, 4, 4], 10);
    expect(shares(fleet)).toEqual([4, 4, 4]);
    // Killed with 4 invocations running, which run on for 10 intervals:
    // far past any estimate from the mean execution (one interval here).
    fleet.kill(2, { invocationsRunOn: true });
    fleet.notice(0, true);
    fleet.notice(1, true);
    for (let step = 0; step < 40; step++) {
      fleet.now += TICK / 4;
      fleet.census(0);
      fleet.census(1);
      if (step % 4 === 0) {
        fleet.tickAll();
        fleet.deliverAll();
      }
      // Both survivors surge all along.
      for (const f of [0, 1]) for (let i = 0; i < 12; i++) fleet.admit(f, "t");
      expect(fleet.fleetInflight()).toBeLessThanOrEqual(12);
    }
    expect(fleet.fleetInflight()).toBe(12);
    // Three of them end: the next census frees their slots at once, each
    // survivor taking its equal part before it hears the other.
    for (let i = 0; i < 3; i++) fleet.endInvocationOf(2);
    expect(fleet.census(0)).toBe(true);
    expect(fleet.census(1)).toBe(true);
    for (const f of [0, 1]) for (let i = 0; i < 12; i++) fleet.admit(f, "t");
    expect(fleet.fleetInflight()).toBeLessThanOrEqual(12);
    expect(fleet.tickets[0]!.length + fleet.tickets[1]!.length).toBe(10);
    // The last one ends; once the survivors hear each other the split is whole.
    fleet.endInvocationOf(2);
    fleet.census(0);
    fleet.census(1);
    expect(fleet.controller(0).ghostHolders()).toEqual([]);
    load(fleet, [6, 6, 0], 5);
    expect(shares(fleet).slice(0, 2)).toEqual([6, 6]);
  });

  it("forget a departed frontend's ghost when it is heard again, so its busy invocations are not counted twice", () => {
    const fleet = exactFleet(3, 12);
    load(fleet, [4, 4, 4], 10);
    // Its connection drops: found gone, with its 4 invocations running on.
    fleet.kill(2, { invocationsRunOn: true });
    fleet.notice(0, true);
    fleet.census(0);
    expect(fleet.controller(0).ghostHolders()).toEqual(["fe-2"]);
    // Its connection comes back and its reports count those 4 itself.
    fleet.alive[2] = true;
    fleet.tick(2);
    fleet.deliverAll();
    expect(fleet.controller(0).ghostHolders()).toEqual([]);
    load(fleet, [4, 4, 4], 5);
    expect(sum(shares(fleet))).toBe(12);
  });

  it("survivors that both surge after a kill take only their part of its share until they hear each other", () => {
    const fleet = exactFleet(3, 12);
    load(fleet, [2, 2, 2], 10);
    expect(shares(fleet)).toEqual([4, 4, 4]);
    fleet.kill(2, { invocationsRunOn: true });
    fleet.notice(0);
    fleet.notice(1);
    // While what it left running may still run, nothing of its share is taken.
    for (let i = 0; i < 12; i++) {
      fleet.admit(0, "t");
      fleet.admit(1, "t");
    }
    expect(fleet.fleetInflight()).toBeLessThanOrEqual(12);
    fleet.endInvocationsOf(2);
    // Both survivors' traffic surges before either hears the other's new
    // claim: each alone would see room for 8.
    fleet.now += 3 * TICK;
    for (const f of [0, 1]) {
      while (fleet.tickets[f]!.length > 0) fleet.release(f);
      for (let i = 0; i < 12; i++) fleet.admit(f, "t");
      fleet.tick(f);
    }
    fleet.inFlight = [];
    for (let i = 0; i < 12; i++) {
      fleet.admit(0, "t");
      fleet.admit(1, "t");
    }
    expect(fleet.fleetInflight()).toBeLessThanOrEqual(12);
    expect(fleet.fleetInflight()).toBeGreaterThanOrEqual(11);
  });

  /**
   * Counterexamples the properties below once found, each kept as it was
   * shrunk (fast-check seed in the name), so that they stay fixed whatever
   * seed `npm test` runs with.
   */
  describe("regression cases", () => {
    it("seed 1446136431: a frontend that dies unheard during start-up leaves invocations the survivor must count", () => {
      // Frontend 1 dies at once; 0 admits under its start-up cap (4 of 12) and dies with
      // 2 invocations running on, before any report of it reached 2. Without counting
      // the frontends it never heard, 2 left its start-up period believing itself alone
      // and took all 12: 13 ran.
      const before: FleetStep[] = [
        { kind: "admit", f: 2 },
        { kind: "kill", f: 1, runOn: false },
        { kind: "wait", ms: 78 },
        { kind: "admit", f: 0 },
        { kind: "end", pick: 0 },
        { kind: "end", pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "wait", ms: 31 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "notice", f: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "wait", ms: 16 },
        { kind: "burst", f: 0, n: 2 },
        { kind: "drop", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "end", pick: 0 },
      ];
      const after: FleetStep[] = [
        { kind: "wait", ms: 14 },
        { kind: "wait", ms: 111 },
        { kind: "tick", f: 2 },
        { kind: "burst", f: 2, n: 10 },
      ];
      runFleetSteps(killAfterBusySteps(before, 0, after), false);
    });

    it("seed 1172307016: a killed frontend that expires unprobed leaves its running invocations counted", () => {
      // Frontend 0 is killed with 4 invocations running on; no probe finds it gone, so
      // the survivors drop it after five silent intervals. Dropping it without a ghost
      // gave its share back at once: 2 took 6 while its 4 still ran, 13 in all.
      const before: FleetStep[] = [
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "wait", ms: 1 },
        { kind: "admit", f: 1 },
        { kind: "drop", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "admit", f: 1 },
        { kind: "tick", f: 0 },
        { kind: "wait", ms: 1 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "tick", f: 0 },
        { kind: "end", pick: 0 },
        { kind: "wait", ms: 98 },
        { kind: "admit", f: 1 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
      ];
      const after: FleetStep[] = [
        { kind: "wait", ms: 117 },
        { kind: "wait", ms: 83 },
        { kind: "tick", f: 1 },
        { kind: "deliver", pick: 0 },
        { kind: "burst", f: 2, n: 6 },
        { kind: "drop", pick: 0 },
      ];
      runFleetSteps(killAfterBusySteps(before, 0, after), false);
    });
    it("seed 674940230: what a census counted stays counted while the census is not asked again", () => {
      // Frontend 1 dies unheard with 2 invocations running on; 0's census names them, and
      // time passes (settle) with no further census. A census lease of two intervals let
      // the ghost lapse while they still ran: 0 took 7, 13 in all. Now a census-counted
      // ghost stays until a census says its invocations ended.
      const before: FleetStep[] = [
        { kind: "burst", f: 1, n: 2 },
        { kind: "wait", ms: 69 },
        { kind: "wait", ms: 31 },
        { kind: "kill", f: 1, runOn: true },
        { kind: "wait", ms: 103 },
        { kind: "deliver", pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "tick", f: 0 },
        { kind: "admit", f: 2 },
        { kind: "admit", f: 2 },
        { kind: "settle" },
        { kind: "admit", f: 0 },
        { kind: "tick", f: 0 },
        { kind: "wait", ms: 97 },
        { kind: "admit", f: 2 },
        { kind: "deliver", pick: 0 },
        { kind: "settle" },
        { kind: "deliver", pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "census", f: 0 },
        { kind: "admit", f: 2 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
      ];
      const after: FleetStep[] = [
        { kind: "settle" },
        { kind: "settle" },
        { kind: "burst", f: 0, n: 4 },
        { kind: "admit", f: 0 },
      ];
      runFleetSteps(killAfterBusySteps(before, 1, after), false);
    });
    it("seed 459708192: a pool a frontend leaves out of its reports is claimed alike by every frontend", () => {
      // Frontend 2, idle, left the pool out of its report; its peers took it to claim the
      // split's sliver for an idle frontend as their view of demand gave it, while 2
      // enforced the split of its own, older view: 13 ran. An omitted pool is now
      // claimed at an idle claim every frontend computes alike (DemandReport.idleDivisor).
      const before: FleetStep[] = [
        { kind: "admit", f: 0 },
        { kind: "wait", ms: 97 },
        { kind: "settle" },
        { kind: "burst", f: 0, n: 2 },
        { kind: "burst", f: 2, n: 2 },
        { kind: "admit", f: 2 },
        { kind: "admit", f: 0 },
        { kind: "tick", f: 0 },
        { kind: "census", f: 0 },
        { kind: "tick", f: 0 },
        { kind: "wait", ms: 103 },
        { kind: "admit", f: 1 },
        { kind: "end", pick: 0 },
        { kind: "admit", f: 2 },
        { kind: "tick", f: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "kill", f: 2, runOn: true },
        { kind: "release", f: 0, pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 375366679 },
        { kind: "settle" },
        { kind: "admit", f: 0 },
        { kind: "notice", f: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "burst", f: 0, n: 2 },
        { kind: "admit", f: 0 },
      ];
      const after: FleetStep[] = [
        { kind: "admit", f: 1 },
        { kind: "admit", f: 1 },
      ];
      runFleetSteps(killAfterBusySteps(before, 0, after), false);
    });

    it("seed 420857537: a frontend that knows no peer is bound by what it announced to those that heard it", () => {
      // Frontend 2 reported once (the pool idle: claimed at 0) and, hearing nobody, took
      // its start-up cap anyway; its peers, who had heard it, counted it at 0, and when it
      // died its 3 running invocations were not counted: 13 ran. Its latest announcement
      // now binds a frontend even before it knows any peer.
      const before: FleetStep[] = [
        { kind: "tick", f: 2 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "burst", f: 0, n: 1 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "census", f: 0 },
        { kind: "wait", ms: 1 },
        { kind: "burst", f: 1, n: 1 },
        { kind: "burst", f: 2, n: 3 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "release", f: 1, pick: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "end", pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "release", f: 0, pick: 0 },
      ];
      const after: FleetStep[] = [
        { kind: "wait", ms: 49 },
        { kind: "burst", f: 1, n: 4 },
        { kind: "wait", ms: 134 },
        { kind: "wait", ms: 116 },
        { kind: "burst", f: 0, n: 6 },
      ];
      runFleetSteps(killAfterBusySteps(before, 2, after), false);
    });

    it("seed 1878627851: a borrower counts as its own what runs on slots lent by a frontend that is gone", () => {
      // Frontend 1 lent a slot to 0 and died; its census counts only its own invocations,
      // and 0 kept the slot as borrowed (charged to 1) until the loan's lease ran out: the
      // invocation on it was counted by nobody and 2 took the room, 13 in all.
      const before: FleetStep[] = [
        { kind: "admit", f: 0 },
        { kind: "wait", ms: 20 },
        { kind: "wait", ms: 80 },
        { kind: "settle" },
        { kind: "admit", f: 2 },
        { kind: "admit", f: 0 },
        { kind: "settle" },
        { kind: "settle" },
        { kind: "admit", f: 0 },
        { kind: "admit", f: 0 },
        { kind: "wait", ms: 133 },
        { kind: "admit", f: 2 },
        { kind: "admit", f: 1 },
        { kind: "settle" },
        { kind: "settle" },
        { kind: "tick", f: 0 },
        { kind: "census", f: 0 },
        { kind: "wait", ms: 80 },
        { kind: "wait", ms: 5 },
        { kind: "deliver", pick: 0 },
        { kind: "census", f: 0 },
        { kind: "admit", f: 1 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "end", pick: 0 },
        { kind: "census", f: 0 },
        { kind: "notice", f: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "admit", f: 0 },
      ];
      const after: FleetStep[] = [
        { kind: "notice", f: 2 },
        { kind: "wait", ms: 82 },
        { kind: "wait", ms: 100 },
        { kind: "burst", f: 2, n: 3 },
        { kind: "admit", f: 2 },
      ];
      runFleetSteps(killAfterBusySteps(before, 1, after), true);
    });

    it("seed 1119588123: a survivor that dies after taking a windfall is counted with it", () => {
      // Frontend 1 died; 0 and 2 each took their part of its freed slots at once (a
      // windfall of 2), unannounced. Then 0 died with 6 running, and 2 counted it at its
      // last claim, 4: 2 took the difference, 13 in all. A departed peer's ghost now adds
      // the windfall this frontend took, which is what every survivor took.
      const before: FleetStep[] = [
        { kind: "admit", f: 1 },
        { kind: "settle" },
        { kind: "wait", ms: 29 },
        { kind: "end", pick: 0 },
        { kind: "kill", f: 1, runOn: false },
        { kind: "admit", f: 0 },
        { kind: "admit", f: 0 },
        { kind: "admit", f: 0 },
        { kind: "admit", f: 0 },
        { kind: "end", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "settle" },
        { kind: "wait", ms: 143 },
        { kind: "drop", pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "admit", f: 0 },
        { kind: "wait", ms: 29 },
        { kind: "deliver", pick: 0 },
        { kind: "deliver", pick: 0 },
        { kind: "wait", ms: 1 },
        { kind: "admit", f: 0 },
        { kind: "release", f: 0, pick: 0 },
        { kind: "burst", f: 0, n: 6 },
      ];
      const after: FleetStep[] = [
        { kind: "notice", f: 2 },
        { kind: "burst", f: 2, n: 6 },
        { kind: "tick", f: 2 },
        { kind: "admit", f: 2 },
      ];
      runFleetSteps(killAfterBusySteps(before, 0, after), false);
    });

    it("seed 84513143: a lender keeps what it lent to a frontend that is gone counted until that frontend's ghost is", () => {
      // Frontend 1 borrowed a slot from 2 and died with 5 running, one of them on the
      // borrowed slot; 2 took its loan back at once, the survivors counted 1 at its last
      // claim, 4, and the invocation on the loan was counted by nobody: 13 ran.
      const before: FleetStep[] = [
        { kind: "admit", f: 0 },
        { kind: "wait", ms: 100 },
        { kind: "wait", ms: 91 },
        { kind: "settle" },
        { kind: "deliver", pick: 0 },
        { kind: "release", f: 1, pick: 0 },
        { kind: "admit", f: 0 },
        { kind: "settle" },
        { kind: "deliver", pick: 0 },
        { kind: "admit", f: 1 },
        { kind: "admit", f: 0 },
        { kind: "admit", f: 1 },
        { kind: "wait", ms: 109 },
        { kind: "tick", f: 0 },
        { kind: "admit", f: 1 },
        { kind: "admit", f: 1 },
        { kind: "deliver", pick: 880479734 },
        { kind: "notice", f: 0 },
        { kind: "admit", f: 0 },
        { kind: "deliver", pick: 48883802 },
        { kind: "admit", f: 1 },
        { kind: "deliver", pick: 735945338 },
        { kind: "deliver", pick: 0 },
        { kind: "burst", f: 0, n: 2 },
      ];
      const after: FleetStep[] = [
        { kind: "wait", ms: 42 },
        { kind: "settle" },
        { kind: "admit", f: 2 },
        { kind: "settle" },
        { kind: "burst", f: 0, n: 2 },
        { kind: "admit", f: 2 },
        { kind: "tick", f: 0 },
      ];
      runFleetSteps(killAfterBusySteps(before, 1, after), true);
    });
  });

  it("property: whatever the order, delay or loss of messages, the fleet never runs more than M", () => {
    fc.assert(fleetProperties["any order, delay or loss of messages"](), {
      numRuns: FLEET_PROPERTY_RUNS,
    });
  });

  it("property: survivors that take a killed frontend's share at once still hold M", () => {
    // Busy before the kill, so the victim holds a real part of the limit;
    // then any interleaving of the survivors learning of it.
    fc.assert(fleetProperties["survivors take a killed frontend's share"](), {
      numRuns: FLEET_PROPERTY_RUNS,
    });
  });
});
