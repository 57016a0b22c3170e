/**
 * The Lambda Runtime API (version 2018-06-01) one sandbox talks to, on its own
 * loopback port or, in a jail, its own unix socket: the runtime long-polls `invocation/next`, posts the result to
 * `invocation/{id}/response` or `/error`, and reports a failed start on
 * `init/error`. Gust adds two extensions: `gust/assignment`, which a
 * pre-initialized runtime long-polls to learn which function it serves, and
 * `gust/invocation/{id}/response|error`, which takes a result as the standard
 * routes do and then answers as `invocation/next` does: Gust's runtime posts
 * a result and waits for its next event in one exchange.
 *
 * Reference: the Runtime API OpenAPI document (runtime-api.zip in the Lambda
 * developer guide) — 202 on accepted results, 400 for an unknown request id,
 * 403 for a call not allowed in the current state, 413 for an oversized body.
 */
import { chmod } from "node:fs/promises";
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { BusHeaders, FunctionLimits, GustError, RuntimeHeaders } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";

const API = "/2018-06-01/runtime";
/** Lambda's synchronous response limit. */
export const MAX_RUNTIME_BODY_BYTES = FunctionLimits.maxSyncPayloadBytes;
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Node rejects header values outside these characters; such values are left out. */
const SAFE_HEADER_VALUE = /^[\t\x20-\x7e]*$/;

export interface RuntimeInvocation {
  requestId: string;
  payload: Uint8Array;
  /** Epoch ms at which the function times out. */
  deadlineMs: number;
  functionArn: string;
  /** X-Ray trace header, sent as Lambda-Runtime-Trace-Id. */
  traceId?: string | undefined;
  /** W3C trace context, sent as `traceparent` / `tracestate` for runtimes that use OpenTelemetry. */
  traceparent?: string | undefined;
  tracestate?: string | undefined;
  /** JSON text. */
  clientContext?: string;
}

/**
 * `runDurationMs`: how long the run took inside the sandbox, when its runtime
 * says so with the result (RuntimeHeaders.runDuration; Gust's runtime does).
 */
export type RuntimeOutcome =
  | { kind: "response"; body: Uint8Array; runDurationMs?: number }
  /** Lambda error JSON: what the runtime posted, or Gust's when the response was too large. */
  | { kind: "error"; body: Uint8Array; runDurationMs?: number }
  /** The sandbox gave up on the invocation (timeout, crash). */
  | { kind: "abandoned" };

/** The reply to `GET /2018-06-01/runtime/gust/assignment`. */
export interface Assignment {
  handler: string;
  env: Record<string, string>;
}

export interface RuntimeApiListener {
  /**
   * The runtime asks for its next invocation: init is over, or the previous
   * invocation is. `resultPending`: it asks while the result of the one it
   * was handed is still on its way (a runtime that polls and posts at once).
   */
  onNext?(resultPending: boolean): void;
  /** A pre-initialized runtime asks for its function. */
  onAssignmentRequest?(): void;
  /** The runtime could not start its function; the body is Lambda error JSON. */
  onInitError?(body: Uint8Array): void;
}

export interface RuntimeApiServerOptions {
  logger: Logger;
  listener: RuntimeApiListener;
  /**
   * Decides whether a new connection may talk to this API (used to accept
   * only the sandbox's own uid). Undefined accepts every connection.
   */
  authorizeConnection?: (socket: Socket) => Promise<boolean>;
  /**
   * Listen on this unix socket instead of a loopback port: a jailed sandbox
   * reaches it through a bind mount, and nothing else can.
   */
  socketPath?: string;
}

interface CurrentInvocation {
  invocation: RuntimeInvocation;
  delivered: boolean;
  settle: (outcome: RuntimeOutcome) => void;
}

function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Lambda error JSON as the runtime posted it, or built from the error-type header when it is not JSON. */
export function normalizeErrorBody(
  body: Uint8Array,
  errorTypeHeader: string | undefined,
): Uint8Array {
  const text = Buffer.from(body).toString("utf8");
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return body;
  } catch {
    // Not JSON: build the error from the header, as Lambda does.
  }
  return jsonBody({ errorMessage: text, errorType: errorTypeHeader ?? "Runtime.Unknown" });
}

export class RuntimeApiServer {
  readonly #server: http.Server;
  readonly #options: RuntimeApiServerOptions;
  readonly #authorized = new WeakMap<Socket, Promise<boolean>>();
  readonly #nextWaiters = new Set<ServerResponse>();
  readonly #assignmentWaiters = new Set<ServerResponse>();
  #current: CurrentInvocation | undefined;
  #assignment: Assignment | undefined;
  #initOver = false;
  #closed = false;

