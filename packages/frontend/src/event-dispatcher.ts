/**
 * The Event (asynchronous) invocation dispatcher: takes jobs off the durable
 * event queue and runs them through the same admission and routing as a
 * synchronous Invoke.
 *
 * Retries follow Lambda: a function error (handler error, timeout, crash,
 * init failure) is retried until 3 attempts in all, waiting about 1 and then
 * 2 minutes (`eventRetryDelaysMs`). A throttle or a fleet without capacity
 * is not the function's fault and spends no attempt. A failure of Gust's own
 * after the event was sent to a worker (the worker died, its reply was lost)
 * spends an attempt, since the function may have run, but is retried after
 * about a second, as Lambda retries its system errors, rather than after the
 * function-error delay.
 *
 * Counting attempts. A job's `deliveryCount` grows with every `retry`, and the
 * queue offers no way to rewrite a job, so a throttle must not use `retry`.
 * Instead:
 *   - within one delivery, a throttled event is tried again in process, with
 *     backoff, for up to `eventThrottleHoldMs`;
 *   - past that (or when this frontend stops), a copy of the event is
 *     enqueued carrying the attempts made so far in the `gust-event-attempts`
 *     header, and the original is acked.
 * So every delivery of a job but the current one ended in a failed attempt,
 * and the attempts made before this delivery are
 *   header + deliveryCount - 1.
 * A delivery cut short by a crashed frontend also counts: the function may
 * have run, and counting it keeps the total at 3 or fewer (Lambda promises at
 * least once, so a retry that was never needed is allowed; a 4th is not).
 * Enqueue-then-ack may duplicate an event if the ack fails, never lose it.
 *
 * Tracing: the job's headers carry the trace context of the Invoke request
 * that queued it (and a requeued copy keeps it), so each delivery's
 * `gust.event.dispatch` span joins the trace of that request.
 */
import type { Consumer, QueueJob, WorkQueue } from "@gust/bus";
import { BusHeaders, decodeAs, encode, Subjects, type EventInvocation } from "@gust/protocol";
import type { FunctionRegistry, TenantDirectory } from "@gust/registry";
import {
  endSpan,
  SpanAttributes,
  SpanKind,
  SpanNames,
  startMessageSpan,
  traceHeadersOf,
  type Logger,
  type Span,
} from "@gust/telemetry";
import { isCapacityShortage, type Invoker } from "./invoker.js";

export const EVENT_ATTEMPTS_HEADER = "gust-event-attempts";
/** Wait before retrying an event after a Gust-side failure (Lambda: system errors are retried from 1 s on). */
export const SERVICE_ERROR_RETRY_DELAY_MS = 1_000;

export interface EventDispatcherOptions {
  concurrency: number;
  ackWaitMs: number;
  retryDelaysMs: number[];
  maxEventAgeMs: number;
  throttleBackoffMs: number;
  throttleMaxBackoffMs: number;
  throttleHoldMs: number;
  now?: () => number;
}

export interface EventDispatcherDeps {
  queue: WorkQueue;
  registry: Pick<FunctionRegistry, "get">;
  tenants: Pick<TenantDirectory, "get">;
  invoker: Invoker;
  logger: Logger;
}

function priorAttempts(job: QueueJob): number {
  const header = Number(job.headers[EVENT_ATTEMPTS_HEADER] ?? "0");
  const carried = Number.isInteger(header) && header >= 0 ? header : 0;
  return carried + Math.max(job.deliveryCount, 1) - 1;
}

