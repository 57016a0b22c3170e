/**
 * Borrowing slots between frontends: the path that gets below the best fixed
 * partition. Shares are recomputed every gossip interval, far slower than a
 * frontend's concurrency fluctuates at high utilisation; a loan moves idle
 * slots to where they are needed now, in one round trip.
 *
 * Safety: a lender lowers its own share before it grants. The borrower
 * counts a loan for `lease` after it asked (its own clock), then counts the
 * invocations still running on it as its own. A lender takes slots back only
 * when the borrower returns them, or when the borrower's gossip report says
 * that all its loans up to this one are settled (loan ids grow and leases
 * are equal, so one number per report says it); that same report already
 * counts whatever still runs on the loan against the borrower. So the two
 * never count the same slot twice nor drop one, whatever the delay or loss of
 * messages, without synchronised clocks or timers on the lender. A lost
 * grant or return only idles slots until the borrower's next report.
 *
 * The borrower asks when a request finds no free slot, and the request may
 * wait for the answer (one round trip); admission itself never waits.
 */

export const LoanMessageTypes = {
  request: "admission.loan.request",
  grant: "admission.loan.grant",
  return: "admission.loan.return",
} as const;
export type LoanMessageType = (typeof LoanMessageTypes)[keyof typeof LoanMessageTypes];

/** Common to every loan message. `functionName` is "" for the unreserved pool. */
export interface LoanMessage {
  type: LoanMessageType;
  /** Sender's frontendId. */
  from: string;
  /** Receiver's frontendId: send it to that frontend only. */
  to: string;
  tenantId: string;
  functionName: string;
  /** Chosen by the borrower, unique among its loans. */
  loanId: number;
  /** Asked for, granted, or given back. (Lenders with nothing to lend do not answer; a grant of 0 from an older peer counts as a refusal.) */
  slots: number;
}

export function parseLoanMessage(value: unknown): LoanMessage | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const types: readonly unknown[] = Object.values(LoanMessageTypes);
  if (!types.includes(m["type"])) return undefined;
  const strings = [m["from"], m["to"], m["tenantId"]];
  if (!strings.every((s) => typeof s === "string" && s.length > 0 && s.length <= 256))
    return undefined;
  if (typeof m["functionName"] !== "string" || m["functionName"].length > 256) return undefined;
  const loanId = m["loanId"];
  const slots = m["slots"];
  if (!Number.isSafeInteger(loanId) || !Number.isSafeInteger(slots) || (slots as number) < 0)
    return undefined;
  return value as LoanMessage;
}

interface Borrowed {
  loanId: number;
  lender: string;
  slots: number;
  expiresAt: number;
}

interface Lent {
  loanId: number;
  borrower: string;
  slots: number;
}

/** One pool's loans on one frontend, both directions. */
export class LoanBook {
  borrowedTotal = 0;
  lentTotal = 0;
  private borrowed: Borrowed[] = [];
  private lent: Lent[] = [];
  /** Requests within their lease: a late grant is still good. */
  private readonly asked = new Map<number, { lender: string; sentAt: number }>();
  private pending: { loanId: number; sentAt: number } | undefined;
  private backoffUntil = 0;
  /** Expired loans to hand back once the borrower's inflight fits without them. */
  private due: Borrowed[] = [];

  get idle(): boolean {
    return (
      this.borrowed.length === 0 &&
      this.lent.length === 0 &&
      this.due.length === 0 &&
      this.asked.size === 0
    );
  }

  canAsk(now: number, timeoutMs: number, backoffMs: number): boolean {
    return !this.isAsking(now, timeoutMs, backoffMs) && now >= this.backoffUntil;
  }

  /** A request is out and not yet timed out (a timed-out one is given up here). */
  isAsking(now: number, timeoutMs: number, backoffMs: number): boolean {
    if (this.pending && now - this.pending.sentAt >= timeoutMs) {
      this.pending = undefined;
      this.backoffUntil = now + backoffMs;
    }
    return this.pending !== undefined;
  }

  ask(loanId: number, lender: string, now: number): void {
    this.pending = { loanId, sentAt: now };
    this.asked.set(loanId, { lender, sentAt: now });
  }

  /** A grant arrived; returns the slots now usable (0 if refused, unknown or too late). */
  granted(
    lender: string,
    loanId: number,
    slots: number,
    now: number,
    leaseMs: number,
    backoffMs: number,
  ): number {
    if (this.pending?.loanId === loanId) this.pending = undefined;
    const ask = this.asked.get(loanId);
    this.asked.delete(loanId);
    if (slots === 0) {
      this.backoffUntil = now + backoffMs;
      return 0;
    }
    if (!ask || ask.lender !== lender || now >= ask.sentAt + leaseMs) return 0;
    this.borrowed.push({ loanId, lender, slots, expiresAt: ask.sentAt + leaseMs });
    this.borrowedTotal += slots;
    return slots;
  }

