/**
 * What GetFunction shows of a runtime rollout: Gust's own member beside
 * Lambda's, so that an owner learns there why their function was pinned.
 */
import type { FunctionRecord } from "@gust/protocol";
import type { RolloutStore } from "@gust/registry";

/**
 * The rollout's word on one function, for GetFunction's Gust-specific
 * `GustRuntimeRollout` member (owners see there why their function was
 * pinned); undefined when no rollout has counted it.
 */
export function rolloutViewOf(
  store: RolloutStore,
  fn: FunctionRecord,
): Record<string, unknown> | undefined {
  const rollout = store.get(fn.runtime);
  const progress = rollout?.functions[`${fn.tenantId}/${fn.name}`];
  if (rollout === undefined || progress === undefined) return undefined;
  const verdict = progress.verdict;
  return {
    Runtime: rollout.runtime,
    FromVersion: rollout.fromVersion,
    ToVersion: rollout.toVersion,
    State: rollout.state,
    Verdict: verdict?.verdict ?? "pending",
    ...(verdict === undefined ? {} : { Reason: verdict.reason, DecidedAt: verdict.decidedAt }),
    Counts: { Old: progress.old.counts, New: progress.new.counts },
    ErrorTypes: progress.new.errorTypes,
    ...(progress.new.sampleError === undefined
      ? {}
      : {
          SampleError: {
            ErrorType: progress.new.sampleError.errorType,
            ErrorMessage: progress.new.sampleError.errorMessage,
          },
        }),
  };
}
