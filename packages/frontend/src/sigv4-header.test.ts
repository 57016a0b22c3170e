import { createHash } from "node:crypto";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { expectedHeaderSignature, type HeaderSignatureInput } from "./sigv4-header.js";

interface Case {
  method: string;
  url: URL;
  headers: Array<[string, string]>;
  signedHeaders: string[];
  signingDate: Date;
  region: string;
  secret: string;
  body: Uint8Array;
}

const hex = (body: Uint8Array) => createHash("sha256").update(body).digest("hex");

function input(c: Case): HeaderSignatureInput {
  return {
    method: c.method,
    path: c.url.pathname,
    query: c.url.searchParams,
    headers: new Map(c.headers),
    signedHeaders: c.signedHeaders,
    amzDate: c.signingDate
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z")
      .replace(/[-:]/g, ""),
    region: c.region,
    service: "lambda",
    secretAccessKey: c.secret,
    bodySha256: hex(c.body),
  };
}

/** What the AWS SDK's own signer makes of the same request: the reference. */
async function sdkSignature(c: Case): Promise<string | undefined> {
  const headers = Object.create(null) as Record<string, string>;
  for (const [name, value] of c.headers) headers[name] = value;
  const query = Object.create(null) as Record<string, string | string[]>;
  for (const [key, value] of c.url.searchParams) {
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else query[key] = [existing, value];
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: c.secret },
    region: c.region,
    service: "lambda",
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: c.method,
      protocol: "http:",
      hostname: c.url.hostname,
      path: c.url.pathname,
      query,
      headers,
      body: c.body.byteLength === 0 ? undefined : c.body,
    }),
    { signingDate: c.signingDate, signableHeaders: new Set(c.signedHeaders) },
  );
  const authorization = signed.headers["authorization"] ?? "";
  if (/SignedHeaders=([^,]+)/.exec(authorization)?.[1] !== c.signedHeaders.join(";")) {
    return undefined;
  }
  return /Signature=([0-9a-f]+)/.exec(authorization)?.[1];
}

const text = (chars: string, maxLength = 8) =>
  fc.string({ unit: fc.constantFrom(...chars.split("")), maxLength });
const PATH_CHARS = "aZ9-_.~%2F0:*'()!@$&+,;=";
const QUERY_CHARS = "aZ9 -_.~/*'()!&=+%ü€\t";
const HEADER_NAMES = [
  "host",
  "Host",
  "x-amz-date",
  "X-Amz-Date",
  "date",
  "authorization",
  "content-type",
  "content-length",
  "user-agent",
  "User-Agent",
  "x-amz-content-sha256",
  "x-amz-invocation-type",
  "x-amzn-trace-id",
  "sec-fetch-mode",
  "proxy-authorization",
  "x-custom",
  "123",
];

const cases: fc.Arbitrary<Case> = fc
  .record({
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE"),
    segments: fc.array(fc.oneof(text(PATH_CHARS), fc.constantFrom(".", "..", "")), {
      maxLength: 5,
    }),
    trailingSlash: fc.boolean(),
    params: fc.array(
      fc.tuple(fc.oneof(text(QUERY_CHARS, 5), fc.constant("X-Amz-Signature")), text(QUERY_CHARS)),
      { maxLength: 4 },
    ),
    headers: fc.uniqueArray(fc.tuple(fc.constantFrom(...HEADER_NAMES), text(" \tab,;1-", 10)), {
      selector: ([name]) => name,
      maxLength: 6,
    }),
    extraSigned: fc.subarray(["user-agent", "x-amzn-trace-id", "Host", "missing"]),
    order: fc.constantFrom("sdk", "reversed", "as-given"),
    seconds: fc.integer({ min: 1_600_000_000, max: 2_000_000_000 }),
    region: fc.constantFrom("us-east-1", "eu-west-3"),
    secret: text("abcXYZ/+0189", 40),
    body: fc.uint8Array({ maxLength: 40 }),
    hashHeader: fc.constantFrom("none", "right", "wrong"),
  })
  .map((r) => {
    const path = `/${r.segments.join("/")}${r.trailingSlash ? "/" : ""}`;
    const url = new URL(`http://127.0.0.1:9000${path}`);
    for (const [key, value] of r.params) url.searchParams.append(key, value);
    const headers: Array<[string, string]> = [
      ...r.headers.filter(([name]) => name !== "x-amz-content-sha256"),
    ];
    if (r.hashHeader !== "none") {
      const value = r.hashHeader === "right" ? hex(r.body) : "0".repeat(64);
      headers.push(["x-amz-content-sha256", value]);
    }
    const names = [...new Set([...headers.map(([name]) => name), ...r.extraSigned])];
    const sdkOrder = [...new Set([...names.map((name) => name.toLowerCase()), "x-amz-date"])]
      .filter((name) => !["authorization", "date"].includes(name))
      .sort();
    const signedHeaders =
      r.order === "sdk" ? sdkOrder : r.order === "reversed" ? [...sdkOrder].reverse() : names;
    return {
      method: r.method,
      url,
      headers,
      signedHeaders,
      signingDate: new Date(r.seconds * 1000),
      region: r.region,
      secret: r.secret,
      body: r.body,
    };
  });

describe("expectedHeaderSignature", () => {
  it("agrees with the AWS SDK's signer on every request", async () => {
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        expect(expectedHeaderSignature(input(c))).toBe(await sdkSignature(c));
      }),
      { numRuns: 400 },
    );
  });

  it("matches a request the SDK signed, and nothing else", async () => {
    const c: Case = {
      method: "POST",
      url: new URL(
        "http://127.0.0.1:9000/2015-03-31/functions/my%3Afn/invocations?Qualifier=%24LATEST",
      ),
      headers: [
        ["host", "127.0.0.1:9000"],
        ["content-type", "application/json"],
      ],
      signedHeaders: ["content-type", "host", "x-amz-date"],
      signingDate: new Date("2026-11-27T10:00:00Z"),
      region: "us-east-1",
      secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      body: new TextEncoder().encode('{"ping":true}'),
    };
    const signature = await sdkSignature(c);
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(expectedHeaderSignature(input(c))).toBe(signature);
    // Twice: the second time from the cached signing key.
    expect(expectedHeaderSignature(input(c))).toBe(signature);
    expect(expectedHeaderSignature({ ...input(c), secretAccessKey: "other" })).not.toBe(signature);
    expect(expectedHeaderSignature({ ...input(c), region: "eu-west-1" })).not.toBe(signature);
    expect(expectedHeaderSignature({ ...input(c), bodySha256: hex(new Uint8Array(1)) })).not.toBe(
      signature,
    );
  });
});