  lend(borrower: string, loanId: number, slots: number): void {
    this.lent.push({ loanId, borrower, slots });
    this.lentTotal += slots;
  }

  /** Slots lent to `borrower` and not yet back. */
  lentTo(borrower: string): number {
    let slots = 0;
    for (const loan of this.lent) if (loan.borrower === borrower) slots += loan.slots;
    return slots;
  }

  /** Frontends holding slots lent from here. */
  borrowers(): Set<string> {
    return new Set(this.lent.map((loan) => loan.borrower));
  }

  /** The borrower reports all its loans up to `through` settled: take them back. */
  settledBy(borrower: string, through: number): number {
    let freed = 0;
    this.lent = this.lent.filter((loan) => {
      if (loan.borrower !== borrower || loan.loanId > through) return true;
      freed += loan.slots;
      return false;
    });
    this.lentTotal -= freed;
    return freed;
  }

  /** The oldest of this pool's own loans (asked for or in use) not yet settled. */
  oldestOutstanding(): number | undefined {
    let oldest: number | undefined;
    for (const loanId of this.asked.keys()) oldest = Math.min(oldest ?? loanId, loanId);
    for (const loan of this.borrowed) oldest = Math.min(oldest ?? loan.loanId, loan.loanId);
    return oldest;
  }

  /** The borrower gave (part of) a loan back; returns the slots freed here. */
  returned(borrower: string, loanId: number, slots: number): number {
    const index = this.lent.findIndex((l) => l.borrower === borrower && l.loanId === loanId);
    const loan = this.lent[index];
    if (!loan) return 0;
    const freed = Math.min(loan.slots, slots);
    loan.slots -= freed;
    this.lentTotal -= freed;
    if (loan.slots === 0) this.lent.splice(index, 1);
    return freed;
  }

  /** Loans past their lease still waiting to be handed back. */
  get hasDue(): boolean {
    return this.due.length > 0;
  }

  /** A request is out (whether or not it has timed out yet). */
  get asking(): boolean {
    return this.pending !== undefined;
  }

  /**
   * Time passes: unanswered requests are given up, borrowed loans past their
   * lease stop counting (and become due for return).
   */
  expire(now: number, leaseMs: number, timeoutMs: number, backoffMs: number): void {
    if (this.pending === undefined && this.asked.size === 0 && this.borrowed.length === 0) return;
    if (this.pending && now - this.pending.sentAt >= timeoutMs) {
      this.pending = undefined;
      this.backoffUntil = now + backoffMs;
    }
    for (const [loanId, ask] of this.asked)
      if (now >= ask.sentAt + leaseMs) this.asked.delete(loanId);
    const live: Borrowed[] = [];
    for (const loan of this.borrowed) {
      if (now >= loan.expiresAt) {
        this.borrowedTotal -= loan.slots;
        this.due.push(loan);
      } else live.push(loan);
    }
    this.borrowed = live;
  }

  /**
   * Slots to hand back now: loans past their lease once `free` (share −
   * inflight) is no longer negative, and borrowed slots beyond the `keep`
   * free ones the borrower wants, oldest loan first. Removes them from the book.
   */
  returns(free: number, keep: number): Array<{ loanId: number; lender: string; slots: number }> {
    const out: Array<{ loanId: number; lender: string; slots: number }> = [];
    if (this.due.length > 0 && free >= 0) {
      out.push(...this.due);
      this.due = [];
    }
    let surplus = Math.floor(free - keep);
    while (surplus > 0) {
      const loan = this.borrowed[0];
      if (!loan) break;
      const slots = Math.min(loan.slots, surplus);
      loan.slots -= slots;
      this.borrowedTotal -= slots;
      surplus -= slots;
      if (loan.slots === 0) this.borrowed.shift();
      out.push({ loanId: loan.loanId, lender: loan.lender, slots });
    }
    return out;
  }

  /**
   * The lender of some of these loans is gone: what runs on them is no
   * longer counted by it (a census counts only its own invocations), so from
   * now on it counts here, as this frontend's own held slots; nothing is
   * handed back to a lender that is gone.
   */
  lenderGone(lender: string): void {
    const live: Borrowed[] = [];
    for (const loan of this.borrowed) {
      if (loan.lender === lender) this.borrowedTotal -= loan.slots;
      else live.push(loan);
    }
    this.borrowed = live;
    this.due = this.due.filter((loan) => loan.lender !== lender);
  }

  /** Cut off from peers: stop using borrowed slots (their lenders take them back from the next report). */
  dropBorrowed(): void {
    for (const loan of this.borrowed) this.borrowedTotal -= loan.slots;
    this.borrowed = [];
    this.due = [];
    this.asked.clear();
    this.pending = undefined;
  }
}
