/**
 * Runs runtime rollouts: gathers the frontends' outcome reports, folds them
 * into the rollout records (in KV, so a restart loses no count and no
 * verdict), judges each function (rollout-verdict.ts) and acts on verdicts:
 * an incompatible function is pinned to the old version through the
 * function registry, and its owners are told (rollout-notify.ts).
 *
 * A verdict is written before it is acted on; one whose actions did not all
 * happen (the coordinator stopped in between) is acted on again at start,
 * and pinning twice is harmless.
 *
 * An owner re-tests after fixing their code by updating it
 * (UpdateFunctionCode): new code clears the function's verdict and counts
 * and, if the rollout pinned it, puts it back on Auto, so that it takes part
 * again. (`gust rollout retest` does the same for an operator.)
 *
 * The failure budget stops a version that cannot start at all: when the new
 * version's crashes, init errors and timeouts over all functions reach it,
 * the rollout halts (every function back on the old version) before more
 * invocations fail.
 */
import type { Bus, Subscription } from "@gust/bus";
import {
  decodeRecord,
  isSubjectToken,
  Outcomes,
  RuntimeUpdateModes,
  Subjects,
  type Outcome,
  type RolloutOutcomeEntry,
} from "@gust/protocol";
import {
  emptyTally,
  RolloutStates,
  Verdicts,
  type FunctionProgress,
  type FunctionRegistry,
  type RolloutRecord,
  type RolloutStore,
  type TenantDirectory,
  type VersionTally,
} from "@gust/registry";
import { countRolloutVerdict, type Logger } from "@gust/telemetry";
import { RolloutNotifier } from "./rollout-notify.js";
import {
  judge,
  resolveVerdictRule,
  type VerdictRule,
  type VerdictRuleOptions,
} from "./rollout-verdict.js";

export interface RolloutEngineOptions extends VerdictRuleOptions {
  /** How often gathered counts are written and judged. @default DEFAULT_ROLLOUT_FLUSH_MS */
  flushIntervalMs?: number;
  /** Webhook POST timeout. @default 5000 */
  webhookTimeoutMs?: number;
}

export const DEFAULT_ROLLOUT_FLUSH_MS = 1000;
const ROLLOUT_QUEUE_GROUP = "gust-coordinator-rollouts";

const OUTCOMES = Object.values(Outcomes) as Outcome[];
/** Outcomes that mean the version itself could not run the function. */
const BUDGET_OUTCOMES: Outcome[] = [Outcomes.crash, Outcomes.initError, Outcomes.timeout];
const MAX_ERROR_TYPES = 20;

interface Deps {
  bus: Bus;
  store: RolloutStore;
  registry: FunctionRegistry;
  tenants: TenantDirectory;
  logger: Logger;
}

function mergeTally(into: VersionTally, entry: RolloutOutcomeEntry): void {
  for (const outcome of OUTCOMES) {
    const n = entry.counts[outcome];
    if (typeof n === "number" && Number.isInteger(n) && n > 0) into.counts[outcome] += n;
  }
  for (const [type, n] of Object.entries(entry.errorTypes)) {
    if (typeof n !== "number" || !Number.isInteger(n) || n <= 0) continue;
    if (
      into.errorTypes[type] === undefined &&
      Object.keys(into.errorTypes).length >= MAX_ERROR_TYPES
    ) {
      continue;
    }
    into.errorTypes[type] = (into.errorTypes[type] ?? 0) + n;
  }
  if (into.sampleError === undefined && entry.sampleError !== undefined) {
    into.sampleError = entry.sampleError;
  }
}

/** A report entry as checked off the wire, or undefined. */
function checkEntry(value: unknown): RolloutOutcomeEntry | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const e = value as Record<string, unknown>;
  const strings = ["runtime", "tenantId", "name", "functionArn"] as const;
  if (strings.some((field) => typeof e[field] !== "string")) return undefined;
  if (e["side"] !== "old" && e["side"] !== "new") return undefined;
  if (typeof e["counts"] !== "object" || e["counts"] === null) return undefined;
  const errorTypes =
    typeof e["errorTypes"] === "object" && e["errorTypes"] !== null ? e["errorTypes"] : {};
  const sample = e["sampleError"] as Record<string, unknown> | undefined;
  const sampleError =
    typeof sample === "object" &&
    sample !== null &&
    typeof sample["errorType"] === "string" &&
    typeof sample["errorMessage"] === "string"
      ? {
          errorType: sample["errorType"].slice(0, 200),
          errorMessage: sample["errorMessage"].slice(0, 1000),
        }
      : undefined;
  return {
    runtime: e["runtime"] as string,
    tenantId: e["tenantId"] as string,
    name: e["name"] as string,
    functionArn: e["functionArn"] as string,
    side: e["side"],
    counts: e["counts"],
    errorTypes: errorTypes as Record<string, number>,
    ...(sampleError === undefined ? {} : { sampleError }),
  };
}

