/**
 * Which sandbox runs an invocation, and how many live at once.
 *
 * An invocation of (functionKey, revisionId) takes, in order: an idle sandbox
 * of that revision (warm); a pre-initialized Node.js sandbox, given the code
 * (preinitialized); a new sandbox (cold). Room is counted in sandboxes and in
 * MB of MemorySize; when there is none, idle sandboxes of other functions are
 * stopped, pre-initialized ones first, then least recently used first. A
 * sandbox of another revision of the same function is never reused: idle ones
 * are stopped when a new revision shows up, busy ones when they finish.
 *
 * Every decision that takes room is made synchronously, so concurrent
 * acquisitions and the background refill cannot overbook.
 */
import { CapacityError, FunctionLimits, Runtimes, StartKinds, functionKey } from "@gust/protocol";
import type { InvokeTarget, StartKind, WarmFunction } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";
import type { Sandbox, SandboxFactory } from "./sandbox.js";

/** Room a pre-initialized sandbox holds until it is given a function (and its MemorySize). */
export const PREINITIALIZED_RESERVATION_MB = FunctionLimits.minMemoryMb;
const REFILL_BACKOFF_MIN_MS = 500;
const REFILL_BACKOFF_MAX_MS = 30_000;

type EntryState =
  /** Pre-initialized, still starting. */
  | "warming"
  /** Pre-initialized and ready for any Node.js function. */
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
  preinitializedPoolSize: number;
  keepAliveMs: number;
  logger: Logger;
  /** @default Date.now */
  now?: () => number;
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
}

export class SandboxPool {
  readonly #options: SandboxPoolOptions;
  readonly #now: () => number;
  readonly #entries = new Set<Entry>();
  readonly #disposals = new Set<Promise<void>>();
  readonly #reaper: NodeJS.Timeout;
  #seq = 0;
  #refillFailures = 0;
  #refillNotBefore = 0;
  #refillTimer: NodeJS.Timeout | undefined;
  #draining = false;
  #closed = false;

  constructor(options: SandboxPoolOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const every = Math.max(10, Math.min(1000, Math.floor(options.keepAliveMs / 4)));
    this.#reaper = setInterval(() => this.reapIdle(), every);
    this.#reaper.unref();
    this.#refill();
  }

