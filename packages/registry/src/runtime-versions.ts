/**
 * The runtime-version registry: every runtime's versions and its default, in
 * one KV bucket (Buckets.runtimeVersions in a fleet):
 *
 *   version.<runtime>.<version>  → RuntimeVersionRecord (immutable once written)
 *   default.<runtime>            → { runtime, version, arn, updatedAt }
 *
 * with "." in runtime and version names written as "=" (KV keys split on
 * "."; neither name may contain "="). Keys are names, so a create settles a
 * race between two operators adding the same version.
 *
 * Every process caches the whole bucket, kept fresh by a watch: choosing the
 * version of an invocation is a lookup in memory. The built-in versions are
 * written at open when missing, so a fresh installation needs no operator step.
 */
import type { KvBucket, KvWatch } from "@gust/bus";
import {
  BUILT_IN_RUNTIME_VERSIONS,
  ConfigError,
  ConflictError,
  decodeRecord,
  encodeRecord,
  isRuntime,
  lambdaTimestamp,
  LambdaErrors,
  parseRuntimeRecipe,
  parseRuntimeVersionArn,
  RUNTIME_VERSION_PATTERN,
  RuntimeUpdateModes,
  runtimeVersionArn,
  runtimeVersionHash,
  runtimeVersionName,
  type FunctionRecord,
  type Runtime,
  type RuntimeRecipe,
  type RuntimeVersionRef,
} from "@gust/protocol";
import { createLogger, type Logger } from "@gust/telemetry";

export interface RuntimeVersionRecord {
  runtime: Runtime;
  /** e.g. "1.0.0" */
  version: string;
  /** `<runtime>:<version>`, e.g. "nodejs20.x:1.0.0" */
  name: string;
  /** arn:aws:lambda:<region>::runtime:<sha-256 of runtime, version and recipe> */
  arn: string;
  recipe: RuntimeRecipe;
  description: string;
  /** Lambda's timestamp format. */
  createdAt: string;
  /** Shipped with Gust rather than added by an operator. */
  builtIn: boolean;
}

/** What an operator gives to add a version; the recipe is checked field by field. */
export interface RuntimeVersionInput {
  runtime: string;
  version: string;
  recipe: unknown;
  description?: string;
}

/** The version one invocation runs on, as the frontend hands it to a worker. */
export interface RuntimeVersionChoice {
  version: RuntimeVersionRef;
  /** Whether it is its runtime's default version now. */
  isDefault: boolean;
}

export interface RuntimeVersionRegistryOptions {
  bucket: KvBucket;
  /** Region in version ARNs. @default "us-east-1" */
  region?: string;
  logger?: Logger;
}

const VERSION_PREFIX = "version.";
const DEFAULT_PREFIX = "default.";
const MAX_DESCRIPTION = 256;
/** Least time between two store reads for ARNs the cache does not know. */
const MISS_RELOAD_MS = 1000;

function keyToken(name: string): string {
  return name.replaceAll(".", "=");
}

function versionKey(runtime: Runtime, version: string): string {
  return `${VERSION_PREFIX}${keyToken(runtime)}.${keyToken(version)}`;
}

function defaultKey(runtime: Runtime): string {
  return `${DEFAULT_PREFIX}${keyToken(runtime)}`;
}

function parseVersionRecord(bytes: Uint8Array): RuntimeVersionRecord {
  const value = decodeRecord(bytes);
  const runtime = value["runtime"];
  if (!isRuntime(runtime)) throw new TypeError("runtime version record has an unknown runtime");
  for (const field of ["version", "name", "arn", "description", "createdAt"] as const) {
    if (typeof value[field] !== "string") throw new TypeError(`runtime version lacks ${field}`);
  }
  return {
    runtime,
    version: value["version"] as string,
    name: value["name"] as string,
    arn: value["arn"] as string,
    recipe: parseRuntimeRecipe(runtime, value["recipe"]),
    description: value["description"] as string,
    createdAt: value["createdAt"] as string,
    builtIn: value["builtIn"] === true,
  };
}

