/**
 * Starts ProcessSandboxes: lays out the worker's directories, installs each
 * Node.js bootstrap a runtime version asks for (once, on first use), and
 * gives each sandbox its directory, uid slot, limits and runtime version.
 *
 *   <baseDir>/                       0711 (sandbox uids may pass through, not list)
 *     runtime/nodejs20.x/<bootstrap> a bootstrap version, world-readable
 *     sandboxes/<id>/                task/ (root:<gid> 0750), tmp/ (<uid> 0700)
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { CapacityError, Runtimes } from "@gust/protocol";
import type { InvokeTarget, RuntimeVersionRef } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";
import { ProcessSandbox } from "./process-sandbox.js";
import type { ProcessSandboxSpec } from "./process-sandbox.js";
import type { Sandbox, SandboxFactory } from "./sandbox.js";
import type { JailTools } from "./jail.js";
import {
  CgroupTree,
  DEFAULT_CPU_WEIGHT,
  LAMBDA_PIDS_MAX,
  cpuCoresForMemory,
} from "./cgroup/index.js";
import type { CgroupSupport, SandboxCpuModel } from "./cgroup/index.js";
import { SandboxNetworks, detectNetworkIsolation, sandboxResolvConf } from "./network/index.js";
import type { SandboxNetworkOptions } from "./network/index.js";
import { nodeHeapLimitMb } from "./sandbox-environment.js";
import { SlotAllocator, killProcessesOfUids } from "./sandbox-isolation.js";
import { leaseUidBlock, UID_BLOCK_SIZE, type UidLease } from "./uid-lease.js";
import { installNodeRuntime, nodeRuntimeFilesFor } from "./runtime-files.js";
import type { InstalledRuntime, NodeRuntimeFiles } from "./runtime-files.js";
import { RuntimeUnavailableError, runtimeVersionOf } from "./runtime-version.js";

/** How often a worker checks that its sandboxes' firewall chains are still installed. */
const FIREWALL_CHECK_MS = 30_000;

export interface ProcessSandboxFactoryOptions {
  baseDir: string;
  region: string;
  initTimeoutMs: number;
  /**
   * Run each sandbox under a uid/gid of its own (requires root), from a block
   * of uids leased host-wide from sandboxUidBase on.
   */
  isolate: boolean;
  sandboxUidBase: number;
  /** Where uid leases live. @default defaultLeaseDir() */
  uidLeaseDir?: string;
  /** The files of the default Node.js bootstrap, installed at create(). */
  nodeRuntime: NodeRuntimeFiles;
  /**
   * Where the files of other bootstrap versions come from.
   * @default nodeRuntimeFilesFor (the bootstraps @gust/runtime-node ships)
   */
  nodeBootstraps?: (version: string) => NodeRuntimeFiles | undefined;
  /**
   * The largest MemorySize one sandbox may get. A pre-initialized sandbox
   * cannot know its function's MemorySize when Node starts (the heap cap is
   * fixed then), so it gets this cap and the RSS watchdog enforces the
   * function's MemorySize once assigned.
   */
  maxSandboxMemoryMb: number;
  /**
   * Jail every sandbox (needs `isolate`): the tools, the size of its /tmp,
   * and where its control group goes (none: no control groups).
   */
  jail?: {
    tools: JailTools;
    tmpBytes: number;
    cgroups?: CgroupSupport;
    /** Each sandbox slot's network namespace and its egress (network/); absent: loopback only. */
    network?: Omit<SandboxNetworkOptions, "workerTag">;
    /**
     * How sandboxes share the CPU (with control groups): `memory`, Lambda's
     * model, caps each at MemorySize / 1,769 MB of a CPU once its init is done,
     * on top of equal weights per tenant; `shared` uses the weights alone, so
     * idle CPU goes to whoever wants it. @default "memory"
     */
    cpu?: SandboxCpuModel;
  };
  logger: Logger;
}

export class ProcessSandboxFactory implements SandboxFactory {
  readonly #options: ProcessSandboxFactoryOptions;
  /** The default bootstrap's installation; custom runtimes see it as LAMBDA_RUNTIME_DIR. */
  readonly #runtime: InstalledRuntime;
  /** Bootstrap version → its installation, started on first use. */
  readonly #installed = new Map<string, Promise<InstalledRuntime>>();
  readonly #uids: UidLease | undefined;
  /** The worker's control groups, one per sandbox under it (jailed sandboxes only). */
  readonly #cgroups: CgroupTree | undefined;
  /** Each slot's network namespace (jailed sandboxes only; absent: a fresh loopback-only one each). */
  readonly #networks: SandboxNetworks | undefined;
  /** What sandboxes see as /etc/resolv.conf when they have egress. */
  readonly #resolvConf: string | undefined;
  readonly #firewallCheck: NodeJS.Timeout | undefined;
  readonly #sandboxesDir: string;
  readonly #slots = new SlotAllocator();
  readonly #live = new Set<ProcessSandbox>();
  /** Sandboxes run in their own process groups, so they would outlive a worker that exits without closing. */
  readonly #killAllOnExit = () => {
    for (const sandbox of this.#live) sandbox.killNow();
  };
  #sequence = 0;

