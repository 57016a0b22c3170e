/**
 * The gossip transport: carries the admission controller's messages over the
 * bus (DESIGN.md, "Gossip and shares").
 *
 *   every gossipIntervalMs   demandReport(now) → publish gust.v1.gossip.demand
 *   gust.v1.gossip.demand    → receiveReport (our own report comes back too; ignored)
 *   gust.v1.gossip.loan.<id> → receiveLoanMessage (loans addressed to this frontend)
 *   gust.v1.gossip.probe.<id> → an empty reply: "I am here"
 *   a peer's report late     → request its probe subject; "no responders" → peerGone
 *   a gone peer's slots held → ask every worker what of its invocations still
 *                              runs (options.census) → applyCensus, until none do
 *   bus status               → connectivity(connected)
 *
 * Reports and loan messages go out in their compact wire form
 * (@gust/admission's wire.ts) as msgpack records: the controller validates
 * what comes back from it, so junk from a peer is dropped there, and
 * logged here at debug level at most once a minute per sender.
 *
 * The tick runs whether or not the bus is connected, because it is also the
 * controller's clock (demand windows, peer expiry, temporary limits); a
 * report is published only while connected, since NATS would otherwise
 * buffer stale reports and deliver them all on reconnect. A standalone
 * frontend ticks and publishes nothing.
 *
 * Leaving: stop() ends the tick and the subscriptions. A peer whose report
 * is more than PROBE_AFTER_INTERVALS late is asked directly on its probe
 * subject: when its connection has closed (a crash, a kill, a close) NATS
 * answers "no responders" at once and the peer is dropped about 1.5
 * intervals after its last report, its share going to the survivors at
 * once (AdmissionController.peerGone), while a live peer whose reports were lost answers the probe and
 * is kept — so expiry after `peerExpiryIntervals` can stay long enough to
 * ride out message loss without slowing the return of a dead peer's share. A draining
 * frontend keeps gossiping until it closes: it still admits requests during
 * the drain delay, and its invocations hold slots until they end, so its
 * reports must keep counting them or its peers would hand those slots out
 * a second time.
 */
import type { Bus, BusStatus, Subscription } from "@gust/bus";
import {
  loanFromWire,
  loanToWire,
  parseDemandReport,
  reportFromWire,
  reportSender,
  reportToWire,
  type DemandReport,
  type LoanMessage,
} from "@gust/admission";
import { decodeRecord, encodeRecord, GustError, Subjects } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";

/** What the transport drives: AdmissionController's gossip methods (FleetAdmission forwards them). */
export interface GossipEndpoint {
  /** This frontend's id in gossip: unique per process start. */
  readonly instanceId: string;
  demandReport(now: number): DemandReport;
  receiveReport(value: unknown, now: number): boolean;
  receiveLoanMessage(value: unknown, now: number): void;
  connectivity(connected: boolean, now: number): void;
  latePeers(now: number, afterIntervals: number): string[];
  /** `censusFollows`: a worker census will say what it left running (applyCensus). */
  peerGone(frontendId: string, now: number, censusFollows: boolean): boolean;
  /** Free departed peers' slots whose invocations can have ended; true if any were. */
  releaseGhosts(now: number): boolean;
  /**
   * Departed peers whose invocations may still run on workers; STRANGERS
   * (`*`) asks for every frontend but knownFrontends().
   */
  ghostHolders(): string[];
  /** This frontend and its live peers: left out when the census names strangers. */
  knownFrontends(): string[];
  /** Whether a report should go out before the next tick (AdmissionController.reportSoon). */
  reportSoon?(): boolean;
  /** What the workers counted of those still running; true if slots were freed. */
  applyCensus(running: Census, now: number): boolean;
}

/** frontendId → admission pool key → invocations still running, over every worker. */
export type Census = ReadonlyMap<string, ReadonlyMap<string, number>>;

export interface GossipTransportOptions {
  intervalMs: number;
  /** Tick only: no gossip on the bus (the only admission point). */
  standalone: boolean;
  /** @default Date.now */
  now?: () => number;
  /**
   * Ask every worker what these departed frontends' invocations still run
   * there; undefined when some worker did not answer. Absent: a departed
   * peer's slots stay counted for the controller's estimate of how long its
   * invocations run.
   */
  census?: (frontendIds: string[], known: string[]) => Promise<Census | undefined>;
}