function toRef(record: RuntimeVersionRecord): RuntimeVersionRef {
  return {
    runtime: record.runtime,
    version: record.version,
    arn: record.arn,
    recipe: record.recipe,
  };
}

interface CachedVersion {
  record: RuntimeVersionRecord;
  /** Built once: every invocation on this version hands the same object to the codec. */
  ref: RuntimeVersionRef;
}

export class RuntimeVersionRegistry {
  readonly region: string;
  private readonly bucket: KvBucket;
  private readonly logger: Logger;
  private readonly byKey = new Map<string, CachedVersion>();
  private readonly byArn = new Map<string, CachedVersion>();
  /** runtime → the default's version name. */
  private readonly defaults = new Map<Runtime, string>();
  private readonly listeners = new Set<() => void>();
  /** Pinned ARNs already reported as unknown, so the log says it once. */
  private readonly reportedMissing = new Set<string>();
  private watcher: KvWatch | undefined;
  private missReload: Promise<void> | undefined;
  private lastMissReloadAt = 0;

  private constructor(options: RuntimeVersionRegistryOptions) {
    this.bucket = options.bucket;
    this.region = options.region ?? "us-east-1";
    this.logger = options.logger ?? createLogger("runtime-versions");
  }

  /** Loads every version and default, then writes the built-in ones that are missing. */
  static async open(options: RuntimeVersionRegistryOptions): Promise<RuntimeVersionRegistry> {
    const registry = new RuntimeVersionRegistry(options);
    // Watch first, then load, so no change falls between the two.
    registry.watcher = await registry.bucket.watch(">", (change) => {
      if (change.op === "put") registry.rememberBytes(change.key, change.value);
    });
    await registry.reload();
    await registry.installBuiltIns();
    return registry;
  }

  /** Versions, of one runtime or all, by runtime and then in the order they were added. */
  list(runtime?: Runtime): RuntimeVersionRecord[] {
    return [...this.byKey.values()]
      .map((cached) => cached.record)
      .filter((record) => runtime === undefined || record.runtime === runtime)
      .sort(
        (a, b) =>
          a.runtime.localeCompare(b.runtime) ||
          a.createdAt.localeCompare(b.createdAt) ||
          a.version.localeCompare(b.version),
      );
  }

  get(runtime: Runtime, version: string): RuntimeVersionRecord | undefined {
    return this.byKey.get(versionKey(runtime, version))?.record;
  }

  /** From memory only. */
  byArnCached(arn: string): RuntimeVersionRecord | undefined {
    return this.byArn.get(arn)?.record;
  }

  /**
   * From memory, else from the store: a version added through another
   * process a moment ago is found. Misses share one store read at a time, at
   * most one a second, so a caller naming made-up ARNs cannot make this
   * process read the bucket again and again.
   */
  async find(arn: string): Promise<RuntimeVersionRecord | undefined> {
    const cached = this.byArn.get(arn);
    if (cached) return cached.record;
    if (parseRuntimeVersionArn(arn) === undefined) return undefined;
    if (this.missReload === undefined && Date.now() - this.lastMissReloadAt >= MISS_RELOAD_MS) {
      this.lastMissReloadAt = Date.now();
      this.missReload = this.reload().finally(() => (this.missReload = undefined));
    }
    await this.missReload;
    return this.byArn.get(arn)?.record;
  }

  /** The runtime's default version now. */
  defaultVersion(runtime: Runtime): RuntimeVersionRecord {
    return this.defaultEntry(runtime).record;
  }

