/**
 * A worker's part of the cgroup hierarchy: `gust/<worker>/<sandbox>`, made
 * when the worker starts, one child per sandbox.
 *
 * v1 has one such tree per controller hierarchy. v2 has one tree, and
 * controllers reach a group only when its parent lists them in
 * cgroup.subtree_control, so `open` enables memory, pids and cpu on every
 * group from the top of the hierarchy down to the worker's; the groups
 * between them hold no processes, as v2 requires of a group that hands out
 * controllers (cgroup-v2.rst, "Top-down Constraint" and "No Internal Process
 * Constraint").
 *
 * A worker that died leaves its sandboxes' groups and whatever still runs in
 * them; its successor (same worker name) removes them with removeStale
 * before handing out uids again.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import {
  childGroups,
  makeDirectories,
  makeDirectory,
  readText,
  removeDirectory,
  writeText,
} from "./cgroup-fs.js";
import { V1_CONTROLLERS, V2_CONTROLLERS } from "./detect.js";
import type { CgroupSupport, CgroupVersion, V1Controller } from "./detect.js";
import { CgroupError } from "./errors.js";
import { DEFAULT_CPU_WEIGHT, cpuWeightWrite, limitWrites } from "./limits.js";
import type { CgroupLimits } from "./limits.js";
import {
  DEFAULT_FREEZE_WAIT_MS,
  DEFAULT_KILL_WAIT_MS,
  SandboxCgroup,
  applyWrites,
} from "./sandbox-cgroup.js";
import type { SandboxCgroupTimeouts } from "./sandbox-cgroup.js";
import { V1SandboxCgroup } from "./v1-sandbox-cgroup.js";
import { Reaper } from "./reaper.js";
import { V2SandboxCgroup } from "./v2-sandbox-cgroup.js";

/** The directory under each hierarchy's parent that holds every worker's groups. */
export const GUST_GROUP = "gust";
/** A tenant's group under the worker's starts with this; sandbox ids never do. */
export const TENANT_GROUP_PREFIX = "tenant-";

/**
 * The directory name of a tenant's group: its id when that is a plain name,
 * else a digest of it (tenant ids are the operator's, any string).
 */
export function tenantGroupName(tenantId: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/.test(tenantId)
    ? `${TENANT_GROUP_PREFIX}${tenantId}`
    : `${TENANT_GROUP_PREFIX}h${createHash("sha256").update(tenantId).digest("hex").slice(0, 32)}`;
}

export interface CgroupTreeOptions {
  /**
   * v2 only: the directory to create `gust/<worker>` in, instead of the top
   * of the hierarchy — a subtree delegated to the worker (systemd
   * `Delegate=yes`). It must lie inside the cgroup2 mount and hold no
   * processes of its own.
   * @default the cgroup2 mount point
   */
  parent?: string;
  /** @default DEFAULT_KILL_WAIT_MS */
  killWaitMs?: number;
  /** @default DEFAULT_FREEZE_WAIT_MS */
  freezeWaitMs?: number;
}

/** Worker and sandbox names become directory names and shell words: keep them plain. */
const GROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function checkGroupName(kind: string, name: string): string {
  if (!GROUP_NAME.test(name)) {
    throw new RangeError(
      `${kind} must be 1–128 letters, digits, '_', '.' or '-' (not starting with '.' or '-'), not ${JSON.stringify(name)}`,
    );
  }
  return name;
}

type Layout =
  | { version: 1; workerDirs: Readonly<Record<V1Controller, string>> }
  | { version: 2; workerDir: string };

export class CgroupTree {
  readonly name: string;
  readonly #layout: Layout;
  readonly #timeouts: SandboxCgroupTimeouts;
  readonly #live = new Map<string, SandboxCgroup>();
  /** Each live sandbox's limits (a v2 group moving under its tenant is made again with them). */
  readonly #limits = new Map<string, CgroupLimits>();
  /** Each live sandbox's tenant group, once known. */
  readonly #tenantOf = new Map<string, string>();
  /** Live sandboxes per tenant group: the group exists while this is above 0. */
  readonly #tenantMembers = new Map<string, number>();
  /** Tenant groups are made and removed one operation at a time. */
  #tenantOps: Promise<unknown> = Promise.resolve();
  #closed = false;

  readonly #reaper: Reaper;

  private constructor(name: string, layout: Layout, timeouts: SandboxCgroupTimeouts) {
    this.name = name;
    this.#layout = layout;
    this.#timeouts = timeouts;
    this.#reaper =
      layout.version === 2
        ? Reaper.start({ killDirs: [layout.workerDir], v2Dir: layout.workerDir })
        : Reaper.start({
            killDirs: [layout.workerDirs.memory],
            freezerDir: layout.workerDirs.freezer,
          });
  }