export class RolloutEngine {
  /** runtime → entries gathered since the last flush. */
  private pending = new Map<string, RolloutOutcomeEntry[]>();
  private subscription: Subscription | undefined;
  private stopWatchingCode: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly rule: VerdictRule;
  private readonly notifier: RolloutNotifier;

  constructor(
    private readonly deps: Deps,
    private readonly options: RolloutEngineOptions = {},
  ) {
    this.rule = resolveVerdictRule(options);
    this.notifier = new RolloutNotifier(deps.bus, deps.tenants, deps.logger, {
      timeoutMs: options.webhookTimeoutMs ?? 5000,
    });
  }

  async start(): Promise<void> {
    // A queue group: with several coordinators up, each report is counted once.
    this.subscription = this.deps.bus.subscribe(
      Subjects.rolloutOutcomes,
      (message) => {
        try {
          const report = decodeRecord(message.data);
          const entries = Array.isArray(report["entries"]) ? (report["entries"] as unknown[]) : [];
          for (const raw of entries) {
            const entry = checkEntry(raw);
            if (entry === undefined || !isSubjectToken(entry.tenantId)) continue;
            const list = this.pending.get(entry.runtime) ?? [];
            list.push(entry);
            this.pending.set(entry.runtime, list);
          }
        } catch (error) {
          this.deps.logger.warn("ignoring a rollout outcome report that does not decode", {
            error,
          });
        }
      },
      { queue: ROLLOUT_QUEUE_GROUP },
    );
    this.stopWatchingCode = this.deps.registry.onChange((_key, fn) => {
      if (fn === undefined) return;
      const rollout = this.deps.store.get(fn.runtime);
      const verdict = rollout?.functions[`${fn.tenantId}/${fn.name}`]?.verdict;
      if (verdict?.codeSha256 === undefined || verdict.codeSha256 === fn.codeSha256) return;
      this.flushing = this.flushing
        .then(() => this.retestAfterCodeChange(fn.runtime, fn.tenantId, fn.name, fn.codeSha256))
        .catch((error: unknown) => {
          this.deps.logger.error("a function with new code was not judged again", {
            function: fn.functionArn,
            error,
          });
        });
    });
    // Verdicts a previous coordinator wrote but did not finish acting on.
    for (const { runtime } of this.deps.store.list()) {
      const rollout = await this.deps.store.fetch(runtime);
      if (rollout !== undefined) await this.actOnVerdicts(rollout);
    }
    const interval = this.options.flushIntervalMs ?? DEFAULT_ROLLOUT_FLUSH_MS;
    this.timer = setInterval(() => {
      this.flushing = this.flushing
        .then(() => this.flush())
        .catch((error: unknown) => {
          this.deps.logger.error("rollout counts not written; retrying at the next flush", {
            error,
          });
        });
    }, interval);
  }

  /** Writes the gathered counts, judges, and acts on new verdicts. */
  async flush(): Promise<void> {
    const batches = this.pending;
    this.pending = new Map();
    const runtimes = new Set([...batches.keys(), ...this.deps.store.list().map((r) => r.runtime)]);
    for (const runtime of runtimes) {
      const entries = batches.get(runtime) ?? [];
      try {
        const updated = await this.deps.store.modify(runtime, (record) =>
          this.apply(record, entries),
        );
        if (updated !== undefined) await this.actOnVerdicts(updated);
      } catch (error) {
        // Put the counts back: they are written at the next flush.
        const list = this.pending.get(runtime) ?? [];
        this.pending.set(runtime, [...entries, ...list]);
        throw error;
      }
    }
  }

