/**
 * The admission controller a frontend holds, one per process: tenants'
 * limits, reserved concurrency, the temporary limit, and this frontend's
 * share of each, kept current from gossip. Pure and synchronous: the caller
 * passes the clock (`now`, ms) into every call and carries the messages;
 * nothing here does I/O, awaits or reads the time.
 *
 * Wiring: call `tryAdmit` per request and `release` when it ends; every
 * gossip interval, publish `demandReport(now)` (call it even while cut off:
 * it is also the controller's clock tick); hand every received report to
 * `receiveReport`, loan messages to `receiveLoanMessage`, and connection
 * changes to `connectivity`.
 */
import { CENSUS_STRANGERS } from "@gust/protocol";
import {
  resolveAdmissionControllerOptions,
  type AdmissionControllerOptions,
  type LocalPoolState,
  type TenantSettings,
} from "./controller-options.js";
import { ThrottleReasons, type Rejection, type Ticket } from "./decision.js";
import { Lending } from "./lending.js";
import { parseLoanMessage } from "./loans.js";
import { FleetMode } from "./fleet-mode.js";
import { PeerTable } from "./peers.js";
import type { AdmissionPolicy } from "./policy.js";
import { ACTIVE_DEMAND, Pool, ShareModes, type ShareContext, type ShareMode } from "./pool.js";
import {
  DEMAND_REPORT_TYPE,
  parseDemandReport,
  poolKey,
  type DemandReport,
  type PoolDemand,
} from "./report.js";
import { buildSnapshot, type TenantSnapshot } from "./snapshot.js";
import { checkMaxConcurrency, type AccountConcurrency } from "./tenant-limits.js";
import { TenantPools, type TenantState } from "./tenant-pools.js";

/**
 * Without a worker census (see applyCensus), a departed peer's slots stay
 * counted for this many mean executions after it died: long enough for
 * nearly all of what it had running to end (exactly so for fixed execution
 * times, 86% for exponential ones).
 */
const GHOST_EXECUTIONS = 2;
/**
 * With a worker census, a departed peer's slots stay counted until a census
 * says its invocations ended, however long that takes: workers that do not
 * answer (overloaded, cut off) keep them counted, trading capacity for the
 * limit; a worker that is gone (nobody listening) counts nothing.
 */
const UNTIL_CENSUS = Number.POSITIVE_INFINITY;
/**
 * The ghost holder standing for frontends this one never heard: at the end
 * of its start-up (or rejoin) period a frontend counts what the part of the
 * expected fleet it did not hear may have left running, until a worker
 * census names them (or, without one, for GHOST_EXECUTIONS). Not a valid
 * frontend id in a census answer: the workers key real ones.
 */
export const STRANGERS = CENSUS_STRANGERS;

export class AdmissionController {
  readonly frontendId: string;
  readonly policy: AdmissionPolicy;
  private readonly fleetMode: FleetMode;
  private readonly lending: Lending;
  private readonly tenants: TenantPools;
  private readonly peers: PeerTable;
  /** Pools whose share waits for peers to acknowledge a raise. */
  private readonly held = new Set<Pool>();
  /** Pools holding departed peers' slots (releaseGhosts runs between ticks too: it visits only these). */
  private readonly haunted = new Set<Pool>();
  private readonly tickets = new WeakMap<Ticket, Pool>();
  private seq = 0;
  private readonly workerCensus: boolean;
  /** A request waits for a held-back raise: report soon (see reportSoon). */
  private raiseWaiting = false;
  /** A peer that waits for acknowledgements reported: acknowledge soon. */
  private ackWanted = false;
  /** Whether the frontends not heard during the last start-up or rejoin period are counted. */
  private strangersCounted = false;

  constructor(options: AdmissionControllerOptions) {
    const resolved = resolveAdmissionControllerOptions(options);
    this.frontendId = resolved.frontendId;
    this.policy = resolved.policy;
    this.peers = new PeerTable(resolved.frontendId);
    this.tenants = new TenantPools(this.policy);
    this.fleetMode = new FleetMode(this.policy, resolved.standalone, resolved.fleetSizeHint);
    this.workerCensus = resolved.workerCensus;
    this.lending = new Lending(resolved.frontendId, this.policy, resolved.sendLoanMessage, (pool) =>
      this.settle(pool),
    );
  }

  // ---- tenant configuration ------------------------------------------------

