/**
 * The tenant directory: who owns functions, their access keys and their
 * maximum concurrency. Stored in one KV bucket (`tenant.<id>` → TenantRecord)
 * and cached whole in every process, kept fresh by a watch, because every
 * request looks its access key up and tenants change rarely.
 */
import type { KvBucket, KvWatch } from "@gust/bus";
import { ConfigError, decodeRecord, encodeRecord } from "@gust/protocol";
import { createLogger, type Logger } from "@gust/telemetry";
import { parseTenantRecord } from "./tenant-config.js";

export interface Tenant {
  id: string;
  /** 12 digits, used in ARNs. */
  accountId: string;
  maxConcurrency: number;
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

function tenantOf(record: TenantRecord): Tenant {
  return { id: record.id, accountId: record.accountId, maxConcurrency: record.maxConcurrency };
}

export class TenantDirectory {
  private readonly byId = new Map<string, TenantRecord>();
  private readonly byKey = new Map<string, KeyLookup>();
  private watcher: KvWatch | undefined;

  private constructor(
    private readonly kv: KvBucket,
    private readonly logger: Logger,
  ) {}

  static async open(kv: KvBucket, logger = createLogger("tenants")): Promise<TenantDirectory> {
    const directory = new TenantDirectory(kv, logger);
    // Watch first, then load, so no change falls between the two.
    directory.watcher = await kv.watch(`${KEY_PREFIX}>`, (change) => {
      const id = change.key.slice(KEY_PREFIX.length);
      if (change.op === "delete") directory.forget(id);
      else directory.remember(change.value, change.key);
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
      record = parseTenantRecord(decodeRecord(bytes), key);
    } catch (error) {
      this.logger.error("ignoring a tenant record that does not parse", { key, error });
      return;
    }
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
    await this.kv.put(`${KEY_PREFIX}${checked.id}`, encodeRecord(checked));
    this.remember(encodeRecord(checked), `${KEY_PREFIX}${checked.id}`);
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