  /** Create (or reuse) the worker's groups; throws a CgroupError saying why when the kernel refuses. */
  static async open(
    name: string,
    support: CgroupSupport,
    options: CgroupTreeOptions = {},
  ): Promise<CgroupTree> {
    checkGroupName("worker name", name);
    if (!support.available) {
      throw new CgroupError(`control groups are not available: ${support.reason}`, {
        path: "",
        code: "UNAVAILABLE",
        retryable: false,
      });
    }
    const timeouts = {
      killWaitMs: positiveMs("killWaitMs", options.killWaitMs ?? DEFAULT_KILL_WAIT_MS),
      freezeWaitMs: positiveMs("freezeWaitMs", options.freezeWaitMs ?? DEFAULT_FREEZE_WAIT_MS),
    };
    if (support.version === 1) {
      const workerDirs = {} as Record<V1Controller, string>;
      for (const controller of V1_CONTROLLERS) {
        const dir = path.join(support.hierarchies[controller].parent, GUST_GROUP, name);
        await withRetryOnVanishedParent(() => makeDirectories(dir));
        workerDirs[controller] = dir;
      }
      return new CgroupTree(name, { version: 1, workerDirs }, timeouts);
    }
    const mountPoint = support.hierarchy.mountPoint;
    const parent = path.resolve(options.parent ?? support.hierarchy.parent);
    if (parent !== mountPoint && !parent.startsWith(`${mountPoint}/`)) {
      throw new RangeError(`parent ${parent} is not inside the cgroup2 mount ${mountPoint}`);
    }
    const workerDir = path.join(parent, GUST_GROUP, name);
    await withRetryOnVanishedParent(async () => {
      await makeDirectories(workerDir);
      await enableControllersDownTo(mountPoint, workerDir);
    });
    return new CgroupTree(name, { version: 2, workerDir }, timeouts);
  }

  get version(): CgroupVersion {
    return this.#layout.version;
  }

  /** The worker's group in each hierarchy (its sandboxes' parent). */
  get directories(): readonly string[] {
    const layout = this.#layout;
    return layout.version === 2
      ? [layout.workerDir]
      : V1_CONTROLLERS.map((controller) => layout.workerDirs[controller]);
  }

  /** Sandboxes created here and not yet disposed. */
  get sandboxes(): ReadonlyMap<string, SandboxCgroup> {
    return this.#live;
  }

