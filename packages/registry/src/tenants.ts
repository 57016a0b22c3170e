/**
 * The tenant directory: who owns functions, their access keys and their
 * maximum concurrency. Stored in one KV bucket (`tenant.<id>` → TenantRecord)
 * and cached whole in every process, kept fresh by a watch, because every
 * request looks its access key up and tenants change rarely.
 *
 * With a keyring (tenant-key.ts), the secrets in a record (secret access
 * keys, the webhook secret) are sealed before the record is written and
 * opened when it is read, so the bucket only ever holds their ciphertext:
 *
 *   credentials: [{ accessKeyId, sealedSecretAccessKey: <bytes> }]
 *   webhook:     { url, sealedSecret: <bytes> }
 *
 * A record that does not open (tampered, moved, another key; or a secret in
 * clear where this process seals) is left out, as if the tenant did not
 * exist: its access keys are refused, never accepted. Without a keyring
 * (unit tests) secrets are stored in clear and sealed records are left out.
 */
import type { KvBucket, KvWatch } from "@gust/bus";
import { ConfigError, decodeRecord, encodeRecord } from "@gust/protocol";
import { createLogger, type Logger } from "@gust/telemetry";
import { parseTenantRecord } from "./tenant-config.js";
import { SealedSecretError, type TenantKeyring } from "./tenant-key.js";

export interface Tenant {
  id: string;
  /** 12 digits, used in ARNs. */
  accountId: string;
  maxConcurrency: number;
  /**
   * "deny": the tenant's sandboxes reach nothing beyond their own loopback
   * (no egress to the world). Absent: they may, as in Lambda.
   */
  egress?: "deny";
}

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Where the tenant's owners hear of runtime rollout verdicts: a POST of the
 * verdict JSON, signed with HMAC-SHA256 over the body under `secret`
 * (header X-Gust-Signature: sha256=<hex>).
 */
export interface TenantWebhook {
  url: string;
  secret: string;
}

export interface TenantRecord extends Tenant {
  credentials: Credential[];
  webhook?: TenantWebhook;
}

export interface KeyLookup {
  tenant: Tenant;
  secretAccessKey: string;
}

const KEY_PREFIX = "tenant.";

export interface TenantDirectoryOptions {
  /**
   * Seals the secrets this directory writes and opens those it reads; every
   * process sharing the bucket needs the same keys.
   * @default none: secrets in clear, sealed records left out
   */
  keyring?: TenantKeyring;
}

