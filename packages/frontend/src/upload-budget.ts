/**
 * How many bytes of code uploads (CreateFunction, UpdateFunctionCode) one
 * frontend holds at once: a semaphore counted in bytes, first come first
 * served. An upload takes its Content-Length (or the request limit when it
 * declares none) before its body is read and gives it back when its answer
 * is ready; one that does not fit waits, its body unread in the socket (TCP
 * holds the client back), and after `maxWaitMs` is answered with Lambda's
 * retryable 429.
 *
 * An upload holds at most its decoded zip, which is smaller than its body
 * (code-request.ts), so the frontend's memory stays below
 * baseline + capacity: with the default, two bodies of the largest size.
 */
import { ThrottleError } from "./api-errors.js";

/** Lambda's reason for a control-plane throttle. */
export const UPLOAD_THROTTLE_REASON = "CallerRateLimitExceeded";

export class UploadBudget {
  readonly capacity: number;
  readonly maxWaitMs: number;
  #inUse = 0;
  readonly #waiting: Array<{ bytes: number; grant: () => void }> = [];

  constructor(capacity: number, maxWaitMs: number) {
    this.capacity = capacity;
    this.maxWaitMs = maxWaitMs;
  }

  /** Bytes held by uploads in progress. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Uploads waiting for room. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves with the release once `bytes` fit (a request larger than the
   * whole budget waits for all of it); rejects with a 429 after `maxWaitMs`,
   * or with `signal`'s reason when the client goes away first.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const amount = Math.min(Math.max(0, bytes), this.capacity);
    if (this.#waiting.length === 0 && this.#inUse + amount <= this.capacity) {
      return Promise.resolve(this.#take(amount));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        bytes: amount,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(this.#take(amount));
        },
      };
      const leave = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        // Those behind may fit now.
        this.#pump();
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        leave();
        reject(new ThrottleError(UPLOAD_THROTTLE_REASON));
      }, this.maxWaitMs);
      const onAbort = () => {
        clearTimeout(timer);
        leave();
        reject(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #take(amount: number): () => void {
    this.#inUse += amount;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse -= amount;
      this.#pump();
    };
  }

  #pump(): void {
    for (;;) {
      const next = this.#waiting[0];
      if (next === undefined || this.#inUse + next.bytes > this.capacity) return;
      this.#waiting.shift();
      next.grant();
    }
  }
}
