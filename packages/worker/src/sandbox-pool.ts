/**
 * Which sandbox runs an invocation, and how many live at once.
 *
 * An invocation of (functionKey, revisionId) on a runtime version takes, in
 * order: an idle sandbox of that revision and version (warm); a
 * pre-initialized Node.js sandbox of that version, given the code
 * (preinitialized); a new sandbox (cold). Room is counted in sandboxes and in
 * MB of MemorySize; when there is none, idle sandboxes of other functions are
 * stopped, pre-initialized ones first, then least recently used first. A
 * sandbox of another revision of the same function is never reused: idle ones
 * are stopped when a new revision shows up, busy ones when they finish.
 * Sandboxes of one revision on two runtime versions live side by side (a
 * rollout runs some invocations on each).
 *
 * Pre-initialized sandboxes are kept per Node.js runtime version
 * (runtime-version-pools.ts): the default version's always, another
 * version's while invocations ask for it.
 *
 * Every decision that takes room is made synchronously, so concurrent
 * acquisitions and the background refill cannot overbook.
 */
import { CapacityError, FunctionLimits, Runtimes, StartKinds, functionKey } from "@gust/protocol";
import type { InvokeTarget, RuntimeVersionRef, StartKind, WarmFunction } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";
import { RuntimeVersionPools, type VersionPool } from "./runtime-version-pools.js";
import type { Sandbox, SandboxFactory } from "./sandbox.js";

/** Room a pre-initialized sandbox holds until it is given a function (and its MemorySize). */
export const PREINITIALIZED_RESERVATION_MB = FunctionLimits.minMemoryMb;
/**
 * A pre-initialized sandbox handed to a function is replaced this long
 * after, so that the spawn does not delay that function's first invocation
 * (it halved the first invocation's time in `npm run bench`).
 */
export const REFILL_AFTER_ASSIGN_MS = 50;

type EntryState =
  /** Pre-initialized, still starting. */
  | "warming"
  /** Pre-initialized and ready for any Node.js function on its runtime version. */
  | "pooled"
  | "busy"
  | "idle"
  | "closing";

interface Entry {
  readonly seq: number;
  sandbox: Sandbox | undefined;
  state: EntryState;
  functionKey: string | undefined;
  revisionId: string | undefined;
  /** The ARN of the runtime version the sandbox runs. */
  readonly runtimeVersionArn: string;
  memoryMb: number;
  lastUsedAt: number;
  /** Serves an older revision: stop it once its invocation ends. */
  retired: boolean;
}

export interface Lease {
  readonly sandbox: Sandbox;
  readonly startKind: StartKind;
  /** Opaque to callers; hand it back to release(). */
  readonly entry: unknown;
}

export interface SandboxPoolOptions {
  factory: SandboxFactory;
  maxSandboxes: number;
  memoryMb: number;
  /** Pre-initialized sandboxes kept ready per Node.js runtime version with a pool. */
  preinitializedPoolSize: number;
  keepAliveMs: number;
  logger: Logger;
  /**
   * The Node.js runtime version pooled before any invocation says which is
   * the default. @default nodejs20.x's built-in default, in us-east-1
   */
  defaultRuntimeVersion?: RuntimeVersionRef;
  /** @default Date.now */
  now?: () => number;
}

/** One runtime version's sandboxes. */
export interface RuntimeVersionPoolStats {
  preinitialized: number;
  warming: number;
  busy: number;
  idle: number;
}

export interface PoolStats {
  /** Live sandboxes of every kind, and the MemorySize they hold. */
  sandboxes: number;
  memoryMb: number;
  busy: number;
  idle: number;
  /** Pre-initialized sandboxes ready to be assigned, and those still starting. */
  preinitialized: number;
  warming: number;
  /** The same by runtime version ARN (versions with live sandboxes only). */
  runtimeVersions: Record<string, RuntimeVersionPoolStats>;
}

