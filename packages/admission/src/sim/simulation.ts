/**
 * The discrete-event engine: Poisson arrivals (non-homogeneous, by
 * thinning), a load balancer, fixed execution times, gossip with delay and
 * loss, loan messages, a crash — and the real AdmissionController deciding
 * every request. Same seed, same run: every random draw comes from seeded
 * streams, and arrivals and routing use their own streams so that all
 * strategies see the very same requests.
 */
import { encodeRecord } from "@gust/protocol";
import { loanToWire, reportToWire } from "../wire.js";
import type { AdmissionController } from "../controller.js";
import type { Rejection, Ticket } from "../decision.js";
import type { LoanMessage } from "../loans.js";
import { resolveAdmissionPolicy } from "../policy.js";
import type { DemandReport } from "../report.js";
import { apportionShares } from "../shares.js";
import { EventQueue } from "./event-queue.js";
import { LoadBalancer } from "./load-balancer.js";
import { convergence, Counters, type Figures, type Sample } from "./metrics.js";
import { Random } from "./random.js";
import { loadAt, peakLoad, type Scenario } from "./scenarios.js";
import { buildFleet, type Strategy } from "./strategies.js";

type SimEvent =
  | { at: number; kind: "arrival"; tenant: number }
  | {
      at: number;
      kind: "departure";
      tenant: number;
      frontend: number;
      ticket: Ticket;
      controller: AdmissionController;
    }
  | {
      at: number;
      kind: "retry";
      tenant: number;
      frontend: number;
      rejection: Rejection;
      firstAt: number;
      counting: boolean;
    }
  | { at: number; kind: "tick"; index: number }
  | { at: number; kind: "report"; to: number; report: DemandReport }
  | { at: number; kind: "loan"; to: number; message: LoanMessage }
  | { at: number; kind: "crash"; frontend: number }
  | { at: number; kind: "sample" };

export interface SimulationResult {
  scenario: string;
  durationMs: number;
  strategy: Strategy;
  seed: number;
  figures: Figures;
  samples: Sample[];
}

