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
import type { IncomingMessage } from "node:http";
import { FunctionLimits, LambdaErrors, LambdaHeaders, type LambdaApiError } from "@gust/protocol";
import type { MiddlewareHandler } from "hono";
import { ApiErrors } from "./api-errors.js";
import { readBody, readIncomingBody } from "./body.js";
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

/**
 * The node:http request behind a request @hono/node-server serves (its
 * bindings), while nothing has read its body; undefined in process
 * (`app.request()`) or once read.
 */
function servedBy(env: unknown): IncomingMessage | undefined {
  if (typeof env !== "object" || env === null || !("incoming" in env)) return undefined;
  const { incoming } = env;
  if (typeof incoming !== "object" || incoming === null || !("headers" in incoming)) {
    return undefined;
  }
  const message = incoming as IncomingMessage;
  return typeof message.on === "function" && !message.readableDidRead ? message : undefined;
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
    const incoming = servedBy(c.env);
    const body =
      incoming === undefined
        ? await readBody(c.req.raw, limit, tooLarge)
        : await readIncomingBody(incoming, limit, tooLarge);
    await verify(identified, c.req.raw, url, body);
    c.set("identified", identified);
    c.set("tenant", identified.tenant);
    c.set("body", body);
    await next();
  };
}
