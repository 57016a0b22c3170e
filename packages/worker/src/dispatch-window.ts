/**
 * How many short invocations a worker hands to its sandboxes at once.
 *
 * A sandbox is a process of its own, woken for each invocation. When more
 * invocations are handed out at once than the machine has cores, each waits
 * for a core in its own sandbox, and the sandboxes take turns: every one runs
 * with caches that the others have just emptied, on code that has run too
 * little to be optimized. For short invocations that is most of their cost:
 * with 64 clients of a no-op function on 2 cores, sandboxes used ≈320 µs of
 * CPU per invocation; with at most 4 handed out at once, ≈90 µs, and the
 * worker served about half as many again.
 *
 * So the invocations of short functions queue, first come first served,
 * while `slots` of them are out. A function becomes short when at least 12
 * of its last 16 runs took less than `shortMs` inside the sandbox, as its
 * runtime reports (Gust's Node.js runtime does): a measure without the wait
 * for a core, which would otherwise make every function look long under
 * load. It stops being short only when at most 4 of them did: a run can
 * still be stretched by the sandbox losing its core midway, and a function
 * that flipped to long under load would send every waiting invocation out
 * at once.
 *
 * An invocation holds its slot until it is answered, or for `holdMs` at
 * most, so that a short function's long run (or a runaway loop) holds up
 * the others for no longer than that. That time counts only while the
 * worker's own event loop keeps up: when it stalls (a spawn, a pause of the
 * machine), answers wait unread, and letting every waiting invocation out
 * at once then would start sandboxes for all of them.
 *
 * Functions not known to be short — new, slower, or on a runtime that
 * reports nothing — never wait: a function that waits on I/O needs every
 * execution environment it asks for, at once.
 */

export interface DispatchWindowOptions {
  /** Short invocations out at once. 0 turns the window off. */
  slots: number;
  /** The longest an invocation holds its slot, answered or not. */
  holdMs: number;
  /** A run shorter than this inside the sandbox counts as short. */
  shortMs: number;
  /** @default performance.now */
  now?: () => number;
}

/** Two slots a core: measured best among 4, 6 and 8 on 2 cores (no-op function, 64 clients). */
export const DISPATCH_SLOTS_PER_CORE = 2;
export const DEFAULT_DISPATCH_HOLD_MS = 10;
export const DEFAULT_SHORT_RUN_MS = 1;

/** Runs remembered per function; how many must be short to become short, and to stay short. */
const RECENT_RUNS = 16;
const SHORT_RUNS_TO_BECOME = 12;
const SHORT_RUNS_TO_STAY = 5;
const RECENT_MASK = (1 << RECENT_RUNS) - 1;
/** Functions remembered; beyond it the longest-known is forgotten (it starts unheld again). */
const MAX_FUNCTIONS = 10_000;
/** A timer this late means the event loop stalled: the time is not held against the slots. */
const STALL_MS = 2;

/** A slot taken by an invocation; `undefined` when it did not need one. */
export interface DispatchPass {
  /** When it was taken, moved later by the worker's stalls. */
  at: number;
}

interface RecentRuns {
  /** Bit i set: the i-th latest run was short. */
  shortBits: number;
  count: number;
  short: boolean;
}

function bitCount(value: number): number {
  let bits = value;
  let count = 0;
  while (bits !== 0) {
    bits &= bits - 1;
    count++;
  }
  return count;
}

export class DispatchWindow {
  readonly #options: Required<DispatchWindowOptions>;
  /** Passes out, oldest first. */
  #out: DispatchPass[] = [];
  #waiting: Array<(pass: DispatchPass) => void> = [];
  readonly #runs = new Map<string, RecentRuns>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: DispatchWindowOptions) {
    this.#options = { now: () => performance.now(), ...options };
  }

  /** Whether invocations of the function wait for a slot. */
  isShort(functionKey: string): boolean {
    return this.#runs.get(functionKey)?.short === true;
  }

  /**
   * A pass for one invocation of the function: at once, or when a slot
   * frees. Undefined for a function that is not short (or a window that is
   * off): nothing to give back.
   */
  enter(functionKey: string): DispatchPass | undefined | Promise<DispatchPass> {
    if (this.#options.slots === 0 || this.#closed || !this.isShort(functionKey)) return undefined;
    if (this.#waiting.length === 0 && this.#out.length < this.#options.slots) return this.#take();
    const pass = new Promise<DispatchPass>((resolve) => this.#waiting.push(resolve));
    this.#arm();
    return pass;
  }

  /** The invocation is answered: its slot goes to the next one waiting. */
  leave(pass: DispatchPass | undefined): void {
    if (pass === undefined) return;
    const index = this.#out.indexOf(pass);
    if (index >= 0) this.#out.splice(index, 1);
    this.#admit();
  }

  /** How long a run of the function took inside its sandbox; undefined when not reported. */
  learn(functionKey: string, runDurationMs: number | undefined): void {
    if (runDurationMs === undefined) return;
    let runs = this.#runs.get(functionKey);
    if (runs === undefined) {
      if (this.#runs.size >= MAX_FUNCTIONS) {
        const oldest = this.#runs.keys().next().value;
        if (oldest !== undefined) this.#runs.delete(oldest);
      }
      runs = { shortBits: 0, count: 0, short: false };
      this.#runs.set(functionKey, runs);
    }
    const short = runDurationMs < this.#options.shortMs ? 1 : 0;
    runs.shortBits = ((runs.shortBits << 1) | short) & RECENT_MASK;
    runs.count = Math.min(RECENT_RUNS, runs.count + 1);
    if (runs.count < RECENT_RUNS) return;
    const shortRuns = bitCount(runs.shortBits);
    runs.short = runs.short ? shortRuns >= SHORT_RUNS_TO_STAY : shortRuns >= SHORT_RUNS_TO_BECOME;
  }

  /** How many invocations wait for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Lets everything waiting go, and holds nothing from now on. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.#options.now();
    for (const resolve of this.#waiting.splice(0)) resolve({ at: now });
  }

  #take(): DispatchPass {
    const pass = { at: this.#options.now() };
    this.#out.push(pass);
    return pass;
  }

  /** Passes held past holdMs no longer count. */
  #expire(): void {
    const cutoff = this.#options.now() - this.#options.holdMs;
    let expired = 0;
    while (expired < this.#out.length && this.#out[expired]!.at <= cutoff) expired++;
    if (expired > 0) this.#out.splice(0, expired);
  }

  #admit(): void {
    while (this.#waiting.length > 0 && this.#out.length < this.#options.slots) {
      this.#waiting.shift()!(this.#take());
    }
    this.#arm();
  }

  /**
   * While some wait, wake up when the oldest pass out expires. Passes
   * expire only there, on a timer that fired on time: one that fires late
   * found the event loop stalled, and the answers read once it runs again
   * free their slots as they should.
   */
  #arm(): void {
    if (this.#timer !== undefined || this.#waiting.length === 0) return;
    const oldest = this.#out[0];
    const now = this.#options.now();
    const dueAt = oldest === undefined ? now : oldest.at + this.#options.holdMs;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        const late = this.#options.now() - dueAt;
        if (late > STALL_MS) for (const pass of this.#out) pass.at += late;
        else this.#expire();
        this.#admit();
      },
      Math.max(0, dueAt - now),
    );
    this.#timer.unref();
  }
}
