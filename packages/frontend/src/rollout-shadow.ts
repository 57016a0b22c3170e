/**
 * Shadowing in runtime rollouts: a function its owner marked safe to repeat
 * (FunctionRecord.safeToRepeat, set with PUT
 * /gust/2015-03-31/functions/{name}/rollout-settings) is never answered from
 * the rollout's new version. Every caller gets the old version's result, and
 * the share of invocations the rollout would have sent to the new version
 * runs there a second time, as a shadow whose outcome only the rollout sees.
 * The owner thus learns whether the new version breaks the function without
 * any caller paying for it; the price is running those invocations twice,
 * which the owner accepted by marking it safe to repeat.
 *
 * Everything here is decided from memory (the rollout records cached by
 * RolloutStore and the runtime version registry), with no I/O.
 */
import { RuntimeUpdateModes, type FunctionRecord } from "@gust/protocol";
import {
  RolloutStates,
  type RolloutStore,
  type RuntimeVersionChoice,
  type RuntimeVersionRegistry,
} from "@gust/registry";

/** Who decides an invocation's runtime version when no shadowing applies (RolloutReporter). */
export interface VersionChooser {
  choose(fn: FunctionRecord): RuntimeVersionChoice;
}

export class RolloutShadow {
  constructor(
    private readonly store: RolloutStore,
    private readonly versions: RuntimeVersionRegistry,
    private readonly fallback: VersionChooser,
    /** A number in [0, 1) per call. @default Math.random */
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The version a caller's invocation runs on: the old one while the
   * function is shadowed, else the rollout's usual routing.
   */
  choose(fn: FunctionRecord): RuntimeVersionChoice {
    // While shadowed the old version is the runtime's default, which is what
    // the registry picks for an Auto function.
    return this.shadowed(fn) ? this.versions.choose(fn) : this.fallback.choose(fn);
  }

  /**
   * The new version, for the rollout's fraction of a shadowed function's
   * invocations; undefined for every other invocation (no shadow).
   */
  shadowFor(fn: FunctionRecord): RuntimeVersionChoice | undefined {
    if (!this.shadowed(fn)) return undefined;
    const rollout = this.store.get(fn.runtime);
    if (rollout === undefined || this.random() >= rollout.fraction) return undefined;
    const record = this.versions.get(fn.runtime, rollout.toVersion);
    if (record === undefined) return undefined;
    return {
      version: {
        runtime: record.runtime,
        version: record.version,
        arn: record.arn,
        recipe: record.recipe,
      },
      isDefault: false,
    };
  }

  /**
   * Whether the function is shadowed now: marked safe to repeat, Auto, and
   * in a running rollout that has not judged it yet. Once judged, the
   * rollout's routing (all new or all old) applies as for any function.
   */
  private shadowed(fn: FunctionRecord): boolean {
    if (fn.safeToRepeat !== true) return false;
    const mode = fn.runtimeManagement?.updateRuntimeOn ?? RuntimeUpdateModes.auto;
    if (mode !== RuntimeUpdateModes.auto) return false;
    const rollout = this.store.get(fn.runtime);
    if (rollout === undefined || rollout.state !== RolloutStates.running) return false;
    // An operator who made another version the default has ended the rollout.
    if (this.versions.defaultVersion(fn.runtime).arn !== rollout.fromArn) return false;
    return rollout.functions[`${fn.tenantId}/${fn.name}`]?.verdict === undefined;
  }
}
