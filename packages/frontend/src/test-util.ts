/**
 * Test support: a frontend on the in-memory infrastructure with two tenants,
 * requests signed by the AWS SDK's own signer, fake workers that answer on
 * the bus as real ones do, and zips built by @gust/bundle.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { createMemoryInfrastructure, type Bus, type Infrastructure } from "@gust/bus";
import { zipFiles, type BundleFile } from "@gust/bundle";
import {
  Buckets,
  decodeAs,
  encode,
  serializeError,
  Subjects,
  type GustError,
  type InvokeReply,
  type InvokeRequest,
  type Outcome,
  type WarmFunction,
  type WorkerHeartbeat,
} from "@gust/protocol";
import { FunctionRegistry, TenantDirectory, type TenantRecord } from "@gust/registry";
import { createLogger, type Logger } from "@gust/telemetry";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Hono } from "hono";
import { createFrontend, type Frontend, type FrontendDeps } from "./frontend.js";
import type { FrontendEnv } from "./http-context.js";
import type { FrontendOptions } from "./options.js";

export interface TestCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export const TENANT_A: TenantRecord = {
  id: "tenant-a",
  accountId: "111111111111",
  maxConcurrency: 1000,
  credentials: [{ accessKeyId: "AKIATENANTAAAAAAAAAA", secretAccessKey: "secret-of-tenant-a" }],
};
export const TENANT_B: TenantRecord = {
  id: "tenant-b",
  accountId: "222222222222",
  maxConcurrency: 1000,
  credentials: [{ accessKeyId: "AKIATENANTBBBBBBBBBB", secretAccessKey: "secret-of-tenant-b" }],
};
export const CREDENTIALS_A: TestCredentials = TENANT_A.credentials[0]!;
export const CREDENTIALS_B: TestCredentials = TENANT_B.credentials[0]!;
export const TEST_HOST = "lambda.gust.test";

// ---- signed requests ---------------------------------------------------------------

export interface SignedRequestInit {
  method: string;
  /** As sent on the wire: percent-encoded. */
  path: string;
  query?: Record<string, string>;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  credentials?: TestCredentials;
  region?: string;
  date?: Date;
  /** Change the request after it is signed (to test tampering). */
  tamper?: (request: {
    headers: Record<string, string>;
    body: Uint8Array | undefined;
    query: Record<string, string>;
  }) => void;
}

/** Sign with smithy's SignatureV4 (what the AWS SDK uses) and serve in process. */
export async function signedRequest(
  app: Hono<FrontendEnv>,
  init: SignedRequestInit,
): Promise<Response> {
  const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : init.body;
  const query = { ...(init.query ?? {}) };
  const request = new HttpRequest({
    method: init.method,
    protocol: "http:",
    hostname: TEST_HOST,
    path: init.path,
    query,
    headers: {
      host: TEST_HOST,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(init.headers ?? {}),
    },
    ...(body === undefined ? {} : { body }),
  });
  const signer = new SignatureV4({
    credentials: init.credentials ?? CREDENTIALS_A,
    region: init.region ?? "us-east-1",
    service: "lambda",
    sha256: Sha256,
  });
  const signed = await signer.sign(request, { signingDate: init.date ?? new Date() });
  const parts = { headers: { ...signed.headers }, body, query };
  init.tamper?.(parts);
  const search = new URLSearchParams(parts.query).toString();
  const url = `http://${TEST_HOST}${init.path}${search === "" ? "" : `?${search}`}`;
  return app.request(url, {
    method: init.method,
    headers: parts.headers,
    ...(parts.body === undefined ? {} : { body: parts.body as Uint8Array<ArrayBuffer> }),
  });
}

/** A JSON body signed as tenant A unless other credentials are given. */
export function call(
  app: Hono<FrontendEnv>,
  method: string,
  path: string,
  body?: unknown,
  extra: Omit<SignedRequestInit, "method" | "path" | "body"> = {},
): Promise<Response> {
  return signedRequest(app, {
    method,
    path,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    ...extra,
  });
}

// ---- zips ---------------------------------------------------------------------------

export function nodeZip(source = "exports.handler = async (event) => event;"): Promise<Uint8Array> {
  return zipFiles([{ path: "index.js", data: source }]);
}