  /** The record with `entries` folded in and functions judged; undefined if unchanged. */
  private apply(record: RolloutRecord, entries: RolloutOutcomeEntry[]): RolloutRecord | undefined {
    if (record.state === RolloutStates.aborted) return undefined;
    let changed = false;
    for (const entry of entries) {
      const key = `${entry.tenantId}/${entry.name}`;
      const progress: FunctionProgress = record.functions[key] ?? {
        tenantId: entry.tenantId,
        name: entry.name,
        functionArn: entry.functionArn,
        old: emptyTally(),
        new: emptyTally(),
      };
      // Counts after a verdict tell nothing new about it.
      if (progress.verdict !== undefined) continue;
      mergeTally(entry.side === "new" ? progress.new : progress.old, entry);
      record.functions[key] = progress;
      changed = true;
    }
    if (record.state !== RolloutStates.running) return changed ? record : undefined;
    const now = Date.now();
    for (const progress of Object.values(record.functions)) {
      if (progress.verdict !== undefined) continue;
      const judgement = judge(progress, record.minSamples, this.rule);
      if (judgement === undefined) continue;
      progress.verdict = { ...judgement, decidedAt: now };
      changed = true;
    }
    const spent = Object.values(record.functions).reduce(
      (sum, p) => sum + BUDGET_OUTCOMES.reduce((s, o) => s + p.new.counts[o], 0),
      0,
    );
    if (spent >= record.failureBudget) {
      record.state = RolloutStates.halted;
      record.stateReason = `the new version crashed, failed to initialize or timed out ${spent} times (failure budget ${record.failureBudget}); every function is back on ${record.fromVersion}`;
      this.deps.logger.warn("rollout halted", { runtime: record.runtime, spent });
      changed = true;
    }
    return changed ? record : undefined;
  }

  /** Forgets the verdict of a function whose code changed since, and unpins it. */
  private async retestAfterCodeChange(
    runtime: string,
    tenantId: string,
    name: string,
    codeSha256: string,
  ): Promise<void> {
    const key = `${tenantId}/${name}`;
    const rollout = this.deps.store.get(runtime);
    const verdict = rollout?.functions[key]?.verdict;
    if (rollout === undefined || verdict?.codeSha256 === undefined) return;
    if (verdict.codeSha256 === codeSha256) return;
    // Unpinned first: while its verdict stands, an Auto function still runs on the old version.
    const fn = await this.deps.registry.get(tenantId, name);
    if (
      fn?.runtimeManagement?.updateRuntimeOn === RuntimeUpdateModes.manual &&
      fn.runtimeManagement.runtimeVersionArn === rollout.fromArn
    ) {
      await this.deps.registry.putRuntimeManagementConfig(tenantId, name, {
        updateRuntimeOn: RuntimeUpdateModes.auto,
      });
    }
    await this.deps.store.modify(runtime, (record) => {
      const current = record.functions[key]?.verdict;
      if (current?.codeSha256 === undefined || current.codeSha256 === codeSha256) return undefined;
      delete record.functions[key];
      return record;
    });
    this.deps.logger.info("function has new code; the rollout judges it again", {
      function: fn?.functionArn ?? key,
    });
  }

  /** Pins, notifies and counts each verdict not yet acted on, then marks it so. */
  private async actOnVerdicts(rollout: RolloutRecord): Promise<void> {
    for (const [key, progress] of Object.entries(rollout.functions)) {
      const verdict = progress.verdict;
      if (verdict === undefined || verdict.notifiedAt !== undefined) continue;
      let runtimeVersionArn = rollout.toArn;
      const fn = await this.deps.registry.get(progress.tenantId, progress.name);
      if (verdict.verdict === Verdicts.incompatible) {
        runtimeVersionArn = rollout.fromArn;
        await this.pin(progress, rollout);
      }
      countRolloutVerdict(rollout.runtime, rollout.toVersion, verdict.verdict);
      await this.notifier.notify(rollout, progress, runtimeVersionArn);
      await this.deps.store.modify(rollout.runtime, (record) => {
        const current = record.functions[key]?.verdict;
        if (current === undefined || current.decidedAt !== verdict.decidedAt) return undefined;
        current.notifiedAt = Date.now();
        if (fn !== undefined) current.codeSha256 = fn.codeSha256;
        return record;
      });
    }
  }

  /** Manual on the old version, unless the owner chose a mode of their own meanwhile. */
  private async pin(progress: FunctionProgress, rollout: RolloutRecord): Promise<void> {
    const fn = await this.deps.registry.get(progress.tenantId, progress.name);
    if (fn === undefined) return;
    const mode = fn.runtimeManagement?.updateRuntimeOn ?? RuntimeUpdateModes.auto;
    if (mode !== RuntimeUpdateModes.auto) return;
    await this.deps.registry.putRuntimeManagementConfig(progress.tenantId, progress.name, {
      updateRuntimeOn: RuntimeUpdateModes.manual,
      runtimeVersionArn: rollout.fromArn,
    });
    this.deps.logger.info("function pinned to the old runtime version", {
      function: progress.functionArn,
      runtimeVersionArn: rollout.fromArn,
    });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopWatchingCode?.();
    this.subscription?.unsubscribe();
    await this.flushing.catch(() => undefined);
  }
}
