/**
 * The spans of one invocation, and the trace context they hand on.
 *
 * One trace per invocation:
 *
 *   gust.invoke            SERVER    frontend: the Invoke request (continues an incoming
 *                                    `traceparent`, else `X-Amzn-Trace-Id`)
 *   gust.event.dispatch    CONSUMER  frontend: one attempt at a queued Event invocation,
 *                                    a child of the gust.invoke that queued it
 *   gust.worker.request    CLIENT    frontend: the NATS request to one worker
 *   gust.worker.invoke     SERVER    worker: the invocation, from its NATS headers
 *   gust.sandbox.acquire   INTERNAL  worker: finding or starting the sandbox
 *   gust.sandbox.init      INTERNAL  worker: waiting for a new sandbox's runtime to load the function
 *   gust.handler           INTERNAL  worker: the sandbox's run, from delivery on
 *                                    `invocation/next` to the posted response or error
 *
 * Context is passed explicitly, span to span and in message headers, never
 * through AsyncLocalStorage: the hot path pays for no async hooks. When
 * tracing is off the functions that start spans or add headers return at
 * their first line, before anything is allocated. Callers hold
 * `Span | undefined` and use `span?.…`, which skips the call and the
 * evaluation of its arguments alike.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type TextMapPropagator,
  type Tracer,
} from "@opentelemetry/api";
import { BusHeaders, LambdaHeaders } from "@gust/protocol";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
} from "@opentelemetry/semantic-conventions";
import { parseXRayTraceHeader, toTraceparent, toXRayTraceHeader } from "./trace-context.js";

export const SpanNames = {
  invoke: "gust.invoke",
  eventDispatch: "gust.event.dispatch",
  workerRequest: "gust.worker.request",
  workerInvoke: "gust.worker.invoke",
  sandboxAcquire: "gust.sandbox.acquire",
  sandboxInit: "gust.sandbox.init",
  handler: "gust.handler",
} as const;
export type SpanName = (typeof SpanNames)[keyof typeof SpanNames];

/**
 * Attribute names. `faas.*`, `http.*` and `messaging.*` are OpenTelemetry's
 * semantic conventions; `gust.*` are Gust's own.
 */
export const SpanAttributes = {
  tenantId: "gust.tenant.id",
  /** The function's name. */
  functionName: "faas.name",
  /** Lambda's request id. */
  requestId: "faas.invocation_id",
  /** RequestResponse, Event or DryRun. */
  invocationType: "gust.invocation.type",
  /** success, function-error, timeout, crash or init-error (protocol Outcomes). */
  outcome: "gust.invocation.outcome",
  /** "admitted" or "throttled". */
  admissionDecision: "gust.admission.decision",
  /** Lambda's throttle `Reason` when throttled. */
  admissionReason: "gust.admission.reason",
  /** The tenant's concurrency share on this frontend, set by the admission that has one. */
  admissionShare: "gust.admission.share",
  /** The tenant's temporary concurrency limit, set by the admission that has one. */
  temporaryLimit: "gust.admission.temporary_limit",
  /** 1 for the first attempt of an Event invocation. */
  eventAttempt: "gust.event.attempt",
  workerId: "gust.worker.id",
  /** warm, preinitialized or cold (protocol StartKinds). */
  sandboxStart: "gust.sandbox.start",
  /** True unless the sandbox was warm. */
  coldStart: "faas.coldstart",
  sandboxId: "gust.sandbox.id",
  runtime: "gust.function.runtime",
  httpMethod: ATTR_HTTP_REQUEST_METHOD,
  httpRoute: ATTR_HTTP_ROUTE,
  httpStatusCode: ATTR_HTTP_RESPONSE_STATUS_CODE,
  messagingSystem: "messaging.system",
  messagingDestination: "messaging.destination.name",
} as const;

/** What tracing needs once it is on: set by startTelemetry, cleared by its shutdown. */
export interface ActiveTracing {
  readonly tracer: Tracer;
  readonly propagator: TextMapPropagator;
}

let active: ActiveTracing | undefined;

export function setActiveTracing(tracing: ActiveTracing | undefined): void {
  active = tracing;
}

/** Whether spans are being recorded in this process. */
export function tracingEnabled(): boolean {
  return active !== undefined;
}

/** Request headers as the Fetch API gives them (hono's `c.req.raw.headers`). */
export interface HttpHeaders {
  get(name: string): string | null;
}

/** An HTTP request as the Fetch API gives it (hono's `c.req.raw`); read only when tracing. */
export interface HttpRequest {
  readonly method: string;
  readonly headers: HttpHeaders;
}

