/**
 * The worker census: what departed frontends' invocations still run, asked
 * of every worker this frontend knows (`gust.v1.worker.census.<workerId>`).
 * A worker with nobody listening has closed its connection: what it ran
 * cannot answer anyone, so it counts nothing. A worker that does not answer
 * in time makes the census unknown: the caller keeps its estimate. Asked
 * for STRANGERS (`*`), the workers also name every other frontend they run
 * invocations of, except the `known` ones (the asker and its live peers).
 */
import type { Bus } from "@gust/bus";
import { decodeAs, encode, NoRespondersError, Subjects } from "@gust/protocol";
import { STRANGERS } from "@gust/admission";
import type { Census } from "./gossip.js";

export function workerCensus(
  bus: Bus,
  workerIds: () => string[],
  timeoutMs: number,
): (frontendIds: string[], known: string[]) => Promise<Census | undefined> {
  return async (frontendIds, known) => {
    const strangers = frontendIds.includes(STRANGERS);
    const data = encode({
      type: "worker.census",
      frontendIds,
      ...(strangers ? { known } : {}),
    });
    const replies = await Promise.all(
      workerIds().map((workerId) =>
        bus.request(Subjects.workerCensus(workerId), data, { timeoutMs }).then(
          (reply) => {
            try {
              return decodeAs(reply.data, "worker.census.reply").running;
            } catch {
              return undefined;
            }
          },
          (error: unknown) => (error instanceof NoRespondersError ? {} : undefined),
        ),
      ),
    );
    const census = new Map<string, Map<string, number>>();
    for (const frontendId of frontendIds) census.set(frontendId, new Map());
    for (const running of replies) {
      if (running === undefined) return undefined;
      for (const [frontendId, pools] of Object.entries(running)) {
        let counts = census.get(frontendId);
        if (counts === undefined && strangers && !known.includes(frontendId)) {
          counts = new Map();
          census.set(frontendId, counts);
        }
        if (counts === undefined || typeof pools !== "object" || pools === null) continue;
        for (const [pool, count] of Object.entries(pools)) {
          if (!Number.isSafeInteger(count) || count <= 0) continue;
          counts.set(pool, (counts.get(pool) ?? 0) + count);
        }
      }
    }
    return census;
  };
}
