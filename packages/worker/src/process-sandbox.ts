/**
 * A sandbox that is one child process (and whatever it forks, in its own
 * process group), with its own Runtime API server, task root and temp dir.
 *
 * Life of a sandbox: started for a function (cold) or function-less (a
 * pre-initialized Node.js runtime waiting on the assignment extension); then
 * invocations one at a time until it crashes, times out, exceeds its memory,
 * fails to initialize, or is disposed. It never serves a second function.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { grantedPermissions, GustError, Outcomes, Runtimes } from "@gust/protocol";
import type { InvokeTarget, Runtime, RuntimeVersionRef } from "@gust/protocol";
import {
  endSpan,
  sandboxTraceContext,
  SpanAttributes,
  SpanNames,
  startChildSpan,
} from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";
import {
  endLine,
  initStartLine,
  lambdaErrorPayload,
  logStreamName,
  reportLine,
  startLine,
} from "./lambda-log.js";
import { fromInitFailure, fromInterruption, fromRuntime } from "./invocation-verdict.js";
import type { InitFailure, Interruption, Verdict } from "./invocation-verdict.js";
import { LogBuffer } from "./log-buffer.js";
import { RuntimeApiServer } from "./runtime-api-server.js";
import { SandboxExitedError } from "./sandbox.js";
import type { Sandbox, SandboxExit, SandboxInvocation, SandboxResult } from "./sandbox.js";
import {
  functionEnvironment,
  nodeArguments,
  platformEnvironment,
  sandboxEnvironment,
} from "./sandbox-environment.js";
import type { SandboxPaths } from "./sandbox-environment.js";
import {
  connectionOwnerUid,
  installFunctionCode,
  killProcessesOfUids,
  prepareSandboxDirectories,
} from "./sandbox-isolation.js";
import type { SandboxIdentity } from "./sandbox-isolation.js";
import { SandboxProcess } from "./sandbox-process.js";
import { JAIL_RUNTIME_API, JailPaths, jailLaunch, writeJailIdentity } from "./jail.js";
import type { JailTools } from "./jail.js";
import { MemoryPeakReader, killGroupNow } from "./cgroup/index.js";
import type { SandboxCgroup } from "./cgroup/index.js";
import { IdleFreezer } from "./idle-freeze.js";
import { Signal, delay } from "./signal.js";

/** How long a dying runtime gets to have its last output read. */
const OUTPUT_DRAIN_MS = 500;
/** How long a healthy runtime gets to ask for its next invocation before its log is closed. */
const NEXT_POLL_GRACE_MS = 100;
const EXIT_WAIT_MS = 5000;

export interface ProcessSandboxSpec {
  id: string;
  /** The sandbox's own directory; task/ and tmp/ are made inside. */
  directory: string;
  runtime: Runtime;
  /** The runtime version the sandbox starts: its recipe, and the name INIT_START gives. */
  runtimeVersion: RuntimeVersionRef;
  /** The installed Node.js runtime (LAMBDA_RUNTIME_DIR) and its bootstrap file. */
  runtimeDir: string;
  bootstrapFile: string;
  /** Set when the worker runs as root. */
  identity: SandboxIdentity | undefined;
  /**
   * Run the runtime in a jail (jail.ts): namespaces, a private /tmp, the
   * Runtime API on a unix socket. Needs an identity.
   */
  jail?: SandboxJail;
  region: string;
  initTimeoutMs: number;
  /** V8 heap cap of a Node.js sandbox. */
  heapLimitMb: number;
  /** What the watchdog enforces until a function (with its MemorySize) is assigned. */
  memoryLimitMb: number;
  /** A cold start: the function and its code. Absent for a pre-initialized sandbox. */
  function?: { target: InvokeTarget; zip: Uint8Array };
  logger: Logger;
  /** Called once everything the sandbox held is gone. */
  onDisposed?: () => void;
}

