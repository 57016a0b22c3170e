/**
 * The borrowing protocol's decisions, on one frontend: when to ask a peer
 * for slots, how many to grant, when to hand them back. The bookkeeping is
 * the pool's LoanBook (loans.ts); the messages go out through the transport's
 * `send`, fire and forget.
 *
 * Measured in the simulator (README.md), the rule that works is the plain
 * one: borrow for the request that finds no free slot (it waits one round
 * trip), lend any slot not in use, and hand borrowed slots back once the
 * borrower has a few (about sqrt(demand) × loanReturnKeepFactor) free again;
 * a lender with nothing to lend stays silent.
 * Holding on to loans for longer, or lending only beyond a reserve, starves
 * the lender; returning every slot the moment it frees costs three messages
 * per borrowed invocation. A frontend that lends does not borrow and one that
 * borrows does not lend, so slots do not travel in circles.
 */
import { LoanMessageTypes, type LoanMessage } from "./loans.js";
import type { AdmissionPolicy } from "./policy.js";
import { ShareModes, type Pool, type ShareMode } from "./pool.js";

export class Lending {
  private nextLoanId = 1;
  /** Pools that have slots out on loan. */
  private readonly lendingPools = new Set<Pool>();

  constructor(
    private readonly selfId: string,
    private readonly policy: AdmissionPolicy,
    private readonly send: ((message: LoanMessage) => void) | undefined,
    /** Recompute a pool's enforced share after its loans changed. */
    private readonly settle: (pool: Pool) => void,
  ) {}

  /** Ask the most promising peer for slots if this pool is out of them. */
  maybeBorrow(pool: Pool, now: number, mode: ShareMode): void {
    if (!this.send || !this.policy.lendingEnabled || pool.bestLender === undefined) return;
    if (pool.share - pool.inflight > this.trigger(pool)) return;
    if (!pool.loans.canAsk(now, this.policy.loanTimeoutMs, this.policy.loanBackoffMs)) return;
    // A lender waits for its own slots to come back rather than borrow.
    if (pool.loans.lentTotal > 0) return;
    if (mode !== ShareModes.gossip) return;
    const slots = Math.max(
      1,
      Math.ceil(this.policy.loanBatchFactor * Math.sqrt(Math.max(1, pool.meter.demand))),
    );
    const loanId = this.nextLoanId++;
    pool.loans.ask(loanId, pool.bestLender, now);
    this.deliver(pool, LoanMessageTypes.request, pool.bestLender, loanId, slots);
  }

  /** Handle a message addressed to this frontend about `pool` (undefined: a pool it does not know). */
  receive(message: LoanMessage, pool: Pool | undefined, now: number, mode: ShareMode): void {
    const { loanLeaseMs, loanBackoffMs } = this.policy;
    switch (message.type) {
      case LoanMessageTypes.request: {
        let slots = 0;
        // A frontend that borrows itself, or is about to, has nothing to lend.
        if (
          pool &&
          mode === ShareModes.gossip &&
          pool.loans.borrowedTotal === 0 &&
          !pool.loans.asking
        ) {
          const free = pool.share - pool.inflight - this.trigger(pool);
          slots = Math.max(0, Math.min(message.slots, Math.floor(free)));
          if (slots > 0) {
            pool.loans.lend(message.from, message.loanId, slots);
            this.lendingPools.add(pool);
            this.settle(pool);
          }
        }
        // Nothing to lend: no answer. The borrower's request times out
        // (loanTimeoutMs), which spaces its next one; its waiting invocation
        // meanwhile takes any of its own slots that frees. A refusal would
        // cost a message only to have the borrower ask again at once.
        if (slots > 0) this.reply(message, LoanMessageTypes.grant, slots);
        return;
      }
      case LoanMessageTypes.grant: {
        const usable = pool
          ? pool.loans.granted(
              message.from,
              message.loanId,
              message.slots,
              now,
              loanLeaseMs,
              loanBackoffMs,
            )
          : 0;
        if (pool && usable > 0) this.settle(pool);
        // Too late or unknown: give the slots straight back rather than idle them.
        else if (message.slots > 0) this.reply(message, LoanMessageTypes.return, message.slots);
        return;
      }
      case LoanMessageTypes.return:
        if (pool && pool.loans.returned(message.from, message.loanId, message.slots) > 0)
          this.settle(pool);
        return;
    }
  }

  /**
   * The watermark this frontend's next report carries: every loan it asked
   * for with an id up to this one is settled (expired, returned or never
   * granted), given the oldest still outstanding among its pools.
   */
  settledThrough(oldestOutstanding: number | undefined): number {
    return (oldestOutstanding ?? this.nextLoanId) - 1;
  }

  /** A borrower's report says its loans up to `through` are settled: take those slots back. */
  borrowerSettled(borrower: string, through: number): void {
    for (const pool of this.lendingPools) {
      if (pool.loans.settledBy(borrower, through) > 0) this.settle(pool);
      if (pool.loans.lentTotal === 0) this.lendingPools.delete(pool);
    }
  }

  /**
   * A departed borrower's loans in one pool come home: once nothing it ran
   * there is still counted (its ghost is gone), so that until then the slots
   * stay counted here, where every peer sees them in this frontend's held.
   */
  departedBorrowerSettled(pool: Pool, borrower: string): void {
    if (pool.loans.settledBy(borrower, Number.POSITIVE_INFINITY) > 0) this.settle(pool);
    if (pool.loans.lentTotal === 0) this.lendingPools.delete(pool);
  }

  /** Hand back borrowed slots the pool does not need now (and expired loans once they fit). */
  returnLoans(pool: Pool): void {
    const keep = Math.max(
      this.trigger(pool),
      Math.ceil(this.policy.loanReturnKeepFactor * Math.sqrt(Math.max(1, pool.meter.demand))),
    );
    const returns = pool.loans.returns(pool.share - pool.inflight, keep);
    if (returns.length === 0) return;
    this.settle(pool);
    for (const loan of returns)
      this.deliver(pool, LoanMessageTypes.return, loan.lender, loan.loanId, loan.slots);
  }

  /** Free slots a pool keeps before it borrows, when it lends, and when it returns. */
  private trigger(pool: Pool): number {
    return Math.ceil(this.policy.loanTriggerFactor * Math.sqrt(Math.max(1, pool.meter.demand)));
  }

  private reply(to: LoanMessage, type: LoanMessage["type"], slots: number): void {
    this.sendSafely({
      type,
      from: this.selfId,
      to: to.from,
      tenantId: to.tenantId,
      functionName: to.functionName,
      loanId: to.loanId,
      slots,
    });
  }

  private deliver(
    pool: Pool,
    type: LoanMessage["type"],
    to: string,
    loanId: number,
    slots: number,
  ): void {
    this.sendSafely({
      type,
      from: this.selfId,
      to,
      tenantId: pool.tenantId,
      functionName: pool.functionName,
      loanId,
      slots,
    });
  }

  private sendSafely(message: LoanMessage): void {
    try {
      this.send?.(message);
    } catch {
      // A message that cannot be sent is a lost message; loans tolerate loss.
    }
  }
}
