/**
 * Runtime versions over HTTP, in two parts:
 *
 * - Lambda's runtime management controls, for a function's owner (SigV4, like
 *   every Lambda operation): PutRuntimeManagementConfig and
 *   GetRuntimeManagementConfig.
 *   https://docs.aws.amazon.com/lambda/latest/api/API_PutRuntimeManagementConfig.html
 * - Gust's admin API for operators, under /gust/admin/runtimes: list the
 *   versions, add one, choose a runtime's default. It lives on the frontend
 *   because frontends already serve HTTP behind the load balancer, and the
 *   registry they cache is where versions are kept (the coordinator serves no
 *   HTTP). It is not a tenant's API, so it does not take SigV4: like the
 *   other admin endpoints (admin-api.ts) it takes `Authorization: Bearer
 *   <token>` with the frontend's admin token (FrontendOptions.adminToken,
 *   GUST_ADMIN_TOKEN), and refuses everything when the frontend has none.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import {
  isRuntime,
  isRuntimeUpdateMode,
  Runtimes,
  type FunctionRecord,
  type Runtime,
  type RuntimeRecipe,
} from "@gust/protocol";
import type { RuntimeVersionRecord } from "@gust/registry";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { ApiErrors } from "./api-errors.js";
import { MAX_CONTROL_REQUEST_BYTES } from "./authentication.js";
import { readBody, utf8 } from "./body.js";
import { bodyJson } from "./control-api.js";
import { parseJsonObject } from "./function-configuration.js";
import { json, lookUpFunction, type FrontendEnv, type Services } from "./http-context.js";

const MANAGEMENT_CONFIG = "/2021-07-20/functions/:name/runtime-management-config";
/** Where the admin API is served. */
export const RUNTIME_ADMIN_PATH = "/gust/admin/runtimes";
const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Lambda's answer to both operations; RuntimeVersionArn only for Manual, as Lambda does. */
function managementConfigOf(record: FunctionRecord): Record<string, unknown> {
  const config = record.runtimeManagement;
  const updateRuntimeOn = config?.updateRuntimeOn ?? "Auto";
  return {
    UpdateRuntimeOn: updateRuntimeOn,
    FunctionArn: record.functionArn,
    ...(updateRuntimeOn === "Manual" && config?.runtimeVersionArn !== undefined
      ? { RuntimeVersionArn: config.runtimeVersionArn }
      : {}),
  };
}

/** PutRuntimeManagementConfig and GetRuntimeManagementConfig (after SigV4 authentication). */
export function registerRuntimeManagementApi(app: Hono<FrontendEnv>, services: Services): void {
  app.put(MANAGEMENT_CONFIG, async (c) => {
    const { ref } = await lookUpFunction(c, services);
    const body = bodyJson(c);
    const updateRuntimeOn = body["UpdateRuntimeOn"];
    if (updateRuntimeOn === undefined || updateRuntimeOn === null) {
      throw ApiErrors.validation(
        "1 validation error detected: Value null at 'updateRuntimeOn' failed to satisfy constraint: Member must not be null",
      );
    }
    if (!isRuntimeUpdateMode(updateRuntimeOn)) {
      throw ApiErrors.validation(
        `1 validation error detected: Value '${typeof updateRuntimeOn === "string" ? updateRuntimeOn : JSON.stringify(updateRuntimeOn)}' at 'updateRuntimeOn' failed to satisfy constraint: Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]`,
      );
    }
    const runtimeVersionArn = body["RuntimeVersionArn"];
    if (runtimeVersionArn !== undefined && runtimeVersionArn !== null) {
      if (typeof runtimeVersionArn !== "string" || runtimeVersionArn.length > 2048) {
        throw ApiErrors.invalidParameter(
          "RuntimeVersionArn must be a string of at most 2048 characters",
        );
      }
    }
    const updated = await services.registry.putRuntimeManagementConfig(
      c.get("tenant").id,
      ref.name,
      typeof runtimeVersionArn === "string"
        ? { updateRuntimeOn, runtimeVersionArn }
        : { updateRuntimeOn },
    );
    return json(c, managementConfigOf(updated));
  });

  app.get(MANAGEMENT_CONFIG, async (c) => {
    const { record } = await lookUpFunction(c, services);
    return json(c, managementConfigOf(record));
  });
}

// ---- the admin API -----------------------------------------------------------------------

/** A runtime version as the admin API shows it. */
export interface RuntimeVersionView {
  runtime: Runtime;
  version: string;
  /** e.g. "nodejs20.x:1.0.0" */
  name: string;
  arn: string;
  recipe: RuntimeRecipe;
  description: string;
  createdAt: string;
  builtIn: boolean;
  isDefault: boolean;
}

/** A runtime, its default and its versions, as the admin API shows them. */
export interface RuntimeView {
  runtime: Runtime;
  defaultVersion: string;
  versions: RuntimeVersionView[];
}