export class SandboxPool {
  readonly #options: SandboxPoolOptions;
  readonly #now: () => number;
  readonly #entries = new Set<Entry>();
  readonly #disposals = new Set<Promise<void>>();
  readonly #reaper: NodeJS.Timeout;
  readonly #versions: RuntimeVersionPools;
  #seq = 0;
  #refillTimer: NodeJS.Timeout | undefined;
  #refillTimerAt = 0;
  #draining = false;
  #closed = false;

  constructor(options: SandboxPoolOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#versions = new RuntimeVersionPools({
      defaultVersion: options.defaultRuntimeVersion,
      keepAliveMs: options.keepAliveMs,
      now: this.#now,
    });
    const every = Math.max(10, Math.min(1000, Math.floor(options.keepAliveMs / 4)));
    this.#reaper = setInterval(() => this.reapIdle(), every);
    this.#reaper.unref();
    this.#refill();
  }

  /** A sandbox for one invocation of `target`; loadCode is called only when a sandbox needs code. */
  async acquire(target: InvokeTarget, loadCode: () => Promise<Uint8Array>): Promise<Lease> {
    this.#assertOpen();
    const key = functionKey(target.tenantId, target.name);
    const version = this.#versionOf(target);
    this.#retireOtherRevisions(key, target.revisionId);
    const warm = this.#takeIdle(key, target.revisionId, version.arn);
    if (warm) return warm;

    const newPool =
      target.runtime === Runtimes.nodejs20 &&
      this.#versions.want(version.ref, target.runtimeVersionIsDefault === true);
    try {
      return await this.#acquireWithCode(target, key, version.arn, loadCode);
    } finally {
      // Started after this invocation's own sandbox, so the pool does not take its room.
      if (newPool) this.#refill();
    }
  }

  async #acquireWithCode(
    target: InvokeTarget,
    key: string,
    runtimeVersionArn: string,
    loadCode: () => Promise<Uint8Array>,
  ): Promise<Lease> {
    const zip = await loadCode();
    this.#assertOpen();
    // Another invocation may have finished while the code loaded.
    const warmNow = this.#takeIdle(key, target.revisionId, runtimeVersionArn);
    if (warmNow) return warmNow;

    if (target.runtime === Runtimes.nodejs20) {
      const pooled = [...this.#entries].find(
        (entry) =>
          entry.state === "pooled" &&
          entry.runtimeVersionArn === runtimeVersionArn &&
          !entry.sandbox?.exited,
      );
      if (pooled?.sandbox) return this.#assignPooled(pooled, pooled.sandbox, target, key, zip);
    }
    return this.#startCold(target, key, runtimeVersionArn, zip);
  }

  /** Hand a sandbox back; one that cannot be reused (or is retired, or the pool is draining) is stopped. */
  release(lease: Lease, reusable: boolean): void {
    const entry = lease.entry as Entry;
    if (entry.state !== "busy") return;
    if (!reusable || entry.retired || this.#draining || this.#closed || entry.sandbox?.exited) {
      this.#discard(entry);
    } else {
      entry.state = "idle";
      entry.lastUsedAt = this.#now();
    }
    this.#refill();
  }

  /**
   * Stop sandboxes idle for keepAliveMs, and the pre-initialized ones of
   * versions nothing has asked for in as long. Runs on a timer; public for tests.
   */
  reapIdle(): void {
    const cutoff = this.#now() - this.#options.keepAliveMs;
    const dropped = new Set(this.#versions.expire());
    for (const entry of this.#entries) {
      if (entry.state === "idle" && entry.lastUsedAt <= cutoff) this.#discard(entry);
      else if (
        (entry.state === "pooled" || entry.state === "warming") &&
        dropped.has(entry.runtimeVersionArn)
      ) {
        this.#discard(entry);
      }
    }
    this.#refill();
  }

  stats(): PoolStats {
    const stats: PoolStats = {
      sandboxes: 0,
      memoryMb: 0,
      busy: 0,
      idle: 0,
      preinitialized: 0,
      warming: 0,
      runtimeVersions: {},
    };
    for (const entry of this.#entries) {
      stats.sandboxes++;
      stats.memoryMb += entry.memoryMb;
      const byVersion = (stats.runtimeVersions[entry.runtimeVersionArn] ??= {
        preinitialized: 0,
        warming: 0,
        busy: 0,
        idle: 0,
      });
      const field =
        entry.state === "pooled"
          ? "preinitialized"
          : entry.state === "closing"
            ? undefined
            : entry.state;
      if (field === undefined) continue;
      stats[field]++;
      byVersion[field]++;
    }
    return stats;
  }

  /**
   * Sandboxes that serve a function (busy or idle). Pre-initialized ones are
   * left out: they are room any Node.js function can have at once.
   */
  used(): { sandboxes: number; memoryMb: number } {
    let sandboxes = 0;
    let memoryMb = 0;
    for (const entry of this.#entries) {
      if (entry.state !== "busy" && entry.state !== "idle") continue;
      sandboxes++;
      memoryMb += entry.memoryMb;
    }
    return { sandboxes, memoryMb };
  }

  warmFunctions(): WarmFunction[] {
    const byRevision = new Map<string, WarmFunction>();
    for (const entry of this.#entries) {
      if ((entry.state !== "busy" && entry.state !== "idle") || entry.retired) continue;
      if (entry.functionKey === undefined || entry.revisionId === undefined) continue;
      const id = `${entry.functionKey}\n${entry.revisionId}`;
      const warm = byRevision.get(id) ?? {
        functionKey: entry.functionKey,
        revisionId: entry.revisionId,
        idle: 0,
        total: 0,
      };
      warm.total++;
      if (entry.state === "idle") warm.idle++;
      byRevision.set(id, warm);
    }
    return [...byRevision.values()];
  }

  /** Stop refilling and stop every sandbox not running an invocation; busy ones stop on release. */
  drain(): void {
    this.#draining = true;
    clearTimeout(this.#refillTimer);
    for (const entry of this.#entries) {
      if (entry.state !== "busy") this.#discard(entry);
    }
  }

  /** Stop every sandbox, busy or not, and wait until all are gone. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#draining = true;
    clearInterval(this.#reaper);
    clearTimeout(this.#refillTimer);
    for (const entry of this.#entries) this.#discard(entry);
    while (this.#disposals.size > 0) await Promise.allSettled([...this.#disposals]);
  }

  // ---- taking room -----------------------------------------------------------------

  #assertOpen(): void {
    if (this.#draining) throw new CapacityError("the worker is draining");
  }

  /** A Node.js target without a version (from an older frontend) runs the default. */
  #versionOf(target: InvokeTarget): { arn: string; ref: RuntimeVersionRef | undefined } {
    const ref =
      target.runtimeVersion ??
      (target.runtime === Runtimes.nodejs20 ? this.#versions.defaultVersion : undefined);
    return { arn: ref?.arn ?? `built-in:${target.runtime}`, ref };
  }

  #takeIdle(key: string, revisionId: string, runtimeVersionArn: string): Lease | undefined {
    let best: Entry | undefined;
    for (const entry of this.#entries) {
      if (
        entry.state !== "idle" ||
        entry.functionKey !== key ||
        entry.revisionId !== revisionId ||
        entry.runtimeVersionArn !== runtimeVersionArn
      )
        continue;
      if (!entry.sandbox || entry.sandbox.exited) continue;
      // Most recently used first, so that the others can reach their keep-alive and go.
      if (!best || entry.lastUsedAt > best.lastUsedAt) best = entry;
    }
    if (!best?.sandbox) return undefined;
    best.state = "busy";
    return { sandbox: best.sandbox, startKind: StartKinds.warm, entry: best };
  }

  #retireOtherRevisions(key: string, revisionId: string): void {
    for (const entry of this.#entries) {
      if (entry.functionKey !== key || entry.revisionId === revisionId) continue;
      if (entry.state === "idle") this.#discard(entry);
      else entry.retired = true;
    }
  }

  async #assignPooled(
    entry: Entry,
    sandbox: Sandbox,
    target: InvokeTarget,
    key: string,
    zip: Uint8Array,
  ): Promise<Lease> {
    entry.state = "busy";
    const extraMb = target.memoryMb - entry.memoryMb;
    if (!this.#makeRoom(0, extraMb)) {
      entry.state = "pooled";
      throw this.#noRoom(target);
    }
    entry.functionKey = key;
    entry.revisionId = target.revisionId;
    entry.memoryMb = target.memoryMb;
    // Not at once: spawning holds this process's event loop for milliseconds
    // (fork and exec), and this sandbox's assignment would wait behind it.
    this.#scheduleRefill(REFILL_AFTER_ASSIGN_MS);
    try {
      await sandbox.assign(target, zip);
    } catch (error) {
      this.#discard(entry);
      throw error;
    }
    return { sandbox, startKind: StartKinds.preinitialized, entry };
  }

  async #startCold(
    target: InvokeTarget,
    key: string,
    runtimeVersionArn: string,
    zip: Uint8Array,
  ): Promise<Lease> {
    if (!this.#makeRoom(1, target.memoryMb)) throw this.#noRoom(target);
    const entry = this.#add("busy", target.memoryMb, runtimeVersionArn);
    entry.functionKey = key;
    entry.revisionId = target.revisionId;
    let sandbox: Sandbox;
    try {
      sandbox = await this.#options.factory.startFor(target, zip);
    } catch (error) {
      this.#discard(entry);
      throw error;
    }
    if (!this.#attach(entry, sandbox))
      throw new CapacityError("the worker closed while the sandbox started");
    return { sandbox, startKind: StartKinds.cold, entry };
  }

  /**
   * Make room for `sandboxes` more sandboxes and `memoryMb` more MB by
   * stopping idle ones: all or nothing.
   */
  #makeRoom(sandboxes: number, memoryMb: number): boolean {
    const { maxSandboxes, memoryMb: capacityMb } = this.#options;
    let count = 0;
    let used = 0;
    for (const entry of this.#entries) {
      count++;
      used += entry.memoryMb;
    }
    const fits = () => count + sandboxes <= maxSandboxes && used + memoryMb <= capacityMb;
    if (fits()) return true;
    const candidates = [...this.#entries]
      .filter(
        (entry) => entry.state === "pooled" || entry.state === "warming" || entry.state === "idle",
      )
      .sort(
        (a, b) => this.#rank(a) - this.#rank(b) || a.lastUsedAt - b.lastUsedAt || a.seq - b.seq,
      );
    const victims: Entry[] = [];
    for (const candidate of candidates) {
      if (fits()) break;
      victims.push(candidate);
      count--;
      used -= candidate.memoryMb;
    }
    if (!fits()) return false;
    for (const victim of victims) {
      this.#options.logger.debug("stopping a sandbox to make room", {
        function: victim.functionKey,
        state: victim.state,
      });
      this.#discard(victim);
    }
    return true;
  }

  /**
   * Pre-initialized sandboxes are the cheapest to replace, so they go first,
   * those of versions other than the default before the default's.
   */
  #rank(entry: Entry): number {
    if (entry.state === "idle") return 2;
    return entry.runtimeVersionArn === this.#versions.defaultVersion.arn ? 1 : 0;
  }

  #noRoom(target: InvokeTarget): CapacityError {
    const stats = this.stats();
    return new CapacityError(
      `no room for ${target.memoryMb} MB: ${stats.sandboxes}/${this.#options.maxSandboxes} sandboxes, ` +
        `${stats.memoryMb}/${this.#options.memoryMb} MB, ${stats.busy} busy`,
    );
  }

  // ---- the pre-initialized pools ----------------------------------------------------

  #refill(): void {
    if (this.#draining || this.#closed) return;
    const now = this.#now();
    for (const pool of this.#versions.inRefillOrder()) {
      if (now < pool.refillNotBefore) {
        this.#scheduleRefill(pool.refillNotBefore - now);
        continue;
      }
      let unassigned = 0;
      for (const entry of this.#entries) {
        if (
          (entry.state === "pooled" || entry.state === "warming") &&
          entry.runtimeVersionArn === pool.version.arn
        ) {
          unassigned++;
        }
      }
      while (
        unassigned < this.#options.preinitializedPoolSize &&
        this.#hasFreeRoom(PREINITIALIZED_RESERVATION_MB)
      ) {
        unassigned++;
        this.#startPooled(pool);
      }
    }
  }

  #hasFreeRoom(memoryMb: number): boolean {
    const stats = this.stats();
    return (
      stats.sandboxes < this.#options.maxSandboxes &&
      stats.memoryMb + memoryMb <= this.#options.memoryMb
    );
  }

  #startPooled(pool: VersionPool): void {
    const entry = this.#add("warming", PREINITIALIZED_RESERVATION_MB, pool.version.arn);
    void this.#options.factory
      .startPreinitialized(pool.version)
      .then(async (sandbox) => {
        if (!this.#attach(entry, sandbox)) return;
        await sandbox.ready();
        if (entry.state !== "warming") return;
        entry.state = "pooled";
        pool.refillFailures = 0;
      })
      .catch((error: unknown) => {
        if (entry.state !== "warming") return;
        this.#discard(entry);
        this.#pooledSandboxFailed(pool, error);
      });
  }

  /** A runtime that keeps dying before it gets a function must not be restarted in a tight loop. */
  #pooledSandboxFailed(pool: VersionPool, error: unknown): void {
    const backoff = this.#versions.failed(pool);
    this.#options.logger.warn("a pre-initialized sandbox failed", {
      error,
      runtimeVersionArn: pool.version.arn,
      retryInMs: backoff,
    });
    this.#scheduleRefill(backoff);
  }

  #scheduleRefill(ms: number): void {
    const at = this.#now() + ms;
    // One timer, for the earliest refill any pool waits for.
    if (this.#refillTimer !== undefined && this.#refillTimerAt <= at) return;
    clearTimeout(this.#refillTimer);
    this.#refillTimerAt = at;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = undefined;
      this.#refill();
    }, ms);
    this.#refillTimer.unref();
  }

  // ---- entries --------------------------------------------------------------------------

  #add(state: EntryState, memoryMb: number, runtimeVersionArn: string): Entry {
    const entry: Entry = {
      seq: ++this.#seq,
      sandbox: undefined,
      state,
      functionKey: undefined,
      revisionId: undefined,
      runtimeVersionArn,
      memoryMb,
      lastUsedAt: this.#now(),
      retired: false,
    };
    this.#entries.add(entry);
    return entry;
  }

  /** Tie a started sandbox to its entry; false (and the sandbox stopped) if the entry was dropped meanwhile. */
  #attach(entry: Entry, sandbox: Sandbox): boolean {
    entry.sandbox = sandbox;
    if (entry.state === "closing") {
      this.#track(sandbox.dispose());
      return false;
    }
    sandbox.onExit((exit) => {
      // A busy sandbox's invocation reports the exit and is released as not reusable;
      // a warming one fails its ready() and is handled there.
      if (entry.state === "idle") {
        this.#options.logger.info("an idle sandbox exited", {
          function: entry.functionKey,
          ...exit,
        });
        this.#discard(entry);
        this.#refill();
      } else if (entry.state === "pooled") {
        this.#discard(entry);
        const pool = this.#versions.get(entry.runtimeVersionArn);
        const error = new Error(`exited with ${exit.code ?? exit.signal ?? "?"}`);
        if (pool) this.#pooledSandboxFailed(pool, error);
      }
    });
    return true;
  }

  #discard(entry: Entry): void {
    if (entry.state === "closing") return;
    entry.state = "closing";
    this.#entries.delete(entry);
    if (entry.sandbox) this.#track(entry.sandbox.dispose());
  }

  #track(disposal: Promise<void>): void {
    const tracked = disposal
      .catch((error: unknown) => this.#options.logger.warn("stopping a sandbox failed", { error }))
      .finally(() => this.#disposals.delete(tracked));
    this.#disposals.add(tracked);
  }
}