  /** Create or update a tenant. Throws ConfigError for a maximum that is not a positive integer. */
  setTenant(tenantId: string, settings: TenantSettings): void {
    const max = checkMaxConcurrency(tenantId, settings.maxConcurrency);
    const tenant = this.tenant(tenantId, undefined, max);
    tenant.limits.setMaxConcurrency(max);
    this.limitsChanged(tenant);
  }

  /** Forget a tenant (its invocations in flight still release cleanly). */
  removeTenant(tenantId: string): void {
    for (const pool of this.tenants.remove(tenantId)) {
      this.held.delete(pool);
      this.haunted.delete(pool);
    }
  }

  /**
   * PutFunctionConcurrency (a number) / DeleteFunctionConcurrency (undefined).
   * Throws Lambda's InvalidParameterValueException (a LambdaApiError) when
   * the value is not a whole number ≥ 0 or would leave less than
   * `minUnreserved` of the tenant's maximum unreserved.
   */
  setReservedConcurrency(
    tenantId: string,
    functionName: string,
    reserved: number | undefined,
  ): void {
    const tenant = this.tenant(tenantId, undefined);
    tenant.limits.setReservation(functionName, reserved);
    const removed = this.tenants.reserve(tenant, functionName, reserved);
    if (removed) {
      this.held.delete(removed);
      this.haunted.delete(removed);
    }
    this.limitsChanged(tenant);
  }

  /** GetFunctionConcurrency: the reservation, or undefined when there is none. */
  reservedConcurrency(tenantId: string, functionName: string): number | undefined {
    return this.tenants.get(tenantId)?.limits.reservation(functionName);
  }

  /** GetAccountSettings' ConcurrentExecutions and UnreservedConcurrentExecutions. */
  accountConcurrency(tenantId: string): AccountConcurrency {
    const limits = this.tenants.get(tenantId)?.limits;
    if (limits) return limits.accountConcurrency();
    const max = this.policy.defaultMaxConcurrency;
    return { concurrentExecutions: max, unreservedConcurrentExecutions: max };
  }

  // ---- the hot path ----------------------------------------------------------

  /** Admit one invocation or say why not. O(1); never waits for anything. */
  tryAdmit(tenantId: string, functionName: string, now: number): Ticket | Rejection {
    const pool = this.tenants.poolFor(this.tenant(tenantId, now), functionName);
    pool.meter.recordArrival(now);
    return this.decide(pool, tenantId, functionName, now);
  }

  /**
   * Decide again for a rejected invocation without counting it as a new
   * arrival: after a rejection with `borrowing` set, once its retryAfterMs
   * has passed, a loan may have arrived.
   */
  retryAdmit(rejection: Rejection, now: number): Ticket | Rejection {
    const pool = this.tenants.poolFor(this.tenant(rejection.tenantId, now), rejection.functionName);
    return this.decide(pool, rejection.tenantId, rejection.functionName, now);
  }

  private decide(
    pool: Pool,
    tenantId: string,
    functionName: string,
    now: number,
  ): Ticket | Rejection {
    if (pool.inflight < pool.share) {
      pool.inflight++;
      const ticket: Ticket = Object.freeze({
        kind: "ticket",
        tenantId,
        functionName,
        pool: pool.key,
        admittedAt: now,
      });
      this.tickets.set(ticket, pool);
      this.lending.maybeBorrow(pool, now, this.mode(now));
      return ticket;
    }
    this.lending.maybeBorrow(pool, now, this.mode(now));
    // A raise held back until the peers acknowledge it (a pool waking from idle,
    // claimed at its idle claim until then) comes within a round trip of reports:
    // the caller waits for it as for a loan, and the transport reports soon.
    const raising = this.held.has(pool);
    if (raising) this.raiseWaiting = true;
    const borrowing =
      raising || pool.loans.isAsking(now, this.policy.loanTimeoutMs, this.policy.loanBackoffMs);
    return Object.freeze({
      kind: "rejection",
      tenantId,
      functionName,
      reason: pool.reserved
        ? ThrottleReasons.reservedFunctionConcurrentInvocationLimitExceeded
        : ThrottleReasons.concurrentInvocationLimitExceeded,
      retryAfterMs: borrowing ? this.policy.loanRetryMs : this.retryAfter(pool),
      borrowing,
      share: pool.share,
      inflight: pool.inflight,
    });
  }

