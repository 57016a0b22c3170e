/**
 * Everything a Gust service needs, on a NATS server with JetStream: the bus
 * on core NATS, KV buckets, object stores and the Event work queue. Buckets,
 * stores and the stream are created on first use when absent; creation is
 * idempotent, so a fleet of processes may start at once.
 *
 * The connection retries forever (maxReconnectAttempts -1): a service cut off
 * from NATS keeps running on what it knows and hears about it through
 * bus.onStatus, rather than exiting.
 *
 * A process of a fleet connects as its role (nats-permissions.ts): its
 * role's nkey seed signs the server's nonce, and its inbox prefix is the
 * role's, the only inbox its permissions let it subscribe to.
 */
import { ConfigError } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import { jetstream } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { BusClosedError } from "./errors.js";
import { NatsBlobStore } from "./nats-blobs.js";
import { NatsBus } from "./nats-bus.js";
import { toGustError } from "./nats-errors.js";
import { NatsKvBucket } from "./nats-kv.js";
import type { JetStreamStorage } from "./nats-kv.js";
import { JetStreamWorkQueue } from "./nats-queue.js";
import type { BlobStore, Infrastructure, KvBucket, WorkQueue } from "./types.js";
import { publicKeyOfSeed } from "./nats-auth.js";
import { inboxPrefixFor, isBusRole, type BusRole } from "./nats-permissions.js";

export const DEFAULT_CONNECTION_NAME = "gust";
export const DEFAULT_RECONNECT_WAIT_MS = 500;
/** A peer that vanishes without closing its socket is noticed after about three pings. */
export const DEFAULT_PING_INTERVAL_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_JETSTREAM_TIMEOUT_MS = 10_000;
const SETUP_ATTEMPTS = 5;

export interface NatsInfrastructureOptions {
  /** One URL, a comma-separated list, or an array (nats://host:4222). */
  servers: string | string[];
  /** Connection name the server reports, e.g. "gust-frontend-2". @default DEFAULT_CONNECTION_NAME */
  name?: string;
  /** Where JetStream keeps buckets, stores and the queue. @default "file" */
  storage?: JetStreamStorage;
  /** JetStream replicas for everything created (a clustered server allows up to 5). @default 1 */
  replicas?: number;
  /** @default DEFAULT_RECONNECT_WAIT_MS */
  reconnectWaitMs?: number;
  /** @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number;
  /** Timeout of JetStream API calls and acknowledged publishes. @default DEFAULT_JETSTREAM_TIMEOUT_MS */
  jetStreamTimeoutMs?: number;
  /** Keep trying when no server answers at start instead of failing. @default false */
  waitForServer?: boolean;
  user?: string;
  pass?: string;
  token?: string;
  /**
   * The role this process connects as; sets the inbox prefix its
   * permissions allow. @default none: nats.js's `_INBOX`, for servers
   * without Gust's permissions
   */
  role?: BusRole;
  /** The role's nkey seed ("SU…", e.g. from readSeedFile). @default no nkey */
  nkeySeed?: string;
  /** Connect over TLS. @default plain TCP unless the server requires TLS */
  tls?: NatsClientTlsOptions;
  /** @default createLogger("bus") */
  logger?: Logger;
}

export interface NatsClientTlsOptions {
  /** PEM CA bundle that signed the server's certificate. @default the system's CAs */
  caFile?: string;
  /** PEM client certificate, for a server that verifies clients (mutual TLS). */
  certFile?: string;
  /** Its PEM private key. */
  keyFile?: string;
}

export interface ResolvedNatsInfrastructureOptions {
  servers: string[];
  name: string;
  storage: JetStreamStorage;
  replicas: number;
  reconnectWaitMs: number;
  pingIntervalMs: number;
  connectTimeoutMs: number;
  jetStreamTimeoutMs: number;
  waitForServer: boolean;
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  inboxPrefix: string | undefined;
  nkeySeed: string | undefined;
  tls: NatsClientTlsOptions | undefined;
  logger: Logger;
}

export function resolveNatsInfrastructureOptions(
  options: NatsInfrastructureOptions,
): ResolvedNatsInfrastructureOptions {
  const servers = (Array.isArray(options.servers) ? options.servers : options.servers.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (servers.length === 0) throw new ConfigError("servers must name at least one NATS server URL");
  const positive = (value: number, property: string): number => {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ConfigError(`${property} must be a positive number, got ${String(value)}`);
    }
    return value;
  };
  const storage = options.storage ?? "file";
  if (storage !== "file" && storage !== "memory") {
    throw new ConfigError(`storage must be "file" or "memory", got ${JSON.stringify(storage)}`);
  }
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new ConfigError(`replicas must be an integer from 1 to 5, got ${String(replicas)}`);
  }
  if (options.role !== undefined && !isBusRole(options.role)) {
    throw new ConfigError(`role must be a Gust bus role, got ${JSON.stringify(options.role)}`);
  }
  if (options.nkeySeed !== undefined) publicKeyOfSeed(options.nkeySeed, "nkeySeed");
  const tls = options.tls;
  if (tls !== undefined && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new ConfigError(
      "tls.certFile and tls.keyFile go together (a client certificate and its key)",
    );
  }
  return {
    servers,
    name: options.name ?? DEFAULT_CONNECTION_NAME,
    storage,
    replicas,
    reconnectWaitMs: positive(
      options.reconnectWaitMs ?? DEFAULT_RECONNECT_WAIT_MS,
      "reconnectWaitMs",
    ),
    pingIntervalMs: positive(options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS, "pingIntervalMs"),
    connectTimeoutMs: positive(
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      "connectTimeoutMs",
    ),
    jetStreamTimeoutMs: positive(
      options.jetStreamTimeoutMs ?? DEFAULT_JETSTREAM_TIMEOUT_MS,
      "jetStreamTimeoutMs",
    ),
    waitForServer: options.waitForServer ?? false,
    user: options.user,
    pass: options.pass,
    token: options.token,
    inboxPrefix: options.role === undefined ? undefined : inboxPrefixFor(options.role),
    nkeySeed: options.nkeySeed?.trim(),
    tls,
    logger: options.logger ?? createLogger("bus"),
  };
}

