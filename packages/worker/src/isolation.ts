/**
 * How strongly this worker can keep sandboxes apart, decided once at start.
 *
 * - `jail`: every sandbox in its own namespaces under a uid of its own
 *   (jail.ts) and in a control group of its own (cgroup/); tenants may be
 *   strangers.
 * - `uid`: root, but no jail (bubblewrap, socat or writable control groups
 *   missing, or jails disabled):
 *   sandboxes have their own uids and Node's permission model, but share the
 *   host's /tmp, network and process table.
 * - `none`: not root; every sandbox runs as the worker's own user.
 *
 * Anything short of `jail` runs only when the operator says every tenant is
 * trusted (WorkerOptions.trustTenants, `--trust-tenants`), as on a laptop
 * with `gust dev`; otherwise the worker refuses to start and says why.
 */
import { ConfigError } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";
import { detectCgroups } from "./cgroup/index.js";
import type { CgroupSupport } from "./cgroup/index.js";
import { detectJail } from "./jail.js";
import type { JailTools } from "./jail.js";
import { runningAsRoot } from "./sandbox-isolation.js";

export const IsolationLevels = { jail: "jail", uid: "uid", none: "none" } as const;
export type IsolationLevel = (typeof IsolationLevels)[keyof typeof IsolationLevels];

export interface Isolation {
  level: IsolationLevel;
  /** Present at level `jail`. */
  jailTools?: JailTools;
  /** Present at level `jail`: where sandboxes' control groups go. */
  cgroups?: CgroupSupport & { available: true };
  /** Why the level is not `jail`. */
  shortfall?: string;
}

export async function decideIsolation(
  options: { jail: boolean; trustTenants: boolean },
  logger: Logger,
): Promise<Isolation> {
  let isolation: Isolation;
  if (!options.jail) {
    isolation = {
      level: runningAsRoot() ? IsolationLevels.uid : IsolationLevels.none,
      shortfall: "sandbox jails are turned off",
    };
  } else {
    const [support, cgroups] = await Promise.all([detectJail(), detectCgroups()]);
    if (support.available && cgroups.available) {
      isolation = { level: IsolationLevels.jail, jailTools: support.tools, cgroups };
    } else {
      const reasons = [
        support.available ? undefined : support.reason,
        cgroups.available ? undefined : `control groups: ${cgroups.reason}`,
      ].filter((reason) => reason !== undefined);
      isolation = {
        level: runningAsRoot() ? IsolationLevels.uid : IsolationLevels.none,
        shortfall: reasons.join("; "),
      };
    }
  }
  if (isolation.level === IsolationLevels.jail) {
    logger.info("sandboxes are jailed: namespaces, a uid and a control group each, private /tmp", {
      isolation: isolation.level,
      cgroupVersion: isolation.cgroups?.version,
    });
    return isolation;
  }
  if (!options.trustTenants) {
    throw new ConfigError(
      `this worker cannot isolate tenants' sandboxes (${isolation.shortfall ?? "unknown"}); ` +
        "fix that, or start it with --trust-tenants if every tenant is trusted",
    );
  }
  logger.warn(
    "sandboxes are NOT isolated from each other or the platform: every tenant is trusted",
    {
      isolation: isolation.level,
      reason: isolation.shortfall,
    },
  );
  return isolation;
}
