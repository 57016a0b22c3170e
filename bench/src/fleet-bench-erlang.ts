/**
 * Erlang's loss model, to read the fleet benchmark against the queueing
 * figures at the load the fleet actually carried. A real invocation holds
 * its slot a little longer than its handler sleeps (the trip to the worker
 * and back), so the offered load in Erlangs is the arrival rate times the
 * measured holding time, not the nominal 90% of M.
 */

/** Erlang B: the fraction of Poisson arrivals lost with `servers` slots and `erlangs` offered. */
export function erlangB(erlangs: number, servers: number): number {
  let b = 1;
  for (let n = 1; n <= servers; n++) b = (erlangs * b) / (n + erlangs * b);
  return b;
}

/**
 * The best fixed partition of `servers` slots among streams offering
 * `loads` Erlangs (marginal allocation: each slot goes where it saves the
 * most lost traffic), and its overall loss fraction.
 */
export function bestPartition(
  loads: readonly number[],
  servers: number,
): { slots: number[]; loss: number } {
  const slots = loads.map(() => 0);
  const lost = (i: number, n: number) => (loads[i] ?? 0) * erlangB(loads[i] ?? 0, n);
  for (let k = 0; k < servers; k++) {
    let best = 0;
    let saving = -1;
    loads.forEach((_load, i) => {
      const gain = lost(i, slots[i]!) - lost(i, slots[i]! + 1);
      if (gain > saving) {
        saving = gain;
        best = i;
      }
    });
    slots[best]!++;
  }
  const total = loads.reduce((sum, load) => sum + load, 0);
  const loss = loads.reduce((sum, _load, i) => sum + lost(i, slots[i]!), 0);
  return { slots, loss: total === 0 ? 0 : loss / total };
}
