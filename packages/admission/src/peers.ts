/**
 * The freshest report of every other frontend, and when each was last heard.
 * Expiry uses the receiver's clock and the sender's announced interval, so
 * frontends need no synchronised clocks.
 */
import { poolKey, type DemandReport, type PoolDemand } from "./report.js";

export interface Peer {
  readonly frontendId: string;
  seq: number;
  intervalMs: number;
  lastSeenAt: number;
  /** The latest of our reports it had received when it sent its latest (0: none). */
  ackOfSelf: number;
  /** By poolKey. */
  pools: Map<string, PoolDemand>;
  /** Its claim in pools it leaves out (DemandReport.idleDivisor); undefined from older senders. */
  idleDivisor: number | undefined;
}

export class PeerTable {
  private readonly peers = new Map<string, Peer>();

  constructor(private readonly selfId: string) {}
  private ordered: Peer[] | undefined;

  get size(): number {
    return this.peers.size;
  }

  get(frontendId: string): Peer | undefined {
    return this.peers.get(frontendId);
  }

  /** Live peers sorted by id: the order every frontend apportions shares in. */
  list(): readonly Peer[] {
    this.ordered ??= [...this.peers.values()].sort((a, b) =>
      compareIds(a.frontendId, b.frontendId),
    );
    return this.ordered;
  }

  /**
   * Store a report if it is newer than what we hold. Returns the peer's
   * previous pools (an empty map for a new peer), or undefined if stale:
   * the pools to recompute are those in the report and those that left it.
   */
  receive(report: DemandReport, now: number): Map<string, PoolDemand> | undefined {
    const known = this.peers.get(report.frontendId);
    if (known && report.seq <= known.seq) return undefined;
    const pools = new Map<string, PoolDemand>();
    for (const entry of report.pools) pools.set(poolKey(entry[0], entry[1]), entry);
    const ackOfSelf = report.acks.find(([id]) => id === this.selfId)?.[1] ?? 0;
    if (!known) {
      this.peers.set(report.frontendId, {
        frontendId: report.frontendId,
        seq: report.seq,
        intervalMs: report.intervalMs,
        lastSeenAt: now,
        ackOfSelf,
        pools,
        idleDivisor: report.idleDivisor,
      });
      this.ordered = undefined;
      return new Map();
    }
    const previous = known.pools;
    known.ackOfSelf = ackOfSelf;
    known.seq = report.seq;
    known.intervalMs = report.intervalMs;
    known.lastSeenAt = now;
    known.pools = pools;
    known.idleDivisor = report.idleDivisor;
    return previous;
  }

  /** The oldest of our reports that every live peer has acknowledged; undefined when alone. */
  acknowledgedByAll(): number | undefined {
    let oldest: number | undefined;
    for (const peer of this.peers.values())
      oldest = Math.min(oldest ?? peer.ackOfSelf, peer.ackOfSelf);
    return oldest;
  }

  /** What we acknowledge in our next report: the latest seq heard from each peer. */
  acks(): Array<[string, number]> {
    return this.list().map((peer) => [peer.frontendId, peer.seq]);
  }

  /** Drop one peer known to be gone; returns whether it was known. */
  remove(frontendId: string): boolean {
    const removed = this.peers.delete(frontendId);
    if (removed) this.ordered = undefined;
    return removed;
  }

  /** Peers silent for more than `intervals` of their own intervals (not yet expired). */
  silent(now: number, intervals: number): string[] {
    const late: string[] = [];
    for (const peer of this.peers.values()) {
      if (now - peer.lastSeenAt > intervals * peer.intervalMs) late.push(peer.frontendId);
    }
    return late;
  }

  /**
   * Count every known peer as just heard from: after a reconnect, each gets
   * a full expiry period to report again before it is presumed gone.
   */
  refreshAll(now: number): void {
    for (const peer of this.peers.values()) peer.lastSeenAt = now;
  }
}

/** Plain code-unit order: the same on every frontend, whatever its locale. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
