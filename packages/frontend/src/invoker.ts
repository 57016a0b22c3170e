/**
 * One invocation, from admission to the worker's reply: the path shared by
 * synchronous Invoke and the Event dispatcher.
 *
 * A worker that says it is full (CapacityError) or that no longer listens
 * (NoRespondersError) did not run the function, so the next candidate is
 * tried, a bounded number of times. Anything after the request reached a
 * worker (a reply that does not decode, no reply in time, the worker dying
 * before it answers) is not retried: the function may have run, and running
 * it twice is the caller's choice.
 *
 * A worker that dies mid-invocation never replies. Rather than wait for the
 * function's timeout, the wait ends when the worker directory notices the
 * death (its heartbeats stop): the caller gets a ServiceException, a fault
 * of the platform that SDKs retry, not a function error, since the function
 * itself did nothing wrong.
 */
import { randomUUID } from "node:crypto";
import type { Bus, BusMessage } from "@gust/bus";
import {
  BusHeaders,
  BusTimeoutError,
  decodeAs,
  encode,
  GustError,
  LambdaApiError,
  LambdaErrors,
  MSGPACK_CONTENT_TYPE,
  rebuildError,
  Subjects,
  type AdmissionSlot,
  type FunctionRecord,
  type InvokeReply,
  type InvokeRequest,
  type InvokeResult,
  type SerializedError,
} from "@gust/protocol";
import type { RuntimeVersionChoice, Tenant } from "@gust/registry";
import {
  countInflight,
  countInvocation,
  countThrottle,
  endSpan,
  SpanAttributes,
  SpanKind,
  SpanNames,
  startChildSpan,
  withTraceHeaders,
  type Logger,
  type Span,
} from "@gust/telemetry";
import { acquire, type Admission, type Rejection, type Ticket } from "./admission.js";
import { throttled, ThrottleReasons } from "./api-errors.js";
import type { WorkerDirectory } from "./worker-directory.js";

export interface Invocation {
  requestId: string;
  tenant: Tenant;
  fn: FunctionRecord;
  payload: Uint8Array;
  tailLog: boolean;
  clientContext?: string;
  traceId?: string;
  /** RequestResponse or Event, for the invocation metrics. @default "RequestResponse" */
  invocationType?: string;
  /** The span the invocation is traced under: the Invoke request's, or the Event attempt's. */
  span?: Span | undefined;
  /** The runtime version to run on, instead of InvokerOptions.runtimeVersionFor's choice. */
  runtimeVersion?: RuntimeVersionChoice;
  /** A rollout's shadow of a caller's invocation (see rollout-shadow.ts): nobody waits for it. */
  shadow?: boolean;
}

/**
 * An admission decision as the span records it. An admission that knows the
 * tenant's fleet share or temporary limit adds them to its Ticket and
 * Rejection as `share` and `temporaryLimit`, and they show on the span.
 */
type TracedDecision = (Ticket | Rejection) & {
  readonly share?: number;
  readonly temporaryLimit?: number;
};

function recordAdmission(span: Span | undefined, decision: TracedDecision): void {
  if (span === undefined) return;
  if (decision.kind === "ticket") {
    span.setAttribute(SpanAttributes.admissionDecision, "admitted");
  } else {
    span.setAttribute(SpanAttributes.admissionDecision, "throttled");
    span.setAttribute(SpanAttributes.admissionReason, decision.reason);
  }
  if (typeof decision.share === "number") {
    span.setAttribute(SpanAttributes.admissionShare, decision.share);
  }
  if (typeof decision.temporaryLimit === "number") {
    span.setAttribute(SpanAttributes.temporaryLimit, decision.temporaryLimit);
  }
}

/** What the invocation metrics count a failure as. */
function failureOutcome(error: unknown): string {
  return error instanceof LambdaApiError && error.statusCode === 429 ? "throttled" : "error";
}

/** No worker is known, or none of those tried still listens. */
export class NoWorkerError extends LambdaApiError {
  override name = "NoWorkerError";
  constructor() {
    super(
      "ServiceException",
      500,
      "No worker is available to run the function. Retry the request.",
    );
  }
}

