/**
 * AWS Signature Version 4 verification, by signing the request again with
 * the secret the access key names (smithy's SignatureV4, the AWS SDK's own
 * signer) and comparing signatures in constant time. Two forms: the
 * `Authorization` header every SDK sends, and the query string of a presigned
 * URL (GetFunction's Code.Location).
 *
 * Work happens in two steps so that a request whose access key is unknown is
 * refused before its body is read: `identify` needs only the headers, `verify`
 * needs the body, whose SHA-256 is part of what was signed.
 *
 * Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 */
import { timingSafeEqual } from "node:crypto";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Tenant } from "@gust/registry";
import { ApiErrors } from "./api-errors.js";
import { expectedHeaderSignature, sha256Hex } from "./sigv4-header.js";

export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
export const SIGNING_SERVICE = "lambda";
const PRESIGN_MAX_TTL_SEC = 604_800;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;
const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

export type KeyLookup = (
  accessKeyId: string,
) => Promise<{ tenant: Tenant; secretAccessKey: string } | undefined>;

export interface SigV4Options {
  lookup: KeyLookup;
  maxClockSkewMs: number;
  now: () => number;
}

/** A request whose access key is known; its signature is not checked yet. */
export interface IdentifiedRequest {
  tenant: Tenant;
  accessKeyId: string;
  secretAccessKey: string;
  form: "header" | "query";
  region: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  signingDate: Date;
  /** Presigned URLs only. */
  expiresInSec?: number;
}

interface CredentialScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(value: string): CredentialScope {
  const parts = value.split("/");
  const [accessKeyId, date, region, service, terminator] = parts;
  if (
    parts.length !== 5 ||
    !accessKeyId ||
    !date ||
    !region ||
    !service ||
    terminator !== "aws4_request"
  ) {
    throw ApiErrors.incompleteSignature(
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${value}'`,
    );
  }
  return { accessKeyId, date, region, service };
}

function parseAuthorizationHeader(header: string): {
  scope: CredentialScope;
  signedHeaders: string[];
  signature: string;
} {
  if (!header.startsWith(`${SIGV4_ALGORITHM} `)) {
    throw ApiErrors.incompleteSignature(
      `Authorization header must use the ${SIGV4_ALGORITHM} algorithm`,
    );
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(SIGV4_ALGORITHM.length + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    throw ApiErrors.incompleteSignature(
      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
    );
  }
  return {
    scope: parseCredential(credential),
    signedHeaders: signedHeaders.split(";"),
    signature,
  };
}

function parseAmzDate(value: string | null): Date {
  const match = value === null ? null : AMZ_DATE.exec(value);
  if (!match) {
    throw ApiErrors.incompleteSignature(
      "The request must carry an X-Amz-Date in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z')",
    );
  }
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 20261345T… over into a later date (and reads years below 100 as 19xx);
  // a real stamp survives the round trip.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    throw ApiErrors.incompleteSignature(`Invalid X-Amz-Date ${value}`);
  }
  return date;
}

