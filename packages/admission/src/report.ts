/**
 * The gossip message: what one frontend tells the others every interval.
 * Plain data, so msgpack carries it as is (@gust/protocol's codec).
 *
 * Only active pools are listed (arrivals in the window, a non-negligible
 * demand estimate, invocations in flight, or loans), so an idle tenant costs
 * nothing. Entries are tuples rather than objects: the field names would
 * otherwise be repeated for each of up to tens of thousands of tenants.
 */

export const DEMAND_REPORT_TYPE = "admission.demand";

/**
 * One pool on one frontend. `functionName` is "" for the tenant's unreserved
 * pool, else the name of a function with reserved concurrency.
 */
export type PoolDemand = readonly [
  tenantId: string,
  functionName: string,
  /** Arrivals in the last interval, throttled ones included. */
  arrivals: number,
  /** Smoothed offered load, in concurrent executions (2 decimals). */
  demand: number,
  /**
   * Invocations in flight through this frontend now, counting slots it lent
   * out and not those it borrowed (they are charged to their lender), so
   * the fleet's entries sum to its inflight.
   */
  inflight: number,
  /** This frontend's part of the split, which it will not exceed but for loans. */
  share: number,
];

export interface DemandReport {
  type: typeof DEMAND_REPORT_TYPE;
  /** Unique per frontend process; a restarted frontend should use a new one. */
  frontendId: string;
  /** Increases by one per report; receivers ignore anything not newer. */
  seq: number;
  /** The sender's gossip interval; receivers expire it after a few of these. */
  intervalMs: number;
  /**
   * The latest seq the sender has received from each live peer. A frontend
   * raises a share only once every peer has acknowledged a report that
   * announced the raise (see pool.ts), which keeps the shares' sum within T.
   */
  acks: Array<[frontendId: string, seq: number]>;
  /**
   * Every loan the sender asked for with an id up to this is settled
   * (expired, returned or never granted): its lenders take those slots back.
   */
  loansSettledThrough: number;
  pools: PoolDemand[];
  /**
   * What the sender claims in every pool it leaves out of `pools` (idle
   * there): floor(the pool's lowest possible limit / idleDivisor), the same
   * number on every receiver whatever it knows of demand. Absent (a sender of
   * an older release): receivers take the split's share for an idle frontend.
   */
  idleDivisor?: number;
  /** A request at the sender waits for a raise its peers must acknowledge: acknowledge soon. */
  awaiting?: boolean;
}

const MAX_ID_LENGTH = 256;

function isName(value: unknown, allowEmpty: boolean): value is string {
  return (
    typeof value === "string" && value.length <= MAX_ID_LENGTH && (allowEmpty || value.length > 0)
  );
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

function parsePool(entry: unknown): PoolDemand | undefined {
  if (!Array.isArray(entry) || entry.length < 6) return undefined;
  const [tenantId, functionName, arrivals, demand, inflight, share] = entry as unknown[];
  if (!isName(tenantId, false) || !isName(functionName, true)) return undefined;
  if (!isCount(arrivals) || !isCount(demand) || !isCount(inflight) || !isCount(share))
    return undefined;
  return [tenantId, functionName, arrivals, demand, inflight, share];
}

/**
 * Check a report that came off the wire. Returns undefined for anything that
 * is not a report; drops malformed pool entries and keeps the rest, so one
 * bad entry from a newer peer does not blind this frontend to the others.
 */
export function parseDemandReport(value: unknown): DemandReport | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const candidate = value as Record<string, unknown>;
  const { type, frontendId, seq, intervalMs, acks, loansSettledThrough, pools, idleDivisor } =
    candidate;
  const awaiting = candidate["awaiting"] === true;
  if (type !== DEMAND_REPORT_TYPE) return undefined;
  if (!isName(frontendId, false)) return undefined;
  if (!isCount(seq) || !Number.isInteger(seq)) return undefined;
  if (!isCount(intervalMs) || intervalMs === 0) return undefined;
  if (!isCount(loansSettledThrough)) return undefined;
  if (!Array.isArray(pools) || !Array.isArray(acks)) return undefined;
  if (
    idleDivisor !== undefined &&
    (!isCount(idleDivisor) || !Number.isInteger(idleDivisor) || idleDivisor < 1)
  )
    return undefined;
  const parsedAcks: Array<[string, number]> = [];
  for (const ack of acks as unknown[]) {
    if (!Array.isArray(ack) || ack.length < 2) continue;
    const [peer, peerSeq] = ack as unknown[];
    if (isName(peer, false) && isCount(peerSeq) && Number.isInteger(peerSeq))
      parsedAcks.push([peer, peerSeq]);
  }
  const parsed: PoolDemand[] = [];
  for (const entry of pools) {
    const pool = parsePool(entry);
    if (pool) parsed.push(pool);
  }
  return {
    type: DEMAND_REPORT_TYPE,
    frontendId,
    seq,
    intervalMs,
    acks: parsedAcks,
    loansSettledThrough,
    pools: parsed,
    ...(idleDivisor === undefined ? {} : { idleDivisor }),
    ...(awaiting ? { awaiting } : {}),
  };
}

/** The key a pool is tracked under: the tenant, or tenant + function for a reservation. */
export function poolKey(tenantId: string, functionName: string): string {
  return functionName === "" ? tenantId : `${tenantId}\u0000${functionName}`;
}
