/**
 * The worker manager: answers `gust.v1.invoke.<workerId>` requests by running
 * them in sandboxes from its pool, and tells the fleet what it can take with
 * a heartbeat every interval (and a WorkerGone when it leaves).
 *
 * Nothing a peer sends can take it down: undecodable requests are answered
 * with a DecodeError, and every failure becomes an `invoke.rejected` reply.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Bus, BusMessage, Subscription } from "@gust/bus";
import {
  builtInDefaultRuntimeVersion,
  BusHeaders,
  CapacityError,
  DecodeError,
  FunctionLimits,
  GustError,
  MSGPACK_CONTENT_TYPE,
  Subjects,
  decodeAs,
  decodeRecord,
  encode,
  functionKey,
  isRuntime,
  Runtimes,
  serializeError,
} from "@gust/protocol";
import type {
  InvokeReply,
  InvokeRequest,
  InvokeTarget,
  StartKind,
  WorkerHeartbeat,
} from "@gust/protocol";
import {
  countSandboxStart,
  createLogger,
  endSpan,
  observeSandboxes,
  SpanAttributes,
  SpanKind,
  SpanNames,
  startChildSpan,
  startMessageSpan,
} from "@gust/telemetry";
import type { Logger, Span } from "@gust/telemetry";
import { AdmissionCensus } from "./admission-census.js";
import { CodeCache } from "./code-cache.js";
import { DEFAULT_SHORT_RUN_MS, DispatchWindow, type DispatchPass } from "./dispatch-window.js";
import type { CodeSource } from "./code-cache.js";
import { EXECUTED_VERSION } from "./lambda-log.js";
import { resolveWorkerOptions } from "./options.js";
import { runtimeVersionOf, withRuntimeVersion } from "./runtime-version.js";
import type { ResolvedWorkerOptions, WorkerOptions } from "./options.js";
import { ProcessSandboxFactory } from "./process-sandbox-factory.js";
import { defaultNodeRuntimeFiles } from "./runtime-files.js";
import { SandboxExitedError } from "./sandbox.js";
import type { SandboxFactory } from "./sandbox.js";
import { decideIsolation, IsolationLevels } from "./isolation.js";
import { SandboxPool } from "./sandbox-pool.js";
import { delay } from "./signal.js";
import type { PoolStats } from "./sandbox-pool.js";

export interface WorkerDeps {
  bus: Bus;
  code: CodeSource;
  /** @default createLogger("worker") */
  logger?: Logger;
  /** Where sandboxes come from. @default process sandboxes running @gust/runtime-node */
  sandboxFactory?: SandboxFactory;
}

export interface WorkerStats {
  workerId: string;
  draining: boolean;
  /** Invocations being run right now. */
  inflight: number;
  capacity: { sandboxes: number; memoryMb: number };
  sandboxes: PoolStats;
  /** Invocations run, by how their sandbox was found, and those rejected. */
  invocations: Record<StartKind, number> & { rejected: number };
}

export interface Worker {
  readonly id: string;
  stats(): WorkerStats;
  /** Take no more invocations, finish those running, stop every sandbox, announce WorkerGone. */
  drain(): Promise<void>;
  /** Stop everything at once (running invocations fail) and remove the worker's files. */
  close(): Promise<void>;
  /**
   * Runs an invocation handed over inside this process, by a frontend that
   * shares it (`gust dev`): what a request on the worker's invoke subject
   * does, without encoding the request and its reply. `headers` carry the
   * trace context, as the bus request's do.
   */
  invokeLocal(
    request: InvokeRequest,
    headers?: Readonly<Record<string, string>>,
  ): Promise<InvokeReply>;
}

/** How long close() waits for running invocations to reply after their sandboxes are gone. */
const CLOSE_PATIENCE_MS = 5000;
/** Sandboxes tried for one invocation when those handed out died before it reached them. */
const MAX_SANDBOX_TRIES = 3;
const REPLY_HEADERS = { [BusHeaders.contentType]: MSGPACK_CONTENT_TYPE };

