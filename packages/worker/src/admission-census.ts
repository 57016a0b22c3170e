/**
 * What this worker runs for each admitting frontend, by admission pool: the
 * answer to WorkerCensus. A frontend killed with its invocations still
 * running leaves their slots counted by its peers until those invocations
 * end; its peers ask every worker, so that they hold back exactly what still
 * runs, for as long as it runs, rather than an estimate.
 *
 * An invocation counts from the moment its request is taken (before it has
 * a sandbox) until its reply is sent.
 */
import { CENSUS_STRANGERS } from "@gust/protocol";
import type { AdmissionSlot, WorkerCensusReply } from "@gust/protocol";

export class AdmissionCensus {
  /** frontendId → pool → invocations running. */
  private readonly running = new Map<string, Map<string, number>>();

  /** Count an invocation; call the returned function once when it ends. */
  track(slot: AdmissionSlot | undefined): () => void {
    if (slot === undefined) return noop;
    const { frontendId, pool } = slot;
    let pools = this.running.get(frontendId);
    if (pools === undefined) {
      pools = new Map();
      this.running.set(frontendId, pools);
    }
    pools.set(pool, (pools.get(pool) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const count = (pools.get(pool) ?? 1) - 1;
      if (count > 0) pools.set(pool, count);
      else pools.delete(pool);
      if (pools.size === 0 && this.running.get(frontendId) === pools) {
        this.running.delete(frontendId);
      }
    };
  }

  /**
   * What runs for these frontends; those with nothing running are left out.
   * `*` among them (a frontend that never heard some of its fleet) asks for
   * every frontend not in `known` as well.
   */
  answer(
    workerId: string,
    frontendIds: readonly unknown[],
    known: readonly unknown[] = [],
  ): WorkerCensusReply {
    const running: Record<string, Record<string, number>> = {};
    const asked = new Set(frontendIds.filter((id): id is string => typeof id === "string"));
    if (asked.has(CENSUS_STRANGERS)) {
      for (const frontendId of this.running.keys())
        if (!known.includes(frontendId)) asked.add(frontendId);
    }
    for (const frontendId of asked) {
      const pools = this.running.get(frontendId);
      if (pools !== undefined) running[frontendId] = Object.fromEntries(pools);
    }
    return { type: "worker.census.reply", workerId, running };
  }
}

function noop(): void {}
