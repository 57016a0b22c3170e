/**
 * An in-memory KV bucket with JetStream KV's semantics, so that code tested
 * against it behaves the same on NATS:
 * - one revision counter per bucket (a JetStream KV revision is the stream
 *   sequence), so revisions grow across keys;
 * - a delete leaves a tombstone that keeps the key's last revision, and a
 *   compare-and-set against that revision succeeds, as on JetStream;
 * - watchers hear each change on a later turn of the event loop, in order.
 * Values are copied in and out, as bytes crossing a network would be.
 */
import { ConflictError } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import {
  BusClosedError,
  InvalidBusArgumentError,
  PayloadTooLargeError,
  rejectOnThrow,
} from "./errors.js";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "./memory-bus.js";
import {
  assertBucketName,
  assertKvFilter,
  assertKvKey,
  matchTokens,
  parsePattern,
} from "./names.js";
import type { KvBucket, KvChange, KvEntry, KvWatch } from "./types.js";

export interface MemoryKvBucketOptions {
  /** Largest value accepted. @default DEFAULT_MAX_PAYLOAD_BYTES */
  maxValueBytes?: number;
  /** @default createLogger("bus") */
  logger?: Logger;
}

interface StoredValue {
  /** undefined for a tombstone. */
  value: Uint8Array | undefined;
  revision: number;
}

interface Watcher {
  tokens: readonly string[];
  onChange: (change: KvChange) => void;
  stopped: boolean;
}

export class MemoryKvBucket implements KvBucket {
  readonly name: string;
  readonly #entries = new Map<string, StoredValue>();
  readonly #watchers = new Set<Watcher>();
  readonly #maxValueBytes: number;
  readonly #logger: Logger;
  #revision = 0;
  #closed = false;

  constructor(name: string, options: MemoryKvBucketOptions = {}) {
    assertBucketName(name);
    this.name = name;
    this.#maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.#logger = options.logger ?? createLogger("bus");
  }

  get(key: string): Promise<KvEntry | undefined> {
    return rejectOnThrow(() => {
      this.#assertOpen();
      assertKvKey(key);
      const stored = this.#entries.get(key);
      if (stored?.value === undefined) return undefined;
      return { key, value: stored.value.slice(), revision: stored.revision };
    });
  }

  put(key: string, value: Uint8Array): Promise<number> {
    return rejectOnThrow(() => this.#write(key, value));
  }

  create(key: string, value: Uint8Array): Promise<number> {
    return rejectOnThrow(() => {
      this.#assertWritable(key, value);
      if (this.#entries.get(key)?.value !== undefined) {
        throw new ConflictError(`key ${key} already exists in bucket ${this.name}`);
      }
      return this.#write(key, value);
    });
  }

  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    return rejectOnThrow(() => {
      this.#assertWritable(key, value);
      assertRevision(expectedRevision);
      this.#assertRevision(key, expectedRevision);
      return this.#write(key, value);
    });
  }

  delete(key: string, expectedRevision?: number): Promise<void> {
    return rejectOnThrow(() => {
      this.#assertOpen();
      assertKvKey(key);
      const stored = this.#entries.get(key);
      if (expectedRevision === undefined) {
        if (stored?.value === undefined) return;
      } else {
        assertRevision(expectedRevision);
        this.#assertRevision(key, expectedRevision);
      }
      const revision = ++this.#revision;
      this.#entries.set(key, { value: undefined, revision });
      this.#publish({ op: "delete", key, revision });
    });
  }

  keys(filter = ">"): Promise<string[]> {
    return rejectOnThrow(() => {
      this.#assertOpen();
      assertKvFilter(filter);
      const tokens = parsePattern(filter);
      const keys: string[] = [];
      for (const [key, stored] of this.#entries) {
        if (stored.value !== undefined && matchTokens(tokens, key.split("."))) keys.push(key);
      }
      return keys.sort();
    });
  }

  watch(filter: string, onChange: (change: KvChange) => void): Promise<KvWatch> {
    return rejectOnThrow(() => {
      this.#assertOpen();
      assertKvFilter(filter);
      const watcher: Watcher = { tokens: parsePattern(filter), onChange, stopped: false };
      this.#watchers.add(watcher);
      return {
        stop: () => {
          watcher.stopped = true;
          this.#watchers.delete(watcher);
        },
      };
    });
  }

  /** Stops every watcher; later calls fail with BusClosedError. */
  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.stopped = true;
    this.#watchers.clear();
  }

  #write(key: string, value: Uint8Array): number {
    this.#assertWritable(key, value);
    const revision = ++this.#revision;
    const copy = value.slice();
    this.#entries.set(key, { value: copy, revision });
    this.#publish({ op: "put", key, value: copy, revision });
    return revision;
  }

  #assertWritable(key: string, value: Uint8Array): void {
    this.#assertOpen();
    assertKvKey(key);
    if (!(value instanceof Uint8Array)) {
      throw new InvalidBusArgumentError("KV values must be Uint8Array");
    }
    if (value.byteLength > this.#maxValueBytes) {
      throw new PayloadTooLargeError(value.byteLength, this.#maxValueBytes);
    }
  }

  /** The last revision of a key counts its tombstone, as JetStream's last subject sequence does. */
  #assertRevision(key: string, expected: number): void {
    const current = this.#entries.get(key)?.revision ?? 0;
    if (current !== expected) {
      throw new ConflictError(
        `key ${key} in bucket ${this.name} is at revision ${current}, expected ${expected}`,
      );
    }
  }

  #publish(change: KvChange): void {
    const tokens = change.key.split(".");
    for (const watcher of this.#watchers) {
      if (!matchTokens(watcher.tokens, tokens)) continue;
      const own: KvChange =
        change.op === "put" ? { ...change, value: change.value.slice() } : change;
      setImmediate(() => {
        if (watcher.stopped) return;
        try {
          watcher.onChange(own);
        } catch (error) {
          this.#logger.error("KV watch listener failed", {
            bucket: this.name,
            key: change.key,
            error,
          });
        }
      });
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new BusClosedError(`KV bucket ${this.name} is closed`);
  }
}

function assertRevision(revision: number): void {
  if (!Number.isInteger(revision) || revision < 1) {
    throw new InvalidBusArgumentError(
      `expected revision must be a positive integer, got ${String(revision)}`,
    );
  }
}