/** Where a secret is stored, bound into its seal (tenant-key.ts). */
function credentialPlace(tenantId: string, accessKeyId: string): string {
  return `tenant ${tenantId} access key ${accessKeyId}`;
}
function webhookPlace(tenantId: string): string {
  return `tenant ${tenantId} webhook`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function tenantOf(record: TenantRecord): Tenant {
  return {
    id: record.id,
    accountId: record.accountId,
    maxConcurrency: record.maxConcurrency,
    ...(record.egress === "deny" ? { egress: "deny" } : {}),
  };
}

export class TenantDirectory {
  private readonly byId = new Map<string, TenantRecord>();
  private readonly byKey = new Map<string, KeyLookup>();
  /** Records left out, by KV key, with why: each reason is logged once. */
  private readonly unreadable = new Map<string, string>();
  private watcher: KvWatch | undefined;

  private constructor(
    private readonly kv: KvBucket,
    private readonly logger: Logger,
    private readonly keyring: TenantKeyring | undefined,
  ) {}

  static async open(
    kv: KvBucket,
    logger = createLogger("tenants"),
    options: TenantDirectoryOptions = {},
  ): Promise<TenantDirectory> {
    const directory = new TenantDirectory(kv, logger, options.keyring);
    // Watch first, then load, so no change falls between the two.
    directory.watcher = await kv.watch(`${KEY_PREFIX}>`, (change) => {
      const id = change.key.slice(KEY_PREFIX.length);
      if (change.op === "delete") {
        directory.unreadable.delete(change.key);
        directory.forget(id);
      } else directory.remember(change.value, change.key);
    });
    for (const key of await kv.keys(`${KEY_PREFIX}>`)) {
      const entry = await kv.get(key);
      if (entry) directory.remember(entry.value, key);
    }
    return directory;
  }

  private remember(bytes: Uint8Array, key: string): void {
    let record: TenantRecord;
    try {
      record = parseTenantRecord(this.unseal(decodeRecord(bytes)), key);
      if (`${KEY_PREFIX}${record.id}` !== key) {
        throw new ConfigError(`the record of tenant ${record.id} is stored under ${key}`);
      }
    } catch (error) {
      // Fail closed: whatever this tenant had before is gone too.
      this.forget(key.slice(KEY_PREFIX.length));
      const reason = error instanceof Error ? error.message : String(error);
      if (this.unreadable.get(key) !== reason) {
        this.unreadable.set(key, reason);
        this.logger.error(
          error instanceof SealedSecretError
            ? "ignoring a tenant record whose secrets do not open; its access keys are refused"
            : "ignoring a tenant record that does not parse",
          { key, error },
        );
      }
      return;
    }
    this.unreadable.delete(key);
    this.rememberRecord(record);
  }

  private rememberRecord(record: TenantRecord): void {
    this.forget(record.id);
    this.byId.set(record.id, record);
    const tenant = tenantOf(record);
    for (const credential of record.credentials) {
      this.byKey.set(credential.accessKeyId, {
        tenant,
        secretAccessKey: credential.secretAccessKey,
      });
    }
  }

  /** The stored form of a record: its secrets sealed, when there is a keyring. */
  private seal(record: TenantRecord): Record<string, unknown> {
    const keyring = this.keyring;
    if (keyring === undefined) return { ...record };
    return {
      ...record,
      credentials: record.credentials.map(({ accessKeyId, secretAccessKey }) => ({
        accessKeyId,
        sealedSecretAccessKey: keyring.seal(
          secretAccessKey,
          credentialPlace(record.id, accessKeyId),
        ),
      })),
      ...(record.webhook === undefined
        ? {}
        : {
            webhook: {
              url: record.webhook.url,
              sealedSecret: keyring.seal(record.webhook.secret, webhookPlace(record.id)),
            },
          }),
    };
  }

  /** A stored record with its secrets opened, for parseTenantRecord to check. */
  private unseal(stored: Record<string, unknown>): Record<string, unknown> {
    const id = stored["id"];
    if (typeof id !== "string") return stored;
    const keyring = this.keyring;
    const open = (sealed: unknown, clear: unknown, place: string): unknown => {
      if (keyring === undefined) {
        if (sealed !== undefined) {
          throw new SealedSecretError(
            `the secret of ${place} is sealed, and this process has no tenant key (--tenant-key-file)`,
          );
        }
        return clear;
      }
      if (sealed === undefined) {
        throw new SealedSecretError(
          `the secret of ${place} is stored in clear, where this fleet seals secrets; ` +
            "a coordinator with the tenant key rewrites the record",
        );
      }
      if (!(sealed instanceof Uint8Array)) {
        throw new SealedSecretError(`the sealed secret of ${place} is not bytes`);
      }
      return keyring.open(sealed, place);
    };
    const credentials = stored["credentials"];
    const webhook = stored["webhook"];
    return {
      ...stored,
      ...(Array.isArray(credentials)
        ? {
            credentials: credentials.map((credential: unknown) => {
              if (!isObject(credential)) return credential;
              const { sealedSecretAccessKey, secretAccessKey, ...rest } = credential;
              return {
                ...rest,
                secretAccessKey: open(
                  sealedSecretAccessKey,
                  secretAccessKey,
                  credentialPlace(id, String(credential["accessKeyId"])),
                ),
              };
            }),
          }
        : {}),
      ...(isObject(webhook)
        ? {
            webhook: (() => {
              const { sealedSecret, secret, ...rest } = webhook;
              return { ...rest, secret: open(sealedSecret, secret, webhookPlace(id)) };
            })(),
          }
        : {}),
    };
  }

  private forget(id: string): void {
    const previous = this.byId.get(id);
    if (!previous) return;
    for (const credential of previous.credentials) this.byKey.delete(credential.accessKeyId);
    this.byId.delete(id);
  }

  async byAccessKey(accessKeyId: string): Promise<KeyLookup | undefined> {
    const cached = this.byKey.get(accessKeyId);
    if (cached) return cached;
    // A key added on another process moments ago: the watch may lag, the store does not.
    for (const key of await this.kv.keys(`${KEY_PREFIX}>`)) {
      if (this.byId.has(key.slice(KEY_PREFIX.length))) continue;
      const entry = await this.kv.get(key);
      if (entry) this.remember(entry.value, key);
    }
    return this.byKey.get(accessKeyId);
  }

  get(tenantId: string): Promise<Tenant | undefined> {
    const record = this.byId.get(tenantId);
    return Promise.resolve(record ? tenantOf(record) : undefined);
  }

  /** The tenant's webhook for rollout verdicts, from memory. */
  webhookFor(tenantId: string): TenantWebhook | undefined {
    return this.byId.get(tenantId)?.webhook;
  }

  list(): Tenant[] {
    return [...this.byId.values()].map(tenantOf).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Adds or replaces a tenant. An access key may belong to one tenant only. */
  async put(record: TenantRecord): Promise<void> {
    const checked = parseTenantRecord(record, `tenant ${record.id}`);
    for (const credential of checked.credentials) {
      const owner = this.byKey.get(credential.accessKeyId);
      if (owner && owner.tenant.id !== checked.id) {
        throw new ConfigError(
          `access key ${credential.accessKeyId} already belongs to tenant ${owner.tenant.id}`,
        );
      }
    }
    await this.kv.put(`${KEY_PREFIX}${checked.id}`, encodeRecord(this.seal(checked)));
    this.unreadable.delete(`${KEY_PREFIX}${checked.id}`);
    this.rememberRecord(checked);
  }

  async remove(tenantId: string): Promise<void> {
    await this.kv.delete(`${KEY_PREFIX}${tenantId}`);
    this.forget(tenantId);
  }

  close(): void {
    this.watcher?.stop();
    this.watcher = undefined;
  }
}
