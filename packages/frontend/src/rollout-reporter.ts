/**
 * The frontend's part in runtime rollouts: which version an invocation runs
 * on (from the rollout records cached by RolloutStore, no I/O), and the
 * outcome counts of functions in a rollout, published in batches on
 * Subjects.rolloutOutcomes for the coordinator to judge.
 *
 * Only invocations a worker ran are counted: a throttle or a lost worker
 * says nothing about the runtime version.
 */
import type { Bus } from "@gust/bus";
import {
  encodeRecord,
  RuntimeUpdateModes,
  Subjects,
  type FunctionRecord,
  type InvokeResult,
  type Outcome,
  type RolloutOutcomeEntry,
  type RolloutOutcomeReport,
} from "@gust/protocol";
import type { RolloutStore, RuntimeVersionChoice, RuntimeVersionRegistry } from "@gust/registry";
import type { Logger } from "@gust/telemetry";

/** @default 1000 */
export const DEFAULT_ROLLOUT_REPORT_MS = 1000;
const MAX_ERROR_TEXT = 500;

function errorOf(payload: Uint8Array): { errorType: string; errorMessage: string } | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    const errorType = typeof value["errorType"] === "string" ? value["errorType"] : "Error";
    const errorMessage = typeof value["errorMessage"] === "string" ? value["errorMessage"] : "";
    return {
      errorType: errorType.slice(0, MAX_ERROR_TEXT),
      errorMessage: errorMessage.slice(0, MAX_ERROR_TEXT),
    };
  } catch {
    return undefined;
  }
}

export class RolloutReporter {
  private batch = new Map<string, RolloutOutcomeEntry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly store: RolloutStore,
    private readonly versions: RuntimeVersionRegistry,
    private readonly logger: Logger,
    private readonly options: { frontendId: string; intervalMs?: number },
  ) {}

  /**
   * The version for one invocation: the rollout's new version for the
   * share of a function's invocations the rollout gives it, else the
   * registry's usual choice.
   */
  choose(fn: FunctionRecord): RuntimeVersionChoice {
    const base = this.versions.choose(fn);
    if (!this.applies(fn.runtime)) return base;
    const routed = this.store.sideFor(fn);
    if (routed === undefined) return base;
    const { rollout, side } = routed;
    const arn = side === "new" ? rollout.toArn : rollout.fromArn;
    if (base.version.arn === arn) return base;
    const record = this.versions.get(
      fn.runtime,
      side === "new" ? rollout.toVersion : rollout.fromVersion,
    );
    if (record === undefined) return base;
    const defaultArn = this.versions.defaultVersion(fn.runtime).arn;
    return {
      version: {
        runtime: record.runtime,
        version: record.version,
        arn: record.arn,
        recipe: record.recipe,
      },
      isDefault: record.arn === defaultArn,
    };
  }

  /** Counts a worker's reply if its function is in a rollout. */
  record(fn: FunctionRecord, result: InvokeResult): void {
    const rollout = this.store.get(fn.runtime);
    if (rollout === undefined || result.runtimeVersionArn === undefined) return;
    if (!this.applies(fn.runtime)) return;
    // Pinned (Manual) and FunctionUpdate functions are no part of a rollout.
    const mode = fn.runtimeManagement?.updateRuntimeOn ?? RuntimeUpdateModes.auto;
    if (mode !== RuntimeUpdateModes.auto) return;
    const side =
      result.runtimeVersionArn === rollout.toArn
        ? "new"
        : result.runtimeVersionArn === rollout.fromArn
          ? "old"
          : undefined;
    if (side === undefined) return;
    const key = `${fn.runtime}|${fn.tenantId}|${fn.name}|${side}`;
    let entry = this.batch.get(key);
    if (entry === undefined) {
      entry = {
        runtime: fn.runtime,
        tenantId: fn.tenantId,
        name: fn.name,
        functionArn: fn.functionArn,
        side,
        counts: {},
        errorTypes: {},
      };
      this.batch.set(key, entry);
    }
    const outcome: Outcome = result.outcome;
    entry.counts[outcome] = (entry.counts[outcome] ?? 0) + 1;
    if (outcome === "success") return;
    const error = errorOf(result.payload) ?? { errorType: `Gust.${outcome}`, errorMessage: "" };
    entry.errorTypes[error.errorType] = (entry.errorTypes[error.errorType] ?? 0) + 1;
    entry.sampleError ??= error;
  }

  /**
   * A rollout applies while its old version is still the runtime's default:
   * an operator who makes another version the default has ended it.
   */
  private applies(runtime: FunctionRecord["runtime"]): boolean {
    const rollout = this.store.get(runtime);
    return rollout !== undefined && this.versions.defaultVersion(runtime).arn === rollout.fromArn;
  }

  start(): void {
    this.timer = setInterval(
      () => this.flush(),
      this.options.intervalMs ?? DEFAULT_ROLLOUT_REPORT_MS,
    );
    this.timer.unref();
  }

  /** Publishes what was counted since the last report. */
  flush(): void {
    if (this.batch.size === 0) return;
    const report: RolloutOutcomeReport = {
      type: "rollout.outcomes",
      frontendId: this.options.frontendId,
      entries: [...this.batch.values()],
    };
    this.batch = new Map();
    try {
      this.bus.publish(Subjects.rolloutOutcomes, encodeRecord(report));
    } catch (error) {
      this.logger.warn("rollout outcomes not reported", { error });
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
