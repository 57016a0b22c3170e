/**
 * Lambda's control API for functions, on the registry: CreateFunction,
 * GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
 * UpdateFunctionConfiguration, DeleteFunction and GetAccountSettings, with
 * Lambda's paths, members and status codes.
 *
 * Reference: https://docs.aws.amazon.com/lambda/latest/api/API_Operations.html
 */
import { BundleError, BundleErrorReasons, inspectZip, type BundleInfo } from "@gust/bundle";
import { FunctionLimits, isCustomRuntime, type FunctionRecord, type Runtime } from "@gust/protocol";
import type { RolloutStore } from "@gust/registry";
import type { Hono } from "hono";
import { ApiErrors } from "./api-errors.js";
import { utf8 } from "./body.js";
import { zippedTooLarge } from "./code-request.js";
import {
  parseCreateFunction,
  parseJsonObject,
  parseUpdateFunctionCode,
  parseUpdateFunctionConfiguration,
  toFunctionConfiguration,
} from "./function-configuration.js";
import { notFoundFor, parseFunctionRef } from "./function-names.js";
import {
  json,
  lookUpFunction,
  resolveRef,
  type FrontendContext,
  type FrontendEnv,
  type Services,
} from "./http-context.js";
import { rolloutViewOf } from "./rollout-view.js";
import { presignUrl } from "./sigv4.js";

const API = "/2015-03-31";

/** Lambda's default quota for all of an account's code (75 GB). */
export const ACCOUNT_CODE_STORAGE_BYTES = 80_530_636_800;

/** Lambda's ListFunctions MaxItems range and default. */
const MAX_ITEMS = { min: 1, max: 10_000, default: 50 } as const;

/** Where GetFunction's Code.Location points: a presigned download served by this frontend. */
export const CODE_DOWNLOAD_PATH = "/gust/2015-03-31/functions/:name/code";

export function bodyJson(c: FrontendContext): Record<string, unknown> {
  const text = utf8(c.get("body"));
  if (text === undefined)
    throw ApiErrors.invalidRequestContent("The request body is not valid UTF-8");
  return parseJsonObject(text);
}

/** Check a zip the way Lambda would refuse it, and a custom runtime's entry point. */
async function inspectCode(zip: Uint8Array, runtime: Runtime): Promise<BundleInfo> {
  let info: BundleInfo;
  try {
    info = await inspectZip(zip);
  } catch (error) {
    if (error instanceof BundleError) {
      if (error.reason === BundleErrorReasons.zipTooLarge) throw zippedTooLarge();
      if (error.reason === BundleErrorReasons.unzippedTooLarge) {
        // Lambda's words, which deployment tools recognise.
        throw ApiErrors.invalidParameter(
          `Unzipped size must be smaller than ${FunctionLimits.maxUnzippedBytes} bytes`,
        );
      }
      throw ApiErrors.invalidParameter(`Could not unzip uploaded file. ${error.message}`);
    }
    throw error;
  }
  checkEntryPoint(info, runtime);
  return info;
}

function checkEntryPoint(info: BundleInfo, runtime: Runtime): void {
  if (isCustomRuntime(runtime) && !info.hasFile("bootstrap")) {
    throw ApiErrors.invalidParameter(
      `A function on the ${runtime} runtime needs an executable file named bootstrap at the root of its zip`,
    );
  }
}

function checkRevision(record: FunctionRecord, revisionId: string | undefined): void {
  // Compared before the write; the registry's compare-and-set keeps a racing writer from being lost.
  if (revisionId !== undefined && revisionId !== record.revisionId)
    throw ApiErrors.preconditionFailed();
}

function parseMaxItems(value: string | undefined): number {
  if (value === undefined || value === "") return MAX_ITEMS.default;
  const n = Number(value);
  if (!Number.isInteger(n) || n < MAX_ITEMS.min || n > MAX_ITEMS.max) {
    throw ApiErrors.invalidParameter(
      `1 validation error detected: Value '${value}' at 'maxItems' failed to satisfy constraint: Member must have value between ${MAX_ITEMS.min} and ${MAX_ITEMS.max}`,
    );
  }
  return n;
}

