/** Test tenants: credentials are made per run, never fixed in the repo. */
import { randomBytes } from "node:crypto";
import type { TenantRecord } from "@gust/registry";

function credential() {
  return {
    accessKeyId: `GKTEST${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
  };
}

export function testTenant(id: string, maxConcurrency = 1000): TenantRecord {
  return {
    id,
    accountId: `${Math.floor(1e11 + Math.random() * 8e11)}`,
    maxConcurrency,
    credentials: [credential()],
  };
}
