/**
 * A few controllers wired to each other by hand, for tests: every message
 * (gossip report or loan message) waits in `inFlight` until the test
 * delivers it, drops it, or delivers everything, so tests control order,
 * delay and loss exactly.
 */
import { AdmissionController, STRANGERS } from "./controller.js";
import type { Rejection, Ticket } from "./decision.js";
import type { LoanMessage } from "./loans.js";
import type { AdmissionPolicyOptions } from "./policy.js";

export interface Envelope {
  from: number;
  to: number;
  kind: "report" | "loan";
  payload: unknown;
}

export class TestFleet {
  readonly controllers: AdmissionController[];
  readonly tickets: Ticket[][];
  inFlight: Envelope[] = [];
  /** False for a frontend killed with `kill`: it neither ticks, admits nor receives. */
  readonly alive: boolean[];
  /** heardAt[to][from]: when `to` last received a report from `from`. */
  readonly heardAt: number[][];
  now = 0;

  constructor(
    size: number,
    policy: AdmissionPolicyOptions,
    options: { lending?: boolean; workerCensus?: boolean } = {},
  ) {
    this.controllers = Array.from(
      { length: size },
      (_, f) =>
        new AdmissionController({
          frontendId: `fe-${f}`,
          policy,
          fleetSizeHint: size,
          workerCensus: options.workerCensus ?? false,
          ...(options.lending ? { sendLoanMessage: (m: LoanMessage) => this.post(m) } : {}),
        }),
    );
    this.tickets = this.controllers.map(() => []);
    this.alive = this.controllers.map(() => true);
    this.heardAt = this.controllers.map(() => this.controllers.map(() => 0));
  }

  /**
   * What gossip promises: a live frontend is heard by every other live one
   * at least every `maxSilenceMs` (reports may be late or lost, but not all
   * of them for a whole expiry period). Where a pair has been silent that
   * long, the sender reports now and the receiver hears it.
   */
  keepAlive(maxSilenceMs: number): void {
    this.controllers.forEach((_c, from) => {
      if (!this.alive[from]) return;
      const late = this.heardAt.some(
        (heard, to) =>
          to !== from && this.alive[to] && this.now - (heard[from] ?? 0) >= maxSilenceMs,
      );
      if (!late) return;
      this.tick(from);
      for (let i = this.inFlight.length - 1; i >= 0; i--) {
        const m = this.inFlight[i];
        if (m?.from === from && m.kind === "report") this.deliver(i);
      }
    });
  }

  /**
   * Frontend f dies as a killed process does: nothing more from it, and what
   * it sent is either delivered before its connection closed or lost (here:
   * lost). Its invocations end with it, or with `invocationsRunOn` go on
   * running (and counting) until `endInvocationsOf`.
   */
  kill(f: number, options: { invocationsRunOn?: boolean } = {}): void {
    this.alive[f] = false;
    if (!options.invocationsRunOn) this.tickets[f] = [];
    this.inFlight = this.inFlight.filter((m) => m.to !== f && m.from !== f);
  }

  /** The invocations a killed frontend left running on the workers end. */
  endInvocationsOf(f: number): void {
    this.tickets[f] = [];
  }

  /** One invocation a killed frontend left running ends. */
  endInvocationOf(f: number, pick = 0): void {
    if (this.alive[f]) return;
    const list = this.tickets[f]!;
    if (list.length > 0) list.splice(pick % list.length, 1);
  }

  /**
   * Survivor f learns that every killed frontend is gone (its probe found
   * nobody); with `censusFollows`, it will count their invocations with
   * `census`.
   */
  notice(f: number, censusFollows = false): void {
    if (!this.alive[f]) return;
    this.controllers.forEach((c, dead) => {
      if (!this.alive[dead]) this.controller(f).peerGone(c.frontendId, this.now, censusFollows);
    });
  }

  /**
   * Survivor f asks the workers what the departed frontends it counts left
   * running: exactly the killed frontends' tickets still held. Returns
   * whether slots were freed.
   */
  census(f: number): boolean {
    if (!this.alive[f]) return false;
    const c = this.controller(f);
    const holders = c.ghostHolders();
    if (holders.length === 0) return false;
    const running = new Map<string, Map<string, number>>();
    const count = (holder: string) => {
      const pools = new Map<string, number>();
      const index = this.controllers.findIndex((d) => d.frontendId === holder);
      for (const ticket of this.tickets[index] ?? []) {
        pools.set(ticket.pool, (pools.get(ticket.pool) ?? 0) + 1);
      }
      running.set(holder, pools);
    };
    for (const holder of holders) {
      if (holder !== STRANGERS) count(holder);
      else {
        // Every frontend it does not know, by its real id, as the workers answer.
        running.set(STRANGERS, new Map());
        const known = new Set(c.knownFrontends());
        for (const other of this.controllers)
          if (!known.has(other.frontendId)) count(other.frontendId);
      }
    }
    return c.applyCensus(running, this.now);
  }

  controller(f: number): AdmissionController {
    const c = this.controllers[f];
    if (!c) throw new RangeError(`no frontend ${f}`);
    return c;
  }

  /** Frontend f ticks; its report is queued for every other frontend. */
  tick(f: number): void {
    if (!this.alive[f]) return;
    const report = this.controller(f).demandReport(this.now);
    this.controllers.forEach((_c, to) => {
      if (to !== f && this.alive[to])
        this.inFlight.push({ from: f, to, kind: "report", payload: report });
    });
  }

  tickAll(): void {
    this.controllers.forEach((_c, f) => this.tick(f));
  }

  deliver(index: number): void {
    const [envelope] = this.inFlight.splice(index, 1);
    if (!envelope) return;
    const c = this.controller(envelope.to);
    if (envelope.kind === "report") {
      c.receiveReport(envelope.payload, this.now);
      this.heardAt[envelope.to]![envelope.from] = this.now;
    } else c.receiveLoanMessage(envelope.payload, this.now);
  }

  drop(index: number): void {
    this.inFlight.splice(index, 1);
  }

  /** Deliver everything, including messages that deliveries cause. */
  deliverAll(): void {
    while (this.inFlight.length > 0) this.deliver(0);
  }

  /** Several rounds of ticks with instant delivery, `stepMs` apart. */
  settle(rounds: number, stepMs: number): void {
    for (let r = 0; r < rounds; r++) {
      this.now += stepMs;
      this.tickAll();
      this.deliverAll();
    }
  }

  admit(f: number, tenantId: string, functionName = "fn"): Ticket | Rejection {
    if (!this.alive[f]) throw new RangeError(`frontend ${f} was killed`);
    const decision = this.controller(f).tryAdmit(tenantId, functionName, this.now);
    if (decision.kind === "ticket") this.tickets[f]!.push(decision);
    return decision;
  }

  release(f: number, pick = 0): void {
    const list = this.tickets[f]!;
    if (list.length === 0) return;
    const [ticket] = list.splice(pick % list.length, 1);
    if (ticket) this.controller(f).release(ticket, this.now);
  }

  /** Invocations of the tenant running on all frontends. */
  fleetInflight(): number {
    return this.tickets.reduce((sum, list) => sum + list.length, 0);
  }

  private post(message: LoanMessage): void {
    const to = this.controllers.findIndex((c) => c.frontendId === message.to);
    const from = this.controllers.findIndex((c) => c.frontendId === message.from);
    if (to >= 0 && this.alive[to]) this.inFlight.push({ from, to, kind: "loan", payload: message });
  }
}