  /** The invocation behind a ticket ended. Releasing a ticket twice frees one slot. */
  release(ticket: Ticket, now: number): void {
    let pool = this.tickets.get(ticket);
    if (!pool) return;
    this.tickets.delete(ticket);
    while (pool.mergedInto) pool = pool.mergedInto;
    pool.inflight = Math.max(0, pool.inflight - 1);
    pool.meter.recordCompletion(now - ticket.admittedAt);
    if (pool.loans.borrowedTotal > 0 || pool.loans.hasDue) this.lending.returnLoans(pool);
  }

  // ---- gossip --------------------------------------------------------------------

  /**
   * The clock tick and the message to publish: closes the demand window,
   * expires silent peers and loans, moves temporary limits, recomputes
   * shares. Call every `policy.gossipIntervalMs`, connected or not.
   */
  demandReport(now: number): DemandReport {
    const mode = this.mode(now);
    if (mode === ShareModes.gossip || mode === ShareModes.rejoining) {
      // A peer silent this long is dead or cut off: what it may hold stays counted as
      // if it were found gone (a ghost), and a census, when there is one, follows it.
      for (const frontendId of this.peers.silent(now, this.policy.peerExpiryIntervals)) {
        this.depart(frontendId, now, this.workerCensus);
      }
    }
    for (const pool of this.tenants.byKey.values()) pool.meter.tick(now, pool.inflight);
    this.releaseGhosts(now);
    const context = this.shareContext(now);
    const { loanLeaseMs, loanTimeoutMs, loanBackoffMs } = this.policy;
    const entries: PoolDemand[] = [];
    const seq = ++this.seq;
    const idleDivisor = this.idleDivisor();
    // Only a request that waits asks the peers to hurry; this report acknowledges theirs.
    const awaiting = this.raiseWaiting;
    this.raiseWaiting = false;
    this.ackWanted = false;
    let oldestLoan: number | undefined;
    for (const pool of this.tenants.byKey.values()) {
      if (pool.temporaryLimit && mode !== ShareModes.disconnected) {
        pool.temporaryLimit.update(now, this.fleetDemand(pool));
      }
      pool.loans.expire(now, loanLeaseMs, loanTimeoutMs, loanBackoffMs);
      pool.recompute(context);
      this.lending.returnLoans(pool);
      const outstanding = pool.loans.oldestOutstanding();
      if (outstanding !== undefined) oldestLoan = Math.min(oldestLoan ?? outstanding, outstanding);
      const entry = pool.reportEntry(this.reportedByPeer(pool.key));
      pool.announce(seq, context.acknowledgedSeq, entry ? pool.claim : pool.idleClaim(idleDivisor));
      this.track(pool, pool.settle(context.acknowledgedSeq));
      if (entry) entries.push(entry);
    }
    return {
      type: DEMAND_REPORT_TYPE,
      frontendId: this.frontendId,
      seq,
      intervalMs: this.policy.gossipIntervalMs,
      acks: this.peers.acks(),
      loansSettledThrough: this.lending.settledThrough(oldestLoan),
      pools: entries,
      idleDivisor,
      ...(awaiting ? { awaiting: true } : {}),
    };
  }

  /**
   * Take in a peer's report. Anything malformed, stale or our own is
   * ignored (returns false); this never throws for what a peer sends.
   */
  receiveReport(value: unknown, now: number): boolean {
    if (this.mode(now) === ShareModes.standalone) return false;
    const report = parseDemandReport(value);
    if (!report || report.frontendId === this.frontendId) return false;
    const acknowledgedBefore = this.peers.acknowledgedByAll();
    const previous = this.peers.receive(report, now);
    if (!previous) return false;
    this.lending.borrowerSettled(report.frontendId, report.loansSettledThrough);
    if (report.awaiting === true) this.ackWanted = true;
    const context = this.shareContext(now);
    // A peer found gone that is heard again (its connection came back)
    // counts its own invocations in its reports: its ghosts would count
    // them twice, and a census would keep them as long as it is busy.
    for (const pool of this.haunted) {
      if (!pool.dropGhost(report.frontendId)) continue;
      this.updateHaunted(pool);
      this.track(pool, pool.recompute(context));
    }
    if (context.acknowledgedSeq !== acknowledgedBefore) {
      for (const pool of [...this.held]) this.track(pool, pool.settle(context.acknowledgedSeq));
    }
    // Recompute the pools in the report and those that left it. A tenant
    // first heard of from a peer is created; unknown reserved pools wait for
    // this frontend's own configuration.
    for (const [tenantId, functionName] of report.pools) {
      const key = poolKey(tenantId, functionName);
      const pool =
        this.tenants.byKey.get(key) ??
        (functionName === "" ? this.tenant(tenantId, now).unreserved : undefined);
      if (pool) this.track(pool, pool.recompute(context));
      previous.delete(key);
    }
    for (const key of previous.keys()) {
      const pool = this.tenants.byKey.get(key);
      if (pool) this.track(pool, pool.recompute(context));
    }
    return true;
  }

