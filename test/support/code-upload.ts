/**
 * CreateFunction and UpdateFunctionCode requests with large zips, sent over
 * node:http piece by piece: the test process holds each zip's base64 once,
 * however many requests carry it, never a whole request body, and the body's
 * SHA-256 is computed natively in a first pass.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { Sha256 } from "@aws-crypto/sha256-js";
import { zipFiles } from "@gust/bundle";
import type { TenantRecord } from "@gust/registry";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { ECHO_HANDLER } from "./functions.js";

/** The body is written 1 MB at a time. */
const PIECE_BYTES = 1024 * 1024;

export interface CodeRequestBody {
  /** The JSON before the zip's base64, up to and including its opening quote. */
  before: string;
  zip: Uint8Array;
  /** The JSON after it, from its closing quote. */
  after: string;
}

export function createFunctionBody(name: string, zip: Uint8Array): CodeRequestBody {
  return {
    before: `{"FunctionName":${JSON.stringify(name)},"Runtime":"nodejs20.x","Handler":"index.handler","Role":"arn:aws:iam::000000000000:role/test","Code":{"ZipFile":"`,
    zip,
    after: `"}}`,
  };
}

/** Each zip's base64, made once: ten uploads of one zip share it. */
const base64Of = new WeakMap<Uint8Array, Buffer>();

function zipBase64(zip: Uint8Array): Buffer {
  let encoded = base64Of.get(zip);
  if (encoded === undefined) {
    encoded = Buffer.from(
      Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength).toString("base64"),
    );
    base64Of.set(zip, encoded);
  }
  return encoded;
}

function* pieces(body: CodeRequestBody): Generator<Buffer> {
  yield Buffer.from(body.before);
  const encoded = zipBase64(body.zip);
  for (let at = 0; at < encoded.byteLength; at += PIECE_BYTES) {
    yield encoded.subarray(at, at + PIECE_BYTES);
  }
  yield Buffer.from(body.after);
}

export interface UploadResponse {
  status: number;
  errorType: string | undefined;
  body: string;
}

/** Sends a signed code request whose body is made as it is sent. */
export async function uploadCode(
  url: string,
  tenant: TenantRecord,
  method: "POST" | "PUT",
  path: string,
  body: CodeRequestBody,
): Promise<UploadResponse> {
  const hash = createHash("sha256");
  let length = 0;
  for (const piece of pieces(body)) {
    hash.update(piece);
    length += piece.byteLength;
  }
  const target = new URL(url);
  const signer = new SignatureV4({
    service: "lambda",
    region: "us-east-1",
    credentials: tenant.credentials[0]!,
    sha256: Sha256,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: Number(target.port),
      path,
      headers: {
        host: target.host,
        "content-type": "application/json",
        "content-length": String(length),
        // The signer takes the body's hash from here rather than hashing it itself.
        "x-amz-content-sha256": hash.digest("hex"),
      },
    }),
  );
  return new Promise((resolve, reject) => {
    // A server may answer before the body is sent (413 by Content-Length) and
    // close the connection soon after: stop sending then, and take the answer.
    let answered = false;
    const request = http.request(
      { host: target.hostname, port: target.port, method, path, headers: signed.headers },
      (response) => {
        answered = true;
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          resolve({
            status: response.statusCode ?? 0,
            errorType: response.headers["x-amzn-errortype"]?.toString().split(":")[0],
            body: Buffer.concat(chunks).toString("utf8"),
          });
          if (!request.writableFinished) request.destroy();
        });
        response.on("error", reject);
      },
    );
    request.on("error", (error) => {
      if (!answered) reject(error);
    });
    const source = pieces(body);
    const send = () => {
      while (!answered) {
        const next = source.next();
        if (next.done === true) {
          request.end();
          return;
        }
        if (!request.write(next.value)) {
          request.once("drain", send);
          return;
        }
      }
    };
    send();
  });
}

/**
 * A Node.js echo function padded with `randomBytes` bytes that do not
 * compress, stored as they are: the zip is as large as it says. `tag` makes
 * zips of the same size differ (another CodeSha256).
 */
export function paddedEchoZip(padding: Uint8Array, tag = ""): Promise<Uint8Array> {
  return zipFiles([
    { path: "index.js", data: `${ECHO_HANDLER}\n// ${tag}\n` },
    { path: "padding.bin", data: padding, compress: false },
  ]);
}

/** Incompressible bytes for paddedEchoZip. */
export function incompressible(bytes: number): Uint8Array {
  return randomBytes(bytes);
}
