/**
 * A pool is what one limit covers: a tenant's unreserved concurrency (limit:
 * the temporary limit T) or one function's reserved concurrency (limit: the
 * reservation). Each frontend keeps, per pool, its local inflight count, its
 * demand estimate, its loans and the share it enforces; the share is
 * recomputed from the fleet's reports every interval and whenever a report
 * arrives, so admission itself only compares two numbers.
 */
import { DemandMeter } from "./demand.js";
import { LoanBook } from "./loans.js";
import { compareIds, type Peer } from "./peers.js";
import type { AdmissionPolicy } from "./policy.js";
import { poolKey, type PoolDemand } from "./report.js";
import { shareAt } from "./shares.js";
import { TemporaryLimit } from "./temporary-limit.js";

/** How a frontend currently decides its share. */
export const ShareModes = {
  /** From the peers' reports. */
  gossip: "gossip",
  /** Just started or reconnected: from reports, but at most limit / fleet size. */
  rejoining: "rejoining",
  /** Cut off from gossip: limit / last known fleet size. */
  disconnected: "disconnected",
  /** The only admission point (`gust dev`, a central counter): the whole limit. */
  standalone: "standalone",
} as const;
export type ShareMode = (typeof ShareModes)[keyof typeof ShareModes];

export interface ShareContext {
  selfId: string;
  peers: readonly Peer[];
  mode: ShareMode;
  /** Fleet size assumed when shares cannot come from reports. */
  fallbackFleetSize: number;
  spareWeightFloor: number;
  /** The oldest of this frontend's reports every live peer has acknowledged; undefined when alone. */
  acknowledgedSeq: number | undefined;
}

/** One frontend's place in a pool's split, as this frontend sees it. */
export interface FleetEntry {
  frontendId: string;
  demand: number;
  /** Slots held: reported by a peer (0 when idle in this pool), or this frontend's own. */
  inflight: number;
  /** Its claim (part of the split, loans excluded); NaN for a peer idle in this pool. */
  share: number;
  arrivals: number;
}

/** Demand below this (in executions) with nothing else going on is not worth reporting. */
export const ACTIVE_DEMAND = 0.01;

/** Announcements kept per pool while unacknowledged; older ones fold into the oldest kept. */
const MAX_ANNOUNCEMENTS = 32;

export class Pool {
  readonly key: string;
  readonly meter: DemandMeter;
  readonly loans = new LoanBook();
  /** Set for the unreserved pool only. */
  readonly temporaryLimit: TemporaryLimit | undefined;
  reservation = 0;
  inflight = 0;
  /** This frontend's part of the split as it wants it now, before loans. */
  target = 0;
  /** The part of the split admission uses: `target`, held back until raises are acknowledged. */
  baseShare = 0;
  /** The bound admission enforces: baseShare − lent + borrowed. */
  share = 0;
  /** The peer that reported the most free slots, if any has one. */
  bestLender: string | undefined;
  /** Where this pool's invocations went when its reservation was removed. */
  mergedInto: Pool | undefined;
  /** (report seq, target) as announced in each report not yet acknowledged by every peer. */
  private readonly announced: Array<{ seq: number; value: number }> = [];
  private gossiping = false;
  /**
   * Slots a peer proven gone left to this frontend (see `grantWindfall`),
   * usable before the remaining peers acknowledge the raise, and the seq of
   * the last report sent before it went.
   */
  private windfall = 0;
  private windfallSeq = 0;
  /**
   * What departed peers may still have running here: a killed frontend's
   * invocations run on in their sandboxes, so its slots stay counted until
   * they can have ended (see `addGhost`).
   */
  private readonly ghosts: Array<{ holder: string; slots: number; until: number }> = [];

  constructor(
    readonly tenantId: string,
    readonly functionName: string,
    policy: AdmissionPolicy,
    ceiling: number,
  ) {
    this.key = poolKey(tenantId, functionName);
    this.meter = new DemandMeter(
      policy.demandSmoothingMs,
      policy.settledDemandSmoothingMs,
      policy.initialDurationMs,
    );
    if (functionName === "") this.temporaryLimit = new TemporaryLimit(policy, ceiling);
    else this.reservation = ceiling;
  }

  get reserved(): boolean {
    return this.temporaryLimit === undefined;
  }

