/**
 * The tenants config file, read by `gust coordinator` and `gust dev`:
 *
 *   {
 *     "tenants": [
 *       { "id": "acme", "accountId": "123456789012", "maxConcurrency": 1000,
 *         "credentials": [{ "accessKeyId": "AKIA…", "secretAccessKey": "…" }],
 *         "webhook": { "url": "https://hooks.acme.example/gust", "secret": "…" } }
 *     ]
 *   }
 *
 * `egress` is optional: "deny" keeps the tenant's sandboxes from reaching
 * anything beyond their own loopback; "allow" (the default) lets them reach
 * the world as in Lambda, never the platform.
 *
 * `webhook` is optional: runtime rollout verdicts on the tenant's functions
 * are POSTed there as JSON, with X-Gust-Signature: sha256=<hex of
 * HMAC-SHA256(secret, body)> (the secret is at least 16 characters).
 *
 * Every error names the offending property by its path in the file.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { ConfigError } from "@gust/protocol";
import type { TenantRecord, TenantWebhook } from "./tenants.js";

/** Lambda's default account concurrency. */
export const DEFAULT_MAX_CONCURRENCY = 1000;

const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ACCOUNT_ID = /^\d{12}$/;
const ACCESS_KEY_ID = /^[A-Za-z0-9]{16,128}$/;

/** A stable 12-digit account id for a tenant that does not set one. */
export function accountIdFor(tenantId: string): string {
  const digest = createHash("sha256").update(tenantId).digest();
  return (digest.readBigUInt64BE(0) % 1_000_000_000_000n).toString().padStart(12, "0");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseWebhook(value: unknown, where: string): TenantWebhook | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw new ConfigError(`${where}: must be an object`);
  const url = value["url"];
  const secret = value["secret"];
  let parsed: URL | undefined;
  try {
    parsed = typeof url === "string" ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new ConfigError(`${where}.url: must be an http(s) URL`);
  }
  if (typeof secret !== "string" || !/^\S{16,}$/.test(secret)) {
    throw new ConfigError(`${where}.secret: must be at least 16 characters without spaces`);
  }
  return { url: parsed.toString(), secret };
}

export function parseTenantRecord(value: unknown, where: string): TenantRecord {
  if (!isObject(value)) throw new ConfigError(`${where}: must be an object`);
  const id = value["id"];
  if (typeof id !== "string" || !TENANT_ID.test(id)) {
    throw new ConfigError(
      `${where}.id: must be 1–63 characters of lower-case letters, digits, '-' or '_', starting with a letter or digit`,
    );
  }
  const accountId = value["accountId"] ?? accountIdFor(id);
  if (typeof accountId !== "string" || !ACCOUNT_ID.test(accountId)) {
    throw new ConfigError(`${where}.accountId: must be a string of 12 digits`);
  }
  const maxConcurrency = value["maxConcurrency"] ?? DEFAULT_MAX_CONCURRENCY;
  if (
    typeof maxConcurrency !== "number" ||
    !Number.isInteger(maxConcurrency) ||
    maxConcurrency < 1
  ) {
    throw new ConfigError(`${where}.maxConcurrency: must be a positive integer`);
  }
  const credentials = value["credentials"];
  if (!Array.isArray(credentials) || credentials.length === 0) {
    throw new ConfigError(`${where}.credentials: must be a non-empty array`);
  }
  const webhook = parseWebhook(value["webhook"], `${where}.webhook`);
  const egress = value["egress"] ?? "allow";
  if (egress !== "allow" && egress !== "deny") {
    throw new ConfigError(`${where}.egress: must be "allow" or "deny"`);
  }
  return {
    id,
    accountId,
    maxConcurrency,
    ...(egress === "deny" ? { egress } : {}),
    ...(webhook === undefined ? {} : { webhook }),
    credentials: credentials.map((credential: unknown, index) => {
      const at = `${where}.credentials[${index}]`;
      if (!isObject(credential)) throw new ConfigError(`${at}: must be an object`);
      const accessKeyId = credential["accessKeyId"];
      const secretAccessKey = credential["secretAccessKey"];
      if (typeof accessKeyId !== "string" || !ACCESS_KEY_ID.test(accessKeyId)) {
        throw new ConfigError(`${at}.accessKeyId: must be 16–128 letters or digits`);
      }
      if (typeof secretAccessKey !== "string" || !/^\S{16,}$/.test(secretAccessKey)) {
        throw new ConfigError(
          `${at}.secretAccessKey: must be at least 16 characters without spaces`,
        );
      }
      return { accessKeyId, secretAccessKey };
    }),
  };
}

export function parseTenantsConfig(value: unknown, source = "tenants config"): TenantRecord[] {
  if (!isObject(value)) throw new ConfigError(`${source}: must be a JSON object`);
  const tenants = value["tenants"];
  if (!Array.isArray(tenants)) throw new ConfigError(`${source}: tenants: must be an array`);
  const records = tenants.map((tenant: unknown, index) =>
    parseTenantRecord(tenant, `${source}: tenants[${index}]`),
  );
  const ids = new Set<string>();
  const keys = new Map<string, string>();
  for (const record of records) {
    if (ids.has(record.id))
      throw new ConfigError(`${source}: tenant id ${record.id} appears twice`);
    ids.add(record.id);
    for (const { accessKeyId } of record.credentials) {
      const owner = keys.get(accessKeyId);
      if (owner !== undefined) {
        throw new ConfigError(
          `${source}: access key ${accessKeyId} is given to both ${owner} and ${record.id}`,
        );
      }
      keys.set(accessKeyId, record.id);
    }
  }
  return records;
}

export async function loadTenantsConfig(path: string): Promise<TenantRecord[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new ConfigError(`cannot read tenants config ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`tenants config ${path} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  return parseTenantsConfig(value, path);
}