export interface SandboxJail {
  tools: JailTools;
  /** Size of the private /tmp (EphemeralStorage). */
  tmpBytes: number;
  /** The network namespace of the sandbox's slot; undefined: loopback only. */
  netnsPath?: string;
  /**
   * The sandbox's control group (cgroup/): the launcher joins it before
   * anything else, and memory, pids, CPU weight, the freeze between
   * invocations and the final kill apply to every process the runtime starts.
   */
  cgroup?: SandboxCgroup;
  /** The shown /etc/resolv.conf (see JailSpec.resolvConf). */
  resolvConf?: string;
  /** Take the sandbox's link to the world away (its function's tenant is denied egress). */
  denyEgress?: () => Promise<void>;
  /** Put a pre-initialized sandbox's CPU under its tenant's group (CgroupTree.assignTenant). */
  assignTenant?: (tenantId: string) => Promise<void>;
  /**
   * The CPU cap, in cores, for a function of `memoryMb` once its init is
   * done (Lambda's model: MemorySize / 1,769 MB); undefined: no cap, weights only.
   */
  cpuCores?: (memoryMb: number) => number | undefined;
}

export class ProcessSandbox implements Sandbox {
  readonly id: string;
  readonly #spec: ProcessSandboxSpec;
  /** The sandbox's files on the host. */
  readonly #paths: SandboxPaths;
  /** The same as the runtime sees them (the jail's paths when jailed). */
  readonly #runtimePaths: SandboxPaths;
  readonly #logger: Logger;
  readonly #log: LogBuffer;
  readonly #logStream: string;
  readonly #exitSignal = new Signal<SandboxExit>();
  readonly #assignmentPolled = new Signal<void>();
  readonly #exitListeners: Array<(exit: SandboxExit) => void> = [];
  #api: RuntimeApiServer | undefined;
  #process: SandboxProcess | undefined;
  #awaitingResult = false;
  #target: InvokeTarget | undefined;
  #initStartedAt = performance.now();
  #initDurationMs: number | undefined;
  #initReported = false;
  readonly #ready = new Signal<void>();
  readonly #initError = new Signal<Uint8Array>();
  #nextPoll = new Signal<void>();
  #interruption: Signal<Interruption> | undefined;
  #currentRequestId: string | undefined;
  #cpuCapped = false;
  #disposing: Promise<void> | undefined;
  /** The last invocation's log, closing after its caller was answered. */
  #closing: Promise<void> | undefined;
  /** Freezes the sandbox's control group between invocations. */
  readonly #freezer: IdleFreezer | undefined;
  /** The control group's memory peak, for REPORT. */
  readonly #peak: MemoryPeakReader | undefined;

