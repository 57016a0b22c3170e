/**
 * Helpers for the worker's tests: functions zipped in memory, a CodeSource
 * over a Map, an invoke round trip over the bus, and a fake Sandbox for the
 * pool logic. Not exported from the package.
 */
import { randomUUID } from "node:crypto";
import { zipFiles } from "@gust/bundle";
import type { BundleFile } from "@gust/bundle";
import type { Bus } from "@gust/bus";
import { Subjects, decodeAs, encode, functionArn } from "@gust/protocol";
import type { AdmissionSlot, InvokeReply, InvokeRequest, InvokeTarget } from "@gust/protocol";
import { codeSha256Of } from "./code-cache.js";
import type { CodeSource } from "./code-cache.js";
import type {
  Sandbox,
  SandboxExit,
  SandboxFactory,
  SandboxInvocation,
  SandboxResult,
} from "./sandbox.js";

export class MapCodeSource implements CodeSource {
  readonly zips = new Map<string, Uint8Array>();
  fetches = 0;

  add(zip: Uint8Array): string {
    const sha = codeSha256Of(zip);
    this.zips.set(sha, zip);
    return sha;
  }

  fetchCode(codeSha256: string): Promise<Uint8Array | undefined> {
    this.fetches++;
    return Promise.resolve(this.zips.get(codeSha256));
  }
}

export interface TestFunction {
  target: InvokeTarget;
  zip: Uint8Array;
}

/** A function made of in-memory files, its zip registered with `code`. */
export async function makeFunction(
  code: MapCodeSource,
  files: ReadonlyArray<BundleFile>,
  overrides: Partial<InvokeTarget> = {},
): Promise<TestFunction> {
  const zip = await zipFiles(files);
  const name = overrides.name ?? `fn-${randomUUID().slice(0, 8)}`;
  const target: InvokeTarget = {
    tenantId: "tenant-a",
    name,
    functionArn: functionArn("us-east-1", "123456789012", name),
    runtime: "nodejs20.x",
    handler: "index.handler",
    timeoutSec: 10,
    memoryMb: 128,
    environment: {},
    codeSha256: code.add(zip),
    revisionId: randomUUID(),
    ...overrides,
  };
  return { target, zip };
}

/** A Node.js function whose index.mjs has this source. */
export function nodeFunction(
  code: MapCodeSource,
  source: string,
  overrides: Partial<InvokeTarget> = {},
): Promise<TestFunction> {
  return makeFunction(code, [{ path: "index.mjs", data: source }], overrides);
}

export interface InvokeOptions {
  payload?: unknown;
  tailLog?: boolean;
  timeoutMs?: number;
  requestId?: string;
  admission?: AdmissionSlot;
}

export async function invoke(
  bus: Bus,
  workerId: string,
  target: InvokeTarget,
  options: InvokeOptions = {},
): Promise<InvokeReply> {
  const request: InvokeRequest = {
    type: "invoke",
    requestId: options.requestId ?? randomUUID(),
    target,
    payload: Buffer.from(JSON.stringify(options.payload ?? {})),
    tailLog: options.tailLog ?? false,
    ...(options.admission === undefined ? {} : { admission: options.admission }),
  };
  const reply = await bus.request(Subjects.invoke(workerId), encode(request), {
    timeoutMs: options.timeoutMs ?? 60_000,
  });
  return decodeAs(reply.data, "invoke.result", "invoke.rejected");
}

/** The reply's payload as JSON (a result's response or error). */
export function payloadOf(reply: InvokeReply): unknown {
  if (reply.type !== "invoke.result")
    throw new Error(`rejected: ${reply.error.name}: ${reply.error.message}`);
  return JSON.parse(Buffer.from(reply.payload).toString("utf8"));
}

/** A uid range no other test file's worker uses, so parallel test files cannot share sandbox uids. */
export function uniqueUidBase(): number {
  // Workers sweep 1024 uids from their base at start: ranges must not overlap.
  return 100_000 + Math.floor(Math.random() * 1_000_000) * 2048;
}

// ---- a fake sandbox ---------------------------------------------------------------

export type FakeBehaviour = (
  invocation: SandboxInvocation,
  sandbox: FakeSandbox,
) => Promise<SandboxResult>;

export const succeed: FakeBehaviour = (invocation) =>
  Promise.resolve({
    outcome: "success",
    payload: invocation.payload,
    durationMs: 1,
    reusable: true,
  });

export class FakeSandbox implements Sandbox {
  readonly id: string;
  readonly kind: "preinitialized" | "cold";
  target: InvokeTarget | undefined;
  readonly invocations: SandboxInvocation[] = [];
  disposed = false;
  #exited = false;
  readonly #listeners: Array<(exit: SandboxExit) => void> = [];
  readonly #behaviour: () => FakeBehaviour;

  constructor(
    id: string,
    kind: "preinitialized" | "cold",
    behaviour: () => FakeBehaviour,
    target?: InvokeTarget,
  ) {
    this.id = id;
    this.kind = kind;
    this.#behaviour = behaviour;
    this.target = target;
  }

  get exited(): boolean {
    return this.#exited;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  assign(target: InvokeTarget): Promise<void> {
    if (this.target) throw new Error("assigned twice");
    this.target = target;
    return Promise.resolve();
  }

  invoke(invocation: SandboxInvocation): Promise<SandboxResult> {
    this.invocations.push(invocation);
    return this.#behaviour()(invocation, this);
  }

  onExit(listener: (exit: SandboxExit) => void): void {
    this.#listeners.push(listener);
  }

  /** Die on its own. */
  crash(): void {
    if (this.#exited) return;
    this.#exited = true;
    for (const listener of this.#listeners.splice(0)) listener({ code: 1, signal: null });
  }

  dispose(): Promise<void> {
    this.disposed = true;
    this.crash();
    return Promise.resolve();
  }
}

export class FakeSandboxFactory implements SandboxFactory {
  readonly sandboxes: FakeSandbox[] = [];
  behaviour: FakeBehaviour = succeed;
  #seq = 0;

  startPreinitialized(): Promise<Sandbox> {
    return Promise.resolve(this.#make("preinitialized"));
  }

  startFor(target: InvokeTarget): Promise<Sandbox> {
    return Promise.resolve(this.#make("cold", target));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Sandboxes not disposed. */
  live(): FakeSandbox[] {
    return this.sandboxes.filter((sandbox) => !sandbox.disposed);
  }

  #make(kind: "preinitialized" | "cold", target?: InvokeTarget): FakeSandbox {
    const sandbox = new FakeSandbox(`fake${++this.#seq}`, kind, () => this.behaviour, target);
    this.sandboxes.push(sandbox);
    return sandbox;
  }
}
