/**
 * Which cgroup interface this host offers, found from what is mounted
 * (/proc/self/mountinfo, else /proc/mounts), never by guessing paths: hosts
 * mount v1 hierarchies, a pure v2 hierarchy, or both (a "hybrid" host has v1
 * controllers and a cgroup2 mount with none of them, as on the machine this
 * was written on).
 *
 * v2 is used when its top group offers every controller Gust needs;
 * otherwise v1 when each of them is mounted. Gust's groups go at the top of
 * each hierarchy as mounted (in a container, that is the container's own
 * group), not under the worker's group:
 * - on v2 a group with processes cannot hand controllers to children
 *   (cgroup-v2.rst, "No Internal Process Constraint"), and the worker's group
 *   has the worker in it;
 * - on both, a worker restarted in another group (another session, another
 *   service manager's scope) still finds what its predecessor of the same
 *   name left, and removes it before reusing uids.
 * Pass `parent` to `CgroupTree.open` to use a delegated v2 subtree instead
 * (systemd `Delegate=yes`).
 */
import path from "node:path";
import { readTextIfPresent, writeAccessError } from "./cgroup-fs.js";

export type CgroupVersion = 1 | 2;

/** v1 hierarchies Gust needs: limits (memory, pids, cpu) and freezing (freezer). */
export const V1_CONTROLLERS = ["memory", "pids", "cpu", "freezer"] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];
/** v2 controllers Gust needs; freezing and killing are core v2 features. */
export const V2_CONTROLLERS = ["memory", "pids", "cpu"] as const;

export interface CgroupHierarchy {
  mountPoint: string;
  /** The directory under which Gust's `gust/<worker>/` groups go. */
  parent: string;
}

export type CgroupSupport =
  | {
      available: true;
      version: 1;
      hierarchies: Readonly<Record<V1Controller, CgroupHierarchy>>;
    }
  | { available: true; version: 2; hierarchy: CgroupHierarchy }
  | { available: false; reason: string };

export interface CgroupMount {
  mountPoint: string;
  /** The cgroup at the mount's top, relative to the hierarchy's root ("/" unless bind-mounted, as containers do). */
  root: string;
  version: CgroupVersion;
  /** v1: the controllers bound to this hierarchy (from the super options); v2: none listed here. */
  controllers: string[];
  readOnly: boolean;
}

/**
 * cgroup mounts from /proc/self/mountinfo (proc(5)): fields 4 and 5 are the
 * root and mount point, then optional fields up to "-", the file system type,
 * the source and the super options, which for v1 name the controllers.
 */
export function parseMountInfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 6) continue;
    const type = fields[separator + 1];
    if (type !== "cgroup" && type !== "cgroup2") continue;
    const mountOptions = (fields[5] ?? "").split(",");
    const superOptions = (fields[separator + 3] ?? "").split(",");
    mounts.push({
      mountPoint: unescapeMountPath(fields[4] ?? ""),
      root: unescapeMountPath(fields[3] ?? "/"),
      version: type === "cgroup2" ? 2 : 1,
      controllers: type === "cgroup" ? superOptions.filter(isControllerOption) : [],
      readOnly: mountOptions.includes("ro") || superOptions.includes("ro"),
    });
  }
  return mounts;
}

/** The same from /proc/mounts (no root field: the mount is taken to show its whole hierarchy). */
export function parseProcMounts(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const [, mountPoint, type, options] = line.split(" ");
    if (mountPoint === undefined || options === undefined) continue;
    if (type !== "cgroup" && type !== "cgroup2") continue;
    const list = options.split(",");
    mounts.push({
      mountPoint: unescapeMountPath(mountPoint),
      root: "/",
      version: type === "cgroup2" ? 2 : 1,
      controllers: type === "cgroup" ? list.filter(isControllerOption) : [],
      readOnly: list.includes("ro"),
    });
  }
  return mounts;
}

const NON_CONTROLLER_OPTIONS = new Set(["rw", "ro", "noprefix", "clone_children", "xattr"]);

function isControllerOption(option: string): boolean {
  return (
    option !== "" &&
    !NON_CONTROLLER_OPTIONS.has(option) &&
    !option.startsWith("name=") &&
    !option.startsWith("release_agent=") &&
    !option.includes("=")
  );
}