export async function connectNatsInfrastructure(
  options: NatsInfrastructureOptions,
): Promise<Infrastructure> {
  const o = resolveNatsInfrastructureOptions(options);
  const connectionOptions: NodeConnectionOptions = {
    servers: o.servers,
    name: o.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: o.reconnectWaitMs,
    pingInterval: o.pingIntervalMs,
    maxPingOut: 3,
    timeout: o.connectTimeoutMs,
    waitOnFirstConnect: o.waitForServer,
    ...(o.user === undefined ? {} : { user: o.user }),
    ...(o.pass === undefined ? {} : { pass: o.pass }),
    ...(o.token === undefined ? {} : { token: o.token }),
    ...(o.inboxPrefix === undefined ? {} : { inboxPrefix: o.inboxPrefix }),
    ...(o.nkeySeed === undefined
      ? {}
      : { authenticator: nkeyAuthenticator(new TextEncoder().encode(o.nkeySeed)) }),
    ...(o.tls === undefined ? {} : { tls: { ...o.tls } }),
  };
  let connection;
  try {
    connection = await connect(connectionOptions);
  } catch (error) {
    throw toGustError(error, `connect to NATS at ${o.servers.join(", ")}`);
  }
  o.logger.info("connected to NATS", {
    server: connection.getServer(),
    version: connection.info?.version,
  });
  const bus = new NatsBus(connection, { logger: o.logger });
  const js = jetstream(connection, { timeout: o.jetStreamTimeoutMs });
  return new NatsInfrastructure(bus, js, o);
}

class NatsInfrastructure implements Infrastructure {
  readonly bus: NatsBus;
  readonly #js: JetStreamClient;
  readonly #options: ResolvedNatsInfrastructureOptions;
  readonly #buckets = new Map<string, Promise<NatsKvBucket>>();
  readonly #stores = new Map<string, Promise<NatsBlobStore>>();
  #eventQueue: Promise<JetStreamWorkQueue> | undefined;
  #closed = false;

  constructor(bus: NatsBus, js: JetStreamClient, options: ResolvedNatsInfrastructureOptions) {
    this.bus = bus;
    this.#js = js;
    this.#options = options;
  }

  kv(bucket: string): Promise<KvBucket> {
    return this.#memo(this.#buckets, bucket, () =>
      NatsKvBucket.open(this.#js, bucket, {
        storage: this.#options.storage,
        replicas: this.#options.replicas,
        logger: this.#options.logger,
      }),
    );
  }

  blobs(store: string): Promise<BlobStore> {
    return this.#memo(this.#stores, store, () =>
      NatsBlobStore.open(this.#js, store, {
        storage: this.#options.storage,
        replicas: this.#options.replicas,
      }),
    );
  }

  eventQueue(): Promise<WorkQueue> {
    if (this.#closed) return Promise.reject(new BusClosedError("the infrastructure is closed"));
    if (this.#eventQueue === undefined) {
      const opening = this.#withRetries("open the event queue", () =>
        JetStreamWorkQueue.open(this.#js, {
          storage: this.#options.storage,
          replicas: this.#options.replicas,
          logger: this.#options.logger,
        }),
      );
      this.#eventQueue = opening;
      opening.catch(() => {
        if (this.#eventQueue === opening) this.#eventQueue = undefined;
      });
    }
    return this.#eventQueue;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const queue = await this.#eventQueue?.catch(() => undefined);
    await queue?.close();
    for (const opening of this.#buckets.values()) {
      const bucket = await opening.catch(() => undefined);
      bucket?.close();
    }
    await this.bus.close();
  }

  #memo<T>(cache: Map<string, Promise<T>>, name: string, open: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new BusClosedError("the infrastructure is closed"));
    let opening = cache.get(name);
    if (opening === undefined) {
      const attempt = this.#withRetries(`open ${name}`, open);
      opening = attempt;
      cache.set(name, attempt);
      // A failed open is not cached: the next call tries again.
      attempt.catch(() => {
        if (cache.get(name) === attempt) cache.delete(name);
      });
    }
    return opening;
  }

  /**
   * Right after a server starts, or while a fleet races to create the same
   * stream, JetStream API calls can fail transiently; creation is idempotent,
   * so trying again is safe.
   */
  async #withRetries<T>(what: string, operation: () => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= SETUP_ATTEMPTS; attempt++) {
      try {
        return await operation();
      } catch (error) {
        lastError = error;
        if (this.#closed || !isRetryable(error) || attempt === SETUP_ATTEMPTS) break;
        this.#options.logger.warn(`could not ${what}; trying again`, { attempt, error });
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
    throw lastError;
  }
}

function isRetryable(error: unknown): boolean {
  return (
    typeof error === "object" && error !== null && "retryable" in error && error.retryable === true
  );
}