export function zipOf(files: BundleFile[]): Promise<Uint8Array> {
  return zipFiles(files);
}

export async function createFunctionBody(
  name: string,
  overrides: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  return {
    FunctionName: name,
    Runtime: "nodejs20.x",
    Handler: "index.handler",
    Role: "arn:aws:iam::111111111111:role/gust",
    Code: { ZipFile: Buffer.from(await nodeZip()).toString("base64") },
    ...overrides,
  };
}

// ---- fake workers --------------------------------------------------------------------

export type WorkerBehaviour = (request: InvokeRequest) => Promise<WorkerAnswer> | WorkerAnswer;

export type WorkerAnswer =
  | { kind: "result"; outcome: Outcome; payload: unknown; logTail?: string }
  | { kind: "rejected"; error: GustError }
  | { kind: "raw"; data: Uint8Array }
  | { kind: "silent" };

export const answers = {
  ok: (payload: unknown, logTail?: string): WorkerAnswer => ({
    kind: "result",
    outcome: "success",
    payload,
    ...(logTail === undefined ? {} : { logTail }),
  }),
  functionError: (message = "boom"): WorkerAnswer => ({
    kind: "result",
    outcome: "function-error",
    payload: { errorType: "Error", errorMessage: message, trace: [] },
  }),
  rejected: (error: GustError): WorkerAnswer => ({ kind: "rejected", error }),
};

export interface FakeWorkerOptions {
  id: string;
  capacity?: { sandboxes: number; memoryMb: number };
  used?: { sandboxes: number; memoryMb: number };
  warm?: WarmFunction[];
  intervalMs?: number;
  behaviour?: WorkerBehaviour;
}

/** Answers `gust.v1.invoke.<id>` like a worker, and heartbeats when told to. */
export class FakeWorker {
  readonly requests: InvokeRequest[] = [];
  /** How each request arrived: on the bus, or handed over in process. */
  readonly transports: Array<"bus" | "local"> = [];
  behaviour: WorkerBehaviour;
  private seq = 0;
  private subscription: { unsubscribe(): void } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    readonly options: FakeWorkerOptions,
  ) {
    this.behaviour =
      options.behaviour ??
      ((request) => answers.ok(JSON.parse(Buffer.from(request.payload).toString("utf8"))));
  }

  get id(): string {
    return this.options.id;
  }

  start(): this {
    this.subscription = this.bus.subscribe(Subjects.invoke(this.id), async (message) => {
      const request = decodeAs(message.data, "invoke");
      this.transports.push("bus");
      const reply = await this.answer(request);
      if (reply === undefined) return;
      message.respond(reply instanceof Uint8Array ? reply : encode(reply));
    });
    this.heartbeat();
    return this;
  }

  /** The same answers handed over in process, as `gust dev`'s worker gives them. */
  async invokeLocal(request: InvokeRequest): Promise<InvokeReply> {
    this.transports.push("local");
    const reply = await this.answer(request);
    if (reply === undefined) return new Promise<never>(() => undefined);
    return reply instanceof Uint8Array
      ? decodeAs(reply, "invoke.result", "invoke.rejected")
      : reply;
  }

  /** The reply to send, raw bytes when the behaviour says so, undefined for none. */
  private async answer(request: InvokeRequest): Promise<InvokeReply | Uint8Array | undefined> {
    this.requests.push(request);
    const answer = await this.behaviour(request);
    if (answer.kind === "silent") return undefined;
    if (answer.kind === "raw") return answer.data;
    if (answer.kind === "rejected") {
      return {
        type: "invoke.rejected",
        requestId: request.requestId,
        error: serializeError(answer.error),
      };
    }
    return {
      type: "invoke.result",
      requestId: request.requestId,
      outcome: answer.outcome,
      payload: new TextEncoder().encode(JSON.stringify(answer.payload)),
      executedVersion: "$LATEST",
      startKind: "warm",
      durationMs: 1,
      ...(answer.logTail === undefined ? {} : { logTail: answer.logTail }),
    };
  }

  heartbeat(overrides: Partial<WorkerHeartbeat> = {}): void {
    const heartbeat: WorkerHeartbeat = {
      type: "worker.heartbeat",
      workerId: this.id,
      seq: ++this.seq,
      sentAt: Date.now(),
      intervalMs: this.options.intervalMs ?? 1000,
      capacity: this.options.capacity ?? { sandboxes: 100, memoryMb: 100 * 1024 },
      used: this.options.used ?? { sandboxes: 0, memoryMb: 0 },
      warm: this.options.warm ?? [],
      draining: false,
      ...overrides,
    };
    this.bus.publish(Subjects.workerHeartbeat, encode(heartbeat));
  }

  heartbeatEvery(ms: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.heartbeat(), ms);
  }

  stop(): void {
    clearInterval(this.timer);
    this.subscription?.unsubscribe();
  }
}

