/**
 * The Node.js runtime's main loop, shared by every bootstrap version this
 * directory holds: each entry file (bootstrap.mjs for 1.0.0,
 * bootstrap-2.0.0.mjs for 2.0.0) calls runBootstrap with its profile.
 *
 * With `_HANDLER` set it loads the handler at once (a cold start). Without
 * it, the sandbox belongs to a pool of pre-initialized ones: it warms up,
 * waits on Gust's assignment call for a function, takes that function's
 * environment and handler, and then proceeds exactly like a cold start.
 *
 * Only node: builtins may be imported here and in every file this imports:
 * the directory is copied into the sandbox on its own.
 */
import { RuntimeError, RuntimeErrorTypes, toLambdaError, unhandledRejection } from "./errors.mjs";
import { loadHandler } from "./handler.mjs";
import type { Handler } from "./handler.mjs";
import { EventLoopDrain, invoke } from "./invoke.mjs";
import type { Outcome } from "./invoke.mjs";
import { installLambdaConsole, setLogRequestId, writeLog } from "./lambda-console.mjs";
import type { RuntimeProfile } from "./profile.mjs";
import { RuntimeApiClient } from "./runtime-api.mjs";
import type { Invocation, LambdaErrorBody } from "./runtime-api.mjs";

/** Lambda's Node runtime exits with 129 after an uncaught error; the worker then replaces the sandbox. */
const CRASH_EXIT_CODE = 129;
const INIT_FAILURE_EXIT_CODE = 1;
const CRASH_REPORT_TIMEOUT_MS = 3_000;

/** Builtins handlers commonly load, imported while a pool sandbox has nothing else to do. */
const WARM_MODULES = [
  "node:buffer",
  "node:crypto",
  "node:events",
  "node:fs",
  "node:fs/promises",
  "node:https",
  "node:net",
  "node:os",
  "node:path",
  "node:querystring",
  "node:stream",
  "node:string_decoder",
  "node:timers/promises",
  "node:tls",
  "node:url",
  "node:util",
  "node:zlib",
];

type Phase =
  { name: "init" } | { name: "invoke"; requestId: string; reported: boolean } | { name: "idle" };

let phase: Phase = { name: "init" };
let crashing = false;

function fatal(message: string): never {
  writeLog("FATAL", message);
  process.exit(INIT_FAILURE_EXIT_CODE);
}

async function warmUp(): Promise<void> {
  await Promise.all(WARM_MODULES.map((name) => import(name).catch(() => undefined)));
  // fetch (undici) loads on first touch; touching it now saves the first invocation that.
  void globalThis.fetch;
}

function applyAssignment(env: Record<string, string>, handler: string): void {
  for (const [key, value] of Object.entries(env)) process.env[key] = value;
  process.env["_HANDLER"] = handler;
}

/**
 * An uncaught exception or unhandled rejection ends the sandbox, as in
 * Lambda: it fails the invocation in flight (or the init), then exits.
 */
function installCrashHandlers(api: RuntimeApiClient): void {
  const crash = (error: unknown, label: string) => {
    if (crashing) return;
    crashing = true;
    const body = toLambdaError(error);
    writeLog("ERROR", `${label} \t${JSON.stringify(body)}`);
    const exit = () => process.exit(CRASH_EXIT_CODE);
    const current = phase;
    let post: Promise<unknown> | undefined;
    if (current.name === "init") post = api.postInitError(body);
    else if (current.name === "invoke" && !current.reported) {
      current.reported = true;
      post = api.postError(current.requestId, body);
    }
    if (post === undefined) exit();
    else {
      post.then(exit, exit);
      // An unresponsive Runtime API must not keep a broken sandbox alive.
      setTimeout(exit, CRASH_REPORT_TIMEOUT_MS).unref();
    }
  };
  process.on("uncaughtException", (error) => crash(error, "Uncaught Exception"));
  process.on("unhandledRejection", (reason) =>
    crash(unhandledRejection(reason), "Unhandled Promise Rejection"),
  );
}

async function initialize(api: RuntimeApiClient, profile: RuntimeProfile): Promise<Handler> {
  const taskRoot = process.env["LAMBDA_TASK_ROOT"] ?? process.cwd();
  const handlerName = process.env["_HANDLER"] ?? "";
  try {
    return await loadHandler(taskRoot, handlerName, profile);
  } catch (error) {
    const body = toLambdaError(error);
    writeLog("ERROR", `Init failed \t${JSON.stringify(body)}`);
    crashing = true;
    await api.postInitError(body).catch((postError: unknown) => {
      writeLog("ERROR", `could not report the init error: ${String(postError)}`);
    });
    process.exit(INIT_FAILURE_EXIT_CODE);
  }
}

function serializeResult(result: unknown): { body: string } | { error: LambdaErrorBody } {
  try {
    return { body: JSON.stringify(result) ?? "null" };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      error: toLambdaError(
        new RuntimeError(
          RuntimeErrorTypes.marshal,
          `Unable to stringify response body as JSON: ${reason}`,
        ),
      ),
    };
  }
}

/** Whether the worker offers the result-then-next exchange; false once it answers 404. */
let resultThenNext = true;

/**
 * Reports an invocation's outcome and asks for the next event: in one
 * exchange where the worker offers it, else as the Runtime API's post and
 * `next`.
 */