export async function startWorker(options: WorkerOptions, deps: WorkerDeps): Promise<Worker> {
  const resolved = resolveWorkerOptions(options);
  const logger = (deps.logger ?? createLogger("worker")).child({ workerId: resolved.workerId });
  const ownsBaseDir = resolved.baseDir === undefined;
  const baseDir = resolved.baseDir ?? (await mkdtemp(path.join(os.tmpdir(), "gust-worker-")));
  await mkdir(baseDir, { recursive: true });
  let factory: SandboxFactory;
  try {
    const isolation = deps.sandboxFactory
      ? { level: IsolationLevels.none }
      : await decideIsolation(resolved, logger);
    factory =
      deps.sandboxFactory ??
      (await ProcessSandboxFactory.create({
        baseDir,
        region: resolved.region,
        initTimeoutMs: resolved.initTimeoutMs,
        isolate: isolation.level !== IsolationLevels.none,
        ...(isolation.jailTools === undefined
          ? {}
          : {
              jail: {
                tools: isolation.jailTools,
                tmpBytes: resolved.ephemeralStorageMb * 1024 * 1024,
                ...(isolation.cgroups === undefined ? {} : { cgroups: isolation.cgroups }),
                cpu: resolved.sandboxCpu,
                network: {
                  egress: resolved.egress,
                  denyCidrs: resolved.denyCidrs,
                  ...(resolved.sandboxAddressPool === undefined
                    ? {}
                    : { addressPool: resolved.sandboxAddressPool }),
                },
              },
            }),
        sandboxUidBase: resolved.sandboxUidBase,
        nodeRuntime: defaultNodeRuntimeFiles(),
        maxSandboxMemoryMb: Math.min(resolved.memoryMb, FunctionLimits.maxMemoryMb),
        logger,
      }));
  } catch (error) {
    if (ownsBaseDir) await rm(baseDir, { recursive: true, force: true });
    throw error;
  }
  const worker = new WorkerManager(resolved, deps.bus, logger, {
    baseDir,
    ownsBaseDir,
    factory,
    code: new CodeCache(path.join(baseDir, "code"), deps.code),
  });
  worker.start();
  return worker;
}

interface WorkerParts {
  baseDir: string;
  ownsBaseDir: boolean;
  factory: SandboxFactory;
  code: CodeCache;
}

