/**
 * Client for the Lambda Runtime API (2018-06-01) the worker serves to each
 * sandbox, plus Gust's assignment call for pre-initialized sandboxes.
 * https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
 *
 * Not fetch: the long polls below may wait for minutes, and fetch's headers
 * timeout would cut them off. Requests go over one keep-alive connection
 * (http-connection.mts).
 */
import { HttpConnection, type HttpReply } from "./http-connection.mjs";
import { RUNTIME_NODE_VERSION } from "./version.mjs";

export const RuntimeApiPaths = {
  next: "/2018-06-01/runtime/invocation/next",
  response: (requestId: string) =>
    `/2018-06-01/runtime/invocation/${encodeURIComponent(requestId)}/response`,
  error: (requestId: string) =>
    `/2018-06-01/runtime/invocation/${encodeURIComponent(requestId)}/error`,
  initError: "/2018-06-01/runtime/init/error",
  /** Gust's extension: a function-less sandbox waits here for its function. */
  assignment: "/2018-06-01/runtime/gust/assignment",
  /**
   * Gust's extension: post a result and wait for the next event in one
   * exchange; the answer is what `next` answers (or the result's refusal).
   */
  resultThenNext: (requestId: string, kind: "response" | "error") =>
    `/2018-06-01/runtime/gust/invocation/${encodeURIComponent(requestId)}/${kind}`,
} as const;

/** The Runtime API's headers, lower-cased as node:http delivers them. */
const Headers = {
  requestId: "lambda-runtime-aws-request-id",
  deadlineMs: "lambda-runtime-deadline-ms",
  functionArn: "lambda-runtime-invoked-function-arn",
  traceId: "lambda-runtime-trace-id",
  /** W3C trace context, which Gust sends beside the X-Ray header. */
  traceparent: "traceparent",
  tracestate: "tracestate",
  clientContext: "lambda-runtime-client-context",
  cognitoIdentity: "lambda-runtime-cognito-identity",
  functionErrorType: "Lambda-Runtime-Function-Error-Type",
  /**
   * Gust's result-then-next exchange: how long the invocation ran in the
   * sandbox, from its event to its result, in microseconds. The worker
   * tells short functions from the others by it (dispatch-window.ts).
   */
  runDuration: "Gust-Run-Duration-Us",
} as const;

/** The error shape Lambda's runtimes post and clients receive. */
export interface LambdaErrorBody {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export interface Invocation {
  requestId: string;
  /** Epoch milliseconds at which the worker will stop the invocation. */
  deadlineMs: number;
  invokedFunctionArn: string;
  traceId: string | undefined;
  traceparent?: string | undefined;
  tracestate?: string | undefined;
  clientContext: string | undefined;
  cognitoIdentity: string | undefined;
  /** The event as sent, JSON text. */
  body: string;
}

/** What a pool sandbox learns when a function is assigned to it. */
export interface Assignment {
  handler: string;
  env: Record<string, string>;
}

/** The Runtime API answered with a status the bootstrap cannot work with. */
export class RuntimeApiError extends Error {
  override name = "RuntimeApiError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

type Reply = HttpReply;

/** Header values must be visible ASCII; an error name is user data. */
function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "?").slice(0, 1024);
}

export class RuntimeApiClient {
  private readonly connection: HttpConnection;

  /**
   * `endpoint` is AWS_LAMBDA_RUNTIME_API: "host:port"; `version` the bootstrap's;
   * `socketPath` the unix socket a jailed sandbox reaches the same API on
   * directly (GUST_RUNTIME_API_SOCKET), without the jail's TCP forwarder.
   */
  constructor(endpoint: string, version = RUNTIME_NODE_VERSION, socketPath?: string) {
    const userAgent = `gust-runtime-node/${version} node/${process.version}`;
    const url = new URL(`http://${endpoint}`);
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = url.port === "" ? 80 : Number(url.port);
    this.connection = new HttpConnection(
      socketPath === undefined || socketPath === "" ? { host, port } : { path: socketPath },
      `host: ${url.host}\r\nuser-agent: ${userAgent}\r\n`,
    );
  }