/** A peer this many of its intervals late is probed. */
export const PROBE_AFTER_INTERVALS = 1.25;
/**
 * Late peers are looked for this many times per interval, not only at the
 * tick: a peer killed just after reporting is then found gone about
 * PROBE_AFTER_INTERVALS after its last report rather than up to one more
 * interval later. A check only walks the peer table.
 */
const PROBE_CHECKS_PER_INTERVAL = 4;

/**
 * For this many intervals after a peer is found gone, a report goes out at
 * the next check after one is heard, not only at the tick: each report
 * acknowledges the latest it has heard, so the survivors' raises (the part
 * beyond their equal shares of the departed peer's slots) are acknowledged
 * within a fraction of an interval. At most PROBE_CHECKS_PER_INTERVAL extra
 * reports an interval, and only then.
 */
const FAST_ACK_INTERVALS = 2;

/** A sender of junk is logged at most this often. */
const JUNK_LOG_INTERVAL_MS = 60_000;
/** Senders remembered for that; junk can name any sender, so the memory is bounded. */
const MAX_JUNK_SENDERS = 1000;

export class GossipTransport {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private subscriptions: Subscription[] = [];
  private removeStatusListener: (() => void) | undefined;
  private connected = true;
  private readonly junkLoggedAt = new Map<string, number>();
  private readonly probing = new Set<string>();
  private censusing = false;
  /** Until when reports answer reports (FAST_ACK_INTERVALS). */
  private fastAcksUntil = 0;
  private heardSinceReport = false;
  /** Reports published and their bytes, since start (for operators and the benchmark). */
  readonly sent = { reports: 0, bytes: 0, loanMessages: 0, loanBytes: 0 };

  constructor(
    private readonly bus: Bus,
    private readonly endpoint: GossipEndpoint,
    private readonly logger: Logger,
    private readonly options: GossipTransportOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    if (!this.options.standalone) {
      const id = this.endpoint.instanceId;
      this.subscriptions = [
        this.bus.subscribe(Subjects.gossipDemand, (message) => this.onReport(message.data)),
        this.bus.subscribe(Subjects.gossipLoan(id), (message) => this.onLoan(message.data)),
        this.bus.subscribe(Subjects.gossipProbe(id), (message) => {
          message.respond(new Uint8Array(0));
        }),
      ];
      this.removeStatusListener = this.bus.onStatus((status) => this.onStatus(status));
      this.probeTimer = setInterval(
        () => {
          if (!this.connected) return;
          this.probeLatePeers();
          // A departed peer's slots freed between ticks: announce the raised
          // claim now, so the survivors' acknowledgements come sooner.
          if (this.endpoint.releaseGhosts(this.now())) this.tick();
          else if (this.heardSinceReport && this.now() < this.fastAcksUntil) this.tick();
          // A request waits for a raise, or a peer waits for this frontend's acknowledgement.
          else if (this.endpoint.reportSoon?.() === true) this.tick();
          this.countGhosts();
        },
        Math.max(1, this.options.intervalMs / PROBE_CHECKS_PER_INTERVAL),
      );
      this.probeTimer.unref();
    }
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    // A frontend that has closed everything else must not stay alive for its gossip.
    this.timer.unref();
  }

  /** Stop publishing and listening. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.timer = undefined;
    this.probeTimer = undefined;
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = [];
    this.removeStatusListener?.();
    this.removeStatusListener = undefined;
  }

  /**
   * The controller's `sendLoanMessage`: synchronous and never throws. A loan
   * message that cannot be sent is lost, which loans tolerate.
   */
  sendLoanMessage(message: LoanMessage): void {
    if (!this.timer || this.options.standalone || !this.connected) return;
    try {
      const data = encodeRecord(loanToWire(message));
      this.bus.publish(Subjects.gossipLoan(message.to), data);
      this.sent.loanMessages++;
      this.sent.loanBytes += data.byteLength;
    } catch (error) {
      this.logger.debug("could not send a loan message", { to: message.to, error });
    }
  }

  /** One gossip round; public for tests that drive the clock themselves. */
  tick(): void {
    let report: DemandReport;
    try {
      report = this.endpoint.demandReport(this.now());
    } catch (error) {
      this.logger.error("admission tick failed", { error });
      return;
    }
    if (this.options.standalone || !this.connected) return;
    try {
      const data = encodeRecord(reportToWire(report));
      this.bus.publish(Subjects.gossipDemand, data);
      this.heardSinceReport = false;
      this.sent.reports++;
      this.sent.bytes += data.byteLength;
    } catch (error) {
      this.logger.warn("could not publish the demand report", { error });
    }
    this.probeLatePeers();
    this.countGhosts();
  }