  /**
   * Whether a report should go out before the next tick: a request here
   * waits for a raise the peers must acknowledge, or a peer reported that it
   * waits for this frontend's acknowledgement. The next report clears the
   * wish. The transport asks a few times an interval and publishes at once
   * when true.
   */
  reportSoon(): boolean {
    return this.raiseWaiting || this.ackWanted;
  }

  /** The transport lost (false) or regained (true) its connection to the gossip bus. */
  connectivity(connected: boolean, now: number): void {
    if (!this.fleetMode.connectivity(connected, now, this.peers.size)) return;
    if (!connected) {
      for (const pool of this.tenants.byKey.values()) pool.loans.dropBorrowed();
    } else {
      this.peers.refreshAll(now);
    }
    this.recomputeAll(now);
  }

  // ---- loans -----------------------------------------------------------------------

  /** Take in a loan message addressed to this frontend; anything else is ignored. */
  receiveLoanMessage(value: unknown, now: number): void {
    const message = parseLoanMessage(value);
    if (!message || message.to !== this.frontendId || message.from === this.frontendId) return;
    const pool = this.tenants.byKey.get(poolKey(message.tenantId, message.functionName));
    this.lending.receive(message, pool, now, this.mode(now));
  }

  // ---- introspection ---------------------------------------------------------------

  /** What an operator needs to see why a tenant's request was throttled. */
  snapshot(tenantId: string, now: number): TenantSnapshot | undefined {
    const tenant = this.tenants.get(tenantId);
    if (!tenant) return undefined;
    return buildSnapshot(
      tenant.limits,
      tenant.unreserved,
      [...tenant.reserved.values()],
      this.shareContext(now),
    );
  }

  /** This frontend's view of one pool, cheaply ("" for the unreserved pool). */
  localPool(tenantId: string, functionName = ""): LocalPoolState | undefined {
    const tenant = this.tenants.get(tenantId);
    if (!tenant) return undefined;
    const pool = functionName === "" ? tenant.unreserved : tenant.reserved.get(functionName);
    if (!pool) return undefined;
    return {
      limit: pool.limit,
      share: pool.share,
      baseShare: pool.baseShare,
      inflight: pool.inflight,
      demand: pool.meter.demand,
    };
  }

  /** How this frontend decides shares right now (see fleet-mode.ts). */
  mode(now?: number): ShareMode {
    const mode = this.fleetMode.at(now);
    if (mode === ShareModes.rejoining) this.strangersCounted = false;
    else if (mode === ShareModes.gossip && !this.strangersCounted && now !== undefined) {
      this.strangersCounted = true;
      this.countStrangers(now);
    }
    return mode;
  }

  /**
   * The frontends to leave out of a census of strangers: this one and every
   * live peer (their own reports count what they run).
   */
  knownFrontends(): string[] {
    return [this.frontendId, ...this.peers.list().map((peer) => peer.frontendId)];
  }

  /**
   * The start-up (or rejoin) period is over. A frontend that started and
   * died within it, before any report of it reached this one, may have left
   * invocations running that no peer's report counts: admitted under its own
   * start-up cap, floor(limit / fleet size), they would be invisible here,
   * and this frontend, hearing fewer peers than the fleet it expects, would
   * otherwise take their part. Each expected frontend not heard is counted
   * at that cap, as a ghost of STRANGERS, until a worker census names what
   * really runs (applyCensus), or without one for GHOST_EXECUTIONS.
   */
  private countStrangers(now: number): void {
    const fleetSize = this.fleetMode.fleetSize(this.peers.size);
    const unheard = Math.max(0, this.fleetMode.expectedSize - 1 - this.peers.size);
    if (unheard === 0) return;
    for (const pool of this.tenants.byKey.values()) {
      const until = this.workerCensus
        ? UNTIL_CENSUS
        : now + GHOST_EXECUTIONS * pool.meter.durationMs;
      const slots = unheard * Math.floor(pool.limit / fleetSize);
      if (pool.countGhost(STRANGERS, slots, until) !== 0) this.updateHaunted(pool);
    }
  }

