/**
 * A few controllers wired to each other by hand, for tests: every message
 * (gossip report or loan message) waits in `inFlight` until the test
 * delivers it, drops it, or delivers everything, so tests control order,
 * delay and loss exactly.
 */
import { AdmissionController } from "./controller.js";
import type { Rejection, Ticket } from "./decision.js";
import type { LoanMessage } from "./loans.js";
import type { AdmissionPolicyOptions } from "./policy.js";

export interface Envelope {
  to: number;
  kind: "report" | "loan";
  payload: unknown;
}

export class TestFleet {
  readonly controllers: AdmissionController[];
  readonly tickets: Ticket[][];
  inFlight: Envelope[] = [];
  now = 0;

  constructor(size: number, policy: AdmissionPolicyOptions, options: { lending?: boolean } = {}) {
    this.controllers = Array.from(
      { length: size },
      (_, f) =>
        new AdmissionController({
          frontendId: `fe-${f}`,
          policy,
          fleetSizeHint: size,
          ...(options.lending ? { sendLoanMessage: (m: LoanMessage) => this.post(m) } : {}),
        }),
    );
    this.tickets = this.controllers.map(() => []);
  }

  controller(f: number): AdmissionController {
    const c = this.controllers[f];
    if (!c) throw new RangeError(`no frontend ${f}`);
    return c;
  }

  /** Frontend f ticks; its report is queued for every other frontend. */
  tick(f: number): void {
    const report = this.controller(f).demandReport(this.now);
    this.controllers.forEach((_c, to) => {
      if (to !== f) this.inFlight.push({ to, kind: "report", payload: report });
    });
  }

  tickAll(): void {
    this.controllers.forEach((_c, f) => this.tick(f));
  }

  deliver(index: number): void {
    const [envelope] = this.inFlight.splice(index, 1);
    if (!envelope) return;
    const c = this.controller(envelope.to);
    if (envelope.kind === "report") c.receiveReport(envelope.payload, this.now);
    else c.receiveLoanMessage(envelope.payload, this.now);
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
    if (to >= 0) this.inFlight.push({ to, kind: "loan", payload: message });
  }
}
