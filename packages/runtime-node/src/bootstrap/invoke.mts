/**
 * Runs one invocation of a handler and settles on its outcome, covering the
 * three styles Lambda's Node runtime accepts: a returned promise, the
 * callback (and context.succeed/fail/done), and neither.
 *
 * Callback completions honour context.callbackWaitsForEmptyEventLoop: with
 * the default `true`, Lambda sends the result only once the event loop has
 * nothing left to do. Node reports that moment as `beforeExit`, which fires
 * only when no handle keeps the process alive; the Runtime API client's idle
 * keep-alive sockets are unref'd, so they do not count. A handler that never
 * completes at all gets a `null` result once the loop drains, as in Lambda.
 *
 * A runtime without callbacks (profile.mts) calls the handler with the event
 * and the context only, and takes what it returns, awaited when it is a
 * promise, as the result.
 */
import { createCallbackContext, createContext } from "./context.mjs";
import type { LambdaContext } from "./context.mjs";
import type { Handler } from "./handler.mjs";
import type { RuntimeProfile } from "./profile.mjs";
import type { Invocation } from "./runtime-api.mjs";

export type Outcome = { kind: "response"; result: unknown } | { kind: "error"; error: unknown };

/** Runs callbacks the next time the event loop has nothing left to do. */
export class EventLoopDrain {
  private waiting: Array<() => void> = [];
  private onIdle: (() => void) | undefined;

  constructor() {
    process.on("beforeExit", () => {
      const waiting = this.waiting;
      this.waiting = [];
      if (waiting.length === 0) {
        this.onIdle?.();
        return;
      }
      for (const run of waiting) run();
    });
  }

  /** Called when the loop drains and nobody was waiting: the bootstrap has lost its way. */
  setIdleHandler(handler: () => void): void {
    this.onIdle = handler;
  }

  whenEmpty(run: () => void): () => void {
    this.waiting.push(run);
    return () => {
      this.waiting = this.waiting.filter((entry) => entry !== run);
    };
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

export interface RunningInvocation {
  context: LambdaContext;
  outcome: Promise<Outcome>;
}

export function invoke(
  handler: Handler,
  event: unknown,
  invocation: Invocation,
  env: NodeJS.ProcessEnv,
  drain: EventLoopDrain,
  profile: RuntimeProfile,
): RunningInvocation {
  if (!profile.callbacks) return invokeWithoutCallback(handler, event, invocation, env, drain);
  let settle!: (outcome: Outcome) => void;
  const outcome = new Promise<Outcome>((resolve) => {
    settle = resolve;
  });
  let settled = false;
  let calledBack = false;
  const cancelDrainWaits: Array<() => void> = [];
  const finish = (result: Outcome) => {
    if (settled) return;
    settled = true;
    for (const cancel of cancelDrainWaits) cancel();
    settle(result);
  };

  // First completion wins; later calls (a second callback, a promise that
  // resolves after the callback) are ignored, as in Lambda.
  const complete = (error: unknown, result: unknown) => {
    if (settled || calledBack) return;
    calledBack = true;
    const done: Outcome =
      error === undefined || error === null
        ? { kind: "response", result }
        : { kind: "error", error };
    if (context.callbackWaitsForEmptyEventLoop)
      cancelDrainWaits.push(drain.whenEmpty(() => finish(done)));
    else finish(done);
  };
  const context = createCallbackContext(invocation, env, complete);
  cancelDrainWaits.push(
    drain.whenEmpty(() => {
      if (!calledBack) finish({ kind: "response", result: null });
    }),
  );

  try {
    const returned = handler(event, context, (error?: unknown, result?: unknown) =>
      complete(error, result),
    );
    if (isThenable(returned)) {
      returned.then(
        (result) => {
          if (!calledBack) finish({ kind: "response", result });
        },
        (error: unknown) => {
          if (!calledBack) finish({ kind: "error", error });
        },
      );
    }
  } catch (error) {
    finish({ kind: "error", error });
  }
  return { context, outcome };
}

function invokeWithoutCallback(
  handler: Handler,
  event: unknown,
  invocation: Invocation,
  env: NodeJS.ProcessEnv,
  drain: EventLoopDrain,
): RunningInvocation {
  const context = createContext(invocation, env);
  let cancelDrainWait: (() => void) | undefined;
  const outcome = new Promise<Outcome>((resolve) => {
    let settled = false;
    const finish = (result: Outcome) => {
      if (settled) return;
      settled = true;
      cancelDrainWait?.();
      resolve(result);
    };
    // A promise that can never settle (nothing left on the event loop) ends as in 1.0.0.
    cancelDrainWait = drain.whenEmpty(() => finish({ kind: "response", result: null }));
    try {
      const returned = (handler as (event: unknown, context: unknown) => unknown)(event, context);
      if (isThenable(returned)) {
        returned.then(
          (result) => finish({ kind: "response", result }),
          (error: unknown) => finish({ kind: "error", error }),
        );
      } else {
        finish({ kind: "response", result: returned });
      }
    } catch (error) {
      finish({ kind: "error", error });
    }
  });
  return { context, outcome };
}