  private constructor(spec: ProcessSandboxSpec) {
    this.id = spec.id;
    this.#spec = spec;
    this.#logger = spec.logger.child({ sandboxId: spec.id });
    this.#paths = {
      taskRoot: path.join(spec.directory, "task"),
      tmpDir: path.join(spec.directory, "tmp"),
      runtimeDir: spec.runtimeDir,
    };
    this.#runtimePaths = spec.jail
      ? { taskRoot: JailPaths.taskRoot, tmpDir: JailPaths.tmpDir, runtimeDir: JailPaths.runtimeDir }
      : this.#paths;
    this.#logStream = logStreamName(new Date(), randomBytes(16).toString("hex"));
    this.#log = new LogBuffer((line, stream) =>
      this.#logger.debug(line, {
        stream,
        requestId: this.#currentRequestId,
        function: this.#target?.name,
      }),
    );
    this.#target = spec.function?.target;
    const cgroup = spec.jail?.cgroup;
    this.#freezer = cgroup ? new IdleFreezer(cgroup, this.#logger) : undefined;
    this.#peak = cgroup ? new MemoryPeakReader(cgroup) : undefined;
  }

  /** Prepare directories and code, start the Runtime API, spawn the runtime. */
  static async start(spec: ProcessSandboxSpec): Promise<ProcessSandbox> {
    const sandbox = new ProcessSandbox(spec);
    try {
      await sandbox.#start();
    } catch (error) {
      await sandbox.dispose();
      throw error;
    }
    return sandbox;
  }

  get exited(): boolean {
    return this.#exitSignal.settled;
  }

  ready(): Promise<void> {
    const ready = this.#target ? this.#ready.promise : this.#assignmentPolled.promise;
    return Promise.race([
      ready,
      this.#exitSignal.promise.then((exit) => {
        throw new GustError(
          `sandbox exited while starting (${exit.code ?? exit.signal ?? "?"})`,
          "sandbox-exited",
        );
      }),
    ]);
  }

  onExit(listener: (exit: SandboxExit) => void): void {
    this.#exitListeners.push(listener);
  }

  async assign(target: InvokeTarget, zip: Uint8Array): Promise<void> {
    if (this.#target)
      throw new GustError(`sandbox ${this.id} already serves a function`, "sandbox-assigned");
    this.#target = target;
    await installFunctionCode(this.#paths.taskRoot, zip, this.#spec.identity);
    if (this.#process?.watchdog) this.#process.watchdog.limitMb = target.memoryMb;
    // Before the tenant's code loads: a tenant denied egress keeps loopback only.
    if (target.egress === "deny") await this.#spec.jail?.denyEgress?.();
    // Its tenant's CPU share, and the kernel's memory bound for the runtime and everything
    // it starts, before the function loads.
    await this.#spec.jail?.assignTenant?.(target.tenantId);
    await this.#spec.jail?.cgroup?.setMemoryLimit(target.memoryMb * 1024 * 1024);
    if (!this.#api) throw new GustError(`sandbox ${this.id} is not running`, "sandbox-exited");
    this.#initStartedAt = performance.now();
    this.#api.assign({
      handler: target.handler,
      env: functionEnvironment(target, this.#logStream),
    });
  }

  async invoke(invocation: SandboxInvocation): Promise<SandboxResult> {
    const target = this.#target;
    const api = this.#api;
    if (!target || !api)
      throw new GustError(`sandbox ${this.id} has no function`, "sandbox-unassigned");
    // The previous invocation's log ends (END, REPORT) before this one's START.
    await this.#closing;
    if (this.#initReported && this.#exitSignal.settled) {
      // It answered its last invocation and died before this one reached it: nothing
      // of this one ran, so another sandbox may run it.
      throw new SandboxExitedError(`sandbox ${this.id} exited after its last invocation`);
    }
    this.#currentRequestId = invocation.requestId;
    await this.#freezer?.wake();
    if (!this.#cpuCapped) await this.#capCpu(target);
    try {
      return await this.#invoke(api, target, invocation);
    } catch (error) {
      this.#currentRequestId = undefined;
      throw error;
    } finally {
      this.#freezer?.idle();
    }
  }

  /**
   * Before the first invocation, once init is done: init runs at full speed
   * (as Lambda's does), invocations within the function's share of a CPU.
   */
  async #capCpu(target: InvokeTarget): Promise<void> {
    this.#cpuCapped = true;
    const jail = this.#spec.jail;
    const cores = jail?.cpuCores?.(target.memoryMb);
    if (cores === undefined || jail?.cgroup === undefined) return;
    try {
      await jail.cgroup.setCpuLimit(cores);
    } catch (error) {
      // Weights still share the CPU by tenant; the cap is what is missing.
      this.#logger.warn("could not cap a sandbox's CPU", { error, sandbox: this.id, cores });
    }
  }

  /** SIGKILL the sandbox's process group now, synchronously (for a worker that is exiting). */
  killNow(): void {
    this.#process?.kill();
    const cgroup = this.#spec.jail?.cgroup;
    if (cgroup) killGroupNow(cgroup);
  }

  dispose(): Promise<void> {
    this.#disposing ??= this.#dispose();
    return this.#disposing;
  }

  // ---- starting -------------------------------------------------------------

  async #start(): Promise<void> {
    const spec = this.#spec;
    const identity = spec.identity;
    await prepareSandboxDirectories(spec.directory, this.#paths, identity);
    if (spec.function) await installFunctionCode(this.#paths.taskRoot, spec.function.zip, identity);
    if (spec.jail) {
      if (!identity)
        throw new GustError("a jailed sandbox needs a uid of its own", "sandbox-config");
      // Owned by root: the sandbox can use its socket and read its launch file, not replace them.
      await mkdir(this.#runDir, { mode: 0o755 });
      await mkdir(this.#etcDir, { mode: 0o755 });
      await writeJailIdentity(this.#etcDir, identity.uid, identity.gid);
    }
    const workerUid = process.getuid?.();
    const api = await RuntimeApiServer.start({
      ...(spec.jail ? { socketPath: path.join(this.#runDir, "runtime.sock") } : {}),
      logger: this.#logger,
      listener: {
        onNext: (resultPending) => this.#onNext(resultPending),
        onAssignmentRequest: () => this.#assignmentPolled.resolve(),
        onInitError: (body) => this.#initError.resolve(body),
      },
      ...(identity && !spec.jail
        ? {
            authorizeConnection: async (socket) => {
              const uid = await connectionOwnerUid(socket);
              return uid === identity.uid || uid === workerUid;
            },
          }
        : {}),
    });
    this.#api = api;
    await this.#spawn(api);
  }

  get #runDir(): string {
    return path.join(this.#spec.directory, "run");
  }

  get #etcDir(): string {
    return path.join(this.#spec.directory, "etc");
  }

  async #spawn(api: RuntimeApiServer): Promise<void> {
    const spec = this.#spec;
    const target = spec.function?.target;
    const custom = spec.runtime !== Runtimes.nodejs20;
    const recipe = spec.runtimeVersion.recipe;
    const paths = this.#runtimePaths;
    const command = custom
      ? path.join(paths.taskRoot, recipe.kind === "provided" ? recipe.entrypoint : "bootstrap")
      : process.execPath;
    const nodeFlags =
      recipe.kind === "node"
        ? [...grantedPermissions(recipe.permissions), ...recipe.nodeFlags]
        : [];
    const bootstrapFile = spec.jail
      ? path.join(JailPaths.runtimeDir, path.relative(spec.runtimeDir, spec.bootstrapFile))
      : spec.bootstrapFile;
    const args = custom ? [] : nodeArguments(paths, spec.heapLimitMb, bootstrapFile, nodeFlags);
    const runtimeApi = spec.jail ? JAIL_RUNTIME_API : api.address;
    const env = target
      ? sandboxEnvironment(paths, runtimeApi, spec.region, target, this.#logStream)
      : platformEnvironment(paths, runtimeApi, spec.region, spec.runtime);
    if (spec.jail && !custom) env["GUST_RUNTIME_API_SOCKET"] = JailPaths.runtimeApiSocket;
    let launch = { command, args, env };
    if (spec.jail && spec.identity) {
      launch = await jailLaunch(spec.jail.tools, {
        taskRoot: this.#paths.taskRoot,
        runtimeDir: spec.runtimeDir,
        runDir: this.#runDir,
        etcDir: this.#etcDir,
        command,
        args,
        env,
        uid: spec.identity.uid,
        gid: spec.identity.gid,
        tmpBytes: spec.jail.tmpBytes,
        netnsPath: spec.jail.netnsPath,
        ...(spec.jail.resolvConf === undefined ? {} : { resolvConf: spec.jail.resolvConf }),
        ...(spec.jail.cgroup === undefined ? {} : { prelude: spec.jail.cgroup.joinScript() }),
        extraReadOnly: custom ? [] : [process.execPath],
        // Gust's Node.js runtime uses the socket itself; only custom runtimes need the port at once.
        awaitForwarder: custom,
      });
    }
    this.#initStartedAt = performance.now();
    this.#log.platform(initStartLine(spec.runtimeVersion));
    if (spec.jail && custom) {
      // In a jail a missing bootstrap is only an exit status; look for it first, as a spawn would.
      const missing = await access(
        path.join(this.#paths.taskRoot, path.relative(paths.taskRoot, command)),
        constants.X_OK,
      ).then(
        () => undefined,
        (error: NodeJS.ErrnoException) => error.code ?? error.message,
      );
      if (missing !== undefined) {
        this.#initError.resolve(
          lambdaErrorPayload(
            "Runtime.InvalidEntrypoint",
            `Couldn't find valid bootstrap(s): [${command}] (${missing})`,
          ),
        );
        this.#onExit({ code: 127, signal: null });
        return;
      }
    }
    const child = new SandboxProcess({
      command: launch.command,
      args: launch.args,
      cwd: this.#paths.taskRoot,
      env: launch.env,
      identity: spec.jail ? undefined : spec.identity,
      jailed: spec.jail !== undefined,
      watchMemory: spec.jail?.cgroup === undefined,
      memoryLimitMb: target?.memoryMb ?? spec.memoryLimitMb,
      includeDescendants: custom || spec.jail !== undefined,
      onOutput: (stream, chunk) => this.#log.write(stream, chunk),
      onMemoryExceeded: (rssMb) => this.#onMemoryExceeded(rssMb),
      logger: this.#logger,
    });
    this.#process = child;
    void child.exit.promise.then((exit) => {
      if (child.spawnError && custom) {
        const reason = child.spawnError.code ?? child.spawnError.message;
        this.#initError.resolve(
          lambdaErrorPayload(
            "Runtime.InvalidEntrypoint",
            `Couldn't find valid bootstrap(s): [${command}] (${reason})`,
          ),
        );
      }
      this.#onExit(exit);
    });
  }

  // ---- events ------------------------------------------------------------------

  #onNext(resultPending: boolean): void {
    if (this.#target && this.#initDurationMs === undefined) {
      this.#initDurationMs = performance.now() - this.#initStartedAt;
    }
    if (this.#target) this.#ready.resolve();
    // A poll that takes the invocation starting now says nothing about the last one's output;
    // one sent after (or, by Gust's runtime, with) the result does.
    if (!this.#awaitingResult || resultPending) this.#nextPoll.resolve();
  }

  #onExit(exit: SandboxExit): void {
    if (this.#exitSignal.settled) return;
    this.#exitSignal.resolve(exit);
    this.#interruption?.resolve({ kind: "exit", exit });
    for (const listener of this.#exitListeners.splice(0)) {
      try {
        listener(exit);
      } catch (error) {
        this.#logger.warn("sandbox exit listener failed", { error });
      }
    }
  }

  #onMemoryExceeded(rssMb: number): void {
    this.#logger.info("sandbox exceeded its memory", {
      rssMb: Math.round(rssMb),
      memoryMb: this.#target?.memoryMb ?? this.#spec.memoryLimitMb,
    });
    this.#interruption?.resolve({ kind: "memory" });
    this.#process?.kill();
  }

  // ---- invoking ------------------------------------------------------------------

  /** Wait for the runtime to finish starting its function (at once if it already has). */
  async #awaitInit(): Promise<InitFailure | { kind: "ready" }> {
    if (this.#initError.settled) return { kind: "init-error", body: await this.#initError.promise };
    if (this.#ready.settled) return { kind: "ready" };
    if (this.#exitSignal.settled) return { kind: "exit", exit: await this.#exitSignal.promise };
    const timer = delay(this.#spec.initTimeoutMs);
    try {
      return await Promise.race<InitFailure | { kind: "ready" }>([
        this.#ready.promise.then(() => ({ kind: "ready" }) as const),
        this.#initError.promise.then((body) => ({ kind: "init-error", body }) as const),
        this.#exitSignal.promise.then((exit) => ({ kind: "exit", exit }) as const),
        timer.promise.then(() => ({ kind: "timeout" }) as const),
      ]);
    } finally {
      timer.cancel();
    }
  }

  async #invoke(
    api: RuntimeApiServer,
    target: InvokeTarget,
    invocation: SandboxInvocation,
  ): Promise<SandboxResult> {
    const { requestId } = invocation;
    // A sandbox still loading its function (cold or just assigned) shows that wait as its own span.
    const initSpan = this.#ready.settled
      ? undefined
      : startChildSpan(SpanNames.sandboxInit, invocation.parentSpan);
    const init = await this.#awaitInit();
    if (initSpan !== undefined) endSpan(initSpan, init.kind === "ready" ? undefined : init.kind);
    const initDurationMs = this.#initReported
      ? undefined
      : (this.#initDurationMs ?? performance.now() - this.#initStartedAt);
    this.#initReported = true;
    this.#log.platform(startLine(requestId));
    if (init.kind !== "ready") {
      this.#process?.kill();
      const verdict = fromInitFailure(requestId, init, this.#spec.initTimeoutMs, new Date());
      const run = { durationMs: 0, answered: false, initDurationMs: initDurationMs ?? 0 };
      return this.#result(
        invocation,
        verdict,
        run,
        await this.#closeLog(invocation, target, verdict, run),
      );
    }

    const watchdog = this.#process?.watchdog;
    watchdog?.resetPeak();
    if (watchdog) watchdog.active = true;
    const interruption = new Signal<Interruption>();
    this.#interruption = interruption;
    if (this.#exitSignal.settled) {
      interruption.resolve({ kind: "exit", exit: await this.#exitSignal.promise });
    }
    const timeoutMs = target.timeoutSec * 1000;
    const timer = delay(timeoutMs);
    void timer.promise.then(() => interruption.resolve({ kind: "timeout" }));
    this.#nextPoll = new Signal<void>();
    this.#awaitingResult = true;
    // The handler's span; its context is what the runtime is handed, as Lambda hands
    // X-Ray's, so a handler that traces continues this trace under it.
    const handlerSpan = startChildSpan(SpanNames.handler, invocation.parentSpan);
    const trace = handlerSpan === undefined ? undefined : sandboxTraceContext(handlerSpan);
    const traceId = trace === undefined ? invocation.traceId : trace.xrayTraceId;
    const startedAt = performance.now();
    const delivered = api.deliver({
      requestId,
      payload: invocation.payload,
      deadlineMs: Date.now() + timeoutMs,
      functionArn: target.functionArn,
      traceId,
      traceparent: trace?.traceparent,
      tracestate: trace?.tracestate,
      ...(invocation.clientContext === undefined
        ? {}
        : { clientContext: invocation.clientContext }),
    });
    const settled = await Promise.race([
      delivered.then((outcome) => ({ from: "runtime", outcome }) as const),
      interruption.promise.then((event) => ({ from: "sandbox", event }) as const),
    ]);
    const durationMs = performance.now() - startedAt;
    timer.cancel();
    this.#awaitingResult = false;
    this.#interruption = undefined;
    if (watchdog) watchdog.active = false;

    if (settled.from === "sandbox") {
      api.abandon();
      this.#process?.kill();
      // A timeout or an out-of-memory kill ends everything the handler started, at once.
      void this.#spec.jail?.cgroup
        ?.killAll()
        .catch((error: unknown) =>
          this.#logger.warn("could not empty a sandbox's group", { error }),
        );
    }
    const verdict =
      settled.from === "runtime"
        ? fromRuntime(settled.outcome)
        : fromInterruption(requestId, settled.event, target.timeoutSec, new Date());
    if (handlerSpan !== undefined) {
      handlerSpan.setAttribute(SpanAttributes.outcome, verdict.outcome);
      endSpan(handlerSpan, verdict.outcome === Outcomes.success ? undefined : verdict.outcome);
    }
    const answered = settled.from === "runtime" && settled.outcome.kind !== "abandoned";
    const runDurationMs = answered ? settled.outcome.runDurationMs : undefined;
    const run = {
      durationMs,
      answered,
      ...(initDurationMs === undefined ? {} : { initDurationMs }),
      ...(runDurationMs === undefined ? {} : { runDurationMs }),
    };
    if (answered && !invocation.tailLog) {
      // Nobody waits for this log: the caller has its answer now, as in Lambda, and the
      // log closes (memory peak, END, REPORT) while the runtime asks for its next event.
      this.#closing = this.#closeLog(invocation, target, verdict, run).then(
        () => undefined,
        (error: unknown) => this.#logger.warn("could not close an invocation's log", { error }),
      );
      return this.#result(invocation, verdict, run, undefined);
    }
    return this.#result(
      invocation,
      verdict,
      run,
      await this.#closeLog(invocation, target, verdict, run),
    );
  }

  #result(
    invocation: SandboxInvocation,
    verdict: Verdict,
    run: { durationMs: number; answered: boolean; runDurationMs?: number },
    tail: string | undefined,
  ): SandboxResult {
    return {
      outcome: verdict.outcome,
      payload: verdict.payload,
      durationMs: run.durationMs,
      ...(run.runDurationMs === undefined ? {} : { runDurationMs: run.runDurationMs }),
      // A runtime that answered and then died (e.g. after an uncaught exception) is not reusable.
      reusable: run.answered && !this.#exitSignal.settled,
      ...(invocation.tailLog ? { logTail: tail ?? "" } : {}),
    };
  }

  /**
   * Sample the memory peak, let the runtime's last output arrive, close the
   * invocation's log (END, REPORT); returns the log's tail.
   */
  async #closeLog(
    invocation: SandboxInvocation,
    target: InvokeTarget,
    verdict: Verdict,
    run: { durationMs: number; answered: boolean; initDurationMs?: number },
  ): Promise<string | undefined> {
    const watchdog = this.#process?.watchdog;
    if (run.answered && !this.#exitSignal.settled) await watchdog?.sample().catch(() => undefined);
    // With a control group, the kernel's peak for the whole tree since the sandbox started,
    // the figure its MemorySize is enforced against.
    const cgroupPeakBytes = this.#peak?.bytes();
    for (const line of verdict.logLines) this.#log.platform(line);
    // Output written before the runtime posted its result may still sit in the pipe;
    // a healthy runtime asks for its next invocation right after, a dying one closes it.
    const ended = run.answered || !this.#process ? this.#nextPoll : this.#process.outputClosed;
    if (!ended.settled) {
      const settle = delay(run.answered ? NEXT_POLL_GRACE_MS : OUTPUT_DRAIN_MS);
      await Promise.race([ended.promise, settle.promise]);
      settle.cancel();
    }
    await new Promise((resolve) => setImmediate(resolve));
    this.#log.platform(endLine(invocation.requestId));
    this.#log.platform(
      reportLine({
        requestId: invocation.requestId,
        durationMs: run.durationMs,
        memoryMb: target.memoryMb,
        maxMemoryUsedMb:
          cgroupPeakBytes === undefined
            ? (this.#process?.watchdog?.peakMb ?? 0)
            : cgroupPeakBytes / (1024 * 1024),
        ...(run.initDurationMs === undefined ? {} : { initDurationMs: run.initDurationMs }),
        ...(verdict.status ? { status: verdict.status } : {}),
      }),
    );
    // The tail since the last invocation's: its text only when the caller asked for it.
    const tail = invocation.tailLog ? this.#log.takeTail() : this.#log.dropTail();
    this.#logger.debug("invocation finished", {
      requestId: invocation.requestId,
      function: target.name,
      outcome: verdict.outcome,
    });
    if (this.#currentRequestId === invocation.requestId) this.#currentRequestId = undefined;
    return tail;
  }

  // ---- disposing ------------------------------------------------------------------

  async #dispose(): Promise<void> {
    this.#freezer?.close();
    this.#peak?.close();
    this.#api?.abandon();
    const cgroup = this.#spec.jail?.cgroup;
    // A frozen process dies only once thawed: the group's kill thaws, then waits until it is empty.
    await cgroup?.killAll().catch(() => undefined);
    await this.#process?.stop(EXIT_WAIT_MS);
    await this.#api?.close().catch(() => undefined);
    if (cgroup) {
      try {
        await cgroup.dispose();
      } catch (error) {
        // Something of it still runs: its uid and slot must never go to another sandbox.
        this.#logger.error("a sandbox's control group could not be emptied; its uid stays taken", {
          error,
        });
        if (!this.#exitSignal.settled) this.#onExit({ code: null, signal: "SIGKILL" });
        return;
      }
    }
    if (this.#spec.identity) {
      // Its uid is handed to a later sandbox only once nothing of this one runs.
      const { uid } = this.#spec.identity;
      await killProcessesOfUids(uid, uid + 1);
    }
    await rm(this.#spec.directory, { recursive: true, force: true }).catch((error: unknown) =>
      this.#logger.warn("could not remove sandbox directory", { error }),
    );
    if (!this.#exitSignal.settled) this.#onExit({ code: null, signal: "SIGKILL" });
    this.#spec.onDisposed?.();
  }
}