/** Headers of a bus message or queued job. */
export type MessageHeaders = Readonly<Record<string, string>>;

const httpGetter: TextMapGetter<HttpHeaders> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: () => [BusHeaders.traceparent, BusHeaders.tracestate],
};

const messageGetter: TextMapGetter<MessageHeaders> = {
  get: (carrier, key) => (Object.hasOwn(carrier, key) ? carrier[key] : undefined),
  keys: (carrier) => Object.keys(carrier),
};

const messageSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

function remoteParent(tracing: ActiveTracing, headers: MessageHeaders): Context {
  return tracing.propagator.extract(ROOT_CONTEXT, headers, messageGetter);
}

/**
 * The frontend's span for one request. Its parent is the caller's
 * `traceparent` (a load balancer or an instrumented client may send one),
 * else the X-Ray header AWS clients send (`X-Amzn-Trace-Id`), else none.
 */
export function startHttpServerSpan(
  name: SpanName,
  request: HttpRequest,
  route: string,
): Span | undefined {
  const tracing = active;
  if (tracing === undefined) return undefined;
  const { headers } = request;
  let parent = tracing.propagator.extract(ROOT_CONTEXT, headers, httpGetter);
  if (trace.getSpanContext(parent) === undefined) {
    const xray = headers.get(LambdaHeaders.traceId);
    const remote = xray === null ? undefined : parseXRayTraceHeader(xray);
    if (remote !== undefined) parent = trace.setSpanContext(ROOT_CONTEXT, remote);
  }
  return tracing.tracer.startSpan(
    name,
    {
      kind: SpanKind.SERVER,
      attributes: {
        [SpanAttributes.httpMethod]: request.method,
        [SpanAttributes.httpRoute]: route,
      },
    },
    parent,
  );
}

/** A span continuing the trace whose context a bus message or queued job carries (or a new trace). */
export function startMessageSpan(
  name: SpanName,
  kind: SpanKind,
  headers: MessageHeaders,
): Span | undefined {
  const tracing = active;
  if (tracing === undefined) return undefined;
  return tracing.tracer.startSpan(name, { kind }, remoteParent(tracing, headers));
}

/** A child of `parent`; none when the parent is not traced (tracing off). */
export function startChildSpan(
  name: SpanName,
  parent: Span | undefined,
  kind: SpanKind = SpanKind.INTERNAL,
): Span | undefined {
  const tracing = active;
  if (tracing === undefined || parent === undefined) return undefined;
  return tracing.tracer.startSpan(name, { kind }, trace.setSpan(ROOT_CONTEXT, parent));
}

/**
 * `headers` plus the W3C trace context of `span` (traceparent, tracestate),
 * as a new object; `headers` itself when there is no span.
 */
export function withTraceHeaders(span: Span | undefined, headers: MessageHeaders): MessageHeaders {
  const tracing = active;
  if (tracing === undefined || span === undefined) return headers;
  const out: Record<string, string> = { ...headers };
  tracing.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, messageSetter);
  return out;
}

/** The trace context headers a message carries, to pass on unchanged (e.g. when requeueing it). */
export function traceHeadersOf(headers: MessageHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const parent = headers[BusHeaders.traceparent];
  const state = headers[BusHeaders.tracestate];
  if (parent !== undefined) out[BusHeaders.traceparent] = parent;
  if (state !== undefined) out[BusHeaders.tracestate] = state;
  return out;
}

/** What a sandbox is handed for one invocation, as Lambda hands it (and W3C for OpenTelemetry). */
export interface SandboxTraceContext {
  /** X-Ray header: `Lambda-Runtime-Trace-Id` and `_X_AMZN_TRACE_ID`. */
  xrayTraceId: string;
  traceparent: string;
  tracestate: string | undefined;
}

export function sandboxTraceContext(span: Span): SandboxTraceContext {
  const context = span.spanContext();
  const state = context.traceState?.serialize();
  return {
    xrayTraceId: toXRayTraceHeader(context),
    traceparent: toTraceparent(context),
    tracestate: state === undefined || state === "" ? undefined : state,
  };
}

/** End a span; an error marks it failed and is recorded as an exception event. */
export function endSpan(span: Span | undefined, error?: unknown): void {
  if (span === undefined) return;
  if (error !== undefined) failSpan(span, error);
  span.end();
}

/** Mark a span failed without ending it. */
export function failSpan(span: Span | undefined, error: unknown): void {
  if (span === undefined) return;
  if (error instanceof Error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
  }
}