  /**
   * What a frontend claims here while it leaves the pool out of its reports:
   * floor(the lowest the limit can be / divisor). The lowest limit is a matter
   * of configuration (T's floor, min(minLimit, M − reservations), or the
   * reservation), so every frontend computes the same number for the same
   * divisor, whatever it knows of demand.
   */
  idleClaim(divisor: number): number {
    const lowest = this.temporaryLimit ? this.temporaryLimit.bounds.floor : this.reservation;
    return Math.floor(lowest / Math.max(1, divisor));
  }

  /** The pool's whole limit, in slots: floor(T) or the reservation. */
  get limit(): number {
    return this.temporaryLimit ? Math.floor(this.temporaryLimit.value) : this.reservation;
  }

  /**
   * What this frontend tells its peers it may use: its target. Loans do not
   * change claims; a lent slot stays in its lender's claim.
   */
  get claim(): number {
    return this.target;
  }

  /**
   * Slots this frontend's claim is holding: its inflight, plus what it lent,
   * less what runs on borrowed slots (those are charged to their lenders).
   * Summed over the fleet, loans cancel out: the fleet's inflight.
   */
  get held(): number {
    return Math.max(0, this.inflight + this.loans.lentTotal - this.loans.borrowedTotal);
  }

  /**
   * Settle the enforced share. A share falls at once but rises only as far
   * as every announcement peers may still be acting on allows: a peer that
   * saw this frontend's lower claim may already have taken the difference.
   * Borrowed slots count at once: their lender gave them up first.
   * Returns true while a raise is held back.
   */
  settle(acknowledgedSeq: number | undefined): boolean {
    let own = this.target;
    if (this.gossiping) {
      // With no peer known, nobody has acknowledged anything, yet frontends this one
      // has not heard may have heard it: its latest announcement binds it too.
      const acknowledged = acknowledgedSeq ?? 0;
      let floor = own;
      for (const a of this.announced) if (a.seq >= acknowledged && a.value < floor) floor = a.value;
      // Once every peer has seen a report sent after the departure, the
      // announcements alone say what is safe again.
      if (this.windfall > 0 && acknowledged > this.windfallSeq) this.windfall = 0;
      own = Math.min(own, floor + this.windfall);
    } else {
      this.windfall = 0;
    }
    this.baseShare = own;
    this.share = Math.max(0, own - this.loans.lentTotal + this.loans.borrowedTotal);
    return own < this.target;
  }

  /**
   * A peer whose connection closed held `slots` of this pool: its
   * invocations still running on workers keep them until `until`, when
   * they can have ended; until then they count as held by the others.
   * Returns whether a ghost was added.
   */
  addGhost(holder: string, slots: number, until: number): boolean {
    if (slots <= 0) return false;
    this.ghosts.push({ holder, slots, until });
    return true;
  }

  /**
   * The workers counted `running` invocations of the departed `holder`
   * still running in this pool: its ghost becomes exactly that, kept at
   * least until `until` (the next census is due well before). Returns the
   * change in slots counted: negative when slots were freed, positive when
   * the ghost grew (its estimate was low) or appeared, 0 when unchanged.
   */
  countGhost(holder: string, running: number, until: number): number {
    const index = this.ghosts.findIndex((ghost) => ghost.holder === holder);
    const ghost = this.ghosts[index];
    if (ghost === undefined) {
      if (running <= 0) return 0;
      this.ghosts.push({ holder, slots: running, until });
      return running;
    }
    const change = running - ghost.slots;
    ghost.slots = running;
    ghost.until = Math.max(ghost.until, until);
    if (running <= 0) this.ghosts.splice(index, 1);
    return change;
  }

  /**
   * A departed peer is heard again (its connection came back): its reports
   * count what it holds from now on, so its ghost goes, freeing nothing.
   * Returns whether it had one.
   */
  dropGhost(holder: string): boolean {
    const index = this.ghosts.findIndex((ghost) => ghost.holder === holder);
    if (index < 0) return false;
    this.ghosts.splice(index, 1);
    return true;
  }

  /** Add the departed peers whose slots this pool still counts to `into`. */
  ghostHolders(into: Set<string>): void {
    for (const ghost of this.ghosts) into.add(ghost.holder);
  }

  /** Freed slots this frontend took at once and has not yet announced (see grantWindfall). */
  get windfallSlots(): number {
    return this.gossiping ? this.windfall : 0;
  }