function withRolloutView(
  rollouts: RolloutStore | undefined,
  record: FunctionRecord,
): { GustRuntimeRollout?: Record<string, unknown> } {
  const view = rollouts === undefined ? undefined : rolloutViewOf(rollouts, record);
  // The owner's rollout setting shows even before a rollout counts the function.
  const settings = record.safeToRepeat === true ? { SafeToRepeat: true } : undefined;
  if (view === undefined) return settings === undefined ? {} : { GustRuntimeRollout: settings };
  return { GustRuntimeRollout: { ...view, ...settings } };
}

export function registerControlApi(
  app: Hono<FrontendEnv>,
  services: Services,
  rollouts?: RolloutStore,
): void {
  const { registry } = services;

  const createFunction = async (c: FrontendContext) => {
    const tenant = c.get("tenant");
    const input = parseCreateFunction(bodyJson(c), c.get("zipFile"));
    // FunctionName may be an ARN; it must not carry a qualifier.
    const { name } = parseFunctionRef(input.functionName, {
      tenant,
      region: services.options.region,
      allowQualifier: false,
    });
    const info = await inspectCode(input.zip, input.config.runtime);
    const usage = await registry.usage(tenant.id);
    if (usage.totalCodeSize + info.codeSize > ACCOUNT_CODE_STORAGE_BYTES) {
      throw ApiErrors.codeStorageExceeded("Code storage limit exceeded.");
    }
    const record = await registry.create(tenant, name, input.config, input.zip, {
      codeSha256: info.codeSha256,
      codeSize: info.codeSize,
    });
    return json(c, toFunctionConfiguration(record), 201);
  };
  app.post(`${API}/functions`, createFunction);
  app.post(`${API}/functions/`, createFunction);

  const listFunctions = async (c: FrontendContext) => {
    const maxItems = parseMaxItems(c.req.query("MaxItems"));
    const marker = c.req.query("Marker");
    const page = await registry.list(c.get("tenant").id, {
      maxItems,
      ...(marker === undefined || marker === "" ? {} : { marker }),
    });
    return json(c, {
      Functions: page.functions.map(toFunctionConfiguration),
      ...(page.nextMarker === undefined ? {} : { NextMarker: page.nextMarker }),
    });
  };
  app.get(`${API}/functions`, listFunctions);
  app.get(`${API}/functions/`, listFunctions);

  app.get(`${API}/functions/:name`, async (c) => {
    const { record } = await lookUpFunction(c, services);
    const location = await codeLocation(c, services, record);
    return json(c, {
      Configuration: toFunctionConfiguration(record),
      // Lambda answers with a presigned S3 URL valid for 10 minutes. Gust's
      // is a presigned URL of this frontend's own download route, signed with
      // the caller's key, naming the exact code (CodeSha256) it returns.
      Code: { RepositoryType: "S3", Location: location },
      ...(record.reservedConcurrency === undefined
        ? {}
        : { Concurrency: { ReservedConcurrentExecutions: record.reservedConcurrency } }),
      // Gust's own member: a runtime rollout's verdict on the function (SDKs ignore it).
      ...withRolloutView(rollouts, record),
    });
  });

  app.get(`${API}/functions/:name/configuration`, async (c) => {
    const { record } = await lookUpFunction(c, services);
    return json(c, toFunctionConfiguration(record));
  });

  app.put(`${API}/functions/:name/code`, async (c) => {
    const tenant = c.get("tenant");
    const { ref, record } = await lookUpFunction(c, services, false);
    const input = parseUpdateFunctionCode(bodyJson(c), c.get("zipFile"));
    checkRevision(record, input.revisionId);
    const info = await inspectCode(input.zip, record.runtime);
    if (input.dryRun) return json(c, toFunctionConfiguration(record));
    const usage = await registry.usage(tenant.id);
    if (usage.totalCodeSize - record.codeSize + info.codeSize > ACCOUNT_CODE_STORAGE_BYTES) {
      throw ApiErrors.codeStorageExceeded("Code storage limit exceeded.");
    }
    const updated = await registry.updateCode(tenant.id, ref.name, input.zip, {
      codeSha256: info.codeSha256,
      codeSize: info.codeSize,
    });
    return json(c, toFunctionConfiguration(updated));
  });

  app.put(`${API}/functions/:name/configuration`, async (c) => {
    const tenant = c.get("tenant");
    const { ref, record } = await lookUpFunction(c, services, false);
    const input = parseUpdateFunctionConfiguration(bodyJson(c));
    checkRevision(record, input.revisionId);
    const runtime = input.patch.runtime;
    if (runtime !== undefined && runtime !== record.runtime && isCustomRuntime(runtime)) {
      // The code stays; it must suit the new runtime.
      const zip = await registry.fetchCode(record.codeSha256);
      if (!zip) throw ApiErrors.service("The function's code could not be read.");
      await inspectCode(zip, runtime);
    }
    const updated = await registry.updateConfiguration(tenant.id, ref.name, input.patch);
    return json(c, toFunctionConfiguration(updated));
  });

  app.delete(`${API}/functions/:name`, async (c) => {
    const tenant = c.get("tenant");
    const ref = resolveRef(c, services);
    // Lambda deletes a version when given a qualifier; $LATEST is the function itself.
    const record = await registry.get(tenant.id, ref.name);
    if (!record) throw notFoundFor(services.options.region, tenant, ref.name);
    await registry.delete(tenant.id, ref.name);
    return c.body(null, 204);
  });

  const accountSettings = async (c: FrontendContext) => {
    const tenant = c.get("tenant");
    const usage = await registry.usage(tenant.id);
    return json(c, {
      AccountLimit: {
        TotalCodeSize: ACCOUNT_CODE_STORAGE_BYTES,
        CodeSizeUnzipped: FunctionLimits.maxUnzippedBytes,
        CodeSizeZipped: FunctionLimits.maxZipBytes,
        ConcurrentExecutions: tenant.maxConcurrency,
        UnreservedConcurrentExecutions: Math.max(
          0,
          tenant.maxConcurrency - registry.reservedTotal(tenant.id),
        ),
      },
      AccountUsage: { TotalCodeSize: usage.totalCodeSize, FunctionCount: usage.functionCount },
    });
  };
  app.get("/2016-08-19/account-settings", accountSettings);
  app.get("/2016-08-19/account-settings/", accountSettings);

  app.get(CODE_DOWNLOAD_PATH, async (c) => {
    if (c.get("identified").form !== "query")
      throw ApiErrors.accessDenied("Use the presigned Code.Location of GetFunction");
    const { record } = await lookUpFunction(c, services, false);
    if (c.req.query("CodeSha256") !== record.codeSha256) {
      throw ApiErrors.notFound("The function's code has changed since this location was issued.");
    }
    const zip = await registry.fetchCode(record.codeSha256);
    if (!zip) throw ApiErrors.service("The function's code could not be read.");
    return c.body(zip as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/zip",
      "content-disposition": `attachment; filename="${record.name}.zip"`,
    });
  });
}

async function codeLocation(
  c: FrontendContext,
  services: Services,
  record: FunctionRecord,
): Promise<string> {
  const identified = c.get("identified");
  const baseUrl = services.options.publicUrl ?? c.get("url").origin;
  return presignUrl({
    baseUrl,
    path: CODE_DOWNLOAD_PATH.replace(":name", encodeURIComponent(record.name)),
    query: { CodeSha256: record.codeSha256 },
    accessKeyId: identified.accessKeyId,
    secretAccessKey: identified.secretAccessKey,
    region: identified.region,
    expiresInSec: services.options.codeLocationTtlSec,
    now: new Date(services.now()),
  });
}