  private probeLatePeers(): void {
    const now = this.now();
    for (const peer of this.endpoint.latePeers(now, PROBE_AFTER_INTERVALS)) {
      if (this.probing.has(peer)) continue;
      let subject: string;
      try {
        subject = Subjects.gossipProbe(peer);
      } catch {
        continue; // an id that is no subject token cannot have subscribed
      }
      this.probing.add(peer);
      this.bus
        .request(subject, new Uint8Array(0), { timeoutMs: 2 * this.options.intervalMs })
        .then(
          () => undefined,
          (error: unknown) => {
            // Only "nobody listens" proves the peer gone; a timeout proves nothing.
            if (!(error instanceof GustError && error.code === "no-responders")) return;
            const censusFollows = this.options.census !== undefined;
            if (this.endpoint.peerGone(peer, this.now(), censusFollows)) {
              this.fastAcksUntil = this.now() + FAST_ACK_INTERVALS * this.options.intervalMs;
              this.logger.info("a peer frontend is gone; its share returns to the others", {
                peer,
              });
              // Announce the raised claim now rather than at the next tick:
              // the survivors' acknowledgements of it are what release the
              // part of the raise beyond this frontend's equal part.
              if (this.timer) this.tick();
              this.countGhosts();
            }
          },
        )
        .finally(() => this.probing.delete(peer));
    }
  }

  /**
   * Ask the workers what departed peers left running (one census at a
   * time), so their slots return as soon as those invocations end.
   */
  private countGhosts(): void {
    const census = this.options.census;
    if (census === undefined || this.censusing || !this.timer || !this.connected) return;
    const holders = this.endpoint.ghostHolders();
    if (holders.length === 0) return;
    this.censusing = true;
    census(holders, this.endpoint.knownFrontends())
      .then((running) => {
        if (running === undefined || !this.timer) return;
        if (this.endpoint.applyCensus(running, this.now())) this.tick();
      })
      .catch((error: unknown) => this.logger.debug("worker census failed", { error }))
      .finally(() => {
        this.censusing = false;
      });
  }

  private onStatus(status: BusStatus): void {
    const connected = status !== "disconnected";
    if (connected === this.connected) return;
    this.connected = connected;
    this.logger.info(
      connected
        ? "gossip reconnected; rejoining the fleet"
        : "gossip cut off; enforcing the conservative share",
      { instanceId: this.endpoint.instanceId },
    );
    this.endpoint.connectivity(connected, this.now());
  }

  private onReport(data: Uint8Array): void {
    let value: Record<string, unknown>;
    try {
      value = decodeRecord(data);
    } catch (error) {
      this.junk("a gossip report that does not decode", undefined, error);
      return;
    }
    const sender = reportSender(value);
    if (sender === this.endpoint.instanceId) return;
    const report = reportFromWire(value);
    if (this.endpoint.receiveReport(report, this.now())) {
      this.heardSinceReport = true;
      return;
    }
    // Not taken: stale or duplicate (normal), or not a report at all.
    if (parseDemandReport(report) === undefined) {
      this.junk("a gossip message that is not a demand report", sender, undefined);
    }
  }

  private onLoan(data: Uint8Array): void {
    try {
      this.endpoint.receiveLoanMessage(
        loanFromWire(decodeRecord(data), this.endpoint.instanceId),
        this.now(),
      );
    } catch (error) {
      this.junk("a loan message that does not decode", undefined, error);
    }
  }

  private junk(what: string, sender: unknown, error: unknown): void {
    const key = typeof sender === "string" ? sender.slice(0, 128) : "(unknown sender)";
    const now = this.now();
    const last = this.junkLoggedAt.get(key);
    if (last !== undefined && now - last < JUNK_LOG_INTERVAL_MS) return;
    if (this.junkLoggedAt.size >= MAX_JUNK_SENDERS) this.junkLoggedAt.clear();
    this.junkLoggedAt.set(key, now);
    this.logger.debug(`ignoring ${what}`, { sender: key, ...(error ? { error } : {}) });
  }
}
