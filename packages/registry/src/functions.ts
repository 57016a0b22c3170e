/**
 * The function registry: every tenant's functions in one KV bucket
 * (`fn.<tenantId>.<name>` → FunctionRecord) and their zips in a blob store
 * keyed by SHA-256, so identical code is stored once.
 *
 * Reads on the invocation path come from an in-process cache kept fresh by a
 * KV watch; a miss reads the store, so a function created through another
 * frontend a moment ago is found at once. Writes are compare-and-set, so two
 * frontends updating one function cannot lose either update silently.
 *
 * The registry also holds the runtime versions (runtime-versions.ts), which a
 * function's runtime management configuration refers to.
 */
import { randomUUID } from "node:crypto";
import { MemoryKvBucket, type BlobStore, type KvBucket, type KvWatch } from "@gust/bus";
import {
  Buckets,
  ConflictError,
  FunctionLimits,
  decodeRecord,
  encodeRecord,
  functionArn,
  functionKey,
  isRuntime,
  lambdaTimestamp,
  LambdaErrors,
  type FunctionRecord,
  type RuntimeManagementConfig,
} from "@gust/protocol";
import { createLogger, type Logger } from "@gust/telemetry";
import {
  resolveFunctionConfig,
  validateFunctionName,
  type FunctionConfigInput,
} from "./function-config.js";
import {
  afterFunctionUpdate,
  checkRuntimeManagementConfig,
  isRuntimeManagementConfig,
  withRuntimeManagement,
} from "./runtime-management.js";
import { RuntimeVersionRegistry, type RuntimeVersionRecord } from "./runtime-versions.js";
import type { Tenant } from "./tenants.js";

export interface CodeInfo {
  /** Base64 SHA-256 of the zip. */
  codeSha256: string;
  codeSize: number;
}

export interface FunctionRegistryOptions {
  functions: KvBucket;
  code: BlobStore;
  /**
   * The runtime-version bucket (Buckets.runtimeVersions), shared by a fleet.
   * @default a bucket of this process's own, holding the built-in versions:
   * enough for one process (`gust dev`), not for a fleet.
   */
  runtimeVersions?: KvBucket;
  /** @default "us-east-1" */
  region?: string;
  logger?: Logger;
}

export interface ListOptions {
  /** The last name of the previous page. */
  marker?: string;
  maxItems: number;
}

export interface FunctionPage {
  functions: FunctionRecord[];
  nextMarker?: string;
}

export const DEFAULT_REGION = "us-east-1";
const KEY_PREFIX = "fn.";
/** CAS retries for a read-modify-write that keeps losing to other writers. */
const MAX_UPDATE_ATTEMPTS = 5;

function storeKey(tenantId: string, name: string): string {
  return `${KEY_PREFIX}${tenantId}.${name}`;
}

/** Blob names are hex: base64 has '/' and '+', which not every store accepts. */
export function codeBlobName(codeSha256: string): string {
  return Buffer.from(codeSha256, "base64").toString("hex");
}

function parseRecord(bytes: Uint8Array): FunctionRecord {
  const value = decodeRecord(bytes);
  for (const field of ["tenantId", "name", "handler", "codeSha256", "revisionId"] as const) {
    if (typeof value[field] !== "string") throw new TypeError(`function record lacks ${field}`);
  }
  if (!isRuntime(value["runtime"])) throw new TypeError("function record has an unknown runtime");
  // A malformed setting must not hide the whole function: it runs as Auto.
  const config = value["runtimeManagement"];
  if (config !== undefined && !isRuntimeManagementConfig(config)) delete value["runtimeManagement"];
  if (value["safeToRepeat"] !== undefined && value["safeToRepeat"] !== true) {
    delete value["safeToRepeat"];
  }
  return value as unknown as FunctionRecord;
}

/** Which registry handed out a record: its runtime versions say which one the record runs on. */
const issuedBy = new WeakMap<FunctionRecord, FunctionRegistry>();

/**
 * The runtime version a function record runs on now, for records a
 * FunctionRegistry handed out (undefined for any other object). Lets code
 * that renders a record (GetFunctionConfiguration's RuntimeVersionConfig)
 * show it without a registry at hand.
 */
export function effectiveRuntimeVersion(record: FunctionRecord): RuntimeVersionRecord | undefined {
  return issuedBy.get(record)?.runtimeVersions.effectiveVersion(record);
}

