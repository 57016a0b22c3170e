/**
 * The signature a request signed in the `Authorization` header form should
 * carry, computed with node:crypto. It is on every request's path, so it
 * builds the canonical request exactly as the AWS SDK's own signer (smithy's
 * SignatureV4 5.x, which sigv4.ts still uses for presigned URLs) does, without
 * that signer's pure-JavaScript SHA-256, request cloning and promises; the
 * unit tests hold the two to the same answers.
 *
 * The signing key depends only on (secret, date, region, service), so it is
 * derived once per day and kept, as the SDK's signer keeps it.
 *
 * Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 */
import * as crypto from "node:crypto";
import { createHash, createHmac } from "node:crypto";

const ALGORITHM = "AWS4-HMAC-SHA256";
const KEY_TYPE = "aws4_request";
const SHA256_HEADER = "x-amz-content-sha256";
const AMZ_DATE_HEADER = "x-amz-date";
const SIGNATURE_PARAM = "x-amz-signature";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** The signer drops these from what it is given and adds its own X-Amz-Date. */
const GENERATED_HEADERS = new Set(["authorization", AMZ_DATE_HEADER, "date"]);
/** Left out of the canonical request unless the client named them among its signed headers. */
const ALWAYS_UNSIGNABLE_HEADERS = new Set([
  "authorization",
  "cache-control",
  "connection",
  "expect",
  "from",
  "keep-alive",
  "max-forwards",
  "pragma",
  "referer",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "x-amzn-trace-id",
]);
/** As many signing keys as the SDK's signer keeps. */
const MAX_SIGNING_KEYS = 50;

export interface HeaderSignatureInput {
  method: string;
  /** The path as the client sent it (still percent-encoded). */
  path: string;
  query: URLSearchParams;
  /** The signed headers by the names the client listed, with their values. */
  headers: ReadonlyMap<string, string>;
  /** SignedHeaders as the client listed them. */
  signedHeaders: readonly string[];
  /** The signing date in ISO 8601 basic format (X-Amz-Date, checked to be a real date). */
  amzDate: string;
  region: string;
  service: string;
  secretAccessKey: string;
  /** The body's SHA-256 in hex, computed by the caller. */
  bodySha256: string;
}

const signingKeys = new Map<string, Buffer>();

function signingKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  // Region and service come from a slash-separated scope, so they hold no slash.
  const cacheKey = `${shortDate}/${region}/${service}/${secret}`;
  const cached = signingKeys.get(cacheKey);
  if (cached !== undefined) return cached;
  let key: Buffer = Buffer.from(`AWS4${secret}`, "utf8");
  for (const part of [shortDate, region, service, KEY_TYPE]) {
    key = createHmac("sha256", key).update(part, "utf8").digest();
  }
  signingKeys.set(cacheKey, key);
  if (signingKeys.size > MAX_SIGNING_KEYS) {
    const oldest = signingKeys.keys().next().value;
    if (oldest !== undefined) signingKeys.delete(oldest);
  }
  return key;
}

/** RFC 3986 escaping as the SDK does it: encodeURIComponent, plus !'()*. */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Dot segments and empty segments removed, then escaped again (Lambda's paths are double-encoded). */
export function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith("/") ? "/" : ""}${segments.join("/")}${segments.length > 0 && path.endsWith("/") ? "/" : ""}`;
  return escapeUri(normalized).replace(/%2F/g, "/");
}

/** Parameters sorted by escaped name, a repeated one's pairs sorted among themselves. */
export function canonicalQuery(query: URLSearchParams): string {
  if (query.size === 0) return "";
  const byKey = new Map<string, string[]>();
  for (const [key, value] of query) {
    const values = byKey.get(key);
    if (values === undefined) byKey.set(key, [value]);
    else values.push(value);
  }
  const pairs: Array<[string, string]> = [];
  for (const [key, values] of byKey) {
    if (key.toLowerCase() === SIGNATURE_PARAM) continue;
    const encodedKey = escapeUri(key);
    const encoded = values.map((value) => `${encodedKey}=${escapeUri(value)}`);
    if (encoded.length > 1) encoded.sort();
    pairs.push([encodedKey, encoded.join("&")]);
  }
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs.map(([, serialized]) => serialized).join("&");
}

const NEEDS_CANONICALIZING = /[\r\n\t]| {2}|^ | $/;

function canonicalValue(value: string): string {
  if (!NEEDS_CANONICALIZING.test(value)) return value;
  return value
    .replace(/[\r\n]/g, " ")
    .replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "");
}

/**
 * The hex signature the request should carry, or undefined when the header
 * list the client signed is not one the SigV4 rules produce (order, case,
 * duplicates, a header that is never signed): no signature can match then.
 */
export function expectedHeaderSignature(input: HeaderSignatureInput): string | undefined {
  const longDate = input.amzDate;
  const shortDate = longDate.slice(0, 8);
  const headers = new Map<string, string>();
  for (const [name, value] of input.headers) {
    if (!GENERATED_HEADERS.has(name.toLowerCase())) headers.set(name, value);
  }
  headers.set(AMZ_DATE_HEADER, longDate);

  let payloadHash: string | undefined;
  for (const [name, value] of headers) {
    if (name.toLowerCase() === SHA256_HEADER) {
      payloadHash = value;
      break;
    }
  }
  payloadHash ??= input.bodySha256;

  const signable = new Set(input.signedHeaders);
  const canonical = new Map<string, string>();
  for (const name of [...headers.keys()].sort()) {
    const lower = name.toLowerCase();
    const unsignable =
      ALWAYS_UNSIGNABLE_HEADERS.has(lower) ||
      lower.startsWith("proxy-") ||
      lower.startsWith("sec-");
    if (unsignable && !signable.has(lower)) continue;
    canonical.set(lower, canonicalValue(headers.get(name) ?? ""));
  }
  const names = [...canonical.keys()].sort();
  const list = names.join(";");
  if (list !== input.signedHeaders.join(";")) return undefined;

  const canonicalRequest = [
    input.method,
    canonicalPath(input.path),
    canonicalQuery(input.query),
    names.map((name) => `${name}:${canonical.get(name) ?? ""}`).join("\n"),
    "",
    list,
    payloadHash,
  ].join("\n");
  const scope = `${shortDate}/${input.region}/${input.service}/${KEY_TYPE}`;
  const stringToSign = `${ALGORITHM}\n${longDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  return createHmac(
    "sha256",
    signingKey(input.secretAccessKey, shortDate, input.region, input.service),
  )
    .update(stringToSign, "utf8")
    .digest("hex");
}

/**
 * Node's one-shot hash (20.12 and later; `engines` allows 20.11): it skips
 * the Hash object, a few microseconds of every signed request.
 */
const oneShotHash: typeof crypto.hash | undefined =
  typeof crypto.hash === "function" ? crypto.hash : undefined;

export function sha256Hex(data: string | Uint8Array): string {
  if (typeof data !== "string" && data.byteLength === 0) return EMPTY_SHA256;
  if (oneShotHash !== undefined) return oneShotHash("sha256", data, "hex");
  return createHash("sha256").update(data).digest("hex");
}
