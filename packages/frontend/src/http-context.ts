/**
 * What every route handler shares: the hono environment (per-request values
 * the authentication middleware sets) and the frontend's services.
 */
import type { WorkQueue } from "@gust/bus";
import type { FunctionRecord } from "@gust/protocol";
import type { FunctionRegistry, Tenant, TenantDirectory } from "@gust/registry";
import type { Logger } from "@gust/telemetry";
import type { Context } from "hono";
import { notFoundFor, parseFunctionRef, type FunctionRef } from "./function-names.js";
import type { Invoker } from "./invoker.js";
import type { ResolvedFrontendOptions } from "./options.js";
import type { IdentifiedRequest } from "./sigv4.js";
import type { UploadBudget } from "./upload-budget.js";

export interface FrontendEnv {
  Variables: {
    requestId: string;
    /** The caller, once its signature is verified. */
    tenant: Tenant;
    identified: IdentifiedRequest;
    /**
     * The request body, read (within the route's limit) to check the
     * signature. A code upload's has `null` for its zip, which is `zipFile`.
     */
    body: Uint8Array;
    /** CreateFunction's Code.ZipFile or UpdateFunctionCode's ZipFile, decoded as it arrived. */
    zipFile: Uint8Array | undefined;
    /** The URL as the client signed it (path still percent-encoded). */
    url: URL;
  };
}

export type FrontendContext = Context<FrontendEnv>;

export interface Services {
  registry: FunctionRegistry;
  tenants: TenantDirectory;
  eventQueue: WorkQueue;
  invoker: Invoker;
  logger: Logger;
  options: ResolvedFrontendOptions;
  now: () => number;
  /** Code upload bytes this frontend holds at once (upload-budget.ts). */
  uploads: UploadBudget;
}

/** The function a `{name}` path parameter names, or ResourceNotFoundException. */
export async function lookUpFunction(
  c: FrontendContext,
  services: Services,
  allowQualifier = true,
): Promise<{ ref: FunctionRef; record: FunctionRecord }> {
  const tenant = c.get("tenant");
  const ref = resolveRef(c, services, allowQualifier);
  const record = await services.registry.get(tenant.id, ref.name);
  if (!record) throw notFoundFor(services.options.region, tenant, ref.name);
  return { ref, record };
}

export function resolveRef(
  c: FrontendContext,
  services: Services,
  allowQualifier = true,
): FunctionRef {
  return parseFunctionRef(c.req.param("name") ?? "", {
    tenant: c.get("tenant"),
    region: services.options.region,
    qualifier: c.req.query("Qualifier"),
    allowQualifier,
  });
}

/** A JSON response with Lambda's content type. */
export function json(c: FrontendContext, body: unknown, status: 200 | 201 | 202 = 200): Response {
  return c.body(JSON.stringify(body), status, { "content-type": "application/json" });
}