export class FunctionRegistry {
  /**
   * Every function of every tenant, by store key, with the KV revision it was
   * read at; a deleted key keeps a tombstone so that a late watch event for an
   * older revision cannot bring it back.
   */
  private readonly cache = new Map<
    string,
    { record: FunctionRecord | undefined; revision: number }
  >();
  /** Kept with the cache, so admission reads it in O(1). */
  private readonly reservedByTenant = new Map<string, number>();
  private readonly listeners = new Set<(key: string, record: FunctionRecord | undefined) => void>();
  private watcher: KvWatch | undefined;
  private readonly functions: KvBucket;
  private readonly code: BlobStore;
  readonly region: string;
  /** Every runtime's versions and default. */
  readonly runtimeVersions: RuntimeVersionRegistry;
  private readonly logger: Logger;

  private constructor(options: FunctionRegistryOptions, runtimeVersions: RuntimeVersionRegistry) {
    this.functions = options.functions;
    this.code = options.code;
    this.region = options.region ?? DEFAULT_REGION;
    this.logger = options.logger ?? createLogger("registry");
    this.runtimeVersions = runtimeVersions;
  }

  /**
   * Opens the registry with every function loaded: admission needs a
   * tenant's reserved concurrency summed over all its functions without a
   * store round trip, and invocations should find their function in memory.
   */
  static async open(options: FunctionRegistryOptions): Promise<FunctionRegistry> {
    const logger = options.logger ?? createLogger("registry");
    if (options.runtimeVersions === undefined) {
      logger.info(
        "runtime versions are kept in this process only: no runtime-version bucket given",
      );
    }
    const runtimeVersions = await RuntimeVersionRegistry.open({
      bucket: options.runtimeVersions ?? new MemoryKvBucket(Buckets.runtimeVersions),
      region: options.region ?? DEFAULT_REGION,
      logger,
    });
    const registry = new FunctionRegistry(options, runtimeVersions);
    try {
      // Watch first, then load, so no change falls between the two.
      registry.watcher = await registry.functions.watch(`${KEY_PREFIX}>`, (change) => {
        if (change.op === "delete") registry.forget(change.key, change.revision);
        else registry.rememberBytes(change.key, change.value, change.revision);
      });
      for (const key of await registry.functions.keys(`${KEY_PREFIX}>`)) {
        const entry = await registry.functions.get(key);
        if (entry) registry.rememberBytes(key, entry.value, entry.revision);
      }
    } catch (error) {
      registry.close();
      throw error;
    }
    return registry;
  }

  private rememberBytes(key: string, bytes: Uint8Array, revision: number): void {
    try {
      this.remember(key, parseRecord(bytes), revision);
    } catch (error) {
      this.logger.error("ignoring a function record that does not parse", { key, error });
    }
  }

  private remember(key: string, record: FunctionRecord, revision: number): void {
    issuedBy.set(record, this);
    const cached = this.cache.get(key);
    // The watch can deliver an older revision after this process wrote a newer one.
    if (cached && cached.revision >= revision) return;
    this.setEntry(key, cached?.record, { record, revision });
    for (const listener of this.listeners)
      listener(functionKey(record.tenantId, record.name), record);
  }

  private setEntry(
    key: string,
    previous: FunctionRecord | undefined,
    entry: { record: FunctionRecord | undefined; revision: number },
  ): void {
    this.cache.set(key, entry);
    for (const [record, sign] of [
      [previous, -1],
      [entry.record, 1],
    ] as const) {
      if (record?.reservedConcurrency === undefined) continue;
      const total =
        (this.reservedByTenant.get(record.tenantId) ?? 0) + sign * record.reservedConcurrency;
      if (total === 0) this.reservedByTenant.delete(record.tenantId);
      else this.reservedByTenant.set(record.tenantId, total);
    }
  }

  private forget(key: string, revision: number): void {
    const cached = this.cache.get(key);
    if (cached && cached.revision >= revision) return;
    this.setEntry(key, cached?.record, { record: undefined, revision });
    if (cached?.record) {
      for (const listener of this.listeners)
        listener(functionKey(cached.record.tenantId, cached.record.name), undefined);
    }
  }

