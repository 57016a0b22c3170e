/**
 * Runtime rollouts in the admin API, under the runtime admin path and its
 * bearer token (runtime-management-api.ts):
 *
 *   GET  /gust/admin/runtimes/{runtime}/rollout           the rollout's record
 *   POST /gust/admin/runtimes/{runtime}/rollout           start: {version, fraction?, minSamples?, failureBudget?}
 *   POST /gust/admin/runtimes/{runtime}/rollout/pause     new invocations all on the old version
 *   POST /gust/admin/runtimes/{runtime}/rollout/resume    (also after a halt)
 *   POST /gust/admin/runtimes/{runtime}/rollout/abort     everything back to the old version
 *   POST /gust/admin/runtimes/{runtime}/rollout/retest    {function: "tenant/name"}: forget the
 *                                                         function's verdict and counts, unpin it
 *
 * Register it before the runtime admin API, whose catch-all answers every
 * other path under it; it checks the same bearer token itself.
 *
 * Commands only change the rollout record in KV; the coordinator, which
 * watches nothing but that record and the outcome reports, does the rest.
 * So a command is accepted with no coordinator up, and takes effect when
 * one is.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { LambdaErrors, RuntimeUpdateModes, isRuntime, type Runtime } from "@gust/protocol";
import {
  RolloutStates,
  type RolloutRecord,
  type RolloutState,
  type RolloutStore,
} from "@gust/registry";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { MAX_CONTROL_REQUEST_BYTES } from "./authentication.js";
import { readBody, utf8 } from "./body.js";
import { parseJsonObject } from "./function-configuration.js";
import { json, type FrontendEnv, type Services } from "./http-context.js";
import { RUNTIME_ADMIN_PATH } from "./runtime-management-api.js";

/** Defaults of `gust rollout start`. */
export const DEFAULT_ROLLOUT_FRACTION = 0.1;
export const DEFAULT_ROLLOUT_MIN_SAMPLES = 50;
export const DEFAULT_ROLLOUT_FAILURE_BUDGET = 500;

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The runtime admin API's check: the frontend's admin token as a bearer token. */
function authorization(token: string | undefined): MiddlewareHandler<FrontendEnv> {
  // Compared as digests: equal lengths for timingSafeEqual, and no timing hint of the token.
  const expected = token === undefined ? undefined : digest(token);
  return async (c, next) => {
    const requestId = randomUUID();
    c.set("requestId", requestId);
    c.header("x-amzn-RequestId", requestId);
    if (expected === undefined) {
      throw LambdaErrors.accessDenied(
        "This frontend has no admin token (GUST_ADMIN_TOKEN): the rollout admin API is off.",
      );
    }
    const presented = BEARER.exec(c.req.header("authorization") ?? "")?.[1];
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      throw LambdaErrors.accessDenied(
        "The rollout admin API needs Authorization: Bearer <admin token>.",
      );
    }
    await next();
  };
}

function runtimeOf(c: Context<FrontendEnv>): Runtime {
  const value = c.req.param("runtime");
  if (!isRuntime(value)) throw LambdaErrors.notFound(`Unknown runtime ${JSON.stringify(value)}.`);
  return value;
}

async function body(c: Context<FrontendEnv>): Promise<Record<string, unknown>> {
  const bytes = await readBody(c.req.raw, MAX_CONTROL_REQUEST_BYTES, () =>
    LambdaErrors.requestTooLarge("The request body is too large."),
  );
  const text = utf8(bytes);
  if (text === undefined) {
    throw LambdaErrors.invalidRequestContent("The request body is not valid UTF-8");
  }
  return text.trim() === "" ? {} : parseJsonObject(text);
}

function numberIn(
  value: unknown,
  name: string,
  fallback: number,
  check: (n: number) => boolean,
  rule: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !check(value)) {
    throw LambdaErrors.invalidParameter(`${name} must be ${rule}`);
  }
  return value;
}