  private constructor(
    options: ProcessSandboxFactoryOptions,
    runtime: InstalledRuntime,
    uids: UidLease | undefined,
    cgroups: CgroupTree | undefined,
    networks: SandboxNetworks | undefined,
    resolvConf: string | undefined,
  ) {
    this.#cgroups = cgroups;
    this.#networks = networks;
    this.#resolvConf = resolvConf;
    if (networks?.egress.available) {
      // A host firewall reload or flush takes Gust's chains away; put them back.
      this.#firewallCheck = setInterval(() => {
        networks
          .ensureFirewall()
          .catch((error: unknown) =>
            options.logger.warn("could not check the sandboxes' firewall", { error }),
          );
      }, FIREWALL_CHECK_MS);
      this.#firewallCheck.unref();
    }
    this.#options = options;
    this.#runtime = runtime;
    this.#installed.set(runtime.version, Promise.resolve(runtime));
    this.#uids = uids;
    this.#sandboxesDir = path.join(options.baseDir, "sandboxes");
    process.on("exit", this.#killAllOnExit);
  }

  static async create(options: ProcessSandboxFactoryOptions): Promise<ProcessSandboxFactory> {
    await mkdir(options.baseDir, { recursive: true });
    // Sandbox uids must reach their own directories under it.
    let uids: UidLease | undefined;
    if (options.isolate) {
      await chmod(options.baseDir, 0o711);
      uids = await leaseUidBlock({
        rangeStart: options.sandboxUidBase,
        ...(options.uidLeaseDir === undefined ? {} : { dir: options.uidLeaseDir }),
      });
      // Processes left by a worker that died holding this block must not meet new tenants.
      await killProcessesOfUids(uids.base, uids.base + UID_BLOCK_SIZE);
    }
    let cgroups: CgroupTree | undefined;
    if (uids && options.jail?.cgroups?.available) {
      // Named for the uid block, so the next worker of this block removes what a dead one left.
      cgroups = await CgroupTree.open(`uids-${uids.base}`, options.jail.cgroups);
      await cgroups.removeStale();
    }
    let networks: SandboxNetworks | undefined;
    let resolvConf: string | undefined;
    if (uids && options.jail?.network) {
      const support = await detectNetworkIsolation();
      if (support.namespaces.available) {
        networks = await SandboxNetworks.open({
          ...options.jail.network,
          workerTag: `u${uids.base}`,
        });
        await networks.removeStale();
        if (networks.egress.available) {
          const resolver = await sandboxResolvConf(networks.options.denyCidrs);
          if (resolver.available) resolvConf = resolver.path;
          else options.logger.warn("sandboxes cannot resolve names", { reason: resolver.reason });
          options.logger.info("sandboxes may reach the world, not the platform", {
            denyCidrs: options.jail.network.denyCidrs ?? [],
          });
        } else {
          options.logger.warn("sandboxes get loopback only", { reason: networks.egress.reason });
        }
      } else {
        options.logger.warn("sandboxes get loopback only", {
          reason: support.namespaces.reason,
        });
      }
    }
    await mkdir(path.join(options.baseDir, "sandboxes"), { recursive: true, mode: 0o711 });
    const runtime = await installNodeRuntime(
      options.nodeRuntime,
      nodeRuntimeDir(options.baseDir, options.nodeRuntime.version),
    );
    return new ProcessSandboxFactory(options, runtime, uids, cgroups, networks, resolvConf);
  }

  /** The default bootstrap's version. */
  get runtimeVersion(): string {
    return this.#runtime.version;
  }

  startPreinitialized(version: RuntimeVersionRef): Promise<Sandbox> {
    const memoryMb = this.#options.maxSandboxMemoryMb;
    return this.#start({
      runtime: Runtimes.nodejs20,
      runtimeVersion: version,
      heapLimitMb: nodeHeapLimitMb(memoryMb),
      memoryLimitMb: memoryMb,
    });
  }

  startFor(target: InvokeTarget, zip: Uint8Array): Promise<Sandbox> {
    return this.#start({
      runtime: target.runtime,
      runtimeVersion: runtimeVersionOf(target, this.#options.region),
      heapLimitMb: nodeHeapLimitMb(target.memoryMb),
      memoryLimitMb: target.memoryMb,
      function: { target, zip },
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#live].map((sandbox) => sandbox.dispose()));
    process.off("exit", this.#killAllOnExit);
    await Promise.allSettled(this.#installed.values());
    await rm(path.join(this.#options.baseDir, "runtime", Runtimes.nodejs20), {
      recursive: true,
      force: true,
    });
    clearInterval(this.#firewallCheck);
    await this.#networks
      ?.close()
      .catch((error: unknown) =>
        this.#options.logger.warn("could not remove the sandboxes' network namespaces", { error }),
      );
    await this.#cgroups
      ?.close()
      .catch((error: unknown) =>
        this.#options.logger.warn("could not remove the worker's control groups", { error }),
      );
    await this.#uids?.release();
  }

  /** The installed files of the bootstrap a Node.js runtime version names. */
  #install(version: RuntimeVersionRef): Promise<InstalledRuntime> {
    // Custom runtimes run the bundle's own executable; they are shown the default's directory.
    if (version.recipe.kind !== "node") return Promise.resolve(this.#runtime);
    const bootstrap = version.recipe.bootstrap;
    let installed = this.#installed.get(bootstrap);
    if (installed === undefined) {
      const files = (this.#options.nodeBootstraps ?? nodeRuntimeFilesFor)(bootstrap);
      if (files === undefined) {
        return Promise.reject(
          new RuntimeUnavailableError(
            `this worker has no Node.js bootstrap ${bootstrap} (runtime version ${version.runtime}:${version.version})`,
          ),
        );
      }
      installed = installNodeRuntime(files, nodeRuntimeDir(this.#options.baseDir, bootstrap));
      // A failed installation is tried again by the next sandbox that needs it.
      installed.catch(() => this.#installed.delete(bootstrap));
      this.#installed.set(bootstrap, installed);
    }
    return installed;
  }

  async #start(
    spec: Pick<
      ProcessSandboxSpec,
      "runtime" | "runtimeVersion" | "heapLimitMb" | "memoryLimitMb" | "function"
    >,
  ): Promise<Sandbox> {
    const options = this.#options;
    const runtime = await this.#install(spec.runtimeVersion);
    const id = `sb${++this.#sequence}-${randomBytes(4).toString("hex")}`;
    const uidBase = this.#uids?.base;
    const slot = uidBase === undefined ? undefined : this.#slots.allocate();
    let released = false;
    const release = () => {
      if (slot === undefined || released) return;
      released = true;
      const networks = this.#networks;
      if (networks === undefined) {
        this.#slots.release(slot);
        return;
      }
      // The slot's namespace goes to its next sandbox only once nothing of this one runs
      // and its link is as a new sandbox expects.
      networks
        .release(slot)
        .catch((error: unknown) =>
          options.logger.warn("could not reset a sandbox slot's network", { error, slot }),
        )
        .finally(() => this.#slots.release(slot));
    };
    let started: ProcessSandbox | undefined;
    try {
      if (slot !== undefined && slot >= UID_BLOCK_SIZE) {
        throw new CapacityError(`all ${UID_BLOCK_SIZE} sandbox uids of this worker are in use`);
      }
      // A cold start knows its tenant; a pre-initialized sandbox starts with egress and
      // loses it at assignment if its tenant is denied it.
      const network =
        slot === undefined
          ? undefined
          : await this.#networks?.acquire(slot, {
              egress: spec.function?.target.egress !== "deny",
            });
      const networks = this.#networks;
      const cgroup =
        this.#cgroups === undefined
          ? undefined
          : await this.#cgroups.create(
              id,
              {
                memoryBytes: spec.memoryLimitMb * 1024 * 1024,
                pidsMax: LAMBDA_PIDS_MAX,
                cpuWeight: DEFAULT_CPU_WEIGHT,
              },
              spec.function?.target.tenantId,
            );
      const cgroups = this.#cgroups;
      const cpuModel = options.jail?.cpu ?? "memory";
      started = await ProcessSandbox.start({
        ...spec,
        id,
        directory: path.join(this.#sandboxesDir, id),
        runtimeDir: runtime.dir,
        bootstrapFile: runtime.bootstrapFile,
        identity:
          slot === undefined || uidBase === undefined
            ? undefined
            : { uid: uidBase + slot, gid: uidBase + slot },
        region: options.region,
        initTimeoutMs: options.initTimeoutMs,
        ...(options.jail === undefined || slot === undefined
          ? {}
          : {
              jail: {
                tools: options.jail.tools,
                tmpBytes: options.jail.tmpBytes,
                ...(cgroup === undefined || cgroups === undefined
                  ? {}
                  : {
                      cgroup,
                      assignTenant: (tenantId: string) => cgroups.assignTenant(cgroup, tenantId),
                      cpuCores: (memoryMb: number) =>
                        cpuModel === "memory" ? cpuCoresForMemory(memoryMb) : undefined,
                    }),
                ...(network === undefined ? {} : { netnsPath: network.netnsPath }),
                ...(network?.egress === true && this.#resolvConf !== undefined
                  ? { resolvConf: this.#resolvConf }
                  : {}),
                ...(networks === undefined
                  ? {}
                  : {
                      denyEgress: async () => {
                        await networks.denyEgress(slot);
                      },
                    }),
              },
            }),
        logger: options.logger,
        onDisposed: () => {
          if (started) this.#live.delete(started);
          release();
        },
      });
      this.#live.add(started);
      return started;
    } catch (error) {
      // ProcessSandbox.start disposes (and so releases) on failure unless it failed before that.
      release();
      throw error;
    }
  }
}

function nodeRuntimeDir(baseDir: string, bootstrapVersion: string): string {
  return path.join(baseDir, "runtime", Runtimes.nodejs20, bootstrapVersion);
}