// ---- the harness --------------------------------------------------------------------------

export interface Harness {
  infra: Infrastructure;
  frontend: Frontend;
  app: Hono<FrontendEnv>;
  registry: FunctionRegistry;
  tenants: TenantDirectory;
  logLines: string[];
  /** Start a fake worker and wait until the frontend knows it. */
  addWorker(options: FakeWorkerOptions): Promise<FakeWorker>;
  /** Create a nodejs20.x function as tenant A (or the given credentials). */
  createFunction(
    name: string,
    overrides?: Record<string, unknown>,
    credentials?: TestCredentials,
  ): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  frontend?: FrontendOptions;
  /** Ids of fake workers that share the frontend's process (added with addWorker). */
  localWorkers?: string[];
  tenants?: TenantRecord[];
  deps?: Partial<Pick<FrontendDeps, "admission" | "now">>;
}

export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function capturingLogger(lines: string[]): Logger {
  const echo = process.env["GUST_LOG_LEVEL"] !== undefined;
  return createLogger("frontend", {
    level: "debug",
    write: (line) => {
      lines.push(line);
      if (echo) process.stderr.write(line);
    },
  });
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const logLines: string[] = [];
  const quiet = createLogger("infra", { level: "silent" });
  const infra = createMemoryInfrastructure({ logger: quiet });
  const registry = await FunctionRegistry.open({
    functions: await infra.kv(Buckets.functions),
    code: await infra.blobs(Buckets.code),
    logger: quiet,
  });
  const tenants = await TenantDirectory.open(await infra.kv(Buckets.tenants), quiet);
  for (const record of options.tenants ?? [TENANT_A, TENANT_B]) await tenants.put(record);
  const workers: FakeWorker[] = [];
  const frontend = createFrontend(
    {
      bus: infra.bus,
      eventQueue: await infra.eventQueue(),
      registry,
      tenants,
      logger: capturingLogger(logLines),
      localWorkers: (options.localWorkers ?? []).map((id) => ({
        id,
        invokeLocal: (request: InvokeRequest) => {
          const worker = workers.find((candidate) => candidate.id === id);
          if (worker === undefined) throw new Error(`local worker ${id} was never added`);
          return worker.invokeLocal(request);
        },
      })),
      ...options.deps,
    },
    // One frontend: the only admission point, unless a test says otherwise.
    { standalone: true, ...options.frontend },
  );
  await frontend.start();
  return {
    infra,
    frontend,
    app: frontend.app,
    registry,
    tenants,
    logLines,
    async addWorker(workerOptions) {
      const worker = new FakeWorker(infra.bus, workerOptions).start();
      workers.push(worker);
      await waitFor(() => frontend.workers.workerIds().includes(worker.id), `worker ${worker.id}`);
      return worker;
    },
    async createFunction(name, overrides = {}, credentials = CREDENTIALS_A) {
      const response = await call(
        frontend.app,
        "POST",
        "/2015-03-31/functions",
        await createFunctionBody(name, overrides),
        {
          credentials,
        },
      );
      if (response.status !== 201) {
        throw new Error(
          `CreateFunction ${name} answered ${response.status}: ${await response.text()}`,
        );
      }
    },
    async close() {
      for (const worker of workers) worker.stop();
      await frontend.close();
      tenants.close();
      registry.close();
      await infra.close();
    },
  };
}

export async function errorOf(
  response: Response,
): Promise<{ status: number; type: string | null; body: Record<string, unknown> }> {
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get("x-amzn-errortype"),
    body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}
