/**
 * What this frontend knows of the workers: their last heartbeat, plus the work
 * it sent them since, and whom to ask to run an invocation.
 *
 * Order of preference for a function revision:
 *   1. a worker advertising an idle warm sandbox of it (no start at all);
 *   2. the function's "home": the worker with room that ranks first for the
 *      function by rendezvous (highest-random-weight) hashing, so that its
 *      sandboxes gather on one worker and stay warm, and only a small share of
 *      functions move when a worker joins or leaves;
 *   3. the other workers with room, in the same ranking;
 *   4. when none seems to have room, the home worker alone, which may still
 *      make room and otherwise says it is full.
 *
 * Heartbeats come every few hundred ms at best, so between two of them this
 * frontend counts what it has sent each worker (claims): a burst spreads over
 * the fleet instead of piling on the one worker whose last heartbeat looked
 * idle. A heartbeat is the worker's own account and replaces the counts.
 *
 * A worker that dies (SIGKILL, a lost host) says nothing; its heartbeats just
 * stop. The directory looks for silent workers on a timer, not only when asked
 * for candidates, so that an invocation waiting on a dead worker's reply
 * (watchLoss) ends a few heartbeat intervals after the death instead of at
 * the function's timeout.
 */
import type { Bus, Subscription } from "@gust/bus";
import {
  decodeAs,
  encode,
  functionKey,
  isSubjectToken,
  Subjects,
  type FunctionRecord,
  type WorkerHeartbeat,
} from "@gust/protocol";
import type { Logger } from "@gust/telemetry";

export interface WorkerDirectoryOptions {
  missedHeartbeatLimit: number;
  /** Sent with the discovery request at start. */
  frontendId: string;
  now?: () => number;
}

interface WorkerState {
  heartbeat: WorkerHeartbeat;
  receivedAt: number;
  /** Bumped by each heartbeat; a claim made in an older epoch is already in the heartbeat. */
  epoch: number;
  /** New sandboxes this frontend may have caused since the heartbeat. */
  claimedSandboxes: number;
  claimedMemoryMb: number;
  /** Warm idle sandboxes this frontend has taken since the heartbeat, by revision key. */
  claimedWarm: Map<string, number>;
}

/** A unit of work sent to a worker; hand it back with `release` when the reply is in. */
export interface Claim {
  readonly workerId: string;
  readonly epoch: number;
  readonly warmKey: string | undefined;
  readonly memoryMb: number;
}

/** How often silent workers are looked for. */
const PRUNE_INTERVAL_MS = 250;

/** Heartbeat intervals outside this range are clamped, so garbage cannot pin a worker forever. */
const MIN_INTERVAL_MS = 50;
const MAX_INTERVAL_MS = 60_000;

function revisionKey(fn: FunctionRecord): string {
  return `${functionKey(fn.tenantId, fn.name)}@${fn.revisionId}`;
}