async function reportThenNext(
  api: RuntimeApiClient,
  requestId: string,
  outcome: Outcome,
  startedAt: number,
): Promise<Invocation> {
  let result: { body: string } | { error: LambdaErrorBody };
  if (outcome.kind === "response") {
    result = serializeResult(outcome.result === undefined ? null : outcome.result);
  } else {
    result = { error: toLambdaError(outcome.error) };
    writeLog("ERROR", `Invoke Error \t${JSON.stringify(result.error)}`);
  }
  let refused: { status: number; body: string } | undefined;
  const combined = resultThenNext
    ? await api.postResultThenNext(requestId, result, (performance.now() - startedAt) * 1000)
    : undefined;
  if (combined !== undefined && "next" in combined) return combined.next;
  if (combined !== undefined) refused = combined.refused;
  else {
    resultThenNext = false;
    const reply =
      "body" in result
        ? await api.postResponse(requestId, result.body)
        : await api.postError(requestId, result.error);
    if (reply.status >= 300) refused = reply;
  }
  // The worker refuses e.g. an oversized response and fails the invocation
  // itself; the sandbox stays usable for the next one.
  if (refused !== undefined) {
    writeLog(
      "ERROR",
      `the Runtime API refused the result of ${requestId}: ${refused.status} ${refused.body}`,
    );
  }
  return api.nextInvocation();
}

/**
 * The invocation's trace context, where a handler's tracing library looks for
 * it: `_X_AMZN_TRACE_ID` (X-Ray, as Lambda's Node runtime sets it) and
 * `TRACEPARENT` / `TRACESTATE` (W3C, OpenTelemetry's environment carriers).
 */
function setTraceEnvironment(invocation: Invocation): void {
  setOrDelete("_X_AMZN_TRACE_ID", invocation.traceId);
  setOrDelete("TRACEPARENT", invocation.traceparent);
  setOrDelete("TRACESTATE", invocation.tracestate);
}

function setOrDelete(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

function parseEvent(invocation: Invocation): { event: unknown } | { error: unknown } {
  try {
    return { event: JSON.parse(invocation.body) as unknown };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      error: new RuntimeError(RuntimeErrorTypes.unmarshal, `event is not valid JSON: ${reason}`),
    };
  }
}

async function serve(
  api: RuntimeApiClient,
  handler: Handler,
  drain: EventLoopDrain,
  profile: RuntimeProfile,
): Promise<never> {
  let next = api.nextInvocation();
  for (;;) {
    phase = { name: "idle" };
    const invocation = await next;
    const startedAt = performance.now();
    const current: Phase = { name: "invoke", requestId: invocation.requestId, reported: false };
    phase = current;
    setLogRequestId(invocation.requestId);
    setTraceEnvironment(invocation);

    const parsed = parseEvent(invocation);
    const outcome: Outcome =
      "error" in parsed
        ? { kind: "error", error: parsed.error }
        : await invoke(handler, parsed.event, invocation, process.env, drain, profile).outcome;
    // A crash while the handler ran has already answered and is exiting.
    if (crashing || current.reported) await new Promise<never>(() => undefined);
    current.reported = true;
    // The result and the wait for the next event are one exchange: one write and one
    // wake-up of this process per invocation, and an invocation that arrives meanwhile
    // does not wait for this runtime to come back for it.
    next = reportThenNext(api, invocation.requestId, outcome, startedAt);
  }
}

async function main(profile: RuntimeProfile): Promise<void> {
  installLambdaConsole();
  const endpoint = process.env["AWS_LAMBDA_RUNTIME_API"];
  if (endpoint === undefined || endpoint === "") fatal("AWS_LAMBDA_RUNTIME_API is not set");
  const socketPath = process.env["GUST_RUNTIME_API_SOCKET"];
  // The handler sees Lambda's variables only.
  delete process.env["GUST_RUNTIME_API_SOCKET"];
  const api = new RuntimeApiClient(endpoint, profile.version, socketPath);
  const drain = new EventLoopDrain();
  drain.setIdleHandler(() => {
    if (crashing) return;
    if (phase.name !== "init") fatal("the runtime has nothing left to wait for; exiting");
    // Loading stalled on a top-level await that nothing can settle.
    crashing = true;
    const body = toLambdaError(
      new RuntimeError(
        RuntimeErrorTypes.importModule,
        "the handler module never finished loading: it awaits a promise that nothing is left to settle",
      ),
    );
    writeLog("ERROR", `Init failed \t${JSON.stringify(body)}`);
    const exit = () => process.exit(INIT_FAILURE_EXIT_CODE);
    api.postInitError(body).then(exit, exit);
  });
  installCrashHandlers(api);

  if (process.env["_HANDLER"] === undefined) {
    await warmUp();
    const assignment = await api.assignment();
    applyAssignment(assignment.env, assignment.handler);
  }
  const handler = await initialize(api, profile);
  await serve(api, handler, drain, profile);
}

/** Runs the runtime until the process ends. */
export function runBootstrap(profile: RuntimeProfile): void {
  main(profile).catch((error: unknown) => {
    // The Runtime API went away or broke its protocol; the worker replaces the sandbox.
    fatal(
      `runtime failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  });
}
