/**
 * Which Node.js runtime versions the worker keeps pre-initialized sandboxes
 * of. A pool costs memory and processes even when nothing uses it, so a
 * version gets one only while invocations ask for it (it is dropped once
 * none has for keepAliveMs, the same patience idle sandboxes get), except
 * the runtime's default version, whose pool is always kept: it serves every
 * Auto function.
 *
 * The worker does not read the runtime-version registry: it learns which
 * version is the default from the invocations themselves
 * (InvokeTarget.runtimeVersionIsDefault), starting from the built-in default.
 *
 * The SandboxPool owns the sandboxes; this only decides which versions have
 * a pool, in what order they are refilled, and when a failing one may try
 * again.
 */
import { builtInDefaultRuntimeVersion, Runtimes, type RuntimeVersionRef } from "@gust/protocol";
import { DEFAULT_REGION } from "./options.js";

const REFILL_BACKOFF_MIN_MS = 500;
const REFILL_BACKOFF_MAX_MS = 30_000;

export interface VersionPool {
  readonly version: RuntimeVersionRef;
  /** When an invocation last asked for this version. */
  lastWantedAt: number;
  /** Pre-initialized sandboxes that failed in a row, and when the next may start. */
  refillFailures: number;
  refillNotBefore: number;
}

export interface RuntimeVersionPoolsOptions {
  /** @default nodejs20.x's built-in default version in DEFAULT_REGION */
  defaultVersion: RuntimeVersionRef | undefined;
  keepAliveMs: number;
  now: () => number;
}

export class RuntimeVersionPools {
  readonly #pools = new Map<string, VersionPool>();
  readonly #keepAliveMs: number;
  readonly #now: () => number;
  #default: VersionPool;

  constructor(options: RuntimeVersionPoolsOptions) {
    this.#keepAliveMs = options.keepAliveMs;
    this.#now = options.now;
    this.#default = this.#poolOf(
      options.defaultVersion ?? builtInDefaultRuntimeVersion(DEFAULT_REGION, Runtimes.nodejs20),
    );
  }

  get defaultVersion(): RuntimeVersionRef {
    return this.#default.version;
  }

  get(arn: string): VersionPool | undefined {
    return this.#pools.get(arn);
  }

  /**
   * An invocation asks for `version` (the default, if `isDefault`). Returns
   * true when that gives a version a pool it did not have, or a new default:
   * the caller should refill.
   */
  want(version: RuntimeVersionRef | undefined, isDefault: boolean): boolean {
    if (version === undefined) return false;
    const known = this.#pools.has(version.arn);
    const pool = this.#poolOf(version);
    pool.lastWantedAt = this.#now();
    const newDefault = isDefault && this.#default !== pool;
    if (newDefault) this.#default = pool;
    return !known || newDefault;
  }

  /** The default's pool first, then the others, most recently asked for first. */
  inRefillOrder(): VersionPool[] {
    const others = [...this.#pools.values()]
      .filter((pool) => pool !== this.#default)
      .sort((a, b) => b.lastWantedAt - a.lastWantedAt);
    return [this.#default, ...others];
  }

  /** Drops the pools nothing has asked for in keepAliveMs; returns their versions' ARNs. */
  expire(): string[] {
    const cutoff = this.#now() - this.#keepAliveMs;
    const dropped: string[] = [];
    for (const [arn, pool] of this.#pools) {
      if (pool === this.#default || pool.lastWantedAt > cutoff) continue;
      this.#pools.delete(arn);
      dropped.push(arn);
    }
    return dropped;
  }

  /** A pre-initialized sandbox of `pool` failed: returns how long its refill waits. */
  failed(pool: VersionPool): number {
    pool.refillFailures++;
    const backoff = Math.min(
      REFILL_BACKOFF_MAX_MS,
      REFILL_BACKOFF_MIN_MS * 2 ** (pool.refillFailures - 1),
    );
    pool.refillNotBefore = this.#now() + backoff;
    return backoff;
  }

  #poolOf(version: RuntimeVersionRef): VersionPool {
    let pool = this.#pools.get(version.arn);
    if (pool === undefined) {
      pool = { version, lastWantedAt: this.#now(), refillFailures: 0, refillNotBefore: 0 };
      this.#pools.set(version.arn, pool);
    }
    return pool;
  }
}
