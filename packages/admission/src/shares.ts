/**
 * Splitting a limit into per-frontend shares.
 *
 * Each frontend first gets its demand d_i; what is left (the spare) goes out
 * in proportion to sqrt(d_i). Why the square root: a frontend's concurrency
 * fluctuates around d_i by about sqrt(d_i) (Poisson arrivals), so that is
 * where headroom prevents throttles. For Erlang's loss model this rule lands
 * on the best fixed partition of the limit (for 720/135/45 Erlangs over 1,000
 * slots it gives 779/161/60, the optimum found by marginal allocation). When
 * demand exceeds the limit there is nothing spare and shares are
 * proportional to demand.
 *
 * Shares are integers found by the largest-remainder method, so they sum to
 * exactly floor(limit). The order of `demands` breaks ties, so every frontend
 * that sorts the fleet the same way (by id) computes the same shares.
 */

/** A demand that is not a finite, non-negative number counts as none. */
function sane(demand: number): number {
  return Number.isFinite(demand) && demand > 0 ? demand : 0;
}

/**
 * Ideal (real-valued) shares: sum to `limit` when there is anything to share.
 * `weightFloor` keeps idle frontends in the spare split.
 */
export function idealShares(
  limit: number,
  demands: readonly number[],
  weightFloor: number,
): number[] {
  const total = Math.max(0, Number.isFinite(limit) ? limit : 0);
  const d = demands.map(sane);
  const demandSum = d.reduce((sum, x) => sum + x, 0);
  if (d.length === 0 || total === 0) return d.map(() => 0);
  if (demandSum >= total) return d.map((x) => (total * x) / demandSum);
  const spare = total - demandSum;
  const floor = Math.max(0, weightFloor);
  const weights = d.map((x) => Math.sqrt(Math.max(x, floor)));
  const weightSum = weights.reduce((sum, w) => sum + w, 0);
  if (weightSum === 0) return d.map(() => total / d.length);
  return d.map((x, i) => x + (spare * (weights[i] ?? 0)) / weightSum);
}

/**
 * One frontend's integer share: floor of its ideal share, plus one if its
 * remainder is among the `left` largest (ties to the lower index), where
 * `left` is what the floors leave of floor(limit). Reads only the first
 * `count` demands and allocates nothing: it runs for every pool every
 * gossip interval.
 *
 * Ideal shares are nudged down by a billionth of the limit before flooring,
 * so floating-point error can never make the floors overshoot; the nudge
 * leaves between 0 and `count` slots to hand out, one each at most.
 */
export function shareAt(
  limit: number,
  demands: ArrayLike<number>,
  count: number,
  weightFloor: number,
  index: number,
): number {
  const total = Math.max(0, Number.isFinite(limit) ? limit : 0);
  if (count <= 0 || index < 0 || index >= count || total === 0) return 0;
  const slots = Math.floor(total);
  const floor = Math.max(0, weightFloor);
  let demandSum = 0;
  let weightSum = 0;
  for (let j = 0; j < count; j++) {
    const d = sane(demands[j] ?? 0);
    demandSum += d;
    weightSum += Math.sqrt(Math.max(d, floor));
  }
  const nudge = 1e-9 * Math.max(1, total);
  let floors = 0;
  for (let j = 0; j < count; j++)
    floors += Math.floor(
      idealOne(sane(demands[j] ?? 0), total, demandSum, weightSum, floor, count, nudge),
    );
  const left = Math.min(count, Math.max(0, slots - floors));
  const mine = idealOne(
    sane(demands[index] ?? 0),
    total,
    demandSum,
    weightSum,
    floor,
    count,
    nudge,
  );
  const remainder = mine - Math.floor(mine);
  let rank = 0;
  for (let j = 0; j < count && rank < left; j++) {
    if (j === index) continue;
    const x = idealOne(sane(demands[j] ?? 0), total, demandSum, weightSum, floor, count, nudge);
    const r = x - Math.floor(x);
    if (r > remainder || (r === remainder && j < index)) rank++;
  }
  return Math.floor(mine) + (rank < left ? 1 : 0);
}

function idealOne(
  d: number,
  total: number,
  demandSum: number,
  weightSum: number,
  floor: number,
  count: number,
  nudge: number,
): number {
  let x: number;
  if (demandSum >= total) x = (total * d) / demandSum;
  else if (weightSum === 0) x = total / count;
  else x = d + ((total - demandSum) * Math.sqrt(Math.max(d, floor))) / weightSum;
  return Math.max(0, x - nudge);
}

/** Integer shares summing to exactly floor(limit) (none when there are no frontends). */
export function apportionShares(
  limit: number,
  demands: readonly number[],
  weightFloor: number,
): number[] {
  return demands.map((_d, i) => shareAt(limit, demands, demands.length, weightFloor, i));
}