  /** Adds a version; adding one that exists with the same recipe is a no-op. */
  async add(input: RuntimeVersionInput): Promise<RuntimeVersionRecord> {
    const record = this.makeRecord(input, false);
    const key = versionKey(record.runtime, record.version);
    try {
      await this.bucket.create(key, encodeRecord(record));
      this.remember(key, record);
      this.logger.info("runtime version added", { name: record.name, arn: record.arn });
      return record;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
    const existing = await this.bucket.get(key);
    const stored = existing ? parseVersionRecord(existing.value) : undefined;
    if (stored?.arn === record.arn) {
      this.remember(key, stored);
      return stored;
    }
    throw LambdaErrors.conflict(
      `Runtime version ${record.name} already exists with another recipe; versions are immutable, add a new version instead.`,
    );
  }

  /** Makes a version its runtime's default: every Auto function moves to it. */
  async setDefault(runtime: string, version: string): Promise<RuntimeVersionRecord> {
    if (!isRuntime(runtime)) throw unknownRuntime(runtime);
    let record = this.get(runtime, version);
    if (!record) {
      await this.reload();
      record = this.get(runtime, version);
    }
    if (!record) {
      throw LambdaErrors.notFound(
        `Runtime version ${runtimeVersionName(runtime, version)} not found.`,
      );
    }
    await this.bucket.put(
      defaultKey(runtime),
      encodeRecord({ runtime, version, arn: record.arn, updatedAt: lambdaTimestamp(new Date()) }),
    );
    this.defaults.set(runtime, version);
    this.notify();
    this.logger.info("runtime default changed", { runtime, version, arn: record.arn });
    return record;
  }

  /**
   * The version an invocation of `fn` runs on, from memory: the runtime's
   * default for Auto, the recorded version for Manual and FunctionUpdate. A
   * recorded version this process does not know (yet) falls back to the
   * default rather than failing the invocation.
   */
  choose(fn: FunctionRecord): RuntimeVersionChoice {
    const fallback = this.defaultEntry(fn.runtime);
    const config = fn.runtimeManagement;
    if (config === undefined || config.updateRuntimeOn === RuntimeUpdateModes.auto) {
      return { version: fallback.ref, isDefault: true };
    }
    const arn = config.runtimeVersionArn;
    const pinned = arn === undefined ? undefined : this.byArn.get(arn);
    if (pinned && pinned.record.runtime === fn.runtime) {
      return { version: pinned.ref, isDefault: pinned.record.arn === fallback.record.arn };
    }
    if (arn !== undefined && !this.reportedMissing.has(arn)) {
      this.reportedMissing.add(arn);
      this.logger.warn("a function's runtime version is unknown here; running the default", {
        function: fn.functionArn,
        runtimeVersionArn: arn,
      });
    }
    return { version: fallback.ref, isDefault: true };
  }

  /** The version `fn` runs on now (its configuration's RuntimeVersionConfig). */
  effectiveVersion(fn: FunctionRecord): RuntimeVersionRecord {
    return this.byArn.get(this.choose(fn).version.arn)?.record ?? this.defaultVersion(fn.runtime);
  }

  /** Called after any version or default changes. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.watcher?.stop();
    this.watcher = undefined;
    this.listeners.clear();
  }

  // ---- the cache -----------------------------------------------------------------------

  private async reload(): Promise<void> {
    for (const key of await this.bucket.keys(">")) {
      const entry = await this.bucket.get(key);
      if (entry) this.rememberBytes(key, entry.value);
    }
  }

  private rememberBytes(key: string, bytes: Uint8Array): void {
    try {
      if (key.startsWith(VERSION_PREFIX)) {
        this.remember(key, parseVersionRecord(bytes));
      } else if (key.startsWith(DEFAULT_PREFIX)) {
        const value = decodeRecord(bytes);
        const runtime = value["runtime"];
        const version = value["version"];
        if (!isRuntime(runtime) || typeof version !== "string") {
          throw new TypeError("runtime default lacks runtime or version");
        }
        if (this.defaults.get(runtime) !== version) {
          this.defaults.set(runtime, version);
          this.notify();
        }
      }
    } catch (error) {
      this.logger.error("ignoring a runtime version entry that does not parse", { key, error });
    }
  }

  private remember(key: string, record: RuntimeVersionRecord): void {
    // Versions are immutable: the first record seen under a key stays.
    if (this.byKey.has(key)) return;
    const cached: CachedVersion = { record, ref: toRef(record) };
    this.byKey.set(key, cached);
    this.byArn.set(record.arn, cached);
    this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.logger.warn("a runtime version listener failed", { error });
      }
    }
  }

  private defaultEntry(runtime: Runtime): CachedVersion {
    const version = this.defaults.get(runtime);
    const cached = version === undefined ? undefined : this.byKey.get(versionKey(runtime, version));
    if (cached) return cached;
    // Only before the built-ins are in (or if the store lost them): the built-in default.
    const builtIn = BUILT_IN_RUNTIME_VERSIONS.find(
      (candidate) => candidate.runtime === runtime && candidate.isDefault,
    );
    if (!builtIn) throw new ConfigError(`runtime ${runtime} has no default version`);
    const record = this.makeRecord(builtIn, true);
    return { record, ref: toRef(record) };
  }

  private async installBuiltIns(): Promise<void> {
    for (const builtIn of BUILT_IN_RUNTIME_VERSIONS) {
      const record = this.makeRecord(builtIn, true);
      const key = versionKey(record.runtime, record.version);
      if (!this.byKey.has(key)) {
        try {
          await this.bucket.create(key, encodeRecord(record));
          this.remember(key, record);
        } catch (error) {
          // Another process wrote it first; its watch event brings it here.
          if (!(error instanceof ConflictError)) throw error;
        }
      } else if (this.byKey.get(key)?.record.arn !== record.arn) {
        this.logger.error("a stored runtime version differs from the built-in of that name", {
          name: record.name,
          stored: this.byKey.get(key)?.record.arn,
          builtIn: record.arn,
        });
      }
      if (builtIn.isDefault && !this.defaults.has(record.runtime)) {
        const defaultRecord = {
          runtime: record.runtime,
          version: record.version,
          arn: record.arn,
          updatedAt: record.createdAt,
        };
        try {
          await this.bucket.create(defaultKey(record.runtime), encodeRecord(defaultRecord));
          this.defaults.set(record.runtime, record.version);
        } catch (error) {
          if (!(error instanceof ConflictError)) throw error;
        }
      }
    }
    // Whatever lost a create race is read back now rather than on its watch event.
    await this.reload();
  }

  private makeRecord(input: RuntimeVersionInput, builtIn: boolean): RuntimeVersionRecord {
    const { runtime, version } = input;
    if (!isRuntime(runtime)) throw unknownRuntime(runtime);
    if (typeof version !== "string" || !RUNTIME_VERSION_PATTERN.test(version)) {
      throw LambdaErrors.invalidParameter(
        `Runtime version ${JSON.stringify(version)} must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit.`,
      );
    }
    const description = input.description ?? "";
    if (typeof description !== "string" || description.length > MAX_DESCRIPTION) {
      throw LambdaErrors.invalidParameter(
        `A runtime version's description must be a string of at most ${MAX_DESCRIPTION} characters.`,
      );
    }
    let recipe: RuntimeRecipe;
    try {
      recipe = parseRuntimeRecipe(runtime, input.recipe);
    } catch (error) {
      if (error instanceof ConfigError) throw LambdaErrors.invalidParameter(error.message);
      throw error;
    }
    return {
      runtime,
      version,
      name: runtimeVersionName(runtime, version),
      arn: runtimeVersionArn(this.region, runtimeVersionHash(runtime, version, recipe)),
      recipe,
      description,
      createdAt: builtIn ? BUILT_IN_CREATED_AT : lambdaTimestamp(new Date()),
      builtIn,
    };
  }
}

/** Built-in versions are the same record on every process, so their timestamp is fixed. */
const BUILT_IN_CREATED_AT = "2026-01-01T00:00:00.000+0000";

function unknownRuntime(runtime: unknown): Error {
  return LambdaErrors.invalidParameter(
    `Unknown runtime ${JSON.stringify(runtime)}: use nodejs20.x, provided, provided.al2 or provided.al2023.`,
  );
}