  /**
   * Peers whose reports are late (more than `afterIntervals` of their
   * intervals) but not yet expired: the transport may ask them directly.
   */
  latePeers(now: number, afterIntervals: number): string[] {
    return this.peers.silent(now, afterIntervals);
  }

  /**
   * A peer known to be gone, not merely silent (the transport found nobody
   * listening on its subjects): drop it now rather than after the expiry
   * period, exactly as expiry would, so its share returns to the others at
   * once. A message lost on the way cannot cause this; only a peer whose
   * connection closed can.
   */
  peerGone(frontendId: string, now: number, censusFollows = false): boolean {
    if (!this.depart(frontendId, now, censusFollows)) return false;
    this.releaseGhosts(now);
    this.recomputeAll(now);
    return true;
  }

  /**
   * Drop a peer found gone or silent past expiry, keeping what it may hold
   * counted as a ghost (see peerGone). Returns whether it was known.
   */
  private depart(frontendId: string, now: number, censusFollows: boolean): boolean {
    const peer = this.peers.get(frontendId);
    if (!peer) return false;
    const before = this.shareContext(now);
    // Its invocations run on where it sent them. Those it admitted by its
    // last report, and any since (it died within an interval of it), end
    // within about two mean executions of that: until then, all it may have
    // held stays counted. When a worker census follows (applyCensus), what
    // it may have held stays counted until the census says what still runs,
    // or its lease lapses without one.
    const diedBy = peer.lastSeenAt + peer.intervalMs;
    const leased = censusFollows ? UNTIL_CENSUS : Number.NEGATIVE_INFINITY;
    for (const pool of this.tenants.byKey.values()) {
      const until = Math.max(leased, diedBy + GHOST_EXECUTIONS * pool.meter.durationMs);
      // Besides its last claim, it may have used a windfall of slots freed since (taken at
      // once, never announced): the part this frontend took is what any survivor took.
      const slots = pool.heldBy(before, frontendId) + pool.windfallSlots;
      // Slots lent to it stay lent (counted in this frontend's held) until its ghost
      // is gone: what runs on them is its invocations, which only a census counts.
      const counted = slots > 0 || pool.loans.lentTo(frontendId) === 0 ? slots : 1;
      if (pool.addGhost(frontendId, counted, until)) {
        this.haunted.add(pool);
      }
    }
    this.peers.remove(frontendId);
    for (const pool of this.tenants.byKey.values()) pool.loans.lenderGone(frontendId);
    return true;
  }

  /** Loans to departed frontends whose ghosts are gone from `pool` come home. */
  private settleDepartedBorrowers(pool: Pool): void {
    if (pool.loans.lentTotal === 0) return;
    const haunting = new Set<string>();
    pool.ghostHolders(haunting);
    for (const borrower of pool.loans.borrowers()) {
      if (this.peers.get(borrower) === undefined && !haunting.has(borrower))
        this.lending.departedBorrowerSettled(pool, borrower);
    }
  }

  /** Live peers (other frontends heard within the expiry period). */
  get peerCount(): number {
    return this.peers.size;
  }

  // ---- internals --------------------------------------------------------------------

  private tenant(
    tenantId: string,
    now: number | undefined,
    max = this.policy.defaultMaxConcurrency,
  ): TenantState {
    const known = this.tenants.get(tenantId);
    if (known) return known;
    const tenant = this.tenants.create(tenantId, max);
    this.track(tenant.unreserved, tenant.unreserved.recompute(this.shareContext(now)));
    return tenant;
  }

  private limitsChanged(tenant: TenantState): void {
    tenant.unreserved.temporaryLimit?.setCeiling(tenant.limits.unreserved);
    const context = this.shareContext(undefined);
    this.track(tenant.unreserved, tenant.unreserved.recompute(context));
    for (const pool of tenant.reserved.values()) this.track(pool, pool.recompute(context));
  }

  private recomputeAll(now: number): void {
    const context = this.shareContext(now);
    for (const pool of this.tenants.byKey.values()) this.track(pool, pool.recompute(context));
  }

  /**
   * Departed peers' slots whose invocations can have ended by `now` are
   * freed, each survivor taking its equal part at once. Called every tick;
   * the transport may call it between ticks too, and should publish a report
   * when it returns true, so that the survivors' acknowledgements of their
   * raised claims come sooner.
   */
  releaseGhosts(now: number): boolean {
    let released = false;
    for (const pool of this.haunted) {
      const freed = pool.expireGhosts(now, STRANGERS);
      this.updateHaunted(pool);
      this.settleDepartedBorrowers(pool);
      if (this.windfall(pool, freed, now)) released = true;
    }
    return released;
  }

