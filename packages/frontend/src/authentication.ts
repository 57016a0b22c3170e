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
import type { Context, MiddlewareHandler, Next } from "hono";
import { ApiErrors } from "./api-errors.js";
import { MAX_CODE_REQUEST_BYTES } from "./options.js";
import { readBody, readIncomingBody, streamBody, streamIncomingBody } from "./body.js";
import {
  CodeRequestReader,
  codeRequestTooLarge,
  ZipFileMembers,
  type ZipFileMember,
} from "./code-request.js";
import type { FrontendEnv, Services } from "./http-context.js";
import { identify, verify, type IdentifiedRequest } from "./sigv4.js";

/** Every other control operation: a few KB of JSON at most. */
export const MAX_CONTROL_REQUEST_BYTES = 1024 * 1024;

const INVOKE_PATH = /\/functions\/[^/]+\/invocations\/?$/;
const CREATE_FUNCTION_PATH = /^\/2015-03-31\/functions\/?$/;
const FUNCTION_CODE_PATH = /^\/2015-03-31\/functions\/[^/]+\/code\/?$/;

/** CreateFunction or UpdateFunctionCode: where its zip is, and its name for errors. */
function codeOperation(
  request: Request,
  path: string,
): { operation: string; member: ZipFileMember } | undefined {
  if (request.method === "POST" && CREATE_FUNCTION_PATH.test(path)) {
    return { operation: "CreateFunction", member: ZipFileMembers.createFunction };
  }
  if (request.method === "PUT" && FUNCTION_CODE_PATH.test(path)) {
    return { operation: "UpdateFunctionCode", member: ZipFileMembers.updateFunctionCode };
  }
  return undefined;
}

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
    const incoming = servedBy(c.env);
    const code = codeOperation(c.req.raw, url.pathname);
    if (code !== undefined) {
      await serveCodeUpload(c, services, identified, url, incoming, code, next);
      return;
    }
    const { limit, tooLarge } = bodyLimit(c.req.raw, url.pathname);
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

/**
 * A code upload: admitted by the frontend's upload budget before a byte of
 * it is read, decoded as it arrives (code-request.ts), and holding its share
 * of the budget until its answer is ready.
 */
async function serveCodeUpload(
  c: Context<FrontendEnv>,
  services: Services,
  identified: IdentifiedRequest,
  url: URL,
  incoming: IncomingMessage | undefined,
  code: { operation: string; member: ZipFileMember },
  next: Next,
): Promise<void> {
  const tooLarge = () => codeRequestTooLarge(MAX_CODE_REQUEST_BYTES, code.operation);
  const declaredHeader = c.req.header("content-length");
  const declared = declaredHeader === undefined ? undefined : Number(declaredHeader);
  const declaredLength =
    declared !== undefined && Number.isSafeInteger(declared) && declared >= 0
      ? declared
      : undefined;
  if (declaredLength !== undefined && declaredLength > MAX_CODE_REQUEST_BYTES) throw tooLarge();
  const release = await services.uploads.acquire(
    declaredLength ?? MAX_CODE_REQUEST_BYTES,
    c.req.raw.signal,
  );
  try {
    const reader = new CodeRequestReader({
      member: code.member,
      operation: code.operation,
      maxRestBytes: MAX_CONTROL_REQUEST_BYTES,
      maxRequestBytes: MAX_CODE_REQUEST_BYTES,
      ...(declaredLength === undefined ? {} : { declaredLength }),
    });
    try {
      const upload =
        incoming === undefined
          ? await streamBody(c.req.raw, MAX_CODE_REQUEST_BYTES, tooLarge, reader)
          : await streamIncomingBody(incoming, MAX_CODE_REQUEST_BYTES, tooLarge, reader);
      await verify(identified, c.req.raw, url, { sha256Hex: upload.bodySha256 });
      if (upload.failure !== undefined) throw upload.failure;
      c.set("identified", identified);
      c.set("tenant", identified.tenant);
      c.set("body", upload.rest);
      c.set("zipFile", upload.zip);
      await next();
    } finally {
      // The answer is ready and the store has its copy: the zip's memory goes
      // back now, whenever V8 collects the objects that held it.
      c.set("zipFile", undefined);
      reader.release();
    }
  } finally {
    release();
  }
}