/** Whether an error means "not now" (throttle or no capacity) rather than "this failed". */
export function isCapacityShortage(error: unknown): boolean {
  return (
    error instanceof NoWorkerError || (error instanceof LambdaApiError && error.statusCode === 429)
  );
}

/**
 * A worker in the frontend's own process (`gust dev`): invocations routed to
 * it are handed over as objects, without encoding them and their replies for
 * the bus. Routing, admission, retries, timeouts and worker loss are as for
 * any worker.
 */
export interface LocalWorker {
  readonly id: string;
  invokeLocal(
    request: InvokeRequest,
    headers: Readonly<Record<string, string>>,
  ): Promise<InvokeReply>;
}

export interface InvokerOptions {
  maxWorkerTries: number;
  /** Workers sharing this process, by id. */
  localWorkers?: ReadonlyMap<string, LocalWorker>;
  invokeTimeoutMarginMs: number;
  /**
   * The runtime version an invocation runs on, chosen per invocation from
   * memory. Absent, workers run the runtime's built-in default.
   */
  runtimeVersionFor?: (fn: FunctionRecord) => RuntimeVersionChoice;
  /** Told of every reply a worker ran (runtime rollouts count outcomes per version). */
  onResult?: (fn: FunctionRecord, result: InvokeResult) => void;
  /**
   * The version to also run an invocation on as a rollout's shadow, once
   * the caller's own invocation is over; undefined for none.
   */
  shadowFor?: (fn: FunctionRecord) => RuntimeVersionChoice | undefined;
}

function runtimeVersionTarget(
  choice: RuntimeVersionChoice | undefined,
): Pick<InvokeRequest["target"], "runtimeVersion" | "runtimeVersionIsDefault"> {
  return choice === undefined
    ? {}
    : { runtimeVersion: choice.version, runtimeVersionIsDefault: choice.isDefault };
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof GustError && error.code === code;
}

/** A peer's serialized error, checked field by field: it came off the wire. */
function rebuildPeerError(value: SerializedError): GustError {
  const safe: SerializedError = {
    name: typeof value.name === "string" ? value.name : "Error",
    message: typeof value.message === "string" ? value.message : "unknown error",
    code: typeof value.code === "string" ? value.code : "internal",
    retryable: value.retryable === true,
  };
  if (typeof value.errorType === "string") safe.errorType = value.errorType;
  if (typeof value.statusCode === "number" && Number.isInteger(value.statusCode)) {
    safe.statusCode = value.statusCode;
  }
  if (typeof value.fields === "object" && value.fields !== null) {
    safe.fields = Object.fromEntries(
      Object.entries(value.fields).filter(([, v]) => typeof v === "string"),
    );
  }
  return rebuildError(safe);
}

export class Invoker {
  constructor(
    private readonly bus: Bus,
    private readonly admission: Admission,
    private readonly directory: WorkerDirectory,
    private readonly logger: Logger,
    private readonly options: InvokerOptions,
  ) {}

  /** Throws LambdaApiError: 429 when throttled, ServiceException when no worker could run it. */
  async invoke(invocation: Invocation): Promise<InvokeResult> {
    const { tenant, span } = invocation;
    const invocationType = invocation.invocationType ?? "RequestResponse";
    // Waits only when a loan of slots from a peer is on its way (one round trip).
    const admitted = await acquire(this.admission, tenant, invocation.fn);
    recordAdmission(span, admitted);
    if (admitted.kind === "rejection") {
      // A throttled shadow is skipped: the tenant did not ask for it.
      if (invocation.shadow === true) throw throttled(admitted.reason, admitted.retryAfterMs);
      countThrottle(tenant.id, admitted.reason);
      countInvocation(tenant.id, invocationType, "throttled");
      throw throttled(admitted.reason, admitted.retryAfterMs);
    }
    countInflight(tenant.id, 1);
    let outcome = "error";
    try {
      const result = await this.dispatch(invocation, admitted.slot);
      this.options.onResult?.(invocation.fn, result);
      outcome = result.outcome;
      span?.setAttribute(SpanAttributes.outcome, result.outcome);
      span?.setAttribute(SpanAttributes.sandboxStart, result.startKind);
      return result;
    } catch (error) {
      outcome = failureOutcome(error);
      throw error;
    } finally {
      this.admission.release(admitted);
      countInflight(tenant.id, -1);
      countInvocation(tenant.id, invocationType, outcome);
      if (invocation.shadow !== true) this.shadow(invocation);
    }
  }