class WorkerManager implements Worker {
  readonly id: string;
  readonly #options: ResolvedWorkerOptions;
  readonly #bus: Bus;
  readonly #logger: Logger;
  readonly #parts: WorkerParts;
  readonly #pool: SandboxPool;
  readonly #window: DispatchWindow;
  readonly #counts: WorkerStats["invocations"] = {
    warm: 0,
    preinitialized: 0,
    cold: 0,
    rejected: 0,
  };
  readonly #idleWaiters: Array<() => void> = [];
  #subscription: Subscription | undefined;
  #discoverSubscription: Subscription | undefined;
  #censusSubscription: Subscription | undefined;
  readonly #census = new AdmissionCensus();
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #stopObservingPool: (() => void) | undefined;
  #seq = 0;
  #inflight = 0;
  #draining = false;
  #closing = false;
  #goneAnnounced = false;
  #drained: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: ResolvedWorkerOptions, bus: Bus, logger: Logger, parts: WorkerParts) {
    this.id = options.workerId;
    this.#options = options;
    this.#bus = bus;
    this.#logger = logger;
    this.#parts = parts;
    this.#window = new DispatchWindow({
      slots: options.dispatchSlots,
      holdMs: options.dispatchHoldMs,
      shortMs: DEFAULT_SHORT_RUN_MS,
    });
    this.#pool = new SandboxPool({
      factory: parts.factory,
      maxSandboxes: options.maxSandboxes,
      memoryMb: options.memoryMb,
      preinitializedPoolSize: options.preinitializedPoolSize,
      keepAliveMs: options.keepAliveMs,
      defaultRuntimeVersion: builtInDefaultRuntimeVersion(options.region, Runtimes.nodejs20),
      logger,
    });
  }

  start(): void {
    this.#subscription = this.#bus.subscribe(Subjects.invoke(this.id), (message) =>
      this.#onInvoke(message),
    );
    // A frontend that starts asks for heartbeats at once; the content is not needed.
    this.#discoverSubscription = this.#bus.subscribe(Subjects.workerDiscover, () => {
      if (!this.#closing) this.#publishHeartbeat();
    });
    this.#censusSubscription = this.#bus.subscribe(Subjects.workerCensus(this.id), (message) =>
      this.#onCensus(message),
    );
    this.#publishHeartbeat();
    this.#heartbeatTimer = setInterval(
      () => this.#publishHeartbeat(),
      this.#options.heartbeatIntervalMs,
    );
    this.#heartbeatTimer.unref();
    this.#stopObservingPool = observeSandboxes(this.id, () => this.#pool.stats());
    this.#logger.info("worker started", { baseDir: this.#parts.baseDir });
  }

  stats(): WorkerStats {
    return {
      workerId: this.id,
      draining: this.#draining,
      inflight: this.#inflight,
      capacity: { sandboxes: this.#options.maxSandboxes, memoryMb: this.#options.memoryMb },
      sandboxes: this.#pool.stats(),
      invocations: { ...this.#counts },
    };
  }

  drain(): Promise<void> {
    this.#drained ??= this.#drain();
    return this.#drained;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  // ---- invocations -------------------------------------------------------------------

  async #onInvoke(message: BusMessage): Promise<void> {
    let request: InvokeRequest;
    try {
      request = decodeAs(message.data, "invoke");
    } catch (error) {
      this.#reply(message, this.#undecodable(requestIdOf(message.data), error));
      return;
    }
    this.#reply(message, await this.#run(request, message.headers));
  }

  invokeLocal(
    request: InvokeRequest,
    headers: Readonly<Record<string, string>> = {},
  ): Promise<InvokeReply> {
    return this.#run(request, headers);
  }

  #undecodable(requestId: string, error: unknown): InvokeReply {
    const decodeError =
      error instanceof DecodeError
        ? error
        : new DecodeError("invalid invoke request", { cause: error });
    this.#logger.warn("undecodable invoke request", { error: decodeError.message });
    return { type: "invoke.rejected", requestId, error: serializeError(decodeError) };
  }

  async #run(
    received: InvokeRequest,
    headers: Readonly<Record<string, string>>,
  ): Promise<InvokeReply> {
    let request: InvokeRequest;
    try {
      checkTarget(received.target);
      request = {
        ...received,
        target: withRuntimeVersion(received.target, this.#options.region),
      };
    } catch (error) {
      return this.#undecodable(received.requestId, error);
    }
    if (this.#draining) {
      this.#counts.rejected++;
      const error = new CapacityError(`worker ${this.id} is draining`);
      return {
        type: "invoke.rejected",
        requestId: request.requestId,
        error: serializeError(error),
      };
    }
    this.#inflight++;
    const untrack = this.#census.track(request.admission);
    // Continues the trace whose context the frontend put in the request's headers.
    const span = startMessageSpan(SpanNames.workerInvoke, SpanKind.SERVER, headers);
    span?.setAttribute(SpanAttributes.workerId, this.id);
    span?.setAttribute(SpanAttributes.requestId, request.requestId);
    span?.setAttribute(SpanAttributes.tenantId, request.target.tenantId);
    span?.setAttribute(SpanAttributes.functionName, request.target.name);
    span?.setAttribute(SpanAttributes.runtime, request.target.runtime);
    const key = functionKey(request.target.tenantId, request.target.name);
    let reply: InvokeReply | undefined;
    let pass: DispatchPass | undefined;
    try {
      pass = await this.#window.enter(key);
      reply = await this.#invoke(request, key, span);
      return reply;
    } finally {
      this.#window.leave(pass);
      if (span !== undefined) {
        endSpan(span, reply?.type === "invoke.rejected" ? reply.error.message : undefined);
      }
      untrack();
      this.#inflight--;
      if (this.#inflight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  #onCensus(message: BusMessage): void {
    let frontendIds: unknown[];
    let known: unknown;
    try {
      ({ frontendIds, known } = decodeAs(message.data, "worker.census"));
    } catch (error) {
      this.#logger.debug("undecodable census request", { error });
      return;
    }
    message.respond(
      encode(this.#census.answer(this.id, frontendIds, Array.isArray(known) ? known : [])),
    );
  }

  async #invoke(request: InvokeRequest, key: string, span: Span | undefined): Promise<InvokeReply> {
    const { requestId, target } = request;
    const rejected = (error: unknown): InvokeReply => {
      this.#counts.rejected++;
      return { type: "invoke.rejected", requestId, error: serializeError(error) };
    };
    let lease;
    let result;
    for (let attempt = 1; ; attempt++) {
      const acquireSpan = startChildSpan(SpanNames.sandboxAcquire, span);
      try {
        lease = await this.#pool.acquire(target, () => this.#parts.code.get(target.codeSha256));
      } catch (error) {
        endSpan(acquireSpan, error);
        if (!(error instanceof CapacityError)) {
          this.#logger.warn("no sandbox for an invocation", {
            requestId,
            function: target.name,
            error,
          });
        }
        return rejected(error);
      }
      acquireSpan?.setAttribute(SpanAttributes.sandboxStart, lease.startKind);
      endSpan(acquireSpan);
      span?.setAttribute(SpanAttributes.sandboxStart, lease.startKind);
      span?.setAttribute(SpanAttributes.coldStart, lease.startKind !== "warm");
      span?.setAttribute(SpanAttributes.sandboxId, lease.sandbox.id);
      try {
        result = await lease.sandbox.invoke({
          requestId,
          payload: request.payload,
          tailLog: request.tailLog,
          parentSpan: span,
          ...(request.traceId === undefined ? {} : { traceId: request.traceId }),
          ...(request.clientContext === undefined
            ? {}
            : { clientContext: Buffer.from(request.clientContext, "base64").toString("utf8") }),
        });
        break;
      } catch (error) {
        this.#pool.release(lease, false);
        // It died after its previous invocation; this one never reached it.
        if (error instanceof SandboxExitedError && attempt < MAX_SANDBOX_TRIES) continue;
        this.#counts[lease.startKind]++;
        countSandboxStart(lease.startKind);
        this.#logger.error("sandbox failed to run an invocation", { requestId, error });
        return rejected(error);
      }
    }
    this.#counts[lease.startKind]++;
    countSandboxStart(lease.startKind);
    this.#pool.release(lease, result.reusable);
    this.#window.learn(key, result.runDurationMs);
    span?.setAttribute(SpanAttributes.outcome, result.outcome);
    if (this.#closing) {
      // Its sandbox was killed under it; the outcome says nothing about the function.
      return rejected(
        new GustError(`worker ${this.id} closed during the invocation`, "worker-closed"),
      );
    }
    return {
      type: "invoke.result",
      requestId,
      outcome: result.outcome,
      payload: result.payload,
      executedVersion: EXECUTED_VERSION,
      runtimeVersionArn: runtimeVersionOf(target, this.#options.region).arn,
      startKind: lease.startKind,
      durationMs: result.durationMs,
      ...(result.logTail === undefined ? {} : { logTail: result.logTail }),
    };
  }

  #reply(message: BusMessage, reply: InvokeReply): void {
    try {
      if (
        !message.respond(encode(reply), {
          ...REPLY_HEADERS,
          [BusHeaders.requestId]: reply.requestId,
        })
      ) {
        this.#logger.info("invoke reply had nobody to go to", { requestId: reply.requestId });
      }
    } catch (error) {
      this.#logger.warn("could not send an invoke reply", { requestId: reply.requestId, error });
    }
  }

  // ---- announcements ------------------------------------------------------------------

  #heartbeat(): WorkerHeartbeat {
    return {
      type: "worker.heartbeat",
      workerId: this.id,
      seq: ++this.#seq,
      sentAt: Date.now(),
      intervalMs: this.#options.heartbeatIntervalMs,
      capacity: { sandboxes: this.#options.maxSandboxes, memoryMb: this.#options.memoryMb },
      used: this.#pool.used(),
      warm: this.#pool.warmFunctions(),
      draining: this.#draining,
    };
  }

  #publishHeartbeat(): void {
    this.#publish(Subjects.workerHeartbeat, encode(this.#heartbeat()));
  }

  #announceGone(): void {
    if (this.#goneAnnounced) return;
    this.#goneAnnounced = true;
    this.#publish(Subjects.workerGone, encode({ type: "worker.gone", workerId: this.id }));
  }

  #publish(subject: string, data: Uint8Array): void {
    try {
      this.#bus.publish(subject, data, REPLY_HEADERS);
    } catch (error) {
      this.#logger.warn("could not publish", { subject, error });
    }
  }

  // ---- leaving ----------------------------------------------------------------------------

  async #drain(): Promise<void> {
    this.#draining = true;
    this.#pool.drain();
    this.#publishHeartbeat();
    this.#logger.info("worker draining", { inflight: this.#inflight });
    await this.#untilIdle();
    clearInterval(this.#heartbeatTimer);
    await this.#pool.close();
    this.#stopObservingPool?.();
    this.#announceGone();
    this.#logger.info("worker drained");
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#draining = true;
    this.#window.close();
    clearInterval(this.#heartbeatTimer);
    this.#stopObservingPool?.();
    this.#subscription?.unsubscribe();
    this.#discoverSubscription?.unsubscribe();
    this.#censusSubscription?.unsubscribe();
    await this.#pool.close();
    // Invocations whose sandboxes were just killed reply now; one stuck fetching code is not waited for.
    const patience = delay(CLOSE_PATIENCE_MS);
    await Promise.race([this.#untilIdle(), patience.promise]);
    patience.cancel();
    this.#announceGone();
    await this.#parts.factory
      .close()
      .catch((error: unknown) => this.#logger.warn("factory close failed", { error }));
    const { baseDir, ownsBaseDir } = this.#parts;
    const remove = ownsBaseDir
      ? [baseDir]
      : ["code", "sandboxes", "runtime"].map((name) => path.join(baseDir, name));
    for (const dir of remove)
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    this.#logger.info("worker closed");
  }

  #untilIdle(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}

/** The invoke codec checks field types; this checks values a sandbox relies on. */
function checkTarget(target: InvokeTarget): void {
  const bad = (field: string, why: string) => new DecodeError(`invoke.target.${field} ${why}`);
  if (!isRuntime(target.runtime))
    throw bad("runtime", `is not a supported runtime: ${JSON.stringify(target.runtime)}`);
  if (
    !Number.isInteger(target.memoryMb) ||
    target.memoryMb < FunctionLimits.minMemoryMb ||
    target.memoryMb > FunctionLimits.maxMemoryMb
  ) {
    throw bad(
      "memoryMb",
      `must be an integer in ${FunctionLimits.minMemoryMb}–${FunctionLimits.maxMemoryMb}`,
    );
  }
  if (!(
    target.timeoutSec >= FunctionLimits.minTimeoutSec &&
    target.timeoutSec <= FunctionLimits.maxTimeoutSec
  )) {
    throw bad(
      "timeoutSec",
      `must be in ${FunctionLimits.minTimeoutSec}–${FunctionLimits.maxTimeoutSec}`,
    );
  }
  for (const field of [
    "tenantId",
    "name",
    "handler",
    "codeSha256",
    "revisionId",
    "functionArn",
  ] as const) {
    if (target[field] === "") throw bad(field, "is empty");
  }
  for (const value of Object.values(target.environment)) {
    if (typeof value !== "string") throw bad("environment", "values must be strings");
  }
}

/** The request id of a request that did not decode, if there is one to be found. */
function requestIdOf(data: Uint8Array): string {
  try {
    const requestId = decodeRecord(data)["requestId"];
    return typeof requestId === "string" ? requestId : "";
  } catch {
    return "";
  }
}
