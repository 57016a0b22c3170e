/** Header names on NATS messages. Trace context travels as W3C `traceparent`. */
export const BusHeaders = {
  traceparent: "traceparent",
  tracestate: "tracestate",
  requestId: "gust-request-id",
  /** Content type of the body, so a peer can reject what it cannot decode. */
  contentType: "gust-content-type",
} as const;

export const MSGPACK_CONTENT_TYPE = "application/msgpack";

/** HTTP header names of the Lambda APIs, lower-cased as Node delivers them. */
export const LambdaHeaders = {
  invocationType: "x-amz-invocation-type",
  logType: "x-amz-log-type",
  logResult: "x-amz-log-result",
  functionError: "x-amz-function-error",
  executedVersion: "x-amz-executed-version",
  clientContext: "x-amz-client-context",
  errorType: "x-amzn-errortype",
  requestId: "x-amzn-requestid",
  traceId: "x-amzn-trace-id",
} as const;

/** Lambda Runtime API headers (2018-06-01), and Gust's own on its exchanges. */
export const RuntimeHeaders = {
  requestId: "lambda-runtime-aws-request-id",
  deadlineMs: "lambda-runtime-deadline-ms",
  functionArn: "lambda-runtime-invoked-function-arn",
  traceId: "lambda-runtime-trace-id",
  clientContext: "lambda-runtime-client-context",
  cognitoIdentity: "lambda-runtime-cognito-identity",
  functionErrorType: "lambda-runtime-function-error-type",
  /**
   * With a result on Gust's result-then-next exchange: how long the
   * invocation ran inside the sandbox, from its event to its result, in
   * microseconds (no wait for a core before the sandbox got the event).
   */
  runDuration: "gust-run-duration-us",
} as const;
