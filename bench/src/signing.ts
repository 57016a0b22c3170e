/**
 * SigV4 signing for benchmark requests. A signed request can be sent many
 * times within the server's 15-minute clock-skew window, so the load
 * generator signs once and replays, keeping signing cost out of the loop.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
}

export async function signedHeaders(
  url: string,
  method: string,
  path: string,
  body: Uint8Array,
  credential: Credential,
  extraHeaders: Record<string, string> = {},
): Promise<Record<string, string>> {
  const target = new URL(url);
  const signer = new SignatureV4({
    service: "lambda",
    region: "us-east-1",
    credentials: credential,
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
        "content-length": String(body.length),
        ...extraHeaders,
      },
      body,
    }),
  );
  return signed.headers;
}
