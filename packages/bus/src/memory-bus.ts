/**
 * The in-process bus of `gust dev`: NATS core semantics without a server.
 *
 * It behaves like a network on purpose. Every delivery happens on a later
 * turn of the event loop (setImmediate, FIFO, so one publisher's messages
 * arrive in order), never inside publish(): code that works here cannot rely
 * on a handler having run before publish() returns, which it could not on
 * NATS either. Payloads are copied at publish time, as a socket write would.
 * Queue groups are keyed by queue name and pick a member at random, as the
 * NATS server does.
 *
 * Routing looks literal subjects up in a map and walks only the wildcard
 * subscriptions, so a message costs the same however many request inboxes
 * are open (one per request in flight).
 */
import { BusTimeoutError, ConfigError, NoRespondersError } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import { BusClosedError, InvalidBusArgumentError, PayloadTooLargeError } from "./errors.js";
import { assertPublishSubject, matchTokens, normalizeHeaders, parsePattern } from "./names.js";
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

/** NATS's default is 1 MB; a Gust server raises it to carry 6 MB invocation payloads. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

export interface MemoryBusOptions {
  /** Largest message body accepted, as a NATS server's max_payload. @default DEFAULT_MAX_PAYLOAD_BYTES */
  maxPayloadBytes?: number;
  /** @default createLogger("bus") */
  logger?: Logger;
}

export interface ResolvedMemoryBusOptions {
  maxPayloadBytes: number;
  logger: Logger;
}

export function resolveMemoryBusOptions(options: MemoryBusOptions = {}): ResolvedMemoryBusOptions {
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) {
    throw new ConfigError(
      `maxPayloadBytes must be a positive integer, got ${String(maxPayloadBytes)}`,
    );
  }
  return { maxPayloadBytes, logger: options.logger ?? createLogger("bus") };
}

interface MemorySubscription {
  /** Order of subscribing: a message reaches its subscriptions in this order. */
  readonly seq: number;
  readonly subject: string;
  readonly tokens: readonly string[];
  readonly handler: MessageHandler;
  readonly queue: string | undefined;
  closed: boolean;
}

const INBOX_PREFIX = "_INBOX";
/** Literal subjects whose validity is remembered (they repeat: one per worker, per tenant…). */
const MAX_KNOWN_SUBJECTS = 1024;

function isLiteral(tokens: readonly string[]): boolean {
  return !tokens.includes("*") && !tokens.includes(">");
}

export class MemoryBus implements Bus {
  readonly #options: ResolvedMemoryBusOptions;
  readonly #subscriptions = new Set<MemorySubscription>();
  /** Subscriptions to literal subjects, by subject. */
  readonly #literal = new Map<string, Set<MemorySubscription>>();
  readonly #wildcard = new Set<MemorySubscription>();
  /** Literal subjects already checked by assertPublishSubject, with their tokens. */
  readonly #knownSubjects = new Map<string, readonly string[]>();
  #subscriptionSeq = 0;
  readonly #pendingRequests = new Set<(error: Error) => void>();
  readonly #statusListeners = new Set<(status: BusStatus) => void>();
  readonly #inboxId = Math.random().toString(36).slice(2);
  #inboxSeq = 0;
  #closed = false;

  constructor(options: MemoryBusOptions = {}) {
    this.#options = resolveMemoryBusOptions(options);
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    this.#send(subject, data, headers, undefined);
  }

  subscribe(
    subject: string,
    handler: MessageHandler,
    options: SubscribeOptions = {},
  ): Subscription {
    this.#assertOpen();
    const tokens = parsePattern(subject);
    if (options.queue !== undefined && !/^[^\s.*>]+$/.test(options.queue)) {
      throw new InvalidBusArgumentError(
        `invalid queue group name ${JSON.stringify(options.queue)}`,
      );
    }
    return this.#add(subject, tokens, handler, options.queue);
  }