  private constructor(options: RuntimeApiServerOptions) {
    this.#options = options;
    this.#server = http.createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        options.logger.warn("runtime API request failed", { error });
        if (!response.headersSent) this.#fail(response, 500, "ServiceException", "internal error");
        else response.destroy();
      });
    });
    // Long polls may wait as long as a sandbox stays idle.
    this.#server.requestTimeout = 0;
    this.#server.keepAliveTimeout = 60_000;
    const authorize = options.authorizeConnection;
    if (authorize) {
      this.#server.on("connection", (socket: Socket) => {
        this.#authorized.set(
          socket,
          authorize(socket).catch(() => false),
        );
      });
    }
  }

  static async start(options: RuntimeApiServerOptions): Promise<RuntimeApiServer> {
    const api = new RuntimeApiServer(options);
    await new Promise<void>((resolve, reject) => {
      api.#server.once("error", reject);
      const listening = () => {
        api.#server.off("error", reject);
        resolve();
      };
      if (options.socketPath === undefined) api.#server.listen(0, "127.0.0.1", listening);
      else api.#server.listen(options.socketPath, listening);
    });
    // The jail's uid connects to it; only the jail's own mount namespace can see it.
    if (options.socketPath !== undefined) await chmod(options.socketPath, 0o666);
    return api;
  }

  /** `host:port`, the value of AWS_LAMBDA_RUNTIME_API (the socket's path when on a unix socket). */
  get address(): string {
    const address = this.#server.address();
    if (typeof address === "string") return address;
    return `127.0.0.1:${(address as AddressInfo).port}`;
  }

  /** Answer the runtime's assignment poll, now or when it asks. */
  assign(assignment: Assignment): void {
    this.#assignment = assignment;
    for (const waiter of this.#assignmentWaiters) this.#sendAssignment(waiter);
    this.#assignmentWaiters.clear();
  }

  /** Hand one invocation to the runtime; resolves with what the runtime made of it. */
  deliver(invocation: RuntimeInvocation): Promise<RuntimeOutcome> {
    if (this.#current) {
      return Promise.reject(
        new GustError("a sandbox runs one invocation at a time", "sandbox-busy"),
      );
    }
    return new Promise<RuntimeOutcome>((resolve) => {
      const current: CurrentInvocation = {
        invocation,
        delivered: false,
        settle: (outcome) => {
          if (this.#current === current) this.#current = undefined;
          resolve(outcome);
        },
      };
      this.#current = current;
      this.#deliverIfWaiting();
    });
  }

  /** Give up on the invocation in flight; the runtime's later posts for it get 400. */
  abandon(): void {
    this.#current?.settle({ kind: "abandoned" });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.abandon();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const authorized = this.#authorized.get(request.socket);
    if (authorized && !(await authorized)) {
      this.#options.logger.warn("runtime API connection from a foreign uid refused");
      request.socket.destroy();
      return;
    }
    const url = request.url ?? "";
    const pathname = url.split("?", 1)[0] ?? "";
    if (!pathname.startsWith(`${API}/`)) {
      this.#fail(response, 404, "UnknownPath", `unknown path ${pathname}`);
      return;
    }
    const route = pathname.slice(API.length + 1);
    const method = request.method ?? "GET";

    if (route === "invocation/next") {
      if (method !== "GET") return this.#methodNotAllowed(response, "GET");
      return this.#next(response);
    }
    if (route === "gust/assignment") {
      if (method !== "GET") return this.#methodNotAllowed(response, "GET");
      return this.#assignmentPoll(response);
    }
    if (route === "init/error") {
      if (method !== "POST") return this.#methodNotAllowed(response, "POST");
      return this.#initError(request, response);
    }
    const match = /^(gust\/)?invocation\/([^/]+)\/(response|error)$/.exec(route);
    if (match) {
      if (method !== "POST") return this.#methodNotAllowed(response, "POST");
      return this.#result(
        request,
        response,
        decodeSegment(match[2] ?? ""),
        match[3] as "response" | "error",
        match[1] !== undefined,
      );
    }
    this.#fail(response, 404, "UnknownPath", `unknown path ${pathname}`);
  }

  /** `withResult`: the poll came with the result of the invocation in progress. */
  #next(response: ServerResponse, withResult = false): void {
    this.#initOver = true;
    this.#nextWaiters.add(response);
    response.on("close", () => this.#nextWaiters.delete(response));
    this.#options.listener.onNext?.(withResult || this.#current?.delivered === true);
    this.#deliverIfWaiting();
  }

  #deliverIfWaiting(): void {
    const current = this.#current;
    if (!current || current.delivered) return;
    for (const waiter of this.#nextWaiters) {
      this.#nextWaiters.delete(waiter);
      if (waiter.destroyed || waiter.writableEnded) continue;
      current.delivered = true;
      const { invocation } = current;
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "content-length": String(invocation.payload.byteLength),
        [RuntimeHeaders.requestId]: invocation.requestId,
        [RuntimeHeaders.deadlineMs]: String(invocation.deadlineMs),
        [RuntimeHeaders.functionArn]: invocation.functionArn,
      };
      if (invocation.traceId !== undefined && SAFE_HEADER_VALUE.test(invocation.traceId)) {
        headers[RuntimeHeaders.traceId] = invocation.traceId;
      }
      if (invocation.traceparent !== undefined) {
        headers[BusHeaders.traceparent] = invocation.traceparent;
        if (invocation.tracestate !== undefined && SAFE_HEADER_VALUE.test(invocation.tracestate)) {
          headers[BusHeaders.tracestate] = invocation.tracestate;
        }
      }
      if (
        invocation.clientContext !== undefined &&
        SAFE_HEADER_VALUE.test(invocation.clientContext)
      ) {
        headers[RuntimeHeaders.clientContext] = invocation.clientContext;
      }
      waiter.writeHead(200, headers);
      waiter.end(invocation.payload);
      return;
    }
  }

  #assignmentPoll(response: ServerResponse): void {
    this.#options.listener.onAssignmentRequest?.();
    if (this.#assignment) {
      this.#sendAssignment(response);
      return;
    }
    this.#assignmentWaiters.add(response);
    response.on("close", () => this.#assignmentWaiters.delete(response));
  }

  #sendAssignment(response: ServerResponse): void {
    if (response.destroyed || response.writableEnded) return;
    const body = jsonBody(this.#assignment);
    response.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    response.end(body);
  }

  async #initError(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request, MAX_RUNTIME_BODY_BYTES);
    if (body === undefined) return this.#tooLarge(response);
    if (this.#initOver) {
      this.#fail(
        response,
        403,
        "InvalidStateTransition",
        "init/error is only allowed before invocation/next",
      );
      return;
    }
    this.#initOver = true;
    this.#accepted(response);
    this.#options.listener.onInitError?.(
      normalizeErrorBody(body, header(request, RuntimeHeaders.functionErrorType)),
    );
  }

  async #result(
    request: IncomingMessage,
    response: ServerResponse,
    requestId: string,
    kind: "response" | "error",
    /** Gust's exchange: once the result is taken, answer as `invocation/next`. */
    thenNext: boolean,
  ): Promise<void> {
    if (!REQUEST_ID.test(requestId)) {
      this.#fail(response, 400, "InvalidRequestID", "malformed request id");
      return;
    }
    const body = await readBody(request, MAX_RUNTIME_BODY_BYTES);
    const current = this.#current;
    if (!current || !current.delivered || current.invocation.requestId !== requestId) {
      this.#fail(response, 400, "InvalidRequestID", `invocation ${requestId} is not in progress`);
      return;
    }
    if (body === undefined) {
      this.#tooLarge(response);
      current.settle({
        kind: "error",
        body: jsonBody({
          errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RUNTIME_BODY_BYTES} bytes).`,
          errorType: "Function.ResponseSizeTooLarge",
        }),
      });
      return;
    }
    if (!thenNext) this.#accepted(response);
    const reported = Number(header(request, RuntimeHeaders.runDuration));
    const ran =
      Number.isFinite(reported) && reported >= 0 ? { runDurationMs: reported / 1000 } : {};
    current.settle(
      kind === "response"
        ? { kind: "response", body, ...ran }
        : {
            kind: "error",
            body: normalizeErrorBody(body, header(request, RuntimeHeaders.functionErrorType)),
            ...ran,
          },
    );
    if (thenNext) this.#next(response, true);
  }

  #accepted(response: ServerResponse): void {
    const body = jsonBody({ status: "OK" });
    response.writeHead(202, { "content-type": "application/json", "content-length": body.length });
    response.end(body);
  }

  #tooLarge(response: ServerResponse): void {
    this.#fail(
      response,
      413,
      "RequestEntityTooLarge",
      `Exceeded maximum allowed payload size (${MAX_RUNTIME_BODY_BYTES} bytes).`,
    );
  }

  #methodNotAllowed(response: ServerResponse, allowed: string): void {
    response.setHeader("allow", allowed);
    this.#fail(response, 405, "MethodNotAllowed", `use ${allowed}`);
  }

  #fail(response: ServerResponse, status: number, errorType: string, errorMessage: string): void {
    if (response.headersSent) return;
    const body = jsonBody({ errorMessage, errorType });
    response.writeHead(status, {
      "content-type": "application/json",
      "content-length": body.length,
    });
    response.end(body);
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return "";
  }
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The whole body, or undefined when it exceeds the limit (the rest is read and dropped). */
function readBody(request: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    request.on("end", () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    request.on("error", reject);
    request.on("close", () => {
      if (!request.complete) reject(new Error("the runtime closed the connection mid-body"));
    });
  });
}