/** Mount paths escape space, tab, newline and backslash as octal (\040 …). */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

export interface CgroupFacts {
  mounts: CgroupMount[];
  /** cgroup.controllers of the v2 mount's top group, when there is a v2 mount. */
  v2Controllers: string[] | undefined;
}

/** Pure choice of interface from what the host shows; writability is checked by `detectCgroups`. */
export function chooseCgroups(facts: CgroupFacts): CgroupSupport {
  const unified = facts.mounts.find((mount) => mount.version === 2);
  const v2Missing = V2_CONTROLLERS.filter(
    (controller) => !(facts.v2Controllers ?? []).includes(controller),
  );
  if (unified && v2Missing.length === 0) {
    if (unified.readOnly) {
      return { available: false, reason: `cgroup2 at ${unified.mountPoint} is mounted read-only` };
    }
    return {
      available: true,
      version: 2,
      hierarchy: { mountPoint: unified.mountPoint, parent: unified.mountPoint },
    };
  }
  const hierarchies: Partial<Record<V1Controller, CgroupHierarchy>> = {};
  const missing: string[] = [];
  for (const controller of V1_CONTROLLERS) {
    const mount = facts.mounts.find(
      (candidate) => candidate.version === 1 && candidate.controllers.includes(controller),
    );
    if (!mount) {
      missing.push(controller);
      continue;
    }
    if (mount.readOnly) {
      return {
        available: false,
        reason: `cgroup v1 ${controller} at ${mount.mountPoint} is mounted read-only`,
      };
    }
    hierarchies[controller] = { mountPoint: mount.mountPoint, parent: mount.mountPoint };
  }
  if (missing.length === 0) {
    return {
      available: true,
      version: 1,
      hierarchies: hierarchies as Record<V1Controller, CgroupHierarchy>,
    };
  }
  const v2Note = unified
    ? `cgroup2 at ${unified.mountPoint} lacks ${v2Missing.join(", ")}`
    : "no cgroup2 mount";
  return {
    available: false,
    reason: `no usable control groups: ${v2Note}; cgroup v1 lacks ${missing.join(", ")}`,
  };
}

/** Directories Gust will create groups in, to check for write access. */
export function parentDirectories(support: CgroupSupport): string[] {
  if (!support.available) return [];
  if (support.version === 2) return [support.hierarchy.parent];
  return [...new Set(V1_CONTROLLERS.map((controller) => support.hierarchies[controller].parent))];
}

/**
 * What this host offers, with a reason when it is nothing a worker can use:
 * no cgroup mounts, a controller missing, mounted read-only, or not writable
 * by this process (not root, no delegation).
 */
export async function detectCgroups(): Promise<CgroupSupport> {
  const mountInfo = await readTextIfPresent("/proc/self/mountinfo").catch(() => undefined);
  const procMounts =
    mountInfo === undefined
      ? await readTextIfPresent("/proc/mounts").catch(() => undefined)
      : undefined;
  if (mountInfo === undefined && procMounts === undefined) {
    return { available: false, reason: "no /proc/self/mountinfo or /proc/mounts (not Linux?)" };
  }
  const mounts =
    mountInfo !== undefined ? parseMountInfo(mountInfo) : parseProcMounts(procMounts ?? "");
  if (mounts.length === 0) return { available: false, reason: "no cgroup file system is mounted" };
  const unified = mounts.find((mount) => mount.version === 2);
  const controllersText = unified
    ? await readTextIfPresent(path.join(unified.mountPoint, "cgroup.controllers")).catch(
        () => undefined,
      )
    : undefined;
  const support = chooseCgroups({
    mounts,
    v2Controllers: controllersText?.trim().split(/\s+/).filter(Boolean),
  });
  const reason = await unwritableReason(support);
  return reason === undefined ? support : { available: false, reason };
}

/** Why Gust cannot create its groups where `support` puts them, or undefined when it can. */
export async function unwritableReason(
  support: CgroupSupport,
  accessError: (dir: string) => Promise<string | undefined> = writeAccessError,
): Promise<string | undefined> {
  for (const dir of parentDirectories(support)) {
    const code = await accessError(dir);
    if (code !== undefined) {
      return `cannot create control groups in ${dir} (${code}); the worker needs root or a delegated cgroup`;
    }
  }
  return undefined;
}
