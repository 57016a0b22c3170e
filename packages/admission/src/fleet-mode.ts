/**
 * How a frontend decides its shares right now, and the fleet size it falls
 * back on when it cannot use gossip.
 *
 * - gossip:       from the peers' reports.
 * - rejoining:    just started, or reconnected: peers' reports are missing
 *                 or stale, so at most limit / fleet size until a full expiry
 *                 period has passed.
 * - disconnected: the transport reported the gossip bus lost: limit / the
 *                 last known fleet size (at least `disconnectedMinFleetSize`),
 *                 never the whole limit; temporary limits hold still.
 * - standalone:   the only admission point: the whole limit.
 */
import type { AdmissionPolicy } from "./policy.js";
import { ShareModes, type ShareMode } from "./pool.js";

export class FleetMode {
  private connected = true;
  private rejoinUntil: number | undefined;
  private lastMode: ShareMode = ShareModes.rejoining;
  private frozenFleetSize: number;

  constructor(
    private readonly policy: AdmissionPolicy,
    private readonly standalone: boolean,
    private readonly fleetSizeHint: number,
  ) {
    this.frozenFleetSize = this.fallbackSize(0);
  }

  /**
   * The mode at `now`. The first call with a time starts the clock: a
   * frontend that just started has not heard its peers yet. Without a time
   * (configuration calls), the mode last seen.
   */
  at(now?: number): ShareMode {
    if (this.standalone) return ShareModes.standalone;
    if (!this.connected) return ShareModes.disconnected;
    if (now === undefined)
      return this.rejoinUntil === undefined ? ShareModes.rejoining : this.lastMode;
    this.rejoinUntil ??= now + this.rejoinWindow();
    this.lastMode = now < this.rejoinUntil ? ShareModes.rejoining : ShareModes.gossip;
    return this.lastMode;
  }

  /**
   * Record a connection change; returns false when nothing changed (or this
   * frontend is standalone).
   */
  connectivity(connected: boolean, now: number, peerCount: number): boolean {
    if (this.standalone || connected === this.connected) return false;
    this.connected = connected;
    if (connected) this.rejoinUntil = now + this.rejoinWindow();
    else this.frozenFleetSize = this.fallbackSize(peerCount);
    return true;
  }

  /** How many frontends the fleet is expected to have (the hint). */
  get expectedSize(): number {
    return this.fleetSizeHint;
  }

  /** What limit / fleet size divides by: frozen while disconnected, else the fleet as known now. */
  fleetSize(peerCount: number): number {
    return this.connected ? this.fallbackSize(peerCount) : this.frozenFleetSize;
  }

  private fallbackSize(peerCount: number): number {
    return Math.max(this.fleetSizeHint, peerCount + 1, this.policy.disconnectedMinFleetSize);
  }

  private rejoinWindow(): number {
    return this.policy.peerExpiryIntervals * this.policy.gossipIntervalMs;
  }
}
