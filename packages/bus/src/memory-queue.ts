/**
 * An in-memory work queue with the delivery rules of a JetStream work-queue
 * stream and one shared pull consumer:
 * - a job stays until acked; pending() counts it until then;
 * - each delivery goes to one consumer, consumers taking turns;
 * - a delivery not acked within the consumer's ackWaitMs is made again (the
 *   consumer is presumed dead), inProgress() restarts that clock;
 * - retry(delayMs) makes the job deliverable again after the delay;
 * - an ack from an earlier delivery still removes the job (JetStream acks by
 *   stream sequence), while retry/inProgress from a superseded delivery are
 *   ignored.
 * A consumer runs at most `concurrency` handlers at once; a slot frees when
 * the handler returns, not when the job is acked.
 */
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import { BusClosedError, InvalidBusArgumentError, rejectOnThrow } from "./errors.js";
import { resolveConsumeOptions, runJob } from "./job-runner.js";
import { assertPublishSubject, matchTokens, normalizeHeaders, parsePattern } from "./names.js";
import type { ConsumeOptions, Consumer, Headers, QueueJob, WorkQueue } from "./types.js";

export interface MemoryWorkQueueOptions {
  /** Subjects the queue accepts, as a stream's subject filter. @default ">" */
  subjects?: string;
  /** @default createLogger("bus") */
  logger?: Logger;
}

type JobState = "ready" | "delivered" | "delayed";

interface StoredJob {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  state: JobState;
  deliveryCount: number;
  /** Identifies the current delivery, so a superseded one cannot retry or extend it. */
  delivery: number;
  timer: NodeJS.Timeout | undefined;
}

interface MemoryConsumer {
  readonly handler: (job: QueueJob) => Promise<void>;
  readonly options: ConsumeOptions;
  running: number;
  stopped: boolean;
  idle: (() => void) | undefined;
}

export class MemoryWorkQueue implements WorkQueue {
  readonly #subjectTokens: readonly string[];
  readonly #logger: Logger;
  /** Insertion order is delivery order. */
  readonly #jobs = new Set<StoredJob>();
  readonly #consumers: MemoryConsumer[] = [];
  #nextConsumer = 0;
  #deliverySeq = 0;
  #dispatchScheduled = false;
  #closed = false;

  constructor(options: MemoryWorkQueueOptions = {}) {
    this.#subjectTokens = parsePattern(options.subjects ?? ">");
    this.#logger = options.logger ?? createLogger("bus");
  }

  enqueue(subject: string, data: Uint8Array, headers?: Headers): Promise<void> {
    return rejectOnThrow(() => {
      this.#assertOpen();
      assertPublishSubject(subject);
      if (!matchTokens(this.#subjectTokens, subject.split("."))) {
        throw new InvalidBusArgumentError(`subject ${subject} is not part of this queue`);
      }
      if (!(data instanceof Uint8Array))
        throw new InvalidBusArgumentError("job data must be a Uint8Array");
      this.#jobs.add({
        subject,
        data: data.slice(),
        headers: normalizeHeaders(headers),
        state: "ready",
        deliveryCount: 0,
        delivery: 0,
        timer: undefined,
      });
      this.#scheduleDispatch();
    });
  }

  consume(handler: (job: QueueJob) => Promise<void>, options: ConsumeOptions): Promise<Consumer> {
    return rejectOnThrow(() => {
      this.#assertOpen();
      const consumer: MemoryConsumer = {
        handler,
        options: resolveConsumeOptions(options),
        running: 0,
        stopped: false,
        idle: undefined,
      };
      this.#consumers.push(consumer);
      this.#scheduleDispatch();
      return {
        stop: () => this.#stopConsumer(consumer),
      };
    });
  }

  pending(): Promise<number> {
    return Promise.resolve(this.#jobs.size);
  }

  /** Stops every consumer (without waiting for their handlers) and drops all timers. */
  close(): Promise<void> {
    this.#closed = true;
    for (const consumer of this.#consumers) consumer.stopped = true;
    this.#consumers.length = 0;
    for (const job of this.#jobs) clearTimeout(job.timer);
    this.#jobs.clear();
    return Promise.resolve();
  }

  #stopConsumer(consumer: MemoryConsumer): Promise<void> {
    consumer.stopped = true;
    const index = this.#consumers.indexOf(consumer);
    if (index >= 0) this.#consumers.splice(index, 1);
    if (consumer.running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      consumer.idle = resolve;
    });
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled || this.#closed) return;
    this.#dispatchScheduled = true;
    setImmediate(() => {
      this.#dispatchScheduled = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const job of this.#jobs) {
      if (job.state !== "ready") continue;
      const consumer = this.#takeConsumer();
      if (consumer === undefined) return;
      this.#deliver(job, consumer);
    }
  }

  /** The next consumer with a free slot, in turn. */
  #takeConsumer(): MemoryConsumer | undefined {
    const count = this.#consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#nextConsumer + i) % count;
      const consumer = this.#consumers[index];
      if (consumer && !consumer.stopped && consumer.running < consumer.options.concurrency) {
        this.#nextConsumer = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  #deliver(job: StoredJob, consumer: MemoryConsumer): void {
    const delivery = ++this.#deliverySeq;
    job.state = "delivered";
    job.deliveryCount += 1;
    job.delivery = delivery;
    this.#startAckWait(job, consumer.options.ackWaitMs);

    const current = () =>
      this.#jobs.has(job) && job.delivery === delivery && job.state === "delivered";
    const queueJob: QueueJob = {
      subject: job.subject,
      data: job.data.slice(),
      headers: job.headers,
      deliveryCount: job.deliveryCount,
      ack: () => {
        if (this.#jobs.delete(job)) clearTimeout(job.timer);
        return Promise.resolve();
      },
      retry: (delayMs: number) => {
        if (current()) this.#delay(job, Number.isFinite(delayMs) ? Math.max(0, delayMs) : 0);
        return Promise.resolve();
      },
      inProgress: () => {
        if (current()) this.#startAckWait(job, consumer.options.ackWaitMs);
        return Promise.resolve();
      },
    };

    consumer.running += 1;
    void runJob(consumer.handler, queueJob, this.#logger).finally(() => {
      consumer.running -= 1;
      if (consumer.stopped && consumer.running === 0) consumer.idle?.();
      this.#scheduleDispatch();
    });
  }

  #startAckWait(job: StoredJob, ackWaitMs: number): void {
    clearTimeout(job.timer);
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (job.state !== "delivered" || !this.#jobs.has(job)) return;
      job.state = "ready";
      this.#scheduleDispatch();
    }, ackWaitMs);
  }

  #delay(job: StoredJob, delayMs: number): void {
    clearTimeout(job.timer);
    job.state = "delayed";
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (!this.#jobs.has(job)) return;
      job.state = "ready";
      this.#scheduleDispatch();
    }, delayMs);
  }

  #assertOpen(): void {
    if (this.#closed) throw new BusClosedError("the work queue is closed");
  }
}