  /**
   * Runs a rollout's shadow of an invocation, in the background and after
   * the caller's own (whose slot it may reuse): it passes admission and
   * worker routing as any invocation, onResult counts what it returns, and
   * nothing of it, failure included, reaches the caller.
   */
  private shadow(invocation: Invocation): void {
    let version: RuntimeVersionChoice | undefined;
    try {
      version = this.options.shadowFor?.(invocation.fn);
    } catch (error) {
      // Whatever goes wrong with a shadow must not reach the caller.
      this.logger.warn("a rollout's shadow could not be planned", { error });
      return;
    }
    if (version === undefined) return;
    const shadow: Invocation = {
      requestId: randomUUID(),
      tenant: invocation.tenant,
      fn: invocation.fn,
      payload: invocation.payload,
      tailLog: false,
      ...(invocation.clientContext === undefined
        ? {}
        : { clientContext: invocation.clientContext }),
      invocationType: "Shadow",
      runtimeVersion: version,
      shadow: true,
    };
    this.invoke(shadow).catch((error: unknown) => {
      this.logger.debug("a rollout's shadow invocation did not run", {
        requestId: shadow.requestId,
        shadowOf: invocation.requestId,
        error,
      });
    });
  }

  private async dispatch(
    invocation: Invocation,
    slot: AdmissionSlot | undefined,
  ): Promise<InvokeResult> {
    const { fn, requestId } = invocation;
    if (this.directory.liveCount() === 0) throw new NoWorkerError();
    const request: InvokeRequest = {
      type: "invoke",
      requestId,
      target: {
        tenantId: fn.tenantId,
        name: fn.name,
        functionArn: fn.functionArn,
        runtime: fn.runtime,
        handler: fn.handler,
        timeoutSec: fn.timeoutSec,
        memoryMb: fn.memoryMb,
        environment: fn.environment,
        codeSha256: fn.codeSha256,
        revisionId: fn.revisionId,
        ...runtimeVersionTarget(invocation.runtimeVersion ?? this.options.runtimeVersionFor?.(fn)),
        ...(invocation.tenant.egress === "deny" ? { egress: "deny" as const } : {}),
      },
      payload: invocation.payload,
      tailLog: invocation.tailLog,
      ...(invocation.clientContext === undefined
        ? {}
        : { clientContext: invocation.clientContext }),
      ...(invocation.traceId === undefined ? {} : { traceId: invocation.traceId }),
      ...(slot === undefined ? {} : { admission: slot }),
    };
    // Encoded once, for the first worker tried that is not in this process.
    let data: Uint8Array | undefined;
    const timeoutMs = fn.timeoutSec * 1000 + this.options.invokeTimeoutMarginMs;
    const headers = {
      [BusHeaders.requestId]: requestId,
      [BusHeaders.contentType]: MSGPACK_CONTENT_TYPE,
    };

    let workerSaidFull = false;
    // The best candidate is chosen afresh after each failure, among workers not
    // yet tried: a worker that vanished or is full must not use up the tries
    // while another could run the invocation.
    const tried = new Set<string>();
    for (let attempt = 0; attempt < this.options.maxWorkerTries; attempt++) {
      const [workerId] = this.directory.candidates(fn, 1, tried);
      if (workerId === undefined) break;
      tried.add(workerId);
      const subject = Subjects.invoke(workerId);
      const local = this.options.localWorkers?.get(workerId);
      // One span per worker tried; the worker's span continues from its context.
      const requestSpan = startChildSpan(SpanNames.workerRequest, invocation.span, SpanKind.CLIENT);
      requestSpan?.setAttribute(SpanAttributes.workerId, workerId);
      requestSpan?.setAttribute(SpanAttributes.messagingSystem, local ? "in-process" : "nats");
      requestSpan?.setAttribute(SpanAttributes.messagingDestination, subject);
      const claim = this.directory.claim(workerId, fn);
      const tracedHeaders = withTraceHeaders(requestSpan, headers);
      let answer: InvokeReply | BusMessage;
      try {
        answer =
          local === undefined
            ? await this.whileAlive(workerId, () =>
                this.bus.request(subject, (data ??= encode(request)), {
                  timeoutMs,
                  headers: tracedHeaders,
                }),
              )
            : await this.whileAlive(workerId, () => local.invokeLocal(request, tracedHeaders), {
                timeoutMs,
                subject,
              });
      } catch (error) {
        endSpan(requestSpan, error);
        if (error instanceof WorkerLostError) {
          this.logger.warn("a worker left during an invocation", {
            workerId,
            requestId,
            why: error.message,
          });
          throw LambdaErrors.service(
            `The worker running the function left the fleet before it answered (${error.message}). The function may have run.`,
          );
        }
        if (hasCode(error, "no-responders")) {
          this.directory.forget(workerId, "nobody answers on its subject");
          continue;
        }
        if (hasCode(error, "timeout")) {
          throw LambdaErrors.service(
            `The worker running the function did not answer within ${timeoutMs} ms.`,
          );
        }
        throw error;
      } finally {
        this.directory.release(claim);
      }

      let message: InvokeReply;
      try {
        message =
          "type" in answer ? answer : decodeAs(answer.data, "invoke.result", "invoke.rejected");
      } catch (error) {
        endSpan(requestSpan, error);
        this.logger.error("a worker's reply does not decode", { workerId, requestId, error });
        throw LambdaErrors.service("The worker's reply could not be read.");
      }
      if (message.requestId !== requestId) {
        endSpan(requestSpan, "the reply is for another request");
        this.logger.error("a worker replied for another request", {
          workerId,
          requestId,
          replyFor: message.requestId,
        });
        throw LambdaErrors.service("The worker's reply could not be read.");
      }
      if (message.type === "invoke.result") {
        endSpan(requestSpan);
        return message;
      }

      const error = rebuildPeerError(message.error);
      endSpan(requestSpan, error);
      if (error.retryable) {
        if (error.code === "capacity") workerSaidFull = true;
        this.logger.debug("worker declined an invocation; trying another", {
          workerId,
          requestId,
          error,
        });
        continue;
      }
      if (error instanceof LambdaApiError) throw error;
      this.logger.warn("worker could not run an invocation", { workerId, requestId, error });
      throw LambdaErrors.service(`The function could not be run: ${error.message}`);
    }
    // Every worker tried was full. Lambda's answer when it cannot start an
    // execution environment now is a throttle: 429 TooManyRequestsException,
    // which SDKs retry with backoff and the Event queue retries without
    // spending an attempt. A 500 would read as a fault of the request.
    if (workerSaidFull) {
      countThrottle(fn.tenantId, ThrottleReasons.concurrentInvocationLimitExceeded);
      throw throttled(ThrottleReasons.concurrentInvocationLimitExceeded);
    }
    throw new NoWorkerError();
  }

  /**
   * The worker's answer, ended early with WorkerLostError when the worker is
   * lost before it answers. `bound` limits a local worker's wait as the bus
   * limits a request's: BusTimeoutError after `timeoutMs`.
   */
  private whileAlive<T>(
    workerId: string,
    ask: () => Promise<T>,
    bound?: { timeoutMs: number; subject: string },
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const unwatch = this.directory.watchLoss(workerId, (why) => reject(new WorkerLostError(why)));
      const timer =
        bound === undefined
          ? undefined
          : setTimeout(
              () =>
                reject(
                  new BusTimeoutError(`no reply on ${bound.subject} within ${bound.timeoutMs} ms`),
                ),
              bound.timeoutMs,
            );
      ask()
        .then(resolve, reject)
        .finally(() => {
          clearTimeout(timer);
          unwatch();
        });
    });
  }
}

/** The worker an invocation was sent to left the fleet (crashed, cut off) before it answered. */
class WorkerLostError extends GustError {
  override name = "WorkerLostError";
  constructor(why: string) {
    super(why, "worker-lost");
  }
}
