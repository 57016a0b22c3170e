/**
 * The pull loop behind one JetStreamWorkQueue.consume() call. It never asks
 * the server for more jobs than it has free handler slots (a job waiting in
 * a client buffer burns its ackWait with nobody working on it), rides out
 * disconnects with a growing backoff, and puts the stream and consumer back
 * if they vanish.
 */
import type { Logger } from "@gust/telemetry";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type {
  Consumer as JsConsumer,
  ConsumerMessages,
  JetStreamClient,
  JsMsg,
} from "@nats-io/jetstream";
import { runJob } from "./job-runner.js";
import { EMPTY_HEADERS } from "./names.js";
import { toGustError } from "./nats-errors.js";
import { fromNatsHeaders } from "./nats-headers.js";
import type { ConsumeOptions, Headers, QueueJob } from "./types.js";

const ERROR_BACKOFF_MS = [250, 500, 1_000, 2_000, 5_000] as const;

export interface PullLoopSettings {
  stream: string;
  consumer: string;
  pullExpiresMs: number;
  logger: Logger;
}

/** One consume() call: pulls as many jobs as it has free slots and runs them. */
export class PullLoop {
  readonly #js: JetStreamClient;
  readonly #options: PullLoopSettings;
  readonly #consume: ConsumeOptions;
  readonly #handler: (job: QueueJob) => Promise<void>;
  readonly #recreateConsumer: () => Promise<void>;
  readonly #running = new Set<Promise<void>>();
  #stopped = false;
  #batch: ConsumerMessages | undefined;
  #wake: (() => void) | undefined;
  #done: Promise<void> = Promise.resolve();
  #consumer: JsConsumer | undefined;

  constructor(
    js: JetStreamClient,
    options: PullLoopSettings,
    consume: ConsumeOptions,
    handler: (job: QueueJob) => Promise<void>,
    recreateConsumer: () => Promise<void>,
  ) {
    this.#js = js;
    this.#options = options;
    this.#consume = consume;
    this.#handler = handler;
    this.#recreateConsumer = recreateConsumer;
  }

  start(): void {
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#batch?.stop();
    this.#wake?.();
    await this.#done;
    await Promise.allSettled([...this.#running]);
  }

  async #run(): Promise<void> {
    const { stream, consumer: name, logger } = this.#options;
    let failures = 0;
    while (!this.#stopped) {
      const free = this.#consume.concurrency - this.#running.size;
      if (free <= 0) {
        await this.#pause(Number.POSITIVE_INFINITY);
        continue;
      }
      try {
        this.#consumer ??= await this.#js.consumers.get(stream, name);
        const consumer = this.#consumer;
        if (this.#stopped) break;
        const batch = await consumer.fetch({
          max_messages: free,
          expires: this.#options.pullExpiresMs,
        });
        this.#batch = batch;
        if (this.#stopped) batch.stop();
        for await (const msg of batch) {
          if (this.#stopped) {
            // Pulled as we stopped: hand it straight back instead of letting it wait out ackWait.
            msg.nak();
            continue;
          }
          this.#start(msg);
        }
        failures = 0;
      } catch (error) {
        if (this.#stopped) break;
        this.#consumer = undefined;
        const delay = ERROR_BACKOFF_MS[Math.min(failures, ERROR_BACKOFF_MS.length - 1)] ?? 5_000;
        failures += 1;
        logger.warn("pulling jobs failed; retrying", {
          stream,
          consumer: name,
          delayMs: delay,
          error,
        });
        await this.#pause(delay);
        if (!this.#stopped && isMissingConsumer(error)) {
          await this.#recreateConsumer().catch((recreateError: unknown) =>
            logger.warn("could not recreate the consumer", {
              stream,
              consumer: name,
              error: recreateError,
            }),
          );
        }
      } finally {
        this.#batch = undefined;
      }
    }
  }

  /** Sleeps until the delay passes, a handler finishes or stop() is called. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => wake(), ms) : undefined;
      const wake = () => {
        clearTimeout(timer);
        if (this.#wake === wake) this.#wake = undefined;
        resolve();
      };
      this.#wake = wake;
    });
  }

  #start(msg: JsMsg): void {
    const job = toQueueJob(msg);
    const running: Promise<void> = runJob(this.#handler, job, this.#options.logger).finally(() => {
      this.#running.delete(running);
      this.#wake?.();
    });
    this.#running.add(running);
  }
}

function toQueueJob(msg: JsMsg): QueueJob {
  return {
    subject: msg.subject,
    data: msg.data,
    headers: readHeaders(msg),
    deliveryCount: msg.info.deliveryCount,
    ack: async () => {
      try {
        await msg.ackAck();
      } catch (error) {
        throw toGustError(error, `ack job on ${msg.subject}`);
      }
    },
    retry: (delayMs: number) => {
      const delay = Number.isFinite(delayMs) ? Math.max(0, Math.round(delayMs)) : 0;
      try {
        msg.nak(delay);
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(toGustError(error, `retry job on ${msg.subject}`));
      }
    },
    inProgress: () => {
      try {
        msg.working();
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(toGustError(error, `extend job on ${msg.subject}`));
      }
    },
  };
}

function readHeaders(msg: JsMsg): Headers {
  try {
    return fromNatsHeaders(() => msg.headers);
  } catch {
    return EMPTY_HEADERS;
  }
}

function isMissingConsumer(error: unknown): boolean {
  return (
    (error instanceof JetStreamApiError &&
      (error.code === JetStreamApiCodes.ConsumerNotFound ||
        error.code === JetStreamApiCodes.StreamNotFound)) ||
    (error instanceof Error && /consumer (not found|deleted)/i.test(error.message))
  );
}