  /** Slots departed peers may still have running. */
  get ghostSlots(): number {
    let slots = 0;
    for (const ghost of this.ghosts) slots += ghost.slots;
    return slots;
  }

  /**
   * Ghosts whose invocations can have ended by `now` go; returns the slots
   * they free, not counting `estimated`'s (an estimate, not slots proven held).
   */
  expireGhosts(now: number, estimated?: string): number {
    let freed = 0;
    for (let i = this.ghosts.length - 1; i >= 0; i--) {
      const ghost = this.ghosts[i];
      if (ghost && ghost.until <= now) {
        if (ghost.holder !== estimated) freed += ghost.slots;
        this.ghosts.splice(i, 1);
      }
    }
    return freed;
  }

  /**
   * `freed` slots of a departed peer (its connection closed, not merely
   * silent) have become free; every survivor may take its equal part of
   * them at once, without waiting for the others to acknowledge the raise:
   * the parts sum to at most what the peer held, so the fleet stays within
   * the limit whatever each survivor does with its own. `lastSentSeq` is the
   * last report this frontend sent before the slots were freed.
   */
  grantWindfall(freed: number, survivors: number, lastSentSeq: number): void {
    if (!this.gossiping || freed <= 0 || survivors <= 0) return;
    this.windfall += Math.floor(freed / survivors);
    this.windfallSeq = lastSentSeq;
  }

  /**
   * What a peer's place in this pool holds of the limit, as the split sees
   * it: the larger of its claim and its held slots, or (idle here) the share
   * the same split gives it.
   */
  heldBy(context: ShareContext, frontendId: string): number {
    const peer = context.peers.find((p) => p.frontendId === frontendId);
    if (!peer) return 0;
    const entry = peer.pools.get(this.key);
    if (entry) return Math.max(entry[5], entry[4]);
    if (peer.idleDivisor !== undefined) return this.idleClaim(peer.idleDivisor);
    const self = this.fillFleet(context);
    const index = context.peers.indexOf(peer);
    const at = index < self ? index : index + 1;
    return shareAt(
      this.limit,
      scratch.demand,
      context.peers.length + 1,
      context.spareWeightFloor,
      at,
    );
  }

  /**
   * Record what report `seq` announces for this pool, `value` (the claim it
   * carries, or the idle claim when the report leaves the pool out), and
   * forget what every peer has seen since.
   */
  announce(seq: number, acknowledgedSeq: number | undefined, value: number): void {
    const list = this.announced;
    if (!this.gossiping || acknowledgedSeq === undefined) {
      list.length = 0;
      if (!this.gossiping) return;
    }
    while (list.length > 0 && (list[0]?.seq ?? 0) < (acknowledgedSeq ?? 0)) list.shift();
    const last = list[list.length - 1];
    // Equal neighbours merge exactly: the later one outlives the earlier.
    if (last && last.value === value) last.seq = seq;
    else list.push({ seq, value });
    while (list.length > MAX_ANNOUNCEMENTS) {
      const [first, second] = list;
      if (!first || !second) break;
      list.splice(0, 2, { seq: second.seq, value: Math.min(first.value, second.value) });
    }
  }

  /**
   * This pool's entry in the next gossip report, or undefined when it is
   * idle here and, as far as this frontend knows, everywhere
   * (`activeElsewhere` false: no peer's latest report names it). Left out,
   * the pool is claimed at its idle claim, which suits a pool nobody uses;
   * once a peer is busy in it, this frontend's claim travels explicitly (the
   * split's sliver, usually less), so the busy one gets the room.
   */
  reportEntry(activeElsewhere: boolean): PoolDemand | undefined {
    const meter = this.meter;
    const active =
      activeElsewhere ||
      meter.lastArrivals > 0 ||
      meter.arrivals > 0 ||
      meter.demand >= ACTIVE_DEMAND ||
      this.inflight > 0 ||
      !this.loans.idle;
    if (!active) return undefined;
    const demand = Math.round(meter.demand * 100) / 100;
    return [this.tenantId, this.functionName, meter.lastArrivals, demand, this.held, this.claim];
  }

