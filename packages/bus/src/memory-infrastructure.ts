/**
 * Everything a Gust service needs, in one process and without a server: the
 * embedded default of `gust dev`. Buckets and stores are created on first use
 * and shared by every caller of the same name, as JetStream's are.
 */
import { Subjects } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import { BusClosedError, rejectOnThrow } from "./errors.js";
import { MemoryBlobStore } from "./memory-blobs.js";
import { MemoryBus } from "./memory-bus.js";
import { MemoryKvBucket } from "./memory-kv.js";
import { MemoryWorkQueue } from "./memory-queue.js";
import { assertBucketName } from "./names.js";
import type { BlobStore, Infrastructure, KvBucket, WorkQueue } from "./types.js";

export interface MemoryInfrastructureOptions {
  /** Largest message or KV value, as a NATS server's max_payload. @default DEFAULT_MAX_PAYLOAD_BYTES */
  maxPayloadBytes?: number;
  /** @default createLogger("bus") */
  logger?: Logger;
}

export function createMemoryInfrastructure(
  options: MemoryInfrastructureOptions = {},
): Infrastructure {
  const logger = options.logger ?? createLogger("bus");
  const bus = new MemoryBus({
    logger,
    ...(options.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: options.maxPayloadBytes }),
  });
  const buckets = new Map<string, MemoryKvBucket>();
  const stores = new Map<string, MemoryBlobStore>();
  let eventQueue: MemoryWorkQueue | undefined;
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new BusClosedError("the infrastructure is closed");
  };

  return {
    bus,
    kv(bucket: string): Promise<KvBucket> {
      return rejectOnThrow(() => {
        assertOpen();
        assertBucketName(bucket);
        let found = buckets.get(bucket);
        if (found === undefined) {
          found = new MemoryKvBucket(bucket, {
            logger,
            ...(options.maxPayloadBytes === undefined
              ? {}
              : { maxValueBytes: options.maxPayloadBytes }),
          });
          buckets.set(bucket, found);
        }
        return found;
      });
    },
    blobs(store: string): Promise<BlobStore> {
      return rejectOnThrow(() => {
        assertOpen();
        assertBucketName(store);
        let found = stores.get(store);
        if (found === undefined) {
          found = new MemoryBlobStore(store);
          stores.set(store, found);
        }
        return found;
      });
    },
    eventQueue(): Promise<WorkQueue> {
      return rejectOnThrow(() => {
        assertOpen();
        eventQueue ??= new MemoryWorkQueue({ subjects: Subjects.allEvents, logger });
        return eventQueue;
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const bucket of buckets.values()) bucket.close();
      for (const store of stores.values()) store.close();
      await eventQueue?.close();
      await bus.close();
    },
  };
}