  /**
   * A new, empty group with `limits`. Fails if a group of that id exists
   * (a predecessor's: call removeStale first); nothing is left behind on failure.
   */
  async create(sandboxId: string, limits: CgroupLimits, tenantId?: string): Promise<SandboxCgroup> {
    checkGroupName("sandbox id", sandboxId);
    if (sandboxId.startsWith(TENANT_GROUP_PREFIX))
      throw new RangeError(`sandbox id ${sandboxId} would pass for a tenant's group`);
    if (this.#closed) {
      throw new CgroupError("the worker's control groups are closed", {
        path: this.directories[0] ?? "",
        code: "CLOSED",
        retryable: false,
      });
    }
    const writes = limitWrites(this.#layout.version, limits);
    const tenant = tenantId === undefined ? undefined : tenantGroupName(tenantId);
    if (tenant !== undefined) await this.#enterTenant(tenant);
    const group = this.#group(sandboxId, tenant);
    const made: string[] = [];
    try {
      for (const dir of group.directories) {
        await makeDirectory(dir);
        made.push(dir);
      }
      await applyWrites((controller) => this.#sandboxDir(sandboxId, controller, tenant), writes);
    } catch (error) {
      for (const dir of made.reverse()) await removeDirectory(dir).catch(() => undefined);
      if (tenant !== undefined) await this.#leaveTenant(tenant);
      throw error;
    }
    this.#live.set(sandboxId, group);
    this.#limits.set(sandboxId, limits);
    if (tenant !== undefined) this.#tenantOf.set(sandboxId, tenant);
    return group;
  }

  /**
   * Put a live sandbox's CPU under its tenant's group, so that all of one
   * tenant's sandboxes on this worker share one weight: a tenant spinning in
   * forty sandboxes gets what a tenant busy in one gets, not forty times it.
   * A sandbox started for a function is created there; a pre-initialized one
   * moves here when it is assigned. v1 moves only the cpu hierarchy; v2 moves
   * the whole group (V2SandboxCgroup.moveTo says what happens to memory).
   */
  async assignTenant(group: SandboxCgroup, tenantId: string): Promise<void> {
    const sandboxId = group.sandboxId;
    const limits = this.#limits.get(sandboxId);
    if (this.#live.get(sandboxId) !== group || limits === undefined)
      throw new RangeError(`sandbox ${sandboxId} has no live group in this worker's tree`);
    const tenant = tenantGroupName(tenantId);
    const current = this.#tenantOf.get(sandboxId);
    if (current === tenant) return;
    if (current !== undefined)
      throw new RangeError(`sandbox ${sandboxId} already belongs to ${current}, not ${tenant}`);
    await this.#enterTenant(tenant);
    try {
      if (group instanceof V1SandboxCgroup) {
        await group.moveCpu(this.#sandboxDir(sandboxId, "cpu", tenant), [
          cpuWeightWrite(1, limits.cpuWeight),
        ]);
      } else if (group instanceof V2SandboxCgroup) {
        await group.moveTo(this.#sandboxDir(sandboxId, "memory", tenant), limits);
      }
    } catch (error) {
      await this.#leaveTenant(tenant);
      throw error;
    }
    this.#tenantOf.set(sandboxId, tenant);
  }

  /** The tenant groups with live sandboxes, and how many each has. */
  get tenants(): ReadonlyMap<string, number> {
    return this.#tenantMembers;
  }

  /**
   * Kill and remove every sandbox group under this worker's that this tree
   * did not create: what a predecessor of the same name left when it died.
   */
  async removeStale(): Promise<void> {
    // Sandbox id → the tenant group its cpu (v1) or whole group (v2) is under.
    const found = new Map<string, string | undefined>();
    const tenants = new Set<string>();
    for (const dir of this.directories) {
      for (const child of await childGroups(dir)) {
        if (!child.startsWith(TENANT_GROUP_PREFIX)) {
          if (!found.has(child)) found.set(child, undefined);
          continue;
        }
        tenants.add(child);
        for (const sandboxId of await childGroups(path.join(dir, child)))
          found.set(sandboxId, child);
      }
    }
    for (const [sandboxId, tenant] of found) {
      if (this.#live.has(sandboxId) || !GROUP_NAME.test(sandboxId)) continue;
      await this.#group(sandboxId, tenant).dispose();
    }
    for (const tenant of tenants) {
      if (this.#tenantMembers.has(tenant)) continue;
      await this.#serially(() => this.#removeTenantGroups(tenant));
    }
  }

  /** Dispose of every live sandbox group, then remove the worker's groups. */
  async close(): Promise<void> {
    this.#closed = true;
    const errors: unknown[] = [];
    for (const group of [...this.#live.values()]) {
      await group.dispose().catch((error: unknown) => errors.push(error));
    }
    await this.#tenantOps;
    for (const dir of this.directories) {
      await removeDirectory(dir).catch((error: unknown) => errors.push(error));
      // Shared by every worker on the host: removed only when the last one leaves.
      await removeDirectory(path.dirname(dir)).catch(() => undefined);
    }
    // Nothing is left for it; it exits.
    this.#reaper.close();
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Where a sandbox's group is in one controller's hierarchy. Under a tenant
   * (`tenant`): on v1 only the cpu hierarchy has tenant groups; on v2 the
   * whole group is below its tenant's.
   */
  #sandboxDir(sandboxId: string, controller: V1Controller, tenant?: string): string {
    const layout = this.#layout;
    if (layout.version === 2)
      return path.join(layout.workerDir, ...(tenant === undefined ? [] : [tenant]), sandboxId);
    const underTenant = tenant !== undefined && controller === "cpu";
    return path.join(layout.workerDirs[controller], ...(underTenant ? [tenant] : []), sandboxId);
  }

  /** A tenant's group in every hierarchy that has one (v1: cpu; v2: the one). */
  #tenantDirs(tenant: string): string[] {
    const layout = this.#layout;
    return [path.join(layout.version === 2 ? layout.workerDir : layout.workerDirs.cpu, tenant)];
  }

  #serially<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#tenantOps.then(operation);
    this.#tenantOps = result.catch(() => undefined);
    return result;
  }

  /** One more live sandbox of `tenant`: its group is made (with an equal weight) for the first. */
  #enterTenant(tenant: string): Promise<void> {
    return this.#serially(async () => {
      const members = this.#tenantMembers.get(tenant) ?? 0;
      if (members === 0) {
        const version = this.#layout.version;
        for (const dir of this.#tenantDirs(tenant)) {
          await makeDirectories(dir);
          await applyWrites(() => dir, [cpuWeightWrite(version, DEFAULT_CPU_WEIGHT)]);
          // v2: the sandboxes below get the controllers only if the tenant's group hands them on.
          if (version === 2)
            await writeText(
              `${dir}/cgroup.subtree_control`,
              V2_CONTROLLERS.map((controller) => `+${controller}`).join(" "),
            );
        }
      }
      this.#tenantMembers.set(tenant, members + 1);
    });
  }

  /** One live sandbox of `tenant` fewer: its group is removed with the last. */
  #leaveTenant(tenant: string): Promise<void> {
    return this.#serially(async () => {
      const members = (this.#tenantMembers.get(tenant) ?? 0) - 1;
      if (members > 0) {
        this.#tenantMembers.set(tenant, members);
        return;
      }
      this.#tenantMembers.delete(tenant);
      await this.#removeTenantGroups(tenant);
    });
  }

  async #removeTenantGroups(tenant: string): Promise<void> {
    for (const dir of this.#tenantDirs(tenant)) {
      await removeDirectory(dir).catch(() => undefined);
    }
  }

  #group(sandboxId: string, tenant: string | undefined): SandboxCgroup {
    const onDisposed = () => {
      if (this.#live.get(sandboxId) !== group) return;
      this.#live.delete(sandboxId);
      this.#limits.delete(sandboxId);
      const joined = this.#tenantOf.get(sandboxId);
      this.#tenantOf.delete(sandboxId);
      if (joined !== undefined) void this.#leaveTenant(joined).catch(() => undefined);
    };
    const group: SandboxCgroup =
      this.#layout.version === 2
        ? new V2SandboxCgroup(
            sandboxId,
            this.#sandboxDir(sandboxId, "memory", tenant),
            this.#timeouts,
            onDisposed,
          )
        : new V1SandboxCgroup(
            sandboxId,
            {
              memory: this.#sandboxDir(sandboxId, "memory"),
              pids: this.#sandboxDir(sandboxId, "pids"),
              cpu: this.#sandboxDir(sandboxId, "cpu", tenant),
              freezer: this.#sandboxDir(sandboxId, "freezer"),
            },
            this.#timeouts,
            onDisposed,
          );
    return group;
  }
}