/** FNV-1a, 32 bits: a fast, well-spread hash; nothing here needs to resist an adversary. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // A final avalanche, since FNV's low bits mix poorly for near-identical inputs.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash >>> 0;
}

export function rendezvousScore(workerId: string, key: string): number {
  return fnv1a(`${workerId}\u0000${key}`);
}

function finiteNonNegative(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

function plausible(heartbeat: WorkerHeartbeat): boolean {
  const { capacity, used } = heartbeat;
  return (
    isSubjectToken(heartbeat.workerId) &&
    finiteNonNegative(heartbeat.intervalMs) &&
    finiteNonNegative(capacity.sandboxes) &&
    finiteNonNegative(capacity.memoryMb) &&
    finiteNonNegative(used.sandboxes) &&
    finiteNonNegative(used.memoryMb) &&
    heartbeat.warm.every(
      (w) =>
        typeof w === "object" &&
        w !== null &&
        typeof w.functionKey === "string" &&
        typeof w.revisionId === "string" &&
        finiteNonNegative(w.idle),
    )
  );
}

export class WorkerDirectory {
  private readonly workers = new Map<string, WorkerState>();
  private subscriptions: Subscription[] = [];
  private readonly now: () => number;
  private readonly lossWatchers = new Map<string, Set<(why: string) => void>>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private lastPruneTickAt: number | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly options: WorkerDirectoryOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.subscriptions.length > 0) return;
    this.subscriptions = [
      this.bus.subscribe(Subjects.workerHeartbeat, (message) => this.onHeartbeat(message.data)),
      this.bus.subscribe(Subjects.workerGone, (message) => this.onGone(message.data)),
    ];
    this.lastPruneTickAt = this.now();
    this.pruneTimer = setInterval(() => this.pruneTick(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    // Learn of every live worker now, not a heartbeat interval from now.
    try {
      this.bus.publish(
        Subjects.workerDiscover,
        encode({ type: "worker.discover", frontendId: this.options.frontendId }),
      );
    } catch (error) {
      this.logger.warn("could not ask workers for heartbeats", { error });
    }
  }

  stop(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = [];
    clearInterval(this.pruneTimer);
    this.pruneTimer = undefined;
  }

  onHeartbeat(data: Uint8Array): void {
    let heartbeat: WorkerHeartbeat;
    try {
      heartbeat = decodeAs(data, "worker.heartbeat");
    } catch (error) {
      this.logger.warn("ignoring a heartbeat that does not decode", { error });
      return;
    }
    if (!plausible(heartbeat)) {
      this.logger.warn("ignoring an implausible heartbeat", { workerId: heartbeat.workerId });
      return;
    }
    const previous = this.workers.get(heartbeat.workerId);
    // A late heartbeat from before the one we hold; a restarted worker starts a new sequence later in time.
    if (
      previous &&
      heartbeat.seq <= previous.heartbeat.seq &&
      heartbeat.sentAt <= previous.heartbeat.sentAt
    ) {
      return;
    }
    if (!previous) this.logger.info("worker joined", { workerId: heartbeat.workerId });
    this.workers.set(heartbeat.workerId, {
      heartbeat,
      receivedAt: this.now(),
      epoch: (previous?.epoch ?? 0) + 1,
      claimedSandboxes: 0,
      claimedMemoryMb: 0,
      claimedWarm: new Map(),
    });
  }

  onGone(data: Uint8Array): void {
    try {
      const gone = decodeAs(data, "worker.gone");
      this.forget(gone.workerId, "announced it is going");
    } catch (error) {
      this.logger.warn("ignoring a worker.gone that does not decode", { error });
    }
  }

  /** Drop a worker at once, e.g. when nobody answers on its subject. */
  forget(workerId: string, why: string): void {
    if (this.workers.delete(workerId)) this.logger.info("worker left", { workerId, why });
    const watchers = this.lossWatchers.get(workerId);
    if (watchers === undefined) return;
    this.lossWatchers.delete(workerId);
    for (const onLost of watchers) {
      try {
        onLost(why);
      } catch (error) {
        this.logger.error("a worker-loss watcher failed", { workerId, error });
      }
    }
  }

  /**
   * Calls `onLost` once with the reason if the worker is forgotten: it said it
   * is going, its heartbeats stopped, or nobody answers on its subject.
   * Returns a function that stops watching.
   */
  watchLoss(workerId: string, onLost: (why: string) => void): () => void {
    let watchers = this.lossWatchers.get(workerId);
    if (watchers === undefined) {
      watchers = new Set();
      this.lossWatchers.set(workerId, watchers);
    }
    watchers.add(onLost);
    return () => {
      const current = this.lossWatchers.get(workerId);
      current?.delete(onLost);
      if (current?.size === 0) this.lossWatchers.delete(workerId);
    };
  }

  /**
   * The timer's prune. When this process's event loop was held up (a burst
   * of sandbox spawns in `gust dev`, a long GC, a stopped VM), heartbeats
   * that arrived meanwhile still wait unread while this timer fires first:
   * the silence is this process's, not the workers'. So every worker's last
   * heartbeat moves forward by the stall before anyone is judged.
   */
  pruneTick(): void {
    const now = this.now();
    const stall = now - (this.lastPruneTickAt ?? now) - PRUNE_INTERVAL_MS;
    this.lastPruneTickAt = now;
    if (stall > PRUNE_INTERVAL_MS) {
      for (const state of this.workers.values()) state.receivedAt += stall;
      this.logger.debug("event loop held up; worker silence ignored", { stallMs: stall });
    }
    this.prune();
  }

  private prune(): void {
    const now = this.now();
    // The timer is overdue: this process is (or just was) held up, and the
    // stall is still to be discounted by pruneTick. Judge nobody until then.
    if (this.pruneTimer && now - (this.lastPruneTickAt ?? now) > 2 * PRUNE_INTERVAL_MS) return;
    for (const [workerId, state] of this.workers) {
      const interval = Math.min(
        Math.max(state.heartbeat.intervalMs, MIN_INTERVAL_MS),
        MAX_INTERVAL_MS,
      );
      if (now - state.receivedAt > interval * this.options.missedHeartbeatLimit) {
        this.forget(workerId, "heartbeats stopped");
      }
    }
  }

  /** Workers that may take new work (alive and not draining). */
  liveCount(): number {
    this.prune();
    let count = 0;
    for (const state of this.workers.values()) if (!state.heartbeat.draining) count++;
    return count;
  }

  workerIds(): string[] {
    this.prune();
    return [...this.workers.keys()].sort();
  }

  private idleWarm(state: WorkerState, fn: FunctionRecord): number {
    const key = functionKey(fn.tenantId, fn.name);
    const advertised = state.heartbeat.warm
      .filter((w) => w.functionKey === key && w.revisionId === fn.revisionId)
      .reduce((sum, w) => sum + w.idle, 0);
    return advertised - (state.claimedWarm.get(revisionKey(fn)) ?? 0);
  }

  /**
   * Whether the worker can start a sandbox now. Its `used` counts idle warm
   * sandboxes too, which it stops to make room, so those count as room; their
   * memory is not reported apart and is estimated at the average.
   */
  private hasRoom(state: WorkerState, fn: FunctionRecord): boolean {
    const { capacity, used, warm } = state.heartbeat;
    let claimedWarm = 0;
    for (const count of state.claimedWarm.values()) claimedWarm += count;
    const advertisedIdle = Math.min(
      used.sandboxes,
      warm.reduce((sum, w) => sum + w.idle, 0),
    );
    const idle = Math.max(0, advertisedIdle - claimedWarm);
    const idleMemoryMb = used.sandboxes > 0 ? (used.memoryMb * idle) / used.sandboxes : 0;
    const freeSandboxes = capacity.sandboxes - used.sandboxes + idle - state.claimedSandboxes;
    const freeMemoryMb = capacity.memoryMb - used.memoryMb + idleMemoryMb - state.claimedMemoryMb;
    return freeSandboxes > 0 && freeMemoryMb >= fn.memoryMb;
  }

  /** Workers to try for one invocation, best first, at most `limit`, none of `exclude`. */
  candidates(
    fn: FunctionRecord,
    limit: number,
    exclude: ReadonlySet<string> = new Set(),
  ): string[] {
    this.prune();
    const key = functionKey(fn.tenantId, fn.name);
    const scored: { workerId: string; score: number; idle: number; room: boolean }[] = [];
    for (const [workerId, state] of this.workers) {
      if (state.heartbeat.draining || exclude.has(workerId)) continue;
      scored.push({
        workerId,
        score: rendezvousScore(workerId, key),
        idle: this.idleWarm(state, fn),
        room: this.hasRoom(state, fn),
      });
    }
    const warm = scored
      .filter((w) => w.idle > 0)
      .sort((a, b) => b.idle - a.idle || b.score - a.score);
    const withRoom = scored.filter((w) => w.room).sort((a, b) => b.score - a.score);
    const order: string[] = [];
    for (const w of [...warm, ...withRoom]) {
      if (!order.includes(w.workerId)) order.push(w.workerId);
      if (order.length >= limit) break;
    }
    if (order.length === 0) {
      // Every worker looks full, but a heartbeat is a moment's picture and a
      // worker may make room by retiring idle sandboxes: let the home worker
      // have the final word (it answers CapacityError if it really is full).
      const home = scored.sort((a, b) => b.score - a.score)[0];
      if (home) order.push(home.workerId);
    }
    return order;
  }

  /** Count an invocation sent to a worker until its reply (or the next heartbeat). */
  claim(workerId: string, fn: FunctionRecord): Claim {
    const state = this.workers.get(workerId);
    if (!state) return { workerId, epoch: -1, warmKey: undefined, memoryMb: 0 };
    if (this.idleWarm(state, fn) > 0) {
      const key = revisionKey(fn);
      state.claimedWarm.set(key, (state.claimedWarm.get(key) ?? 0) + 1);
      return { workerId, epoch: state.epoch, warmKey: key, memoryMb: 0 };
    }
    state.claimedSandboxes += 1;
    state.claimedMemoryMb += fn.memoryMb;
    return { workerId, epoch: state.epoch, warmKey: undefined, memoryMb: fn.memoryMb };
  }

  release(claim: Claim): void {
    const state = this.workers.get(claim.workerId);
    if (!state || state.epoch !== claim.epoch) return;
    if (claim.warmKey !== undefined) {
      const left = (state.claimedWarm.get(claim.warmKey) ?? 1) - 1;
      if (left <= 0) state.claimedWarm.delete(claim.warmKey);
      else state.claimedWarm.set(claim.warmKey, left);
    } else {
      state.claimedSandboxes = Math.max(0, state.claimedSandboxes - 1);
      state.claimedMemoryMb = Math.max(0, state.claimedMemoryMb - claim.memoryMb);
    }
  }
}
