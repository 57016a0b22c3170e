/** Raw HTTP requests signed with SigV4, for inputs the AWS SDK would never send. */
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { TenantRecord } from "@gust/registry";

export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

export async function signedFetch(
  url: string,
  tenant: TenantRecord,
  method: string,
  path: string,
  body: Uint8Array | string = "",
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const target = new URL(url);
  const credential = tenant.credentials[0]!;
  const signer = new SignatureV4({
    service: "lambda",
    region: "us-east-1",
    credentials: credential,
    sha256: Sha256,
  });
  const [pathname, query = ""] = path.split("?");
  const signed = await signer.sign(
    new HttpRequest({
      method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: Number(target.port),
      path: pathname!,
      query: Object.fromEntries(new URLSearchParams(query)),
      headers: { host: target.host, "content-type": "application/json", ...headers },
      body: bytes,
    }),
  );
  const response = await fetch(url + path, {
    method,
    headers: signed.headers,
    ...(method === "GET" || method === "DELETE" ? {} : { body: bytes }),
  });
  return { status: response.status, headers: response.headers, body: await response.text() };
}
