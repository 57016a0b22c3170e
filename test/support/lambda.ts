/** The real AWS SDK client, pointed at a Gust endpoint with a tenant's key. */
import { LambdaClient } from "@aws-sdk/client-lambda";
import type { TenantRecord } from "@gust/registry";

export function lambdaFor(url: string, tenant: TenantRecord): LambdaClient {
  const credential = tenant.credentials[0];
  if (!credential) throw new Error(`tenant ${tenant.id} has no credentials`);
  return new LambdaClient({
    endpoint: url,
    region: "us-east-1",
    credentials: credential,
    // Tests see each response as the server sent it, without SDK retries.
    maxAttempts: 1,
  });
}

export const decodePayload = (payload: Uint8Array | undefined): unknown =>
  payload && payload.length > 0 ? JSON.parse(new TextDecoder().decode(payload)) : undefined;
