import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CodeRequestReader, ZipFileMembers, type CodeRequestOptions } from "./code-request.js";

const MEMBER_OPTIONS: CodeRequestOptions = {
  member: ZipFileMembers.createFunction,
  operation: "CreateFunction",
  maxRestBytes: 1024,
  maxRequestBytes: 1_000_000,
};

/** Feeds `body` in pieces of `size` bytes, as a socket would. */
function read(body: string | Uint8Array, size: number, options: Partial<CodeRequestOptions> = {}) {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  const reader = new CodeRequestReader({ ...MEMBER_OPTIONS, ...options });
  for (let at = 0; at < bytes.byteLength; at += size) {
    reader.write(bytes.subarray(at, Math.min(bytes.byteLength, at + size)));
  }
  return reader.end();
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8");

describe("CodeRequestReader", () => {
  const zip = randomBytes(5000);
  const body = JSON.stringify({
    FunctionName: "f",
    Description: 'has "quotes", a \\ and {"ZipFile": "not this"}',
    Code: { ZipFile: zip.toString("base64") },
    Environment: { Variables: { ZipFile: "nor this" } },
  });

  it("decodes Code.ZipFile and keeps the rest with null in its place, in pieces of any size", () => {
    for (const size of [1, 2, 3, 5, 64, 100_000]) {
      const request = read(body, size, { declaredLength: body.length });
      expect(request.failure).toBeUndefined();
      expect(Buffer.from(request.zip!).equals(zip)).toBe(true);
      const rest = JSON.parse(text(request.rest)) as Record<string, unknown>;
      expect(rest).toEqual({ ...JSON.parse(body), Code: { ZipFile: null } });
      expect(request.bodySha256).toBe(createHash("sha256").update(body).digest("hex"));
    }
  });

  it("finds UpdateFunctionCode's top-level ZipFile, with escaped slashes and keys", () => {
    const data = Buffer.from([0xff, 0xff, 0xfe, 0x00]);
    const escaped = `{"Zip\\u0046ile":"${data.toString("base64").replaceAll("/", "\\/")}","DryRun":true}`;
    const request = read(escaped, 3, { member: ZipFileMembers.updateFunctionCode });
    expect(Buffer.from(request.zip!)).toEqual(data);
    expect(JSON.parse(text(request.rest))).toEqual({ ZipFile: null, DryRun: true });
  });

  it("refuses a ZipFile that is not base64, or given twice, after reading the whole body", () => {
    const bad = read('{"Code":{"ZipFile":"QUJD\\nRA=="}}', 4);
    expect(bad.failure).toMatchObject({ errorType: "InvalidParameterValueException" });
    expect(bad.failure?.message).toBe("Code.ZipFile is not valid base64");
    const twice = read('{"Code":{"ZipFile":"QUJD","ZipFile":"QUJD"}}', 4);
    expect(twice.failure).toMatchObject({ errorType: "InvalidRequestContentException" });
  });

  it("refuses a zip over the limit with Lambda's 413 and lets its buffer go", () => {
    const large = JSON.stringify({ Code: { ZipFile: randomBytes(3000).toString("base64") } });
    const request = read(large, 1000, { maxZipBytes: 2999 });
    expect(request.failure).toMatchObject({
      errorType: "RequestEntityTooLargeException",
      statusCode: 413,
      message: "Zipped size must be smaller than 2999 bytes",
    });
    expect(request.zip).toBeUndefined();
  });

  it("refuses members other than the zip beyond their own limit", () => {
    const request = read(JSON.stringify({ Description: "x".repeat(2000) }), 100);
    expect(request.failure).toMatchObject({
      statusCode: 413,
      message: "Request must be smaller than 1000000 bytes for the CreateFunction operation",
    });
  });

  it("leaves a ZipFile that is not a string, or one elsewhere, in the rest", () => {
    const request = read('{"ZipFile":"QUJD","Code":{"ZipFile":7,"Other":["ZipFile"]}}', 2);
    expect(request.zip).toBeUndefined();
    expect(JSON.parse(text(request.rest))).toEqual({
      ZipFile: "QUJD",
      Code: { ZipFile: 7, Other: ["ZipFile"] },
    });
  });
});