  #add(
    subject: string,
    tokens: readonly string[],
    handler: MessageHandler,
    queue: string | undefined,
  ): Subscription {
    const subscription: MemorySubscription = {
      seq: ++this.#subscriptionSeq,
      subject,
      tokens,
      handler,
      queue,
      closed: false,
    };
    this.#subscriptions.add(subscription);
    if (isLiteral(tokens)) {
      const same = this.#literal.get(subject);
      if (same === undefined) this.#literal.set(subject, new Set([subscription]));
      else same.add(subscription);
    } else {
      this.#wildcard.add(subscription);
    }
    return {
      unsubscribe: () => {
        subscription.closed = true;
        this.#subscriptions.delete(subscription);
        const same = this.#literal.get(subject);
        if (same?.delete(subscription) === true && same.size === 0) this.#literal.delete(subject);
        this.#wildcard.delete(subscription);
      },
    };
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<BusMessage> {
    return new Promise<BusMessage>((resolve, reject) => {
      const { timeoutMs } = options;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
        reject(
          new InvalidBusArgumentError(
            `timeoutMs must be a positive number, got ${String(timeoutMs)}`,
          ),
        );
        return;
      }
      const inbox = `${INBOX_PREFIX}.${this.#inboxId}.${++this.#inboxSeq}`;
      let subscription: Subscription | undefined;
      let settled = false;
      const finish = (outcome: { message: BusMessage } | { error: Error }) => {
        if (settled) return;
        settled = true;
        subscription?.unsubscribe();
        clearTimeout(timer);
        this.#pendingRequests.delete(fail);
        if ("message" in outcome) resolve(outcome.message);
        else reject(outcome.error);
      };
      const fail = (error: Error) => finish({ error });
      const timer = setTimeout(
        () => fail(new BusTimeoutError(`no reply on ${subject} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#pendingRequests.add(fail);
      try {
        this.#assertOpen();
        // The inbox is well-formed by construction: no need to parse it as a pattern.
        subscription = this.#add(
          inbox,
          inbox.split("."),
          (message) => finish({ message }),
          undefined,
        );
        if (this.#send(subject, data, options.headers, inbox) === 0) {
          // NATS answers at once with a 503 status when nobody listens.
          setImmediate(() => fail(new NoRespondersError(`no responders on ${subject}`)));
        }
      } catch (error) {
        fail(error as Error);
      }
    });
  }

  flush(): Promise<void> {
    // Deliveries already queued run before this setImmediate callback.
    return new Promise((resolve) => setImmediate(resolve));
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.#statusListeners.add(listener);
    queueMicrotask(() => {
      if (this.#statusListeners.has(listener)) this.#notify(listener, "connected");
    });
    return () => {
      this.#statusListeners.delete(listener);
    };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const subscription of this.#subscriptions) subscription.closed = true;
    this.#subscriptions.clear();
    this.#literal.clear();
    this.#wildcard.clear();
    for (const fail of [...this.#pendingRequests]) fail(new BusClosedError());
    this.#statusListeners.clear();
    return Promise.resolve();
  }

  /** Routes one message; returns how many subscriptions will receive it. */
  #send(
    subject: string,
    data: Uint8Array,
    headers: Headers | undefined,
    replyTo: string | undefined,
  ): number {
    this.#assertOpen();
    const tokens = this.#publishTokens(subject);
    if (!(data instanceof Uint8Array)) {
      throw new InvalidBusArgumentError("message data must be a Uint8Array");
    }
    if (data.byteLength > this.#options.maxPayloadBytes) {
      throw new PayloadTooLargeError(data.byteLength, this.#options.maxPayloadBytes);
    }
    const message = this.#message(subject, data.slice(), normalizeHeaders(headers), replyTo);

    const matched: MemorySubscription[] = [];
    const literal = this.#literal.get(subject);
    if (literal !== undefined) for (const subscription of literal) matched.push(subscription);
    if (this.#wildcard.size > 0) {
      const before = matched.length;
      for (const subscription of this.#wildcard) {
        if (matchTokens(subscription.tokens, tokens)) matched.push(subscription);
      }
      if (before > 0 && matched.length > before) matched.sort((a, b) => a.seq - b.seq);
    }
    const targets: MemorySubscription[] = [];
    let groups: Map<string, MemorySubscription[]> | undefined;
    for (const subscription of matched) {
      if (subscription.queue === undefined) {
        targets.push(subscription);
      } else {
        groups ??= new Map();
        const members = groups.get(subscription.queue) ?? [];
        members.push(subscription);
        groups.set(subscription.queue, members);
      }
    }
    for (const members of groups?.values() ?? []) {
      const chosen = members[Math.floor(Math.random() * members.length)];
      if (chosen) targets.push(chosen);
    }
    for (const target of targets) {
      setImmediate(() => this.#deliver(target, message));
    }
    return targets.length;
  }

  /** The subject's tokens, once assertPublishSubject has accepted it. */
  #publishTokens(subject: string): readonly string[] {
    const known = this.#knownSubjects.get(subject);
    if (known !== undefined) return known;
    assertPublishSubject(subject);
    const tokens = subject.split(".");
    // Inboxes are new with every request: remembering them would only evict the rest.
    if (!subject.startsWith(`${INBOX_PREFIX}.`)) {
      if (this.#knownSubjects.size >= MAX_KNOWN_SUBJECTS) this.#knownSubjects.clear();
      this.#knownSubjects.set(subject, tokens);
    }
    return tokens;
  }

  #message(
    subject: string,
    data: Uint8Array,
    headers: Headers,
    replyTo: string | undefined,
  ): BusMessage {
    return {
      subject,
      data,
      headers,
      respond: (reply: Uint8Array, replyHeaders?: Headers): boolean => {
        if (replyTo === undefined) return false;
        this.#send(replyTo, reply, replyHeaders, undefined);
        return true;
      },
    };
  }

  #deliver(subscription: MemorySubscription, message: BusMessage): void {
    if (subscription.closed) return;
    try {
      const result = subscription.handler(message);
      if (result !== undefined) {
        Promise.resolve(result).catch((error: unknown) =>
          this.#handlerFailed(subscription, message, error),
        );
      }
    } catch (error) {
      this.#handlerFailed(subscription, message, error);
    }
  }

  #handlerFailed(subscription: MemorySubscription, message: BusMessage, error: unknown): void {
    this.#options.logger.error("bus handler failed", {
      subscription: subscription.subject,
      subject: message.subject,
      error,
    });
  }

  #notify(listener: (status: BusStatus) => void, status: BusStatus): void {
    try {
      listener(status);
    } catch (error) {
      this.#options.logger.error("bus status listener failed", { status, error });
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new BusClosedError();
  }
}
