/**
 * Client for the Lambda Runtime API (2018-06-01) the worker serves to each
 * sandbox, plus Gust's assignment call for pre-initialized sandboxes.
 * https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
 *
 * node:http rather than fetch: the long polls below may wait for minutes,
 * and fetch's headers timeout would cut them off.
 */
import http from "node:http";
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

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Header values must be visible ASCII; an error name is user data. */
function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "?").slice(0, 1024);
}

export class RuntimeApiClient {
  private readonly host: string;
  private readonly port: number;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly userAgent: string;

  /** `endpoint` is AWS_LAMBDA_RUNTIME_API: "host:port"; `version` the bootstrap's. */
  constructor(endpoint: string, version = RUNTIME_NODE_VERSION) {
    this.userAgent = `gust-runtime-node/${version} node/${process.version}`;
    const url = new URL(`http://${endpoint}`);
    this.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = url.port === "" ? 80 : Number(url.port);
  }

  private request(
    method: "GET" | "POST",
    path: string,
    body?: string,
    headers: http.OutgoingHttpHeaders = {},
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: {
            "user-agent": this.userAgent,
            ...(body === undefined
              ? {}
              : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }),
            ...headers,
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  /** Long-polls for the next event. */
  async nextInvocation(): Promise<Invocation> {
    const reply = await this.request("GET", RuntimeApiPaths.next);
    if (reply.status !== 200) {
      throw new RuntimeApiError(
        `GET ${RuntimeApiPaths.next} answered ${reply.status}: ${reply.body}`,
        reply.status,
      );
    }
    const requestId = single(reply.headers[Headers.requestId]);
    if (requestId === undefined || requestId === "") {
      throw new RuntimeApiError(
        `GET ${RuntimeApiPaths.next} answered without a request id`,
        reply.status,
      );
    }
    const deadline = Number(single(reply.headers[Headers.deadlineMs]));
    return {
      requestId,
      deadlineMs: Number.isFinite(deadline) ? deadline : Number.POSITIVE_INFINITY,
      invokedFunctionArn: single(reply.headers[Headers.functionArn]) ?? "",
      traceId: single(reply.headers[Headers.traceId]),
      traceparent: single(reply.headers[Headers.traceparent]),
      tracestate: single(reply.headers[Headers.tracestate]),
      clientContext: single(reply.headers[Headers.clientContext]),
      cognitoIdentity: single(reply.headers[Headers.cognitoIdentity]),
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
