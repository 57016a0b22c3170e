/**
 * Lambda's Invoke: `POST /2015-03-31/functions/{name}/invocations`.
 *
 * - RequestResponse (the default) runs the function and answers 200 with its
 *   payload, also when the function failed: then `X-Amz-Function-Error:
 *   Unhandled` says so and the body is the error JSON the runtime reported.
 * - Event queues the invocation (202); the dispatcher runs it later.
 * - DryRun checks the request and the caller's access and answers 204.
 *
 * Reference: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
 */
import {
  BusHeaders,
  encode,
  FunctionLimits,
  LambdaApiError,
  LambdaHeaders,
  Outcomes,
  Subjects,
  type EventInvocation,
  type InvokeResult,
} from "@gust/protocol";
import {
  endSpan,
  failSpan,
  SpanAttributes,
  SpanNames,
  startHttpServerSpan,
  withTraceHeaders,
  type Span,
} from "@gust/telemetry";
import type { Hono } from "hono";
import { ApiErrors } from "./api-errors.js";
import { utf8 } from "./body.js";
import {
  lookUpFunction,
  type FrontendContext,
  type FrontendEnv,
  type Services,
} from "./http-context.js";

export const InvocationTypes = {
  requestResponse: "RequestResponse",
  event: "Event",
  dryRun: "DryRun",
} as const;
export type InvocationType = (typeof InvocationTypes)[keyof typeof InvocationTypes];

/** Lambda returns at most the last 4 KB of the log with `LogType: Tail`. */
export const LOG_TAIL_BYTES = 4096;
/** Lambda's limit for X-Amz-Client-Context (base64). */
export const MAX_CLIENT_CONTEXT_BYTES = 3583;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EMPTY_EVENT = new TextEncoder().encode("{}");

function invocationTypeOf(c: FrontendContext): InvocationType {
  const value = c.req.header(LambdaHeaders.invocationType) ?? InvocationTypes.requestResponse;
  if (!(Object.values(InvocationTypes) as string[]).includes(value)) {
    throw ApiErrors.invalidParameter(
      `1 validation error detected: Value '${value}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`,
    );
  }
  return value as InvocationType;
}

function wantsTail(c: FrontendContext): boolean {
  const value = c.req.header(LambdaHeaders.logType) ?? "None";
  if (value !== "None" && value !== "Tail") {
    throw ApiErrors.invalidParameter(
      `1 validation error detected: Value '${value}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]`,
    );
  }
  return value === "Tail";
}

function clientContextOf(c: FrontendContext): string | undefined {
  const value = c.req.header(LambdaHeaders.clientContext);
  if (value === undefined || value === "") return undefined;
  if (value.length > MAX_CLIENT_CONTEXT_BYTES || !BASE64.test(value)) {
    throw ApiErrors.invalidRequestContent(
      `Client context must be base64 of at most ${MAX_CLIENT_CONTEXT_BYTES} bytes`,
    );
  }
  return value;
}

/** Lambda takes only JSON events; an empty body is the empty object. */
function payloadOf(body: Uint8Array): Uint8Array {
  const text = utf8(body);
  if (text === undefined) {
    throw ApiErrors.invalidRequestContent(
      "Could not parse request body into json: the body is not valid UTF-8",
    );
  }
  if (text.trim() === "") return EMPTY_EVENT;
  try {
    JSON.parse(text);
  } catch (error) {
    throw ApiErrors.invalidRequestContent(
      `Could not parse request body into json: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return body;
}

function logTail(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  return bytes.subarray(Math.max(0, bytes.byteLength - LOG_TAIL_BYTES)).toString("base64");
}

/** Lambda's answer when a handler returns more than a synchronous response may carry. */
function oversizedResponse(size: number): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      errorMessage: `Response payload size (${size} bytes) exceeded maximum allowed payload size (${FunctionLimits.maxSyncPayloadBytes} bytes).`,
      errorType: "Function.ResponseSizeTooLarge",
    }),
  );
}

function invocationResponse(c: FrontendContext, result: InvokeResult, tail: boolean): Response {
  let payload = result.payload;
  let failed = result.outcome !== Outcomes.success;
  if (payload.byteLength > FunctionLimits.maxSyncPayloadBytes) {
    payload = oversizedResponse(payload.byteLength);
    failed = true;
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "X-Amz-Executed-Version": result.executedVersion,
  };
  if (failed) headers["X-Amz-Function-Error"] = "Unhandled";
  if (tail) headers["X-Amz-Log-Result"] = logTail(result.logTail ?? "");
  return c.body(payload as Uint8Array<ArrayBuffer>, 200, headers);
}

const INVOKE_ROUTE = "/2015-03-31/functions/:name/invocations";

/** The status the request ends with, on the frontend's span; a 5xx (Gust's fault) marks it failed. */
function recordFailure(span: Span | undefined, error: unknown): void {
  if (span === undefined) return;
  const status = error instanceof LambdaApiError ? error.statusCode : 500;
  span.setAttribute(SpanAttributes.httpStatusCode, status);
  if (status >= 500) failSpan(span, error);
}

async function serveInvoke(
  c: FrontendContext,
  services: Services,
  span: Span | undefined,
): Promise<Response> {
  const tenant = c.get("tenant");
  const requestId = c.get("requestId");
  span?.setAttribute(SpanAttributes.tenantId, tenant.id);
  span?.setAttribute(SpanAttributes.requestId, requestId);
  const invocationType = invocationTypeOf(c);
  span?.setAttribute(SpanAttributes.invocationType, invocationType);
  const tail = wantsTail(c);
  const clientContext = clientContextOf(c);
  const traceId = c.req.header(LambdaHeaders.traceId);
  const { record } = await lookUpFunction(c, services);
  span?.setAttribute(SpanAttributes.functionName, record.name);
  const payload = payloadOf(c.get("body"));

  if (invocationType === InvocationTypes.dryRun) return c.body(null, 204);

  if (invocationType === InvocationTypes.event) {
    const event: EventInvocation = {
      type: "event",
      requestId,
      tenantId: tenant.id,
      functionName: record.name,
      payload,
      enqueuedAt: services.now(),
      ...(traceId === undefined ? {} : { traceId }),
    };
    // The queued event carries this span's context: its runs join this trace.
    await services.eventQueue.enqueue(
      Subjects.events(tenant.id),
      encode(event),
      withTraceHeaders(span, { [BusHeaders.requestId]: requestId }),
    );
    return c.body(null, 202);
  }

  const result = await services.invoker.invoke({
    requestId,
    tenant,
    fn: record,
    payload,
    tailLog: tail,
    invocationType,
    ...(clientContext === undefined ? {} : { clientContext }),
    ...(traceId === undefined ? {} : { traceId }),
    span,
  });
  return invocationResponse(c, result, tail);
}

export function registerInvokeApi(app: Hono<FrontendEnv>, services: Services): void {
  app.post(INVOKE_ROUTE, async (c) => {
    const span = startHttpServerSpan(SpanNames.invoke, c.req.raw, INVOKE_ROUTE);
    try {
      const response = await serveInvoke(c, services, span);
      span?.setAttribute(SpanAttributes.httpStatusCode, response.status);
      return response;
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      endSpan(span);
    }
  });
}