function positiveMs(property: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${property} must be a positive number of ms, not ${value}`);
  return value;
}

/**
 * Another worker closing at the same moment may remove the shared `gust`
 * group between our mkdir of it and of our own group below it (ENOENT): try again.
 */
async function withRetryOnVanishedParent(step: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await step();
      return;
    } catch (error) {
      if (attempt >= 3 || !(error instanceof CgroupError) || error.code !== "ENOENT") throw error;
    }
  }
}

/**
 * On v2, list memory, pids and cpu in cgroup.subtree_control of every group
 * from the mount's top down to `workerDir`, so the worker's sandboxes get
 * them. A controller the hierarchy above does not offer, or a group on the
 * way that has processes of its own (EBUSY), is reported with the group named.
 */
async function enableControllersDownTo(mountPoint: string, workerDir: string): Promise<void> {
  const steps = path.relative(mountPoint, workerDir).split(path.sep).filter(Boolean);
  let dir = mountPoint;
  for (let index = 0; index <= steps.length; index++) {
    const offered = (await readText(`${dir}/cgroup.controllers`)).trim().split(/\s+/);
    const missing = V2_CONTROLLERS.filter((controller) => !offered.includes(controller));
    if (missing.length > 0) {
      throw new CgroupError(
        `cgroup ${dir} is not given ${missing.join(", ")} by its parent (cgroup.subtree_control above it)`,
        { path: `${dir}/cgroup.controllers`, code: "CONTROLLER_MISSING", retryable: false },
      );
    }
    const enabled = (await readText(`${dir}/cgroup.subtree_control`)).trim().split(/\s+/);
    const toEnable = V2_CONTROLLERS.filter((controller) => !enabled.includes(controller));
    if (toEnable.length > 0) {
      try {
        await writeText(`${dir}/cgroup.subtree_control`, toEnable.map((c) => `+${c}`).join(" "));
      } catch (error) {
        if (error instanceof CgroupError && error.code === "EBUSY") {
          throw new CgroupError(
            `cannot enable ${toEnable.join(", ")} below ${dir}: it has processes of its own (cgroup v2's no-internal-process rule); run the worker in a leaf group or pass a delegated, empty parent`,
            { path: error.path, code: "EBUSY", retryable: false },
            { cause: error },
          );
        }
        throw error;
      }
    }
    const next = steps[index];
    if (next === undefined) break;
    dir = path.join(dir, next);
  }
}
