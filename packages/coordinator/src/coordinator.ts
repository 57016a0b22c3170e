/**
 * The coordinator: Gust's control plane process. It owns the tenant
 * directory's contents (from the tenants config file) and runs runtime
 * rollouts (rollout-engine.ts): their state is in KV, so a coordinator that
 * restarts carries on where the last one stopped. Buckets and streams are created by whichever process
 * connects first (see @gust/bus), so a coordinator is not needed for the
 * invocation path to work, only to change tenants.
 */
import type { Infrastructure } from "@gust/bus";
import { Buckets } from "@gust/protocol";
import {
  FunctionRegistry,
  RolloutStore,
  TenantDirectory,
  type TenantKeyring,
  type TenantRecord,
} from "@gust/registry";
import { createLogger, type Logger } from "@gust/telemetry";
import { RolloutEngine, type RolloutEngineOptions } from "./rollout-engine.js";
import { applyTenants, syncTenantsFile, type TenantFileSync } from "./tenant-sync.js";

export interface CoordinatorOptions {
  /** A tenants config file to load and watch. */
  tenantsFile?: string;
  /**
   * Load a tenants file that other users could read, with a warning.
   * @default false: refused (tenant-sync.ts)
   */
  allowReadableTenantsFile?: boolean;
  /**
   * Seals tenants' secrets in KV (@gust/registry tenant-key.ts); frontends
   * need the same keys. @default none: secrets in clear (tests only; the
   * `gust coordinator` command requires one)
   */
  tenantKeyring?: TenantKeyring;
  /** Tenants to write at start (used by `gust dev` for its dev tenant). */
  tenants?: TenantRecord[];
  /** How rollouts gather counts and judge functions. */
  rollouts?: RolloutEngineOptions;
  /** Region in function and runtime version ARNs. @default "us-east-1" */
  region?: string;
}

export interface Coordinator {
  readonly tenants: TenantDirectory;
  readonly rollouts: RolloutStore;
  reloadTenants(): Promise<void>;
  close(): Promise<void>;
}

export async function startCoordinator(
  infra: Infrastructure,
  options: CoordinatorOptions,
  logger: Logger = createLogger("coordinator"),
): Promise<Coordinator> {
  const tenants = await TenantDirectory.open(
    await infra.kv(Buckets.tenants),
    logger,
    options.tenantKeyring === undefined ? {} : { keyring: options.tenantKeyring },
  );
  let fileSync: TenantFileSync | undefined;
  try {
    if (options.tenantsFile !== undefined) {
      fileSync = await syncTenantsFile(tenants, options.tenantsFile, logger, {
        allowReadableFile: options.allowReadableTenantsFile === true,
      });
    } else if (options.tenants !== undefined) {
      await applyTenants(tenants, options.tenants);
    }
  } catch (error) {
    tenants.close();
    throw error;
  }
  let registry: FunctionRegistry | undefined;
  let rollouts: RolloutStore | undefined;
  let engine: RolloutEngine | undefined;
  try {
    registry = await FunctionRegistry.open({
      functions: await infra.kv(Buckets.functions),
      code: await infra.blobs(Buckets.code),
      runtimeVersions: await infra.kv(Buckets.runtimeVersions),
      ...(options.region === undefined ? {} : { region: options.region }),
    });
    rollouts = await RolloutStore.open(await infra.kv(Buckets.rollouts), logger);
    engine = new RolloutEngine(
      { bus: infra.bus, store: rollouts, registry, tenants, logger },
      options.rollouts,
    );
    await engine.start();
  } catch (error) {
    await engine?.close();
    rollouts?.close();
    registry?.close();
    fileSync?.stop();
    tenants.close();
    throw error;
  }
  logger.info("coordinator started", { tenants: tenants.list().length });
  const store = rollouts;
  const functions = registry;
  const rolloutEngine = engine;
  return {
    tenants,
    rollouts: store,
    reloadTenants: async () => {
      if (fileSync) await fileSync.reload();
    },
    close: async () => {
      await rolloutEngine.close();
      store.close();
      functions.close();
      fileSync?.stop();
      tenants.close();
    },
  };
}
