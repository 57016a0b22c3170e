/**
 * The Bus on core NATS: publish/subscribe, queue groups and request/reply
 * (nats.js muxes every request of a connection over one inbox subscription).
 *
 * Handlers get the raw bytes; decoding is the caller's job, so no payload can
 * fail here. Headers are decoded lazily by nats.js and a malformed header
 * block from a hand-written publisher would throw on access, so that is
 * caught too, and the handler sees the message without headers.
 *
 * The bus owns its connection: close() drains and closes it.
 */
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import type { Msg, MsgHdrs, NatsConnection, Status } from "@nats-io/transport-node";
import { InvalidBusArgumentError, PayloadTooLargeError } from "./errors.js";
import { EMPTY_HEADERS, assertPublishSubject, parsePattern } from "./names.js";
import { fromNatsHeaders, toNatsHeaders } from "./nats-headers.js";
import { toGustError } from "./nats-errors.js";
import type {
  Bus,
  BusMessage,
  BusStatus,
  Headers,
  MessageHandler,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from "./types.js";

/** How long close() lets pending publishes drain before it closes the socket anyway. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

export interface NatsBusOptions {
  /** @default createLogger("bus") */
  logger?: Logger;
  /** @default DEFAULT_DRAIN_TIMEOUT_MS */
  drainTimeoutMs?: number;
}

export class NatsBus implements Bus {
  readonly connection: NatsConnection;
  readonly #logger: Logger;
  readonly #drainTimeoutMs: number;
  readonly #listeners = new Set<(status: BusStatus) => void>();
  #connected = true;
  #closing: Promise<void> | undefined;

  constructor(connection: NatsConnection, options: NatsBusOptions = {}) {
    this.connection = connection;
    this.#logger = options.logger ?? createLogger("bus");
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    void this.#watchStatus();
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    assertPublishSubject(subject);
    this.#assertPayload(data);
    try {
      this.connection.publish(subject, data, this.#publishOptions(headers));
    } catch (error) {
      throw toGustError(error, `publish to ${subject}`, data.byteLength, this.#maxPayload());
    }
  }

  subscribe(
    subject: string,
    handler: MessageHandler,
    options: SubscribeOptions = {},
  ): Subscription {
    parsePattern(subject);
    if (options.queue !== undefined && !/^[^\s.*>]+$/.test(options.queue)) {
      throw new InvalidBusArgumentError(
        `invalid queue group name ${JSON.stringify(options.queue)}`,
      );
    }
    try {
      const subscription = this.connection.subscribe(subject, {
        ...(options.queue === undefined ? {} : { queue: options.queue }),
        callback: (error, msg) => {
          if (error) {
            this.#logger.error("subscription failed", { subject, error });
            return;
          }
          this.#deliver(subject, handler, msg);
        },
      });
      return {
        unsubscribe: () => {
          if (!subscription.isClosed()) subscription.unsubscribe();
        },
      };
    } catch (error) {
      throw toGustError(error, `subscribe to ${subject}`);
    }
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<BusMessage> {
    assertPublishSubject(subject);
    this.#assertPayload(data);
    const { timeoutMs } = options;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidBusArgumentError(
        `timeoutMs must be a positive number, got ${String(timeoutMs)}`,
      );
    }
    try {
      const reply = await this.connection.request(subject, data, {
        timeout: Math.max(1, Math.ceil(timeoutMs)),
        ...this.#publishOptions(options.headers),
      });
      return this.#toBusMessage(reply);
    } catch (error) {
      throw toGustError(error, `request to ${subject}`, data.byteLength, this.#maxPayload());
    }
  }

  async flush(): Promise<void> {
    try {
      await this.connection.flush();
    } catch (error) {
      throw toGustError(error, "flush");
    }
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.#listeners.add(listener);
    queueMicrotask(() => {
      if (this.#listeners.has(listener))
        this.#notify(listener, this.#connected ? "connected" : "disconnected");
    });
    return () => {
      this.#listeners.delete(listener);
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#listeners.clear();
    if (this.connection.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A drain waits for the server; when it is unreachable, give up and close.
      await Promise.race([
        this.connection.drain(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.#drainTimeoutMs);
        }),
      ]);
    } catch (error) {
      this.#logger.debug("drain failed; closing", { error });
    } finally {
      clearTimeout(timer);
    }
    if (!this.connection.isClosed()) await this.connection.close().catch(() => undefined);
  }

  #deliver(subscription: string, handler: MessageHandler, msg: Msg): void {
    let message: BusMessage;
    try {
      message = this.#toBusMessage(msg);
    } catch (error) {
      this.#logger.warn("dropped a message that could not be read", {
        subscription,
        subject: msg.subject,
        error,
      });
      return;
    }
    try {
      const result = handler(message);
      if (result !== undefined) {
        Promise.resolve(result).catch((error: unknown) =>
          this.#handlerFailed(subscription, message, error),
        );
      }
    } catch (error) {
      this.#handlerFailed(subscription, message, error);
    }
  }

  #toBusMessage(msg: Msg): BusMessage {
    return {
      subject: msg.subject,
      data: msg.data,
      headers: this.#readHeaders(msg),
      respond: (data: Uint8Array, headers?: Headers): boolean => {
        if (!msg.reply) return false;
        this.#assertPayload(data);
        try {
          return msg.respond(data, this.#publishOptions(headers));
        } catch (error) {
          throw toGustError(error, `reply to ${msg.subject}`, data.byteLength, this.#maxPayload());
        }
      },
    };
  }

  #readHeaders(msg: Msg): Headers {
    try {
      return fromNatsHeaders(() => msg.headers);
    } catch (error) {
      this.#logger.warn("ignored malformed message headers", { subject: msg.subject, error });
      return EMPTY_HEADERS;
    }
  }

  #publishOptions(headers: Headers | undefined): { headers?: MsgHdrs } {
    const h = toNatsHeaders(headers);
    return h === undefined ? {} : { headers: h };
  }

  #assertPayload(data: Uint8Array): void {
    if (!(data instanceof Uint8Array))
      throw new InvalidBusArgumentError("message data must be a Uint8Array");
    const max = this.#maxPayload();
    if (max !== undefined && data.byteLength > max)
      throw new PayloadTooLargeError(data.byteLength, max);
  }

  #maxPayload(): number | undefined {
    return this.connection.info?.max_payload;
  }

  #handlerFailed(subscription: string, message: BusMessage, error: unknown): void {
    this.#logger.error("bus handler failed", { subscription, subject: message.subject, error });
  }

  async #watchStatus(): Promise<void> {
    try {
      for await (const status of this.connection.status()) this.#onNatsStatus(status);
    } catch (error) {
      this.#logger.debug("status stream ended", { error });
    }
  }

  #onNatsStatus(status: Status): void {
    switch (status.type) {
      case "disconnect":
        this.#connected = false;
        this.#logger.warn("disconnected from NATS", { server: status.server });
        this.#emit("disconnected");
        break;
      case "reconnect":
        this.#connected = true;
        this.#logger.info("reconnected to NATS", { server: status.server });
        this.#emit("reconnected");
        break;
      case "error":
      case "slowConsumer":
      case "ldm":
      case "staleConnection":
        this.#logger.warn("NATS connection status", { status: status.type });
        break;
      default:
        break;
    }
  }

  #emit(status: BusStatus): void {
    for (const listener of [...this.#listeners]) this.#notify(listener, status);
  }

  #notify(listener: (status: BusStatus) => void, status: BusStatus): void {
    try {
      listener(status);
    } catch (error) {
      this.#logger.error("bus status listener failed", { status, error });
    }
  }
}
