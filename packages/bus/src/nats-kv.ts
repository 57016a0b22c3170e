/**
 * A KvBucket on JetStream KV (ADR-8). Revisions are stream sequences; a
 * compare-and-set is a publish with Nats-Expected-Last-Subject-Sequence, and
 * the server's "wrong last sequence" answer becomes a ConflictError.
 *
 * The bucket is created with only what a 2.9 server understands: nats.js
 * leaves out compression, metadata and message TTLs unless asked, and
 * derives allow_direct from the server version.
 */
import { ConflictError } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { InvalidBusArgumentError } from "./errors.js";
import { assertBucketName, assertKvFilter, assertKvKey } from "./names.js";
import { toGustError } from "./nats-errors.js";
import type { KvBucket, KvChange, KvEntry, KvWatch } from "./types.js";

export type JetStreamStorage = "file" | "memory";

export interface NatsKvBucketOptions {
  /** @default "file" */
  storage?: JetStreamStorage;
  /** @default 1 */
  replicas?: number;
  /** Values kept per key; Gust reads only the latest. @default 1 */
  history?: number;
  /** @default createLogger("bus") */
  logger?: Logger;
}

export class NatsKvBucket implements KvBucket {
  readonly name: string;
  readonly #kv: KV;
  readonly #logger: Logger;
  readonly #watches = new Set<KvWatch>();

  private constructor(name: string, kv: KV, logger: Logger) {
    this.name = name;
    this.#kv = kv;
    this.#logger = logger;
  }

  /** Opens the bucket, creating it if absent; safe when several processes do it at once. */
  static async open(
    js: JetStreamClient,
    name: string,
    options: NatsKvBucketOptions = {},
  ): Promise<NatsKvBucket> {
    assertBucketName(name);
    const kvm = new Kvm(js);
    const config = {
      storage: options.storage ?? "file",
      replicas: options.replicas ?? 1,
      history: options.history ?? 1,
    } as const;
    let kv: KV;
    try {
      kv = await kvm.create(name, config);
    } catch (first) {
      // Another process may have created it between our lookup and our create
      // (or with a different config): opening what exists is what we want.
      try {
        kv = await kvm.create(name, config);
      } catch {
        throw toGustError(first, `open KV bucket ${name}`);
      }
    }
    return new NatsKvBucket(name, kv, options.logger ?? createLogger("bus"));
  }

  async get(key: string): Promise<KvEntry | undefined> {
    assertKvKey(key);
    try {
      const entry = await this.#kv.get(key);
      if (entry === null || entry.operation !== "PUT") return undefined;
      return { key, value: entry.value, revision: entry.revision };
    } catch (error) {
      throw toGustError(error, `get ${this.name}/${key}`);
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    assertValue(key, value);
    try {
      return await this.#kv.put(key, value);
    } catch (error) {
      throw toGustError(error, `put ${this.name}/${key}`, value.byteLength);
    }
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    assertValue(key, value);
    try {
      return await this.#kv.create(key, value);
    } catch (error) {
      const mapped = toGustError(error, `create ${this.name}/${key}`, value.byteLength);
      if (mapped instanceof ConflictError) {
        throw new ConflictError(`key ${key} already exists in bucket ${this.name}`, {
          cause: error,
        });
      }
      throw mapped;
    }
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    assertValue(key, value);
    assertRevision(expectedRevision);
    try {
      return await this.#kv.update(key, value, expectedRevision);
    } catch (error) {
      throw toGustError(
        error,
        `update ${this.name}/${key} at revision ${expectedRevision}`,
        value.byteLength,
      );
    }
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    assertKvKey(key);
    try {
      if (expectedRevision === undefined) {
        // Idempotent, and quiet: deleting a missing key writes no tombstone
        // that watchers would hear about.
        if ((await this.get(key)) === undefined) return;
        await this.#kv.delete(key);
      } else {
        assertRevision(expectedRevision);
        await this.#kv.delete(key, { previousSeq: expectedRevision });
      }
    } catch (error) {
      throw toGustError(error, `delete ${this.name}/${key}`);
    }
  }

  async keys(filter = ">"): Promise<string[]> {
    assertKvFilter(filter);
    try {
      const keys: string[] = [];
      for await (const key of await this.#kv.keys(filter)) keys.push(key);
      return [...new Set(keys)].sort();
    } catch (error) {
      throw toGustError(error, `list keys of ${this.name}`);
    }
  }

  async watch(filter: string, onChange: (change: KvChange) => void): Promise<KvWatch> {
    assertKvFilter(filter);
    let iterator: Awaited<ReturnType<KV["watch"]>>;
    try {
      iterator = await this.#kv.watch({ key: filter, include: KvWatchInclude.UpdatesOnly });
    } catch (error) {
      throw toGustError(error, `watch ${this.name}/${filter}`);
    }
    let stopped = false;
    const watch: KvWatch = {
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.#watches.delete(watch);
        iterator.stop();
      },
    };
    this.#watches.add(watch);
    void (async () => {
      try {
        for await (const entry of iterator) {
          if (stopped) break;
          this.#emit(onChange, entry);
        }
        // nats.js ends the iterator only when the connection closes for good.
        if (!stopped) this.#logger.warn("KV watch ended", { bucket: this.name, filter });
      } catch (error) {
        if (!stopped) this.#logger.error("KV watch failed", { bucket: this.name, filter, error });
      }
    })();
    return watch;
  }

  /** Stops every watch opened on this bucket. */
  close(): void {
    for (const watch of [...this.#watches]) watch.stop();
  }

  #emit(onChange: (change: KvChange) => void, entry: KvWatchEntry): void {
    const change: KvChange =
      entry.operation === "PUT"
        ? { op: "put", key: entry.key, value: entry.value, revision: entry.revision }
        : { op: "delete", key: entry.key, revision: entry.revision };
    try {
      onChange(change);
    } catch (error) {
      this.#logger.error("KV watch listener failed", { bucket: this.name, key: entry.key, error });
    }
  }
}

function assertValue(key: string, value: Uint8Array): void {
  assertKvKey(key);
  if (!(value instanceof Uint8Array))
    throw new InvalidBusArgumentError("KV values must be Uint8Array");
}

function assertRevision(revision: number): void {
  if (!Number.isInteger(revision) || revision < 1) {
    throw new InvalidBusArgumentError(
      `expected revision must be a positive integer, got ${String(revision)}`,
    );
  }
}
