/**
 * @module
 * The seams between Gust's services and their infrastructure (message bus,
 * key-value buckets, blob stores, the Event work queue), with in-memory
 * implementations for `gust dev` and NATS/JetStream ones for fleets, and a
 * NATS server launcher for tests, benchmarks and local fleets.
 */
export { InvalidBusArgumentError, PayloadTooLargeError, BusClosedError } from "./errors.js";
export { MemoryBus, DEFAULT_MAX_PAYLOAD_BYTES, resolveMemoryBusOptions } from "./memory-bus.js";
export { MemoryKvBucket } from "./memory-kv.js";
export { MemoryBlobStore } from "./memory-blobs.js";
export { MemoryWorkQueue } from "./memory-queue.js";
export { createMemoryInfrastructure } from "./memory-infrastructure.js";
export {
  startNatsServer,
  findNatsServerBinary,
  natsTlsConfig,
  MAX_KEPT_VIOLATIONS,
  resolveNatsServerOptions,
  DEFAULT_NATS_START_TIMEOUT_MS,
  NATS_DOCKER_IMAGE,
  NATS_SERVER_MAX_PAYLOAD,
} from "./nats-server.js";
export { NatsBus, DEFAULT_DRAIN_TIMEOUT_MS } from "./nats-bus.js";
export { NatsKvBucket } from "./nats-kv.js";
export { NatsBlobStore, BLOB_CHUNK_BYTES } from "./nats-blobs.js";
export {
  JetStreamWorkQueue,
  resolveJetStreamWorkQueueOptions,
  DEFAULT_EVENT_CONSUMER,
  DEFAULT_PULL_EXPIRES_MS,
  DEFAULT_MAX_ACK_PENDING,
} from "./nats-queue.js";
export {
  connectNatsInfrastructure,
  resolveNatsInfrastructureOptions,
  DEFAULT_CONNECTION_NAME,
  DEFAULT_RECONNECT_WAIT_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_JETSTREAM_TIMEOUT_MS,
} from "./nats-infrastructure.js";
export {
  failedJobRetryDelayMs,
  FAILED_JOB_FIRST_RETRY_MS,
  FAILED_JOB_MAX_RETRY_MS,
} from "./job-runner.js";
export { matchSubject } from "./names.js";
export {
  BusRoles,
  BUS_ROLES,
  BUS_PERMISSIONS,
  isBusRole,
  inboxPrefixFor,
} from "./nats-permissions.js";
export {
  GUST_NATS_ACCOUNT,
  generateBusCredentials,
  publicKeyOfSeed,
  publicKeysOf,
  seedFileName,
  writeBusSeeds,
  readSeedFile,
  natsAccountsConfig,
} from "./nats-auth.js";

export type {
  Headers,
  BusMessage,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  MessageHandler,
  Bus,
  BusStatus,
  KvEntry,
  KvChange,
  KvWatch,
  KvBucket,
  BlobStore,
  QueueJob,
  ConsumeOptions,
  Consumer,
  WorkQueue,
  Infrastructure,
} from "./types.js";
export type { MemoryBusOptions, ResolvedMemoryBusOptions } from "./memory-bus.js";
export type { MemoryKvBucketOptions } from "./memory-kv.js";
export type { MemoryWorkQueueOptions } from "./memory-queue.js";
export type { MemoryInfrastructureOptions } from "./memory-infrastructure.js";
export type {
  NatsServerOptions,
  NatsServerHandle,
  NatsServerTlsOptions,
  NatsServerAuth,
} from "./nats-server.js";
export type { BusRole, BusPermissions } from "./nats-permissions.js";
export type { BusIdentity, BusCredentials } from "./nats-auth.js";
export type { NatsBusOptions } from "./nats-bus.js";
export type { NatsKvBucketOptions, JetStreamStorage } from "./nats-kv.js";
export type { NatsBlobStoreOptions } from "./nats-blobs.js";
export type { JetStreamWorkQueueOptions, ResolvedJetStreamWorkQueueOptions } from "./nats-queue.js";
export type {
  NatsInfrastructureOptions,
  ResolvedNatsInfrastructureOptions,
  NatsClientTlsOptions,
} from "./nats-infrastructure.js";