/** Resolves after ms, or at once when the signal aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export class EventDispatcher {
  private consumer: Consumer | undefined;
  private stopping = new AbortController();
  private readonly now: () => number;
  private readonly maxAttempts: number;

  constructor(
    private readonly deps: EventDispatcherDeps,
    private readonly options: EventDispatcherOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.maxAttempts = options.retryDelaysMs.length + 1;
  }

  async start(): Promise<void> {
    if (this.consumer) return;
    this.stopping = new AbortController();
    this.consumer = await this.deps.queue.consume((job) => this.handle(job), {
      concurrency: this.options.concurrency,
      ackWaitMs: this.options.ackWaitMs,
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.stop();
  }

  /** Never throws: every path acks, retries or hands the job back. */
  async handle(job: QueueJob): Promise<void> {
    const logger = this.deps.logger;
    let event: EventInvocation;
    try {
      event = decodeAs(job.data, "event");
    } catch (error) {
      logger.error("dropping a queued event that does not decode", { error });
      await this.settle(job.ack(), "ack");
      return;
    }
    const keepAlive = setInterval(
      () => {
        job
          .inProgress()
          .catch((error: unknown) => logger.warn("could not extend an event's lease", { error }));
      },
      Math.max(50, Math.floor(this.options.ackWaitMs / 2)),
    );
    const span = startMessageSpan(SpanNames.eventDispatch, SpanKind.CONSUMER, job.headers);
    span?.setAttribute(SpanAttributes.tenantId, event.tenantId);
    span?.setAttribute(SpanAttributes.functionName, event.functionName);
    span?.setAttribute(SpanAttributes.requestId, event.requestId);
    span?.setAttribute(SpanAttributes.invocationType, "Event");
    let failure: unknown;
    try {
      await this.run(job, event, span);
    } catch (error) {
      // run() handles its own failures; this is a fault in Gust. The job is
      // left unacked and comes back after ackWaitMs.
      failure = error;
      logger.error("event dispatch failed", { requestId: event.requestId, error });
    } finally {
      clearInterval(keepAlive);
      endSpan(span, failure);
    }
  }

  private tooOld(event: EventInvocation): boolean {
    return this.now() - event.enqueuedAt > this.options.maxEventAgeMs;
  }

  private async run(job: QueueJob, event: EventInvocation, span: Span | undefined): Promise<void> {
    const logger = this.deps.logger.child({
      requestId: event.requestId,
      tenantId: event.tenantId,
      functionName: event.functionName,
    });
    const attemptsBefore = priorAttempts(job);
    span?.setAttribute(SpanAttributes.eventAttempt, attemptsBefore + 1);
    if (this.tooOld(event)) {
      logger.warn("dropping an event older than the maximum event age", {
        ageMs: this.now() - event.enqueuedAt,
        maxEventAgeMs: this.options.maxEventAgeMs,
      });
      return this.settle(job.ack(), "ack");
    }
    if (attemptsBefore >= this.maxAttempts) {
      logger.warn("dropping an event that used all its attempts", { attempts: attemptsBefore });
      return this.settle(job.ack(), "ack");
    }
    const holdUntil = this.now() + this.options.throttleHoldMs;
    let backoff = this.options.throttleBackoffMs;
    let failure: string;
    for (;;) {
      // Looked up on every try: while the event waits, the function may be updated or deleted.
      const tenant = await this.deps.tenants.get(event.tenantId);
      const fn = tenant
        ? await this.deps.registry.get(event.tenantId, event.functionName)
        : undefined;
      if (!tenant || !fn) {
        logger.info("dropping an event whose function no longer exists");
        return this.settle(job.ack(), "ack");
      }
      try {
        const result = await this.deps.invoker.invoke({
          requestId: event.requestId,
          tenant,
          fn,
          payload: event.payload,
          tailLog: false,
          invocationType: "Event",
          span,
          ...(event.traceId === undefined ? {} : { traceId: event.traceId }),
        });
        if (result.outcome === "success") {
          logger.debug("event invocation succeeded", { attempt: attemptsBefore + 1 });
          return this.settle(job.ack(), "ack");
        }
        failure = result.outcome;
        break;
      } catch (error) {
        if (!isCapacityShortage(error)) {
          // A Gust-side failure after the worker may have run the function: an attempt.
          logger.warn("event invocation failed", { error });
          failure = "service-error";
          break;
        }
        const signal = this.stopping.signal;
        if (this.tooOld(event)) {
          logger.warn("dropping a throttled event older than the maximum event age", {
            maxEventAgeMs: this.options.maxEventAgeMs,
          });
          return this.settle(job.ack(), "ack");
        }
        if (signal.aborted || this.now() + backoff > holdUntil) {
          await this.handBack(job, event, attemptsBefore, logger);
          return;
        }
        // Full jitter keeps many throttled events from retrying in lockstep.
        await pause(Math.ceil(backoff * (0.5 + Math.random() / 2)), signal);
        backoff = Math.min(backoff * 2, this.options.throttleMaxBackoffMs);
        if (signal.aborted) {
          await this.handBack(job, event, attemptsBefore, logger);
          return;
        }
      }
    }

    const attempt = attemptsBefore + 1;
    if (attempt >= this.maxAttempts) {
      logger.warn("event invocation failed on its last attempt; dropping it", { attempt, failure });
      return this.settle(job.ack(), "ack");
    }
    const functionErrorDelayMs = this.options.retryDelaysMs[attempt - 1] ?? 0;
    const delayMs =
      failure === "service-error"
        ? Math.min(functionErrorDelayMs, SERVICE_ERROR_RETRY_DELAY_MS)
        : functionErrorDelayMs;
    logger.info("event invocation failed; will retry", { attempt, failure, delayMs });
    await this.settle(job.retry(delayMs), "retry");
  }

  /** Requeue without spending an attempt (see the header comment). */
  private async handBack(
    job: QueueJob,
    event: EventInvocation,
    attemptsBefore: number,
    logger: Logger,
  ): Promise<void> {
    try {
      await this.deps.queue.enqueue(Subjects.events(event.tenantId), encode(event), {
        ...traceHeadersOf(job.headers),
        [BusHeaders.requestId]: event.requestId,
        [EVENT_ATTEMPTS_HEADER]: String(attemptsBefore),
      });
    } catch (error) {
      // Leave the original unacked: it comes back after ackWaitMs.
      logger.error("could not requeue a throttled event", { error });
      return;
    }
    logger.debug("requeued a throttled event", { attempts: attemptsBefore });
    await this.settle(job.ack(), "ack");
  }

  private async settle(operation: Promise<void>, what: string): Promise<void> {
    try {
      await operation;
    } catch (error) {
      this.deps.logger.warn(`could not ${what} a queued event`, { error });
    }
  }
}
