/**
 * Runtime rollouts' state, one record per runtime in the rollouts bucket
 * (Buckets.rollouts): which version a runtime moves from and to, the share of
 * invocations that try the new one, each function's outcome counts per
 * version and its verdict. Everything a coordinator needs to carry on after a
 * restart is here; frontends cache it through a watch and route from memory.
 *
 * Writers (the admin API for start/pause/resume/abort/retest, the coordinator
 * for counts and verdicts) change a record by compare-and-set, retried on
 * conflict, so neither loses the other's change.
 */
import type { KvBucket, KvWatch } from "@gust/bus";
import {
  ConflictError,
  decodeRecord,
  encodeRecord,
  Outcomes,
  RuntimeUpdateModes,
  type FunctionRecord,
  type Outcome,
} from "@gust/protocol";
import { createLogger, type Logger } from "@gust/telemetry";

export const RolloutStates = {
  running: "running",
  paused: "paused",
  /** Paused by the coordinator: the new version failed beyond the failure budget. */
  halted: "halted",
  /** Everything back on the old version. */
  aborted: "aborted",
} as const;
export type RolloutState = (typeof RolloutStates)[keyof typeof RolloutStates];

export const Verdicts = {
  compatible: "compatible",
  incompatible: "incompatible",
} as const;
export type Verdict = (typeof Verdicts)[keyof typeof Verdicts];

export type OutcomeCounts = Record<Outcome, number>;

export function emptyCounts(): OutcomeCounts {
  return { success: 0, "function-error": 0, timeout: 0, crash: 0, "init-error": 0 };
}

export function totalOf(counts: OutcomeCounts): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** Every outcome but success: handled and unhandled errors, timeouts, crashes, init errors. */
export function failuresOf(counts: OutcomeCounts): number {
  return totalOf(counts) - counts[Outcomes.success];
}

/** The outcomes of one function on one version. */
export interface VersionTally {
  counts: OutcomeCounts;
  /** errorType → failed invocations. */
  errorTypes: Record<string, number>;
  /** One failed reply's errorType and errorMessage. */
  sampleError?: { errorType: string; errorMessage: string };
}

export function emptyTally(): VersionTally {
  return { counts: emptyCounts(), errorTypes: {} };
}

export interface VerdictRecord {
  verdict: Verdict;
  /** Plain-text why, for status and notifications. */
  reason: string;
  /** ms since epoch */
  decidedAt: number;
  /** The one-sided two-proportion z statistic (new failure rate above old). */
  z: number;
  /**
   * When the pin (incompatible), the event and the webhook were done: a
   * coordinator that restarts finishes those of a verdict without it.
   */
  notifiedAt?: number;
  /**
   * The function's code when the verdict was acted on: new code
   * (UpdateFunctionCode) clears the verdict, and the function is judged again.
   */
  codeSha256?: string;
}

export interface FunctionProgress {
  tenantId: string;
  name: string;
  functionArn: string;
  old: VersionTally;
  new: VersionTally;
  verdict?: VerdictRecord;
}

export interface RolloutRecord {
  runtime: string;
  fromVersion: string;
  fromArn: string;
  toVersion: string;
  toArn: string;
  /** Share of an undecided Auto function's invocations that run on the new version. */
  fraction: number;
  /** Invocations on each version before a function is judged. */
  minSamples: number;
  /** New-version crashes, init errors and timeouts (all functions) that halt the rollout. */
  failureBudget: number;
  state: RolloutState;
  /** Why the state is what it is, when it was not an operator's command. */
  stateReason?: string;
  startedAt: number;
  updatedAt: number;
  /** By functionKey (tenantId/name). */
  functions: Record<string, FunctionProgress>;
}

/** Which side of a rollout one invocation runs on. */
export type RolloutSide = "old" | "new";

export function rolloutKey(runtime: string): string {
  return `rollout.${runtime}`;
}

function isAuto(fn: FunctionRecord): boolean {
  const config = fn.runtimeManagement;
  return config === undefined || config.updateRuntimeOn === RuntimeUpdateModes.auto;
}

const MAX_CAS_TRIES = 20;

export class RolloutStore {
  private readonly records = new Map<string, RolloutRecord>();
  private readonly listeners = new Set<() => void>();
  private watcher: KvWatch | undefined;

  private constructor(
    private readonly bucket: KvBucket,
    private readonly logger: Logger,
    private readonly random: () => number,
  ) {}

