/**
 * The coordinator: Gust's control plane process. It owns the tenant
 * directory's contents (from the tenants config file) and is where runtime
 * rollouts will run. Buckets and streams are created by whichever process
 * connects first (see @gust/bus), so a coordinator is not needed for the
 * invocation path to work, only to change tenants.
 */
import type { Infrastructure } from "@gust/bus";
import { Buckets } from "@gust/protocol";
import { TenantDirectory, type TenantRecord } from "@gust/registry";
import { createLogger, type Logger } from "@gust/telemetry";
import { applyTenants, syncTenantsFile, type TenantFileSync } from "./tenant-sync.js";

export interface CoordinatorOptions {
  /** A tenants config file to load and watch. */
  tenantsFile?: string;
  /** Tenants to write at start (used by `gust dev` for its dev tenant). */
  tenants?: TenantRecord[];
}

export interface Coordinator {
  readonly tenants: TenantDirectory;
  reloadTenants(): Promise<void>;
  close(): Promise<void>;
}

export async function startCoordinator(
  infra: Infrastructure,
  options: CoordinatorOptions,
  logger: Logger = createLogger("coordinator"),
): Promise<Coordinator> {
  const tenants = await TenantDirectory.open(await infra.kv(Buckets.tenants), logger);
  let fileSync: TenantFileSync | undefined;
  try {
    if (options.tenantsFile !== undefined) {
      fileSync = await syncTenantsFile(tenants, options.tenantsFile, logger);
    } else if (options.tenants !== undefined) {
      await applyTenants(tenants, options.tenants);
    }
  } catch (error) {
    tenants.close();
    throw error;
  }
  logger.info("coordinator started", { tenants: tenants.list().length });
  return {
    tenants,
    reloadTenants: async () => {
      if (fileSync) await fileSync.reload();
    },
    close: () => {
      fileSync?.stop();
      tenants.close();
      return Promise.resolve();
    },
  };
}
