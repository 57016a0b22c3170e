/**
 * A minimal Lambda Runtime API for the bootstrap's tests: it hands out
 * queued events on /next, records what the bootstrap posts back, and serves
 * Gust's assignment call and, when asked to, Gust's result-then-next
 * exchange (else it answers that route 404, as a worker without it would).
 * Listens on a random port.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Posted {
  kind: "response" | "error" | "init-error";
  requestId: string | undefined;
  body: string;
  json: unknown;
  headers: http.IncomingHttpHeaders;
}

export interface InvokeOptions {
  /** @default Date.now() + 60_000 */
  deadlineMs?: number;
  functionArn?: string;
  traceId?: string;
  clientContext?: string;
  cognitoIdentity?: string;
  /** Raw body instead of JSON.stringify(event). */
  rawBody?: string;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface QueuedInvocation {
  requestId: string;
  headers: Record<string, string>;
  body: string;
}

export class FakeRuntimeApi {
  readonly requests: string[] = [];
  private readonly waitingForNext: http.ServerResponse[] = [];
  private readonly queued: QueuedInvocation[] = [];
  private readonly results = new Map<string, Deferred<Posted>>();
  private readonly initErrorPosted = deferred<Posted>();
  private readonly assignmentPolled = deferred<void>();
  private assignmentReply: string | undefined;
  private readonly waitingForAssignment: http.ServerResponse[] = [];

  private readonly server = http.createServer((request, response) =>
    this.handle(request, response),
  );

  private constructor(private readonly resultThenNext: boolean) {}

  static async start(options: { resultThenNext?: boolean } = {}): Promise<FakeRuntimeApi> {
    const api = new FakeRuntimeApi(options.resultThenNext ?? false);
    await new Promise<void>((resolve) => api.server.listen(0, "127.0.0.1", resolve));
    return api;
  }

  /** "host:port", the value of AWS_LAMBDA_RUNTIME_API. */
  get endpoint(): string {
    const { port } = this.server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  /** Queues an event and resolves with what the bootstrap posts for it. */
  invoke(
    event: unknown,
    options: InvokeOptions = {},
  ): { requestId: string; result: Promise<Posted> } {
    const requestId = randomUUID();
    const headers: Record<string, string> = {
      "lambda-runtime-aws-request-id": requestId,
      "lambda-runtime-deadline-ms": String(options.deadlineMs ?? Date.now() + 60_000),
      "lambda-runtime-invoked-function-arn":
        options.functionArn ?? "arn:aws:lambda:us-east-1:000000000000:function:fn",
    };
    if (options.traceId !== undefined) headers["lambda-runtime-trace-id"] = options.traceId;
    if (options.clientContext !== undefined)
      headers["lambda-runtime-client-context"] = options.clientContext;
    if (options.cognitoIdentity !== undefined)
      headers["lambda-runtime-cognito-identity"] = options.cognitoIdentity;
    const result = deferred<Posted>();
    this.results.set(requestId, result);
    this.queued.push({ requestId, headers, body: options.rawBody ?? JSON.stringify(event) });
    this.dispatch();
    return { requestId, result: result.promise };
  }

  /** Resolves with the first POST to /runtime/init/error. */
  initError(): Promise<Posted> {
    return this.initErrorPosted.promise;
  }

  /** Resolves once the sandbox has asked for its assignment. */
  assignmentRequested(): Promise<void> {
    return this.assignmentPolled.promise;
  }

  assign(assignment: { handler: string; env: Record<string, string> }): void {
    this.assignmentReply = JSON.stringify(assignment);
    for (const response of this.waitingForAssignment.splice(0)) this.sendAssignment(response);
  }

  private sendAssignment(response: http.ServerResponse): void {
    response.writeHead(200, { "content-type": "application/json" }).end(this.assignmentReply);
  }

  private dispatch(): void {
    while (this.waitingForNext.length > 0 && this.queued.length > 0) {
      const response = this.waitingForNext.shift()!;
      const next = this.queued.shift()!;
      response
        .writeHead(200, { "content-type": "application/json", ...next.headers })
        .end(next.body);
    }
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const path = request.url ?? "";
      this.requests.push(`${request.method} ${path}`);
      if (request.method === "GET" && path === "/2018-06-01/runtime/invocation/next") {
        this.waitingForNext.push(response);
        this.dispatch();
        return;
      }
      if (request.method === "GET" && path === "/2018-06-01/runtime/gust/assignment") {
        this.assignmentPolled.resolve();
        if (this.assignmentReply === undefined) this.waitingForAssignment.push(response);
        else this.sendAssignment(response);
        return;
      }
      const parse = (): unknown => {
        try {
          return JSON.parse(body) as unknown;
        } catch {
          return undefined;
        }
      };
      if (request.method === "POST" && path === "/2018-06-01/runtime/init/error") {
        this.initErrorPosted.resolve({
          kind: "init-error",
          requestId: undefined,
          body,
          json: parse(),
          headers: request.headers,
        });
        response.writeHead(202).end('{"status":"OK"}');
        return;
      }
      const match = /^\/2018-06-01\/runtime\/(gust\/)?invocation\/([^/]+)\/(response|error)$/.exec(
        path,
      );
      if (match?.[1] !== undefined && !this.resultThenNext) {
        response.writeHead(404).end('{"errorType":"UnknownPath"}');
        return;
      }
      if (request.method === "POST" && match) {
        const requestId = decodeURIComponent(match[2]!);
        const pending = this.results.get(requestId);
        if (pending === undefined) {
          response.writeHead(400).end('{"errorMessage":"unknown request id"}');
          return;
        }
        this.results.delete(requestId);
        pending.resolve({
          kind: match[3] as "response" | "error",
          requestId,
          body,
          json: parse(),
          headers: request.headers,
        });
        if (match[1] !== undefined) {
          // Gust's exchange: the answer is the next event.
          this.waitingForNext.push(response);
          this.dispatch();
          return;
        }
        response.writeHead(202).end('{"status":"OK"}');
        return;
      }
      response.writeHead(404).end();
    });
  }

  async close(): Promise<void> {
    for (const response of [
      ...this.waitingForNext.splice(0),
      ...this.waitingForAssignment.splice(0),
    ]) {
      response.destroy();
    }
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