  /** Called with functionKey(tenant, name) and the new record, or undefined once deleted. */
  onChange(listener: (key: string, record: FunctionRecord | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async get(tenantId: string, name: string): Promise<FunctionRecord | undefined> {
    const key = storeKey(tenantId, name);
    const cached = this.cache.get(key)?.record;
    if (cached) return cached;
    // Not (or no longer) known here: another process may have created it a moment ago.
    if (!FUNCTION_NAME.test(name)) return undefined;
    const entry = await this.functions.get(key);
    if (!entry) return undefined;
    const record = parseRecord(entry.value);
    this.remember(key, record, entry.revision);
    return record;
  }

  async list(tenantId: string, options: ListOptions): Promise<FunctionPage> {
    const prefix = `${KEY_PREFIX}${tenantId}.`;
    const names = (await this.functions.keys(`${prefix}*`))
      .map((key) => key.slice(prefix.length))
      .filter((name) => options.marker === undefined || name > options.marker)
      .sort();
    const page = names.slice(0, options.maxItems);
    const functions: FunctionRecord[] = [];
    for (const name of page) {
      const record = await this.get(tenantId, name);
      if (record) functions.push(record);
    }
    const last = page.at(-1);
    return names.length > page.length && last !== undefined
      ? { functions, nextMarker: last }
      : { functions };
  }

  async create(
    tenant: Tenant,
    name: string,
    input: FunctionConfigInput,
    zip: Uint8Array,
    code: CodeInfo,
  ): Promise<FunctionRecord> {
    validateFunctionName(name);
    const config = resolveFunctionConfig(input);
    await this.storeCode(zip, code);
    const record: FunctionRecord = {
      tenantId: tenant.id,
      accountId: tenant.accountId,
      name,
      functionArn: functionArn(this.region, tenant.accountId, name),
      runtime: config.runtime,
      handler: config.handler,
      description: config.description,
      role: config.role,
      timeoutSec: config.timeoutSec,
      memoryMb: config.memoryMb,
      environment: config.environment,
      codeSha256: code.codeSha256,
      codeSize: code.codeSize,
      revisionId: randomUUID(),
      lastModified: lambdaTimestamp(new Date()),
    };
    const key = storeKey(tenant.id, name);
    let revision: number;
    try {
      revision = await this.functions.create(key, encodeRecord(record));
    } catch (error) {
      if (error instanceof ConflictError) {
        throw LambdaErrors.conflict(`Function already exist: ${name}`);
      }
      throw error;
    }
    this.remember(key, record, revision);
    return record;
  }

  updateCode(
    tenantId: string,
    name: string,
    zip: Uint8Array,
    code: CodeInfo,
  ): Promise<FunctionRecord> {
    return this.modify(tenantId, name, async (current) => {
      await this.storeCode(zip, code);
      return { ...current, codeSha256: code.codeSha256, codeSize: code.codeSize };
    });
  }

  updateConfiguration(
    tenantId: string,
    name: string,
    patch: Partial<FunctionConfigInput>,
  ): Promise<FunctionRecord> {
    return this.modify(tenantId, name, (current) => {
      const config = resolveFunctionConfig({
        runtime: patch.runtime ?? current.runtime,
        handler: patch.handler ?? current.handler,
        description: patch.description ?? current.description,
        role: patch.role ?? current.role,
        timeoutSec: patch.timeoutSec ?? current.timeoutSec,
        memoryMb: patch.memoryMb ?? current.memoryMb,
        environment: patch.environment ?? current.environment,
      });
      return Promise.resolve({ ...current, ...config });
    });
  }

  async delete(tenantId: string, name: string): Promise<void> {
    const key = storeKey(tenantId, name);
    const entry = FUNCTION_NAME.test(name) ? await this.functions.get(key) : undefined;
    if (!entry) throw notFound(name);
    await this.functions.delete(key);
    // The delete's own revision is later than the entry's; any put seen after it is newer still.
    this.forget(key, entry.revision + 1);
    // Code blobs are content-addressed and may be shared by other functions;
    // they are kept (see the registry's README for the reasoning).
  }

  /**
   * PutFunctionConcurrency. Lambda's rule: the tenant's reserved concurrency,
   * summed over its functions, must leave at least 100 of its maximum
   * unreserved. Two puts racing on different functions are each checked
   * against what this process knows; the sum can then pass the rule by the
   * smaller of the two, which admission tolerates (it caps each function at
   * its reservation and the rest at what is left).
   */
  async putReservedConcurrency(
    tenant: Tenant,
    name: string,
    reserved: number,
  ): Promise<FunctionRecord> {
    if (!Number.isInteger(reserved) || reserved < 0) {
      throw LambdaErrors.invalidParameter(
        `1 validation error detected: Value '${reserved}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0`,
      );
    }
    return this.modify(
      tenant.id,
      name,
      (current) => {
        const others = this.reservedTotal(tenant.id) - (current.reservedConcurrency ?? 0);
        if (others + reserved > tenant.maxConcurrency - FunctionLimits.minUnreservedConcurrency) {
          throw LambdaErrors.invalidParameter(
            `Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [${FunctionLimits.minUnreservedConcurrency}].`,
          );
        }
        return Promise.resolve({ ...current, reservedConcurrency: reserved });
      },
      "setting",
    );
  }

  /** DeleteFunctionConcurrency. */
  deleteReservedConcurrency(tenantId: string, name: string): Promise<FunctionRecord> {
    return this.modify(
      tenantId,
      name,
      (current) => {
        const { reservedConcurrency: _removed, ...rest } = current;
        return Promise.resolve(rest);
      },
      "setting",
    );
  }

  /**
   * PutRuntimeManagementConfig, with Lambda's rules (runtime-management.ts).
   * A setting: the function keeps its revision, and warm sandboxes stay,
   * since they are kept apart by runtime version anyway.
   */
  async putRuntimeManagementConfig(
    tenantId: string,
    name: string,
    config: RuntimeManagementConfig,
  ): Promise<FunctionRecord> {
    const pinned = await checkRuntimeManagementConfig(config, this.runtimeVersions);
    return this.modify(
      tenantId,
      name,
      (current) =>
        Promise.resolve(
          withRuntimeManagement(current, config.updateRuntimeOn, pinned, this.runtimeVersions),
        ),
      "setting",
    );
  }

  /**
   * Gust's rollout setting (FunctionRecord.safeToRepeat): a setting, so the
   * function keeps its revision and warm sandboxes.
   */
  setSafeToRepeat(tenantId: string, name: string, safe: boolean): Promise<FunctionRecord> {
    return this.modify(
      tenantId,
      name,
      (current) => {
        const { safeToRepeat: _removed, ...rest } = current;
        return Promise.resolve(safe ? { ...rest, safeToRepeat: true } : rest);
      },
      "setting",
    );
  }

  /** The tenant's reserved concurrency over all its functions, from memory (no I/O). */
  reservedTotal(tenantId: string): number {
    return this.reservedByTenant.get(tenantId) ?? 0;
  }

  async fetchCode(codeSha256: string): Promise<Uint8Array | undefined> {
    return this.code.get(codeBlobName(codeSha256));
  }

  async usage(tenantId: string): Promise<{ functionCount: number; totalCodeSize: number }> {
    let functionCount = 0;
    let totalCodeSize = 0;
    let marker: string | undefined;
    for (;;) {
      const page = await this.list(tenantId, { maxItems: 1000, ...(marker ? { marker } : {}) });
      functionCount += page.functions.length;
      for (const record of page.functions) totalCodeSize += record.codeSize;
      if (page.nextMarker === undefined) return { functionCount, totalCodeSize };
      marker = page.nextMarker;
    }
  }

  close(): void {
    this.watcher?.stop();
    this.watcher = undefined;
    this.listeners.clear();
    this.runtimeVersions.close();
  }

  private async storeCode(zip: Uint8Array, code: CodeInfo): Promise<void> {
    const blob = codeBlobName(code.codeSha256);
    if (!(await this.code.has(blob))) await this.code.put(blob, zip);
  }

  /** Read-modify-write with compare-and-set, retried when another writer wins. */
  private async modify(
    tenantId: string,
    name: string,
    change: (current: FunctionRecord) => Promise<FunctionRecord>,
    /**
     * Code and configuration changes make a new revision (warm sandboxes of the
     * old one are retired); settings such as reserved concurrency do not.
     */
    kind: "code-or-configuration" | "setting" = "code-or-configuration",
  ): Promise<FunctionRecord> {
    const key = storeKey(tenantId, name);
    for (let attempt = 1; ; attempt++) {
      const entry = FUNCTION_NAME.test(name) ? await this.functions.get(key) : undefined;
      if (!entry) throw notFound(name);
      const current = parseRecord(entry.value);
      const changed = await change(current);
      const record: FunctionRecord =
        kind === "code-or-configuration"
          ? {
              ...afterFunctionUpdate(current, changed, this.runtimeVersions),
              revisionId: randomUUID(),
              lastModified: lambdaTimestamp(new Date()),
            }
          : changed;
      try {
        const revision = await this.functions.update(key, encodeRecord(record), entry.revision);
        this.remember(key, record, revision);
        return record;
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= MAX_UPDATE_ATTEMPTS) {
          if (error instanceof ConflictError) {
            throw LambdaErrors.conflict(
              `The operation cannot be performed at this time. An update is in progress for resource: ${name}`,
            );
          }
          throw error;
        }
      }
    }
  }
}

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function notFound(name: string) {
  return LambdaErrors.notFound(`Function not found: ${name}`);
}
