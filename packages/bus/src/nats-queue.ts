/**
 * The Event invocation queue on JetStream: one stream with work-queue
 * retention (a message is removed once acked) and one shared durable pull
 * consumer with explicit acks, which every consuming process pulls from, so
 * each job goes to one of them.
 *
 * Each consume() runs a PullLoop (nats-pull-loop.ts). retry(delayMs) is a
 * NAK with a delay; the delivery count comes from the message's JetStream
 * metadata.
 *
 * The consumer's ack_wait is set from the ackWaitMs of each consume() call;
 * it is one setting for the whole fleet, so processes should agree on it
 * (the last to start wins).
 */
import { ConfigError, NoRespondersError, Streams, Subjects } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { ConsumerConfig, JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { InvalidBusArgumentError } from "./errors.js";
import { resolveConsumeOptions } from "./job-runner.js";
import { PullLoop } from "./nats-pull-loop.js";
import { assertBucketName, assertPublishSubject, matchTokens, parsePattern } from "./names.js";
import { toNatsHeaders } from "./nats-headers.js";
import { toGustError } from "./nats-errors.js";
import type { JetStreamStorage } from "./nats-kv.js";
import type { ConsumeOptions, Consumer, Headers, QueueJob, WorkQueue } from "./types.js";

export const DEFAULT_EVENT_CONSUMER = "gust-event-workers";
/** How long one pull waits at the server before it is renewed. */
export const DEFAULT_PULL_EXPIRES_MS = 5_000;
/**
 * Jobs delivered but not yet acked, fleet-wide. Delayed retries count too,
 * so the server's default of 1,000 would let a backlog of retries stall new
 * jobs.
 */
export const DEFAULT_MAX_ACK_PENDING = 100_000;

export interface JetStreamWorkQueueOptions {
  /** @default Streams.events */
  stream?: string;
  /** @default [Subjects.allEvents] */
  subjects?: string[];
  /** Durable consumer shared by every process. @default DEFAULT_EVENT_CONSUMER */
  consumer?: string;
  /** @default "file" */
  storage?: JetStreamStorage;
  /** @default 1 */
  replicas?: number;
  /** @default DEFAULT_PULL_EXPIRES_MS */
  pullExpiresMs?: number;
  /** @default DEFAULT_MAX_ACK_PENDING */
  maxAckPending?: number;
  /** @default createLogger("bus") */
  logger?: Logger;
}

export interface ResolvedJetStreamWorkQueueOptions {
  stream: string;
  subjects: string[];
  consumer: string;
  storage: JetStreamStorage;
  replicas: number;
  pullExpiresMs: number;
  maxAckPending: number;
  logger: Logger;
}

export function resolveJetStreamWorkQueueOptions(
  options: JetStreamWorkQueueOptions = {},
): ResolvedJetStreamWorkQueueOptions {
  const resolved: ResolvedJetStreamWorkQueueOptions = {
    stream: options.stream ?? Streams.events,
    subjects: options.subjects ?? [Subjects.allEvents],
    consumer: options.consumer ?? DEFAULT_EVENT_CONSUMER,
    storage: options.storage ?? "file",
    replicas: options.replicas ?? 1,
    pullExpiresMs: options.pullExpiresMs ?? DEFAULT_PULL_EXPIRES_MS,
    maxAckPending: options.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
    logger: options.logger ?? createLogger("bus"),
  };
  assertBucketName(resolved.stream);
  assertBucketName(resolved.consumer);
  if (resolved.subjects.length === 0)
    throw new ConfigError("subjects must name at least one subject");
  resolved.subjects.forEach((s) => parsePattern(s));
  if (!Number.isInteger(resolved.replicas) || resolved.replicas < 1) {
    throw new ConfigError(`replicas must be a positive integer, got ${String(resolved.replicas)}`);
  }
  // nats.js refuses pulls shorter than a second.
  if (!Number.isFinite(resolved.pullExpiresMs) || resolved.pullExpiresMs < 1_000) {
    throw new ConfigError(
      `pullExpiresMs must be at least 1000, got ${String(resolved.pullExpiresMs)}`,
    );
  }
  if (!Number.isInteger(resolved.maxAckPending) || resolved.maxAckPending < 1) {
    throw new ConfigError(
      `maxAckPending must be a positive integer, got ${String(resolved.maxAckPending)}`,
    );
  }
  return resolved;
}

export class JetStreamWorkQueue implements WorkQueue {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #options: ResolvedJetStreamWorkQueueOptions;
  readonly #subjectPatterns: (readonly string[])[];
  readonly #loops = new Set<PullLoop>();

  private constructor(
    js: JetStreamClient,
    jsm: JetStreamManager,
    options: ResolvedJetStreamWorkQueueOptions,
  ) {
    this.#js = js;
    this.#jsm = jsm;
    this.#options = options;
    this.#subjectPatterns = options.subjects.map((s) => parsePattern(s));
  }

  /** Opens the queue, creating its stream if absent; safe when several processes do it at once. */
  static async open(
    js: JetStreamClient,
    options: JetStreamWorkQueueOptions = {},
  ): Promise<JetStreamWorkQueue> {
    const resolved = resolveJetStreamWorkQueueOptions(options);
    const jsm = await js.jetstreamManager();
    const queue = new JetStreamWorkQueue(js, jsm, resolved);
    await queue.#ensureStream();
    return queue;
  }

  async enqueue(subject: string, data: Uint8Array, headers?: Headers): Promise<void> {
    assertPublishSubject(subject);
    const tokens = subject.split(".");
    if (!this.#subjectPatterns.some((p) => matchTokens(p, tokens))) {
      throw new InvalidBusArgumentError(
        `subject ${subject} is not part of stream ${this.#options.stream}`,
      );
    }
    if (!(data instanceof Uint8Array))
      throw new InvalidBusArgumentError("job data must be a Uint8Array");
    const h = toNatsHeaders(headers);
    const publish = () => this.#js.publish(subject, data, h === undefined ? {} : { headers: h });
    try {
      await publish();
    } catch (error) {
      const mapped = toGustError(error, `enqueue on ${subject}`, data.byteLength);
      if (!(mapped instanceof NoRespondersError)) throw mapped;
      // No stream answers for the subject: it was deleted under us. Put it back, once.
      try {
        await this.#ensureStream();
        await publish();
      } catch (retryError) {
        throw toGustError(retryError, `enqueue on ${subject}`, data.byteLength);
      }
    }
  }

  async consume(
    handler: (job: QueueJob) => Promise<void>,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    const consumeOptions = resolveConsumeOptions(options);
    await this.#ensureConsumer(consumeOptions.ackWaitMs);
    // If the stream or consumer vanish (an operator deleted them), the loop puts them back.
    const recreate = async () => {
      await this.#ensureStream();
      await this.#ensureConsumer(consumeOptions.ackWaitMs);
    };
    const loop = new PullLoop(this.#js, this.#options, consumeOptions, handler, recreate);
    this.#loops.add(loop);
    loop.start();
    return {
      stop: async () => {
        this.#loops.delete(loop);
        await loop.stop();
      },
    };
  }

  async pending(): Promise<number> {
    try {
      const info = await this.#jsm.streams.info(this.#options.stream);
      return info.state.messages;
    } catch (error) {
      throw toGustError(error, `read the state of stream ${this.#options.stream}`);
    }
  }

  /** Stops every consumer this queue started and waits for their handlers. */
  async close(): Promise<void> {
    const loops = [...this.#loops];
    this.#loops.clear();
    await Promise.all(loops.map((loop) => loop.stop()));
  }

  async #ensureStream(): Promise<void> {
    const { stream, subjects, storage, replicas } = this.#options;
    try {
      await this.#jsm.streams.info(stream);
      return;
    } catch (error) {
      if (
        !(error instanceof JetStreamApiError) ||
        error.code !== JetStreamApiCodes.StreamNotFound
      ) {
        throw toGustError(error, `look up stream ${stream}`);
      }
    }
    try {
      await this.#jsm.streams.add({
        name: stream,
        subjects,
        retention: RetentionPolicy.Workqueue,
        storage: storage === "memory" ? StorageType.Memory : StorageType.File,
        num_replicas: replicas,
      });
    } catch (error) {
      // Another process created it first: fine, as long as it exists now.
      try {
        await this.#jsm.streams.info(stream);
      } catch {
        throw toGustError(error, `create stream ${stream}`);
      }
    }
  }

  async #ensureConsumer(ackWaitMs: number): Promise<void> {
    const { stream, consumer, maxAckPending } = this.#options;
    const config: Partial<ConsumerConfig> = {
      durable_name: consumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      deliver_policy: DeliverPolicy.All,
      replay_policy: ReplayPolicy.Instant,
      max_deliver: -1,
      max_ack_pending: maxAckPending,
    };
    try {
      const info = await this.#jsm.consumers.add(stream, config);
      if (info.config.ack_wait === config.ack_wait) return;
    } catch (error) {
      // 2.10+ refuses to "create" an existing consumer with another config;
      // 2.9 updates it in place. Either way, make sure ack_wait is ours.
      this.#options.logger.debug("consumer create refused; updating", { stream, consumer, error });
    }
    try {
      await this.#jsm.consumers.update(stream, consumer, {
        ack_wait: nanos(ackWaitMs),
        max_ack_pending: maxAckPending,
      });
    } catch (error) {
      throw toGustError(error, `create consumer ${consumer} on ${stream}`);
    }
  }
}
