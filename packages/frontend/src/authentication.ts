/**
 * The middleware every request passes: a request id, SigV4 authentication and
 * the body, read within the operation's size limit.
 *
 * Order matters for cost: the access key is checked (from headers alone)
 * before the body is read, so an unknown client cannot make this frontend
 * buffer tens of megabytes; the signature, which covers the body's hash, is
 * checked once the body is in.
 */
import { randomUUID } from "node:crypto";
import { FunctionLimits, LambdaErrors, LambdaHeaders, type LambdaApiError } from "@gust/protocol";
import type { MiddlewareHandler } from "hono";
import { ApiErrors } from "./api-errors.js";
import { readBody } from "./body.js";
import type { FrontendEnv, Services } from "./http-context.js";
import { identify, verify } from "./sigv4.js";

/**
 * CreateFunction and UpdateFunctionCode carry a base64 zip of up to 50 MB;
 * Lambda caps their request at this many bytes.
 */
export const MAX_CODE_REQUEST_BYTES = 70_167_211;
/** Every other control operation: a few KB of JSON at most. */
export const MAX_CONTROL_REQUEST_BYTES = 1024 * 1024;

const INVOKE_PATH = /\/functions\/[^/]+\/invocations\/?$/;
const CODE_PATHS = /^\/2015-03-31\/functions\/?$|^\/2015-03-31\/functions\/[^/]+\/code\/?$/;

function bodyLimit(
  request: Request,
  path: string,
): { limit: number; tooLarge: () => LambdaApiError } {
  if (request.method === "POST" && INVOKE_PATH.test(path)) {
    const isEvent = request.headers.get(LambdaHeaders.invocationType) === "Event";
    const limit = isEvent
      ? FunctionLimits.maxAsyncPayloadBytes
      : FunctionLimits.maxSyncPayloadBytes;
    return {
      limit,
      tooLarge: () =>
        LambdaErrors.requestTooLarge(
          `Request must be smaller than ${limit} bytes for the InvokeFunction operation`,
        ),
    };
  }
  if ((request.method === "POST" || request.method === "PUT") && CODE_PATHS.test(path)) {
    return {
      limit: MAX_CODE_REQUEST_BYTES,
      tooLarge: () => ApiErrors.entityTooLarge(MAX_CODE_REQUEST_BYTES),
    };
  }
  return {
    limit: MAX_CONTROL_REQUEST_BYTES,
    tooLarge: () => ApiErrors.entityTooLarge(MAX_CONTROL_REQUEST_BYTES),
  };
}

export function authentication(services: Services): MiddlewareHandler<FrontendEnv> {
  return async (c, next) => {
    const requestId = randomUUID();
    c.set("requestId", requestId);
    c.header("x-amzn-RequestId", requestId);
    const url = new URL(c.req.url);
    c.set("url", url);

    const identified = await identify(c.req.raw, url, {
      lookup: (accessKeyId) => services.tenants.byAccessKey(accessKeyId),
      maxClockSkewMs: services.options.maxClockSkewMs,
      now: services.now,
    });
    const { limit, tooLarge } = bodyLimit(c.req.raw, url.pathname);
    const body = await readBody(c.req.raw, limit, tooLarge);
    await verify(identified, c.req.raw, url, body);
    c.set("identified", identified);
    c.set("tenant", identified.tenant);
    c.set("body", body);
    await next();
  };
}
