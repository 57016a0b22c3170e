/**
 * The seams between Gust's services and their infrastructure. Each has an
 * in-memory implementation (for `gust dev` and unit tests) and a NATS one
 * (core NATS request/reply, JetStream KV, object store and a stream); the same
 * conformance tests run against both.
 */

export type Headers = Readonly<Record<string, string>>;

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** Reply to a request; a no-op for a plain publish. Returns false if there was nobody to reply to. */
  respond(data: Uint8Array, headers?: Headers): boolean;
}

export interface RequestOptions {
  timeoutMs: number;
  headers?: Headers;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

export interface Subscription {
  unsubscribe(): void;
}

export type MessageHandler = (message: BusMessage) => void | Promise<void>;

export interface Bus {
  /** Rejects with NoRespondersError or BusTimeoutError (from @gust/protocol). */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<BusMessage>;
  publish(subject: string, data: Uint8Array, headers?: Headers): void;
  /**
   * Subjects use NATS wildcards (`*` one token, `>` the rest). A handler that
   * throws or rejects is logged and never takes the subscription down.
   */
  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription;
  /** Resolves when everything published so far has reached the server. */
  flush(): Promise<void>;
  /**
   * Observe connection state ("connected" | "disconnected" | "reconnected").
   * The listener first hears the current state ("connected" or
   * "disconnected"), asynchronously, then every change. Returns a function
   * that removes the listener.
   */
  onStatus(listener: (status: BusStatus) => void): () => void;
  close(): Promise<void>;
}

export type BusStatus = "connected" | "disconnected" | "reconnected";

// ---- key-value ----------------------------------------------------------------

export interface KvEntry {
  key: string;
  value: Uint8Array;
  revision: number;
}

export type KvChange =
  | { op: "put"; key: string; value: Uint8Array; revision: number }
  | { op: "delete"; key: string; revision: number };

export interface KvWatch {
  stop(): void;
}

/**
 * A bucket of keys. Keys are dot-separated tokens of [-/_=A-Za-z0-9]
 * (JetStream KV's rule); `keys()`/`watch()` filters use `*` and `>`.
 */
export interface KvBucket {
  get(key: string): Promise<KvEntry | undefined>;
  put(key: string, value: Uint8Array): Promise<number>;
  /** Throws ConflictError if the key exists. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Compare-and-set; throws ConflictError if the revision moved. */
  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number>;
  /** Deletes; with expectedRevision, throws ConflictError if it moved. Idempotent otherwise. */
  delete(key: string, expectedRevision?: number): Promise<void>;
  /** Live keys matching the filter, sorted. */
  keys(filter?: string): Promise<string[]>;
  /**
   * Calls onChange for every later change to keys matching the filter (no
   * initial replay), in order, until stopped.
   */
  watch(filter: string, onChange: (change: KvChange) => void): Promise<KvWatch>;
}

// ---- blobs (function code) --------------------------------------------------------

/** Large immutable values, e.g. function zips keyed by their SHA-256. */
export interface BlobStore {
  put(name: string, data: Uint8Array): Promise<void>;
  get(name: string): Promise<Uint8Array | undefined>;
  has(name: string): Promise<boolean>;
  delete(name: string): Promise<void>;
}

// ---- work queue (Event invocations) ---------------------------------------------

/**
 * A handler that neither acks nor retries a job leaves it to be delivered
 * again after ackWaitMs; one that throws has it retried after a short backoff.
 */
export interface QueueJob {
  /** The subject the job was enqueued on, e.g. gust.v1.events.<tenantId>. */
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  /** Done: remove from the queue. */
  ack(): Promise<void>;
  /** Deliver again after delayMs (to this or another consumer). */
  retry(delayMs: number): Promise<void>;
  /** Keep the job invisible while a long handler still works on it. */
  inProgress(): Promise<void>;
}

export interface ConsumeOptions {
  /** Jobs handled at once by this consumer. */
  concurrency: number;
  /** A job not acked within this is delivered again (the consumer died). */
  ackWaitMs: number;
}

export interface Consumer {
  stop(): Promise<void>;
}

/** A durable queue: jobs are kept until acked; each delivery goes to one consumer. */
export interface WorkQueue {
  enqueue(subject: string, data: Uint8Array, headers?: Headers): Promise<void>;
  consume(handler: (job: QueueJob) => Promise<void>, options: ConsumeOptions): Promise<Consumer>;
  /** Jobs not yet acked. */
  pending(): Promise<number>;
}

// ---- the whole set --------------------------------------------------------------

/** What a Gust service gets from its environment. */
export interface Infrastructure {
  bus: Bus;
  kv(bucket: string): Promise<KvBucket>;
  blobs(store: string): Promise<BlobStore>;
  /** The Event invocation queue (subjects gust.v1.events.>). */
  eventQueue(): Promise<WorkQueue>;
  close(): Promise<void>;
}