  /** Every frontend's entry, sorted by id, and this frontend's index in it. */
  fleet(context: ShareContext): { entries: FleetEntry[]; selfIndex: number } {
    const entries: FleetEntry[] = [];
    let selfIndex = -1;
    const self: FleetEntry = {
      frontendId: context.selfId,
      demand: this.meter.demand,
      inflight: this.held,
      share: this.claim,
      arrivals: this.meter.lastArrivals,
    };
    for (const peer of context.peers) {
      if (selfIndex < 0 && compareIds(context.selfId, peer.frontendId) < 0) {
        selfIndex = entries.length;
        entries.push(self);
      }
      const entry = peer.pools.get(this.key);
      entries.push({
        frontendId: peer.frontendId,
        demand: entry?.[3] ?? 0,
        inflight: entry?.[4] ?? 0,
        share: entry?.[5] ?? this.impliedClaim(peer),
        arrivals: entry?.[2] ?? 0,
      });
    }
    if (selfIndex < 0) {
      selfIndex = entries.length;
      entries.push(self);
    }
    return { entries, selfIndex };
  }

  /** Recompute this frontend's target from the fleet's latest reports, then settle; true while a raise is held back. */
  recompute(context: ShareContext): boolean {
    const limit = this.limit;
    this.bestLender = undefined;
    this.gossiping = context.mode === ShareModes.gossip || context.mode === ShareModes.rejoining;
    const fallback = Math.floor(limit / Math.max(1, context.fallbackFleetSize));
    if (context.mode === ShareModes.standalone) {
      this.target = limit;
    } else if (context.mode === ShareModes.disconnected) {
      this.target = fallback;
    } else {
      const self = this.fillFleet(context);
      const n = context.peers.length + 1;
      const floor = context.spareWeightFloor;
      // What the others may use: their claims, or more while a peer still
      // holds more than its claim (its share just shrank). A peer idle in
      // this pool claims what the same split gives it.
      let othersHold = this.ghostSlots;
      let bestFree = 0;
      for (let j = 0; j < n; j++) {
        if (j === self) continue;
        const reported = scratch.claim[j] ?? 0;
        const claimed = Number.isNaN(reported)
          ? shareAt(limit, scratch.demand, n, floor, j)
          : reported;
        const held = scratch.held[j] ?? 0;
        othersHold += Math.max(claimed, held);
        if (claimed - held >= 1 && claimed - held > bestFree) {
          bestFree = claimed - held;
          this.bestLender = context.peers[j < self ? j : j - 1]?.frontendId;
        }
      }
      const room = limit - othersHold;
      let target = Math.max(0, Math.min(shareAt(limit, scratch.demand, n, floor, self), room));
      if (context.mode === ShareModes.rejoining) target = Math.min(target, fallback);
      this.target = target;
    }
    return this.settle(context.acknowledgedSeq);
  }

  /** A peer's claim here when its report leaves the pool out: its idle claim (NaN from older senders). */
  private impliedClaim(peer: Peer): number {
    return peer.idleDivisor === undefined ? Number.NaN : this.idleClaim(peer.idleDivisor);
  }

  /**
   * Lay the fleet's demand, held slots and claims for this pool out in the
   * scratch arrays, sorted by frontend id (this frontend where its id
   * sorts); returns this frontend's index. NaN claim: the peer is idle here.
   */
  private fillFleet(context: ShareContext): number {
    const peers = context.peers;
    growScratch(peers.length + 1);
    let self = -1;
    let k = 0;
    for (const peer of peers) {
      if (self < 0 && compareIds(context.selfId, peer.frontendId) < 0) self = k++;
      const entry = peer.pools.get(this.key);
      scratch.demand[k] = entry?.[3] ?? 0;
      scratch.held[k] = entry?.[4] ?? 0;
      scratch.claim[k] = entry ? entry[5] : this.impliedClaim(peer);
      k++;
    }
    if (self < 0) self = k;
    scratch.demand[self] = this.meter.demand;
    scratch.held[self] = this.held;
    scratch.claim[self] = this.claim;
    return self;
  }
}

/** Reused across pools: recompute runs for every pool every interval and must not allocate. */
const scratch = {
  demand: new Float64Array(16),
  held: new Float64Array(16),
  claim: new Float64Array(16),
};

function growScratch(size: number): void {
  if (scratch.demand.length >= size) return;
  const length = Math.max(size, scratch.demand.length * 2);
  scratch.demand = new Float64Array(length);
  scratch.held = new Float64Array(length);
  scratch.claim = new Float64Array(length);
}