  static async open(
    bucket: KvBucket,
    logger: Logger = createLogger("rollouts"),
    random: () => number = Math.random,
  ): Promise<RolloutStore> {
    const store = new RolloutStore(bucket, logger, random);
    store.watcher = await bucket.watch("rollout.>", (change) => {
      const runtime = change.key.slice("rollout.".length);
      if (change.op === "delete") store.records.delete(runtime);
      else store.remember(runtime, change.value);
      store.notify();
    });
    for (const key of await bucket.keys("rollout.>")) {
      const entry = await bucket.get(key);
      if (entry) store.remember(key.slice("rollout.".length), entry.value);
    }
    return store;
  }

  /** From memory. */
  get(runtime: string): RolloutRecord | undefined {
    return this.records.get(runtime);
  }

  /** From memory, every runtime's rollout. */
  list(): RolloutRecord[] {
    return [...this.records.values()].sort((a, b) => a.runtime.localeCompare(b.runtime));
  }

  /** Straight from the bucket (after a write, before the watch has caught up). */
  async fetch(runtime: string): Promise<RolloutRecord | undefined> {
    const entry = await this.bucket.get(rolloutKey(runtime));
    return entry === undefined ? undefined : parseRecord(entry.value);
  }

  /**
   * Which side `fn`'s invocation runs on, from memory (no I/O): undefined
   * when no rollout concerns it. Only Auto functions take part; a function
   * judged compatible runs on the new version, one judged incompatible (or
   * any, once the rollout is paused, halted or aborted) on the old.
   */
  sideFor(fn: FunctionRecord): { side: RolloutSide; rollout: RolloutRecord } | undefined {
    const rollout = this.records.get(fn.runtime);
    if (rollout === undefined || !isAuto(fn)) return undefined;
    if (rollout.state === RolloutStates.aborted) return { side: "old", rollout };
    const verdict = rollout.functions[`${fn.tenantId}/${fn.name}`]?.verdict?.verdict;
    if (verdict === Verdicts.compatible) return { side: "new", rollout };
    if (verdict === Verdicts.incompatible || rollout.state !== RolloutStates.running) {
      return { side: "old", rollout };
    }
    return { side: this.random() < rollout.fraction ? "new" : "old", rollout };
  }

  /**
   * Writes a new rollout; throws ConflictError when one exists that has not
   * ended (`ended`: by default, aborted).
   */
  async start(
    record: RolloutRecord,
    ended: (current: RolloutRecord) => boolean = (current) =>
      current.state === RolloutStates.aborted,
  ): Promise<RolloutRecord> {
    const key = rolloutKey(record.runtime);
    const entry = await this.bucket.get(key);
    if (entry === undefined) {
      await this.bucket.create(key, encode(record));
      return record;
    }
    const current = parseRecord(entry.value);
    if (current !== undefined && !ended(current)) {
      throw new ConflictError(
        `A rollout of ${record.runtime} to ${current.toVersion} is ${current.state}; abort it first.`,
      );
    }
    await this.bucket.update(key, encode(record), entry.revision);
    return record;
  }

  /**
   * Applies `change` to the runtime's record by compare-and-set, retried on
   * conflict. `change` returns undefined to leave the record as it is.
   */
  async modify(
    runtime: string,
    change: (current: RolloutRecord) => RolloutRecord | undefined,
  ): Promise<RolloutRecord | undefined> {
    const key = rolloutKey(runtime);
    for (let attempt = 0; attempt < MAX_CAS_TRIES; attempt++) {
      const entry = await this.bucket.get(key);
      if (entry === undefined) return undefined;
      const current = parseRecord(entry.value);
      if (current === undefined) return undefined;
      const next = change(structuredClone(current));
      if (next === undefined) return current;
      try {
        await this.bucket.update(key, encode({ ...next, updatedAt: Date.now() }), entry.revision);
        return next;
      } catch (error) {
        if (error instanceof ConflictError) continue;
        throw error;
      }
    }
    throw new ConflictError(`The rollout of ${runtime} changes too often; try again.`);
  }

  /** Called after any rollout changes. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.watcher?.stop();
    this.watcher = undefined;
    this.listeners.clear();
  }

  private remember(runtime: string, bytes: Uint8Array): void {
    const record = parseRecord(bytes);
    if (record === undefined) {
      this.logger.warn("a rollout record does not parse; ignoring it", { runtime });
      return;
    }
    this.records.set(runtime, record);
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error("a rollout listener failed", { error });
      }
    }
  }
}

/** Stored with the one codec every KV value uses (msgpack, @gust/protocol). */
function encode(record: RolloutRecord): Uint8Array {
  return encodeRecord(record);
}

function parseRecord(bytes: Uint8Array): RolloutRecord | undefined {
  try {
    const value = decodeRecord(bytes) as unknown as RolloutRecord;
    if (typeof value !== "object" || value === null || typeof value.runtime !== "string") {
      return undefined;
    }
    if (typeof value.functions !== "object" || value.functions === null) value.functions = {};
    return value;
  } catch {
    return undefined;
  }
}