function versionJson(record: RuntimeVersionRecord, defaultArn: string): RuntimeVersionView {
  return {
    runtime: record.runtime,
    version: record.version,
    name: record.name,
    arn: record.arn,
    recipe: record.recipe,
    description: record.description,
    createdAt: record.createdAt,
    builtIn: record.builtIn,
    isDefault: record.arn === defaultArn,
  };
}

function runtimeJson(services: Services, runtime: Runtime): RuntimeView {
  const versions = services.registry.runtimeVersions;
  const defaultArn = versions.defaultVersion(runtime).arn;
  return {
    runtime,
    defaultVersion: versions.defaultVersion(runtime).version,
    versions: versions.list(runtime).map((record) => versionJson(record, defaultArn)),
  };
}

function runtimeParam(value: string | undefined): Runtime {
  if (!isRuntime(value)) {
    throw ApiErrors.notFound(
      `Unknown runtime ${JSON.stringify(value)}: use one of ${Object.values(Runtimes).join(", ")}.`,
    );
  }
  return value;
}

async function adminBody(c: Context<FrontendEnv>): Promise<Record<string, unknown>> {
  const bytes = await readBody(c.req.raw, MAX_CONTROL_REQUEST_BYTES, () =>
    ApiErrors.entityTooLarge(MAX_CONTROL_REQUEST_BYTES),
  );
  const text = utf8(bytes);
  if (text === undefined)
    throw ApiErrors.invalidRequestContent("The request body is not valid UTF-8");
  return parseJsonObject(text);
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * The admin API. Register it before SigV4 authentication: its requests carry
 * a bearer token, not a signature.
 */
export function registerRuntimeAdminApi(app: Hono<FrontendEnv>, services: Services): void {
  const token = services.options.adminToken;
  // Compared as digests: equal lengths for timingSafeEqual, and no timing hint of the token.
  const expected = token === undefined ? undefined : digest(token);
  const authorize: MiddlewareHandler<FrontendEnv> = async (c, next) => {
    const requestId = randomUUID();
    c.set("requestId", requestId);
    c.header("x-amzn-RequestId", requestId);
    if (expected === undefined) {
      throw ApiErrors.accessDenied(
        "This frontend has no admin token (GUST_ADMIN_TOKEN): the runtime admin API is off.",
      );
    }
    const presented = BEARER.exec(c.req.header("authorization") ?? "")?.[1];
    if (presented === undefined) {
      throw ApiErrors.accessDenied(
        "The runtime admin API needs Authorization: Bearer <admin token>.",
      );
    }
    if (!timingSafeEqual(digest(presented), expected)) {
      throw ApiErrors.accessDenied("The admin token is not valid.");
    }
    await next();
  };
  app.use(RUNTIME_ADMIN_PATH, authorize);
  app.use(`${RUNTIME_ADMIN_PATH}/*`, authorize);

  app.get(RUNTIME_ADMIN_PATH, (c) =>
    json(c, { runtimes: Object.values(Runtimes).map((runtime) => runtimeJson(services, runtime)) }),
  );
  app.get(`${RUNTIME_ADMIN_PATH}/:runtime`, (c) =>
    json(c, runtimeJson(services, runtimeParam(c.req.param("runtime")))),
  );

  app.post(`${RUNTIME_ADMIN_PATH}/:runtime/versions`, async (c) => {
    const runtime = runtimeParam(c.req.param("runtime"));
    const body = await adminBody(c);
    const { version, recipe, description } = body;
    if (typeof version !== "string") throw ApiErrors.invalidParameter("version must be a string");
    if (description !== undefined && typeof description !== "string") {
      throw ApiErrors.invalidParameter("description must be a string");
    }
    const versions = services.registry.runtimeVersions;
    const added = await versions.add({
      runtime,
      version,
      recipe,
      ...(description === undefined ? {} : { description }),
    });
    return json(c, versionJson(added, versions.defaultVersion(runtime).arn), 201);
  });

  app.put(`${RUNTIME_ADMIN_PATH}/:runtime/default`, async (c) => {
    const runtime = runtimeParam(c.req.param("runtime"));
    const { version } = await adminBody(c);
    if (typeof version !== "string") throw ApiErrors.invalidParameter("version must be a string");
    const chosen = await services.registry.runtimeVersions.setDefault(runtime, version);
    services.logger.info("runtime default set through the admin API", {
      runtime,
      version,
      arn: chosen.arn,
    });
    return json(c, runtimeJson(services, runtime));
  });

  // An unknown admin path must not fall through to SigV4 authentication.
  app.all(`${RUNTIME_ADMIN_PATH}/*`, (c) => {
    throw ApiErrors.unknownOperation(c.req.method, new URL(c.req.url).pathname);
  });
}