function basicFormat(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** Headers only: who is asking, and does the signature's frame make sense. */
export async function identify(
  request: Request,
  url: URL,
  options: SigV4Options,
): Promise<IdentifiedRequest> {
  const authorization = request.headers.get("authorization");
  let scope: CredentialScope;
  let signedHeaders: string[];
  let signature: string;
  let amzDate: string | null;
  let expiresInSec: number | undefined;
  let form: IdentifiedRequest["form"];
  if (authorization !== null) {
    form = "header";
    ({ scope, signedHeaders, signature } = parseAuthorizationHeader(authorization));
    amzDate = request.headers.get("x-amz-date");
  } else if (url.searchParams.has("X-Amz-Signature")) {
    form = "query";
    const query = url.searchParams;
    if (query.get("X-Amz-Algorithm") !== SIGV4_ALGORITHM) {
      throw ApiErrors.incompleteSignature(`X-Amz-Algorithm must be ${SIGV4_ALGORITHM}`);
    }
    const credential = query.get("X-Amz-Credential");
    const signed = query.get("X-Amz-SignedHeaders");
    const expires = Number(query.get("X-Amz-Expires"));
    if (credential === null || signed === null || !Number.isInteger(expires) || expires < 1) {
      throw ApiErrors.incompleteSignature(
        "A presigned URL requires X-Amz-Credential, X-Amz-SignedHeaders and X-Amz-Expires",
      );
    }
    if (expires > PRESIGN_MAX_TTL_SEC) {
      throw ApiErrors.incompleteSignature(
        "X-Amz-Expires must be less than a week (604800 seconds)",
      );
    }
    scope = parseCredential(credential);
    signedHeaders = signed.split(";");
    signature = query.get("X-Amz-Signature") ?? "";
    amzDate = query.get("X-Amz-Date");
    expiresInSec = expires;
  } else {
    throw ApiErrors.missingAuthentication();
  }

  if (!signedHeaders.includes("host")) {
    throw ApiErrors.incompleteSignature("SignedHeaders must include host");
  }
  const signingDate = parseAmzDate(amzDate);
  const found = await options.lookup(scope.accessKeyId);
  if (!found) {
    throw ApiErrors.unrecognizedClient("The security token included in the request is invalid.");
  }
  if (scope.service !== SIGNING_SERVICE) {
    throw ApiErrors.invalidSignature(
      `Credential should be scoped to correct service: '${SIGNING_SERVICE}'.`,
    );
  }
  const stamp = amzDate ?? "";
  if (scope.date !== stamp.slice(0, 8)) {
    throw ApiErrors.invalidSignature(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scope.date}' != '${stamp.slice(0, 8)}'`,
    );
  }
  const now = options.now();
  const skew = options.maxClockSkewMs;
  if (form === "query") {
    if (now > signingDate.getTime() + (expiresInSec ?? 0) * 1000) {
      throw ApiErrors.accessDenied("Request has expired");
    }
  } else if (signingDate.getTime() < now - skew) {
    throw ApiErrors.invalidSignature(
      `Signature expired: ${stamp} is now earlier than ${basicFormat(now - skew)} (${basicFormat(now)} - ${skew / 60_000} min.)`,
    );
  }
  if (signingDate.getTime() > now + skew) {
    throw ApiErrors.invalidSignature(
      `Signature not yet current: ${stamp} is still later than ${basicFormat(now + skew)} (${basicFormat(now)} + ${skew / 60_000} min.)`,
    );
  }
  return {
    tenant: found.tenant,
    accessKeyId: scope.accessKeyId,
    secretAccessKey: found.secretAccessKey,
    form,
    region: scope.region,
    signedHeaders,
    signature,
    amzDate: stamp,
    signingDate,
    ...(expiresInSec === undefined ? {} : { expiresInSec }),
  };
}

function queryRecord(url: URL, omit: ReadonlySet<string>): Record<string, string | string[]> {
  // No prototype: a parameter named __proto__ is just a (badly signed) parameter.
  const query = Object.create(null) as Record<string, string | string[]>;
  for (const [key, value] of url.searchParams) {
    if (omit.has(key)) continue;
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else query[key] = [existing, value];
  }
  return query;
}

function sameSignature(expected: string, given: string): boolean {
  if (!HEX_SIGNATURE.test(given) || expected.length !== given.length) return false;
  return timingSafeEqual(Buffer.from(expected, "ascii"), Buffer.from(given, "ascii"));
}

const SIGNATURE_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/**
 * Sign the request again, with the body, and compare. Throws
 * InvalidSignatureException. A body hashed as it was read (a code upload)
 * comes as its hex SHA-256.
 */
