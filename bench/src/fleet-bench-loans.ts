/**
 * Loans as the fleet benchmark's NATS observer sees them: every request and
 * grant on `gust.v1.gossip.loan.*`, matched by borrower and loan id, so the
 * report can say how many requests a lender answered and how long the round
 * trip took. One process on one machine sees both messages, so their
 * arrival times share a clock. A lender with nothing to lend does not
 * answer: an unmatched request is a silent refusal (or a lost message).
 */
import { loanFromWire, parseLoanMessage, LoanMessageTypes } from "@gust/admission";
import { decodeRecord } from "@gust/protocol";
import { median, percentile } from "./histogram.js";

export class LoanObserver {
  private readonly asked = new Map<string, number>();
  requests = 0;
  grants = 0;
  returns = 0;
  readonly roundTripsMs: number[] = [];

  /** One message on `gust.v1.gossip.loan.<to>`. */
  observe(subject: string, data: Uint8Array, at: number): void {
    const to = subject.slice(subject.lastIndexOf(".") + 1);
    let message;
    try {
      message = parseLoanMessage(loanFromWire(decodeRecord(data), to));
    } catch {
      return;
    }
    if (!message) return;
    if (message.type === LoanMessageTypes.request) {
      this.requests++;
      this.asked.set(`${message.from}/${message.loanId}`, at);
    } else if (message.type === LoanMessageTypes.grant) {
      if (message.slots > 0) this.grants++;
      const key = `${message.to}/${message.loanId}`;
      const sentAt = this.asked.get(key);
      if (sentAt !== undefined) {
        this.roundTripsMs.push(at - sentAt);
        this.asked.delete(key);
      }
    } else {
      this.returns++;
    }
  }

  /** The median grant round trip, 0 when none was matched. */
  medianRoundTripMs(): number {
    return this.roundTripsMs.length === 0 ? 0 : median(this.roundTripsMs);
  }

  /** "p50 / p99 / max ms", over the grants matched to their requests. */
  roundTrip(): string {
    const sorted = [...this.roundTripsMs].sort((a, b) => a - b);
    if (sorted.length === 0) return "–";
    return [0.5, 0.99, 1].map((q) => percentile(sorted, q).toFixed(1)).join(" / ") + " ms";
  }
}