  /** A sandbox for one invocation of `target`; loadCode is called only when a sandbox needs code. */
  async acquire(target: InvokeTarget, loadCode: () => Promise<Uint8Array>): Promise<Lease> {
    this.#assertOpen();
    const key = functionKey(target.tenantId, target.name);
    this.#retireOtherRevisions(key, target.revisionId);
    const warm = this.#takeIdle(key, target.revisionId);
    if (warm) return warm;

    const zip = await loadCode();
    this.#assertOpen();
    // Another invocation may have finished while the code loaded.
    const warmNow = this.#takeIdle(key, target.revisionId);
    if (warmNow) return warmNow;

    if (target.runtime === Runtimes.nodejs20) {
      const pooled = [...this.#entries].find(
        (entry) => entry.state === "pooled" && !entry.sandbox?.exited,
      );
      if (pooled?.sandbox) return this.#assignPooled(pooled, pooled.sandbox, target, key, zip);
    }
    return this.#startCold(target, key, zip);
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

  /** Stop sandboxes idle for keepAliveMs. Runs on a timer; public for tests. */
  reapIdle(): void {
    const cutoff = this.#now() - this.#options.keepAliveMs;
    for (const entry of this.#entries) {
      if (entry.state === "idle" && entry.lastUsedAt <= cutoff) this.#discard(entry);
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
    };
    for (const entry of this.#entries) {
      stats.sandboxes++;
      stats.memoryMb += entry.memoryMb;
      if (entry.state === "busy") stats.busy++;
      else if (entry.state === "idle") stats.idle++;
      else if (entry.state === "pooled") stats.preinitialized++;
      else if (entry.state === "warming") stats.warming++;
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

  #takeIdle(key: string, revisionId: string): Lease | undefined {
    let best: Entry | undefined;
    for (const entry of this.#entries) {
      if (entry.state !== "idle" || entry.functionKey !== key || entry.revisionId !== revisionId)
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
    this.#refill();
    try {
      await sandbox.assign(target, zip);
    } catch (error) {
      this.#discard(entry);
      throw error;
    }
    return { sandbox, startKind: StartKinds.preinitialized, entry };
  }

  async #startCold(target: InvokeTarget, key: string, zip: Uint8Array): Promise<Lease> {
    if (!this.#makeRoom(1, target.memoryMb)) throw this.#noRoom(target);
    const entry = this.#add("busy", target.memoryMb);
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
      .sort((a, b) => rank(a) - rank(b) || a.lastUsedAt - b.lastUsedAt || a.seq - b.seq);
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

  #noRoom(target: InvokeTarget): CapacityError {
    const stats = this.stats();
    return new CapacityError(
      `no room for ${target.memoryMb} MB: ${stats.sandboxes}/${this.#options.maxSandboxes} sandboxes, ` +
        `${stats.memoryMb}/${this.#options.memoryMb} MB, ${stats.busy} busy`,
    );
  }

  // ---- the pre-initialized pool ---------------------------------------------------------

  #refill(): void {
    if (this.#draining || this.#closed) return;
    const now = this.#now();
    if (now < this.#refillNotBefore) {
      this.#scheduleRefill(this.#refillNotBefore - now);
      return;
    }
    let unassigned = 0;
    for (const entry of this.#entries)
      if (entry.state === "pooled" || entry.state === "warming") unassigned++;
    while (
      unassigned < this.#options.preinitializedPoolSize &&
      this.#hasFreeRoom(PREINITIALIZED_RESERVATION_MB)
    ) {
      unassigned++;
      this.#startPooled();
    }
  }

  #hasFreeRoom(memoryMb: number): boolean {
    const stats = this.stats();
    return (
      stats.sandboxes < this.#options.maxSandboxes &&
      stats.memoryMb + memoryMb <= this.#options.memoryMb
    );
  }

  #startPooled(): void {
    const entry = this.#add("warming", PREINITIALIZED_RESERVATION_MB);
    void this.#options.factory
      .startPreinitialized()
      .then(async (sandbox) => {
        if (!this.#attach(entry, sandbox)) return;
        await sandbox.ready();
        if (entry.state !== "warming") return;
        entry.state = "pooled";
        this.#refillFailures = 0;
      })
      .catch((error: unknown) => {
        if (entry.state !== "warming") return;
        this.#discard(entry);
        this.#pooledSandboxFailed(error);
      });
  }

  /** A runtime that keeps dying before it gets a function must not be restarted in a tight loop. */
  #pooledSandboxFailed(error: unknown): void {
    this.#refillFailures++;
    const backoff = Math.min(
      REFILL_BACKOFF_MAX_MS,
      REFILL_BACKOFF_MIN_MS * 2 ** (this.#refillFailures - 1),
    );
    this.#refillNotBefore = this.#now() + backoff;
    this.#options.logger.warn("a pre-initialized sandbox failed", { error, retryInMs: backoff });
    this.#scheduleRefill(backoff);
  }

  #scheduleRefill(ms: number): void {
    if (this.#refillTimer) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = undefined;
      this.#refill();
    }, ms);
    this.#refillTimer.unref();
  }

  // ---- entries --------------------------------------------------------------------------

  #add(state: EntryState, memoryMb: number): Entry {
    const entry: Entry = {
      seq: ++this.#seq,
      sandbox: undefined,
      state,
      functionKey: undefined,
      revisionId: undefined,
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
        this.#pooledSandboxFailed(new Error(`exited with ${exit.code ?? exit.signal ?? "?"}`));
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

/** Pre-initialized sandboxes are the cheapest to replace, so they go first. */
function rank(entry: Entry): number {
  return entry.state === "idle" ? 1 : 0;
}
