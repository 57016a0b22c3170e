/**
 * Keeps the tenant directory equal to the tenants config file: tenants in the
 * file are written, tenants no longer in it are removed, and the file is
 * watched so an operator's edit takes effect without a restart. A file that
 * does not parse leaves the directory as it was and says why.
 *
 * The file holds every tenant's secret keys, and handlers of custom runtimes
 * run as other users on the same hosts: each load, the first and every one a
 * change triggers (a chmod too), refuses a file other users could read or
 * change (see @gust/registry's private-file.ts), unless the operator allows it,
 * which turns the refusal into a warning.
 */
import { watch, type FSWatcher } from "node:fs";
import { ConfigError } from "@gust/protocol";
import type { TenantDirectory, TenantRecord } from "@gust/registry";
import { checkPrivateFile, describePrivateFileProblems, loadTenantsConfig } from "@gust/registry";
import type { Logger } from "@gust/telemetry";

export async function applyTenants(
  directory: TenantDirectory,
  records: readonly TenantRecord[],
): Promise<{ written: number; removed: number }> {
  const keep = new Set(records.map((record) => record.id));
  let removed = 0;
  for (const tenant of directory.list()) {
    if (!keep.has(tenant.id)) {
      await directory.remove(tenant.id);
      removed++;
    }
  }
  for (const record of records) await directory.put(record);
  return { written: records.length, removed };
}

export interface TenantFileSync {
  reload(): Promise<void>;
  stop(): void;
}

export interface TenantFileSyncOptions {
  /**
   * Load a tenants file that other users could read or change, with a
   * warning (`gust coordinator --allow-readable-tenants-file`).
   * @default false: such a file is refused
   */
  allowReadableFile?: boolean;
}

/** Debounce for editors that write a file in several steps. */
const RELOAD_DEBOUNCE_MS = 200;

const WHAT = "the tenants file";

export async function syncTenantsFile(
  directory: TenantDirectory,
  path: string,
  logger: Logger,
  options: TenantFileSyncOptions = {},
): Promise<TenantFileSync> {
  const reload = async () => {
    const check = await checkPrivateFile(path, WHAT);
    if (check.problems.length > 0) {
      const problem = describePrivateFileProblems(check, WHAT);
      if (options.allowReadableFile !== true) {
        throw new ConfigError(
          `${problem}; the coordinator refuses it (--allow-readable-tenants-file loads it anyway)`,
        );
      }
      logger.warn("loading a tenants file other users could read (--allow-readable-tenants-file)", {
        path,
        problem,
      });
    }
    const records = await loadTenantsConfig(path);
    const { written, removed } = await applyTenants(directory, records);
    logger.info("tenants loaded", { path, tenants: written, removed });
  };
  // The first load must succeed: a coordinator with a broken config should not start.
  await reload();

  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path, () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        reload().catch((error: unknown) =>
          logger.error("tenants config not reloaded; keeping the previous tenants", {
            path,
            error,
          }),
        );
      }, RELOAD_DEBOUNCE_MS);
    });
    watcher.on("error", (error) => logger.warn("cannot watch the tenants config", { path, error }));
  } catch (error) {
    logger.warn("cannot watch the tenants config; edits need a restart", { path, error });
  }
  return {
    reload,
    stop() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