export async function verify(
  identified: IdentifiedRequest,
  request: Request,
  url: URL,
  body: Uint8Array | { sha256Hex: string },
): Promise<void> {
  const headers = new Map<string, string>();
  for (const name of identified.signedHeaders) {
    const value = request.headers.get(name);
    if (value === null) throw ApiErrors.invalidSignature(`Signed header ${name} is missing`);
    headers.set(name, value);
  }
  let expected: string | undefined;
  if (identified.form === "header") {
    const bodySha256 = body instanceof Uint8Array ? sha256Hex(body) : body.sha256Hex;
    // The signer trusts x-amz-content-sha256 as the body's hash; hold it to the real body.
    const declaredHash = request.headers.get("x-amz-content-sha256");
    if (declaredHash !== null && declaredHash !== bodySha256) {
      const why =
        declaredHash === UNSIGNED_PAYLOAD
          ? "Gust requires a signed payload"
          : "it does not match the body";
      throw ApiErrors.invalidSignature(`x-amz-content-sha256 is refused: ${why}`);
    }
    expected = expectedHeaderSignature({
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers,
      signedHeaders: identified.signedHeaders,
      amzDate: identified.amzDate,
      region: identified.region,
      service: SIGNING_SERVICE,
      secretAccessKey: identified.secretAccessKey,
      bodySha256,
    });
  } else {
    expected = await presignedSignature(identified, request, url, headers);
  }
  if (expected === undefined || !sameSignature(expected, identified.signature)) {
    throw ApiErrors.invalidSignature(SIGNATURE_MISMATCH);
  }
}

/** A presigned URL's signature, by presigning the same request again with the SDK's signer. */
async function presignedSignature(
  identified: IdentifiedRequest,
  request: Request,
  url: URL,
  signed: ReadonlyMap<string, string>,
): Promise<string | undefined> {
  const headers = Object.create(null) as Record<string, string>;
  for (const [name, value] of signed) headers[name] = value;
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: identified.accessKeyId,
      secretAccessKey: identified.secretAccessKey,
    },
    region: identified.region,
    service: SIGNING_SERVICE,
    sha256: Sha256,
    uriEscapePath: true,
    // Add no header the client did not sign.
    applyChecksum: false,
  });
  const signedHeaderSet = new Set(identified.signedHeaders);
  const toSign = new HttpRequest({
    method: request.method,
    protocol: url.protocol,
    hostname: url.hostname,
    path: url.pathname,
    query: queryRecord(url, new Set(["X-Amz-Signature"])),
    headers,
  });
  const presigned = await signer.presign(toSign, {
    signingDate: identified.signingDate,
    expiresIn: identified.expiresInSec ?? 0,
    signableHeaders: signedHeaderSet,
    unhoistableHeaders: signedHeaderSet,
  });
  const query = presigned.query ?? {};
  const list = query["X-Amz-SignedHeaders"];
  if (list !== identified.signedHeaders.join(";")) return undefined;
  const signature = query["X-Amz-Signature"];
  return typeof signature === "string" ? signature : undefined;
}

/**
 * A URL that lets whoever holds it GET `path` on this frontend until it
 * expires, signed with the tenant's own key, as S3 presigns Lambda's
 * Code.Location.
 */
export async function presignUrl(options: {
  baseUrl: string;
  path: string;
  query: Record<string, string>;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  expiresInSec: number;
  now: Date;
}): Promise<string> {
  const base = new URL(options.baseUrl);
  const signer = new SignatureV4({
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    region: options.region,
    service: SIGNING_SERVICE,
    sha256: Sha256,
    uriEscapePath: true,
  });
  const presigned = await signer.presign(
    new HttpRequest({
      method: "GET",
      protocol: base.protocol,
      hostname: base.hostname,
      path: options.path,
      query: options.query,
      headers: { host: base.host },
    }),
    { signingDate: options.now, expiresIn: options.expiresInSec },
  );
  const url = new URL(options.path, base);
  for (const [key, value] of Object.entries(presigned.query ?? {})) {
    if (typeof value === "string") url.searchParams.append(key, value);
  }
  return url.toString();
}
