/**
 * Queueing-theory references the simulator is checked against. A concurrency
 * limit that throttles (rather than queues) is a loss system: with Poisson
 * arrivals, c slots and a offered Erlangs, the fraction turned away is
 * Erlang's B formula, whatever the distribution of execution times
 * (A. K. Erlang, 1917; insensitivity: Sevastyanov, 1957).
 */

/** Erlang B: blocking probability of `servers` slots under `load` Erlangs. */
export function erlangB(servers: number, load: number): number {
  if (load <= 0) return 0;
  // The stable recurrence B(k) = a·B(k−1) / (k + a·B(k−1)).
  let b = 1;
  for (let k = 1; k <= servers; k++) b = (load * b) / (k + load * b);
  return b;
}

/**
 * The best fixed partition of `slots` among frontends with these offered
 * loads, found by marginal allocation (the blocked traffic a·B(c, a) is
 * convex in c, so greedy is optimal), and the fraction of all requests it
 * throttles.
 */
export function bestPartition(
  slots: number,
  loads: readonly number[],
): { partition: number[]; throttled: number } {
  const partition = loads.map(() => 0);
  const lost = (i: number, c: number) => (loads[i] ?? 0) * erlangB(c, loads[i] ?? 0);
  for (let s = 0; s < slots; s++) {
    let best = 0;
    let bestGain = -1;
    for (let i = 0; i < loads.length; i++) {
      const c = partition[i] ?? 0;
      const gain = lost(i, c) - lost(i, c + 1);
      if (gain > bestGain) {
        bestGain = gain;
        best = i;
      }
    }
    partition[best] = (partition[best] ?? 0) + 1;
  }
  const total = loads.reduce((sum, a) => sum + a, 0);
  const blocked = loads.reduce((sum, _a, i) => sum + lost(i, partition[i] ?? 0), 0);
  return { partition, throttled: total > 0 ? blocked / total : 0 };
}

/** What a static split (each of n frontends gets floor(slots / n)) throttles. */
export function staticSplit(slots: number, loads: readonly number[]): number {
  const share = Math.floor(slots / loads.length);
  const total = loads.reduce((sum, a) => sum + a, 0);
  const blocked = loads.reduce((sum, a) => sum + a * erlangB(share, a), 0);
  return total > 0 ? blocked / total : 0;
}