export function registerRolloutApi(
  app: Hono<FrontendEnv>,
  services: Services,
  store: RolloutStore,
): void {
  const path = `${RUNTIME_ADMIN_PATH}/:runtime/rollout`;
  const authorize = authorization(services.options.adminToken);
  app.use(path, authorize);
  app.use(`${path}/*`, authorize);
  const existing = async (runtime: string): Promise<RolloutRecord> => {
    const record = await store.fetch(runtime);
    if (record === undefined) throw LambdaErrors.notFound(`No rollout of ${runtime}.`);
    return record;
  };

  app.get(path, async (c) => json(c, await existing(runtimeOf(c))));

  app.post(path, async (c) => {
    const runtime = runtimeOf(c);
    const input = await body(c);
    const versions = services.registry.runtimeVersions;
    if (typeof input["version"] !== "string") {
      throw LambdaErrors.invalidParameter("version must be a string");
    }
    const target = versions.get(runtime, input["version"]);
    if (target === undefined) {
      throw LambdaErrors.invalidParameter(`${runtime} has no version ${input["version"]}.`);
    }
    const from = versions.defaultVersion(runtime);
    if (from.arn === target.arn) {
      throw LambdaErrors.invalidParameter(`${target.name} is already ${runtime}'s default.`);
    }
    const now = Date.now();
    const record: RolloutRecord = {
      runtime,
      fromVersion: from.version,
      fromArn: from.arn,
      toVersion: target.version,
      toArn: target.arn,
      fraction: numberIn(
        input["fraction"],
        "fraction",
        DEFAULT_ROLLOUT_FRACTION,
        (n) => n > 0 && n <= 1,
        "a number in (0, 1]",
      ),
      minSamples: numberIn(
        input["minSamples"],
        "minSamples",
        DEFAULT_ROLLOUT_MIN_SAMPLES,
        (n) => Number.isInteger(n) && n >= 1,
        "a positive integer",
      ),
      failureBudget: numberIn(
        input["failureBudget"],
        "failureBudget",
        DEFAULT_ROLLOUT_FAILURE_BUDGET,
        (n) => Number.isInteger(n) && n >= 1,
        "a positive integer",
      ),
      state: RolloutStates.running,
      startedAt: now,
      updatedAt: now,
      functions: {},
    };
    try {
      // A rollout whose old version is no longer the default was ended by that change.
      const ended = (current: RolloutRecord) =>
        current.state === RolloutStates.aborted || current.fromArn !== from.arn;
      return json(c, await store.start(record, ended), 201);
    } catch (error) {
      if (error instanceof Error && error.name === "ConflictError") {
        throw LambdaErrors.conflict(error.message);
      }
      throw error;
    }
  });

  const transition = (verb: string, to: RolloutState, allowed: RolloutState[]) =>
    app.post(`${path}/${verb}`, async (c) => {
      const runtime = runtimeOf(c);
      await existing(runtime);
      let refused: string | undefined;
      const updated = await store.modify(runtime, (record) => {
        refused = undefined;
        if (record.state === to) return undefined;
        if (!allowed.includes(record.state)) {
          refused = `The rollout of ${runtime} is ${record.state}; it cannot ${verb}.`;
          return undefined;
        }
        const { stateReason: _reason, ...rest } = record;
        return { ...rest, state: to };
      });
      if (refused !== undefined) throw LambdaErrors.conflict(refused);
      return json(c, updated ?? (await existing(runtime)));
    });
  transition("pause", RolloutStates.paused, [RolloutStates.running]);
  transition("resume", RolloutStates.running, [RolloutStates.paused, RolloutStates.halted]);
  transition("abort", RolloutStates.aborted, [
    RolloutStates.running,
    RolloutStates.paused,
    RolloutStates.halted,
  ]);

  app.post(`${path}/retest`, async (c) => {
    const runtime = runtimeOf(c);
    const input = await body(c);
    const name = input["function"];
    if (typeof name !== "string" || !/^[^/]+\/[^/]+$/.test(name)) {
      throw LambdaErrors.invalidParameter('function must be "tenant/name"');
    }
    const rollout = await existing(runtime);
    const [tenantId = "", functionName = ""] = name.split("/");
    // Back to Auto first, so the function takes part again as soon as its verdict is gone.
    const fn = await services.registry.get(tenantId, functionName);
    if (
      fn?.runtimeManagement?.updateRuntimeOn === RuntimeUpdateModes.manual &&
      fn.runtimeManagement.runtimeVersionArn === rollout.fromArn
    ) {
      await services.registry.putRuntimeManagementConfig(tenantId, functionName, {
        updateRuntimeOn: RuntimeUpdateModes.auto,
      });
    }
    const updated = await store.modify(runtime, (record) => {
      if (record.functions[name] === undefined) return undefined;
      delete record.functions[name];
      return record;
    });
    return json(c, updated ?? rollout);
  });
}
