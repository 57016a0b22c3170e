/**
 * The gossip's wire form: what a frontend puts on NATS for a demand report or
 * a loan message. Gossip is overhead on every invocation, so its bytes count
 * (README.md, "Loans and bandwidth"): the wire form is a map with one-letter
 * keys instead of the readable field names, demand travels as a whole number
 * of hundredths (a msgpack float costs 9 bytes, hundredths up to 655.35 cost
 * 3), and a loan message leaves out its receiver, which its subject names.
 *
 *   report: { v: 2, f: frontendId, s: seq, i: intervalMs, a: acks,
 *             l: loansSettledThrough, p: [[tenant, function, arrivals,
 *             demand × 100, inflight, share], …] }
 *   loan:   { v: 2, k: 0 request | 1 grant | 2 return, f: from, t: tenant,
 *             n: function, i: loanId, s: slots }
 *
 * `fromWire` returns the readable form for parseDemandReport and
 * parseLoanMessage to check, so nothing here trusts what arrives, and it
 * passes the readable form (what frontends before the wire form sent)
 * through unchanged.
 */
import { LoanMessageTypes, type LoanMessage, type LoanMessageType } from "./loans.js";
import { DEMAND_REPORT_TYPE, type DemandReport } from "./report.js";

export const GOSSIP_WIRE_VERSION = 2;

const LOAN_KINDS: readonly LoanMessageType[] = [
  LoanMessageTypes.request,
  LoanMessageTypes.grant,
  LoanMessageTypes.return,
];

/** Hundredths: the precision reports keep demand at anyway. */
const DEMAND_SCALE = 100;

export function reportToWire(report: DemandReport): Record<string, unknown> {
  return {
    v: GOSSIP_WIRE_VERSION,
    f: report.frontendId,
    s: report.seq,
    i: report.intervalMs,
    a: report.acks,
    l: report.loansSettledThrough,
    ...(report.idleDivisor === undefined ? {} : { d: report.idleDivisor }),
    ...(report.awaiting === true ? { w: 1 } : {}),
    p: report.pools.map(([tenantId, functionName, arrivals, demand, inflight, share]) => [
      tenantId,
      functionName,
      arrivals,
      Math.round(demand * DEMAND_SCALE),
      inflight,
      share,
    ]),
  };
}

/** The readable form of a report off the wire (still to be checked by parseDemandReport). */
export function reportFromWire(value: Record<string, unknown>): unknown {
  if (value["v"] !== GOSSIP_WIRE_VERSION) return value;
  const pools = value["p"];
  return {
    type: DEMAND_REPORT_TYPE,
    frontendId: value["f"],
    seq: value["s"],
    intervalMs: value["i"],
    acks: value["a"],
    loansSettledThrough: value["l"],
    ...(value["d"] === undefined ? {} : { idleDivisor: value["d"] }),
    ...(value["w"] === 1 ? { awaiting: true } : {}),
    pools: Array.isArray(pools)
      ? pools.map((entry: unknown): unknown => {
          if (!Array.isArray(entry)) return entry;
          const copy = [...(entry as unknown[])];
          if (typeof copy[3] === "number") copy[3] = copy[3] / DEMAND_SCALE;
          return copy;
        })
      : pools,
  };
}

/** The sender of a report, from either form, for logging junk. */
export function reportSender(value: Record<string, unknown>): unknown {
  return value["v"] === GOSSIP_WIRE_VERSION ? value["f"] : value["frontendId"];
}

export function loanToWire(message: LoanMessage): Record<string, unknown> {
  return {
    v: GOSSIP_WIRE_VERSION,
    k: LOAN_KINDS.indexOf(message.type),
    f: message.from,
    t: message.tenantId,
    n: message.functionName,
    i: message.loanId,
    s: message.slots,
  };
}

/**
 * The readable form of a loan message off the wire, addressed to `to` (the
 * frontend whose subject it came in on); still to be checked by
 * parseLoanMessage.
 */
export function loanFromWire(value: Record<string, unknown>, to: string): unknown {
  if (value["v"] !== GOSSIP_WIRE_VERSION) return value;
  const kind = value["k"];
  return {
    type: typeof kind === "number" ? LOAN_KINDS[kind] : undefined,
    from: value["f"],
    to,
    tenantId: value["t"],
    functionName: value["n"],
    loanId: value["i"],
    slots: value["s"],
  };
}