  private request(
    method: "GET" | "POST",
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    return this.connection.request(method, path, body, headers);
  }

  /** Long-polls for the next event. */
  async nextInvocation(): Promise<Invocation> {
    return this.invocationOf(
      `GET ${RuntimeApiPaths.next}`,
      await this.request("GET", RuntimeApiPaths.next),
    );
  }

  /**
   * Posts an invocation's result (a response body, or an error) and waits for
   * the next event in the same exchange. Resolves with the refusal instead
   * when the worker does not accept the result; with undefined when the
   * worker does not offer the exchange (then nothing was posted).
   */
  async postResultThenNext(
    requestId: string,
    result: { body: string } | { error: LambdaErrorBody },
    runDurationUs: number,
  ): Promise<{ next: Invocation } | { refused: Reply } | undefined> {
    const kind = "body" in result ? "response" : "error";
    const path = RuntimeApiPaths.resultThenNext(requestId, kind);
    const duration = { [Headers.runDuration]: String(Math.max(0, Math.round(runDurationUs))) };
    const reply =
      "body" in result
        ? await this.request("POST", path, result.body, duration)
        : await this.request("POST", path, JSON.stringify(result.error), {
            ...duration,
            [Headers.functionErrorType]: headerSafe(result.error.errorType),
          });
    if (reply.status === 404) return undefined;
    if (reply.status !== 200) return { refused: reply };
    return { next: this.invocationOf(`POST ${path}`, reply) };
  }

  private invocationOf(what: string, reply: Reply): Invocation {
    if (reply.status !== 200) {
      throw new RuntimeApiError(`${what} answered ${reply.status}: ${reply.body}`, reply.status);
    }
    const requestId = reply.headers[Headers.requestId];
    if (requestId === undefined || requestId === "") {
      throw new RuntimeApiError(`${what} answered without a request id`, reply.status);
    }
    const deadline = Number(reply.headers[Headers.deadlineMs]);
    return {
      requestId,
      deadlineMs: Number.isFinite(deadline) ? deadline : Number.POSITIVE_INFINITY,
      invokedFunctionArn: reply.headers[Headers.functionArn] ?? "",
      traceId: reply.headers[Headers.traceId],
      traceparent: reply.headers[Headers.traceparent],
      tracestate: reply.headers[Headers.tracestate],
      clientContext: reply.headers[Headers.clientContext],
      cognitoIdentity: reply.headers[Headers.cognitoIdentity],
      body: reply.body,
    };
  }

  /** Long-polls until the worker assigns a function to this sandbox. */
  async assignment(): Promise<Assignment> {
    const reply = await this.request("GET", RuntimeApiPaths.assignment);
    if (reply.status !== 200) {
      throw new RuntimeApiError(
        `GET ${RuntimeApiPaths.assignment} answered ${reply.status}: ${reply.body}`,
        reply.status,
      );
    }
    const parsed = JSON.parse(reply.body) as { handler?: unknown; env?: unknown };
    if (typeof parsed.handler !== "string") {
      throw new RuntimeApiError(`assignment has no handler: ${reply.body}`, reply.status);
    }
    const env: Record<string, string> = {};
    if (parsed.env !== null && typeof parsed.env === "object") {
      for (const [key, value] of Object.entries(parsed.env)) {
        if (typeof value === "string") env[key] = value;
      }
    }
    return { handler: parsed.handler, env };
  }

  async postResponse(requestId: string, body: string): Promise<Reply> {
    return this.request("POST", RuntimeApiPaths.response(requestId), body);
  }

  async postError(requestId: string, error: LambdaErrorBody): Promise<Reply> {
    return this.request("POST", RuntimeApiPaths.error(requestId), JSON.stringify(error), {
      [Headers.functionErrorType]: headerSafe(error.errorType),
    });
  }

  async postInitError(error: LambdaErrorBody): Promise<Reply> {
    return this.request("POST", RuntimeApiPaths.initError, JSON.stringify(error), {
      [Headers.functionErrorType]: headerSafe(error.errorType),
    });
  }
}