export function simulate(scenario: Scenario, strategy: Strategy, seed = 1): SimulationResult {
  const root = new Random(seed);
  const arrivalsRandom = root.fork(1);
  const balancerRandom = root.fork(2);
  const networkRandom = root.fork(3);
  const phaseRandom = root.fork(4);
  const policy = resolveAdmissionPolicy(scenario.policy);
  const n = scenario.frontends;
  const tenants = scenario.tenants;
  const focus = Math.max(
    0,
    tenants.findIndex((t) => t.id === scenario.focusTenant),
  );
  const focusTenant = tenants[focus];
  if (!focusTenant) throw new RangeError(`scenario ${scenario.name} has no tenants`);

  const queue = new EventQueue<SimEvent>();
  const alive: boolean[] = Array.from({ length: n }, () => true);
  const balancer = new LoadBalancer(scenario.balancer, n, balancerRandom);
  const fleetInflight = new Float64Array(tenants.length);
  const focusInflight = new Float64Array(n);
  const counters = new Counters(n);
  const samples: Sample[] = [];
  let now = 0;

  const indexOf = new Map<string, number>();
  for (let f = 0; f < n; f++) indexOf.set(`frontend-${f}`, f);
  const fleet = buildFleet({
    strategy,
    frontends: n,
    policy: scenario.policy,
    tenants,
    sendLoan: (from, message) => {
      const to = indexOf.get(message.to);
      if (!alive[from] || to === undefined || networkRandom.chance(scenario.gossip.lossRate))
        return;
      counters.loanMessages++;
      counters.loanBytes += encodeRecord(loanToWire(message)).byteLength;
      queue.push({ at: now + scenario.loanDelayMs, kind: "loan", to, message });
    },
  });
  // The temporary limit each ticking controller holds per tenant, refreshed every tick.
  const limits = fleet.ticking.map(() => new Float64Array(tenants.length));
  const tickerAlive = (index: number) =>
    fleet.gossips || fleet.ticking.length === n ? alive[index] === true : true;
  const refreshLimits = (index: number) => {
    const controller = fleet.ticking[index];
    const row = limits[index];
    if (!controller || !row) return;
    tenants.forEach(
      (tenant, i) => (row[i] = controller.localPool(tenant.id)?.limit ?? tenant.maxConcurrency),
    );
  };
  const largestLimit = (tenant: number) => {
    let largest = 0;
    limits.forEach((row, index) => {
      if (tickerAlive(index)) largest = Math.max(largest, row[tenant] ?? 0);
    });
    return largest;
  };

  const peaks = tenants.map((t) => peakLoad(t.load) / t.executionMs);
  const nextArrival = (tenant: number) => {
    const spec = tenants[tenant];
    const peak = peaks[tenant] ?? 0;
    if (!spec || peak <= 0) return;
    let at = now;
    for (;;) {
      at += arrivalsRandom.exponential(peak);
      if (at > scenario.durationMs) return;
      if (arrivalsRandom.next() * peak <= loadAt(spec.load, at) / spec.executionMs) break;
    }
    queue.push({ at, kind: "arrival", tenant });
  };

  tenants.forEach((_t, i) => nextArrival(i));
  fleet.ticking.forEach((_controller, index) => {
    refreshLimits(index);
    queue.push({ at: phaseRandom.next() * policy.gossipIntervalMs, kind: "tick", index });
  });
  for (let t = 0; t <= scenario.durationMs; t += scenario.sampleMs)
    queue.push({ at: t, kind: "sample" });
  if (scenario.crash)
    queue.push({ at: scenario.crash.atMs, kind: "crash", frontend: scenario.crash.frontend });

  /**
   * Act on an admission decision. A rejection that waits for a loan is
   * retried after its hint, for as long as the loan request may be answered;
   * the request counts as throttled only when it is finally turned away.
   */
  const decided = (
    tenant: number,
    frontend: number,
    decision: Ticket | Rejection,
    firstAt: number,
    counting: boolean,
  ) => {
    const spec = tenants[tenant]!;
    const controller = fleet.admitting[frontend]!;
    const fleetNow = fleetInflight[tenant] ?? 0;
    if (decision.kind === "ticket") {
      const inflight = fleetNow + 1;
      fleetInflight[tenant] = inflight;
      if (tenant === focus) {
        focusInflight[frontend] = (focusInflight[frontend] ?? 0) + 1;
        counters.peakFleetInflight = Math.max(counters.peakFleetInflight, inflight);
      }
      counters.peakOverM = Math.max(counters.peakOverM, inflight - spec.maxConcurrency);
      counters.peakOverT = Math.max(counters.peakOverT, inflight - largestLimit(tenant));
      if (now > firstAt) counters.waitedForLoan++;
      queue.push({
        at: now + spec.executionMs,
        kind: "departure",
        tenant,
        frontend,
        ticket: decision,
        controller,
      });
      return;
    }
    if (decision.borrowing && alive[frontend] && now - firstAt < policy.loanTimeoutMs) {
      queue.push({
        at: now + decision.retryAfterMs,
        kind: "retry",
        tenant,
        frontend,
        rejection: decision,
        firstAt,
        counting,
      });
      return;
    }
    if (!counting) return;
    counters.throttled++;
    counters.throttledByFrontend[frontend] = (counters.throttledByFrontend[frontend] ?? 0) + 1;
    const limit = controller.localPool(spec.id)?.limit ?? spec.maxConcurrency;
    if (fleetNow < limit) counters.falseVsT++;
    if (fleetNow < spec.maxConcurrency) counters.falseVsM++;
  };

  let expiryObservedAt: number | null = null;
  const peersAtCrash: number[] = [];

  for (let event = queue.pop(); event && event.at <= scenario.durationMs; event = queue.pop()) {
    now = event.at;
    switch (event.kind) {
      case "arrival": {
        nextArrival(event.tenant);
        const spec = tenants[event.tenant]!;
        const frontend = balancer.route(now, alive);
        if (frontend < 0) break;
        const counting = now >= scenario.warmupMs;
        if (counting) {
          counters.requests++;
          counters.requestsByFrontend[frontend] = (counters.requestsByFrontend[frontend] ?? 0) + 1;
        }
        decided(
          event.tenant,
          frontend,
          fleet.admitting[frontend]!.tryAdmit(spec.id, "", now),
          now,
          counting,
        );
        break;
      }
      case "retry": {
        const controller = fleet.admitting[event.frontend]!;
        const decision = alive[event.frontend]
          ? controller.retryAdmit(event.rejection, now)
          : event.rejection;
        decided(event.tenant, event.frontend, decision, event.firstAt, event.counting);
        break;
      }
      case "departure": {
        fleetInflight[event.tenant] = (fleetInflight[event.tenant] ?? 1) - 1;
        if (event.tenant === focus)
          focusInflight[event.frontend] = (focusInflight[event.frontend] ?? 1) - 1;
        // A crashed frontend's invocations still finish on their workers; nobody releases them.
        if (alive[event.frontend] || !fleet.gossips) event.controller.release(event.ticket, now);
        break;
      }
      case "tick": {
        if (!tickerAlive(event.index)) break;
        const controller = fleet.ticking[event.index]!;
        const report = controller.demandReport(now);
        refreshLimits(event.index);
        if (fleet.gossips) {
          counters.gossipReports++;
          counters.gossipBytes += encodeRecord(reportToWire(report)).byteLength;
          for (let to = 0; to < n; to++) {
            if (to === event.index || !alive[to] || networkRandom.chance(scenario.gossip.lossRate))
              continue;
            queue.push({ at: now + scenario.gossip.delayMs, kind: "report", to, report });
          }
          if (scenario.crash && now > scenario.crash.atMs && expiryObservedAt === null) {
            const dropped = fleet.ticking.every(
              (c, f) => !alive[f] || c.peerCount < (peersAtCrash[f] ?? Number.POSITIVE_INFINITY),
            );
            if (dropped) expiryObservedAt = now;
          }
        }
        queue.push({ at: now + policy.gossipIntervalMs, kind: "tick", index: event.index });
        break;
      }
      case "report":
        if (alive[event.to]) fleet.ticking[event.to]!.receiveReport(event.report, now);
        break;
      case "loan":
        if (alive[event.to]) fleet.ticking[event.to]!.receiveLoanMessage(event.message, now);
        break;
      case "crash":
        fleet.ticking.forEach((c, f) => (peersAtCrash[f] = c.peerCount));
        alive[event.frontend] = false;
        break;
      case "sample":
        samples.push(sample());
        break;
    }
  }

  function sample(): Sample {
    const limit = largestLimit(focus);
    const split = balancer.expectedSplit(now, alive);
    const load = loadAt(focusTenant!.load, now);
    const targets = apportionShares(
      limit,
      split.map((w) => w * load),
      policy.spareWeightFloor,
    ).map((x, f) => (alive[f] ? x : Number.NaN));
    const views = fleet.admitting.map((c, f) =>
      alive[f] ? c.localPool(focusTenant!.id) : undefined,
    );
    return {
      t: now,
      limit,
      max: focusTenant!.maxConcurrency,
      fleetInflight: fleetInflight[focus] ?? 0,
      shares: views.map((v) => v?.share ?? Number.NaN),
      baseShares: views.map((v) => v?.baseShare ?? Number.NaN),
      targets,
      inflight: Array.from(focusInflight),
      demands: views.map((v) => v?.demand ?? Number.NaN),
    };
  }

  const band = 0.05 * focusTenant.maxConcurrency;
  const figures: Figures = {
    requests: counters.requests,
    throttled: counters.throttled,
    falseVsT: counters.falseVsT,
    falseVsM: counters.falseVsM,
    peakFleetInflight: counters.peakFleetInflight,
    peakOverT: counters.peakOverT,
    peakOverM: counters.peakOverM,
    gossipReports: counters.gossipReports,
    gossipBytesPerReport:
      counters.gossipReports > 0 ? counters.gossipBytes / counters.gossipReports : 0,
    gossipBytesPerSecond: fleet.gossips
      ? (counters.gossipBytes / n / scenario.durationMs) * 1000
      : 0,
    loanMessages: counters.loanMessages,
    loanBytesPerSecond: fleet.gossips ? (counters.loanBytes / scenario.durationMs) * 1000 : 0,
    waitedForLoan: counters.waitedForLoan,
    requestsByFrontend: counters.requestsByFrontend,
    throttledByFrontend: counters.throttledByFrontend,
  };
  if (fleet.gossips && scenario.shiftAtMs !== undefined) {
    figures.convergeAfterShiftMs = convergence(
      samples,
      scenario.shiftAtMs,
      scenario.durationMs,
      band,
    );
  }
  if (fleet.gossips && scenario.crash) {
    figures.recoverAfterCrashMs = convergence(
      samples,
      scenario.crash.atMs,
      scenario.durationMs,
      band,
    );
    figures.expiryAfterCrashMs =
      expiryObservedAt === null ? null : expiryObservedAt - scenario.crash.atMs;
  }
  return {
    scenario: scenario.name,
    durationMs: scenario.durationMs,
    strategy,
    seed,
    figures,
    samples,
  };
}