  /** Departed peers whose invocations may still run: what a worker census asks about. */
  ghostHolders(): string[] {
    const holders = new Set<string>();
    for (const pool of this.haunted) pool.ghostHolders(holders);
    return [...holders];
  }

  /**
   * What every worker says still runs of departed peers' invocations
   * (frontendId → pool key → invocations; each frontend asked about is
   * present, pools with none left out): their ghosts become exactly that,
   * and what ended is freed as by `releaseGhosts`. A running count only
   * falls once a peer is gone, so every survivor's freed slots are at most
   * what truly ended, whenever each counted. Returns true if slots were
   * freed (the transport then publishes a report at once).
   */
  applyCensus(running: ReadonlyMap<string, ReadonlyMap<string, number>>, now: number): boolean {
    const until = UNTIL_CENSUS;
    let released = false;
    for (const [holder, pools] of running) {
      // Pools counting this holder, and pools the workers name that it did not.
      const visit = new Set<Pool>(this.haunted);
      for (const key of pools.keys()) {
        const pool = this.tenants.byKey.get(key);
        if (pool) visit.add(pool);
      }
      for (const pool of visit) {
        const change = pool.countGhost(holder, pools.get(pool.key) ?? 0, until);
        if (change === 0) continue;
        this.updateHaunted(pool);
        this.settleDepartedBorrowers(pool);
        // Strangers' estimate, now replaced by what the census names: no slots were
        // proven free, so no windfall; a raise waits for acknowledgement as usual.
        if (holder === STRANGERS) this.track(pool, pool.recompute(this.shareContext(now)));
        else if (change < 0) released = this.windfall(pool, -change, now) || released;
        // A ghost that grew (its estimate was low) lowers the share at once.
        else this.track(pool, pool.recompute(this.shareContext(now)));
      }
    }
    return released;
  }

  /** A pool counts departed peers' slots while it has ghosts; releaseGhosts visits only those. */
  private updateHaunted(pool: Pool): void {
    if (pool.ghostSlots === 0) this.haunted.delete(pool);
    else this.haunted.add(pool);
  }

  /** Freed departed peers' slots: every survivor takes its equal part at once. */
  private windfall(pool: Pool, freed: number, now: number): boolean {
    if (freed <= 0) return false;
    pool.grantWindfall(freed, this.peers.size + 1, this.seq);
    this.track(pool, pool.recompute(this.shareContext(now)));
    return true;
  }

  private settle(pool: Pool): void {
    this.track(pool, pool.settle(this.peers.acknowledgedByAll()));
  }

  private track(pool: Pool, held: boolean): void {
    if (held) this.held.add(pool);
    else this.held.delete(pool);
  }

  private shareContext(now: number | undefined): ShareContext {
    const mode = this.mode(now);
    return {
      selfId: this.frontendId,
      peers: this.peers.list(),
      mode,
      fallbackFleetSize: this.fleetMode.fleetSize(this.peers.size),
      spareWeightFloor: this.policy.spareWeightFloor,
      acknowledgedSeq: this.peers.acknowledgedByAll(),
    };
  }

  /**
   * Whether any live peer's latest report shows it busy in the pool
   * (arrivals, demand or slots held). A peer that reports the pool only
   * because others do does not count, or two frontends would keep each
   * other reporting a pool nobody uses.
   */
  private reportedByPeer(key: string): boolean {
    for (const peer of this.peers.list()) {
      const entry = peer.pools.get(key);
      if (entry && (entry[2] > 0 || entry[3] >= ACTIVE_DEMAND || entry[4] > 0)) return true;
    }
    return false;
  }

  /** The fleet as this frontend knows it, or as expected: idle pools are claimed at 1/this of their lowest limit. */
  private idleDivisor(): number {
    return this.fleetMode.fleetSize(this.peers.size);
  }

  private fleetDemand(pool: Pool): number {
    let demand = pool.meter.demand;
    for (const peer of this.peers.list()) demand += peer.pools.get(pool.key)?.[3] ?? 0;
    return demand;
  }

  private retryAfter(pool: Pool): number {
    if (pool.limit === 0) return this.policy.maxRetryAfterMs;
    const soon = Math.min(this.policy.gossipIntervalMs, pool.meter.durationMs);
    return Math.max(1, Math.min(this.policy.maxRetryAfterMs, Math.round(soon)));
  }
}
