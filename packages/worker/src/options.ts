/**
 * Worker options: every field optional with a documented default, resolved
 * once into a fully-required shape with durations in milliseconds.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { ConfigError, isSubjectToken } from "@gust/protocol";
import { DEFAULT_DISPATCH_HOLD_MS, DISPATCH_SLOTS_PER_CORE } from "./dispatch-window.js";
import type { SandboxCpuModel } from "./cgroup/index.js";

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
/** Lambda keeps an idle execution environment for minutes; five is a common observation. */
export const DEFAULT_KEEP_ALIVE_MS = 5 * 60 * 1000;
export const DEFAULT_PREINITIALIZED_POOL_SIZE = 2;
export const DEFAULT_MAX_SANDBOXES = 32;
/** Share of the machine's memory the worker hands out to sandboxes by default. */
export const DEFAULT_MEMORY_SHARE = 0.75;
/** Sandbox n runs as uid/gid DEFAULT_SANDBOX_UID_BASE + n when the worker runs as root. */
export const DEFAULT_SANDBOX_UID_BASE = 61000;
export const DEFAULT_REGION = "us-east-1";
/** Lambda's limit for the init phase of an on-demand function. */
export const DEFAULT_INIT_TIMEOUT_MS = 10_000;

/** Lambda's default EphemeralStorage: the size of a sandbox's /tmp. */
export const DEFAULT_EPHEMERAL_STORAGE_MB = 512;

export interface WorkerOptions {
  /** Subject token naming this worker on the bus. @default a random 10-character id */
  workerId?: string;
  /** Directory for code, runtimes and sandboxes. @default a fresh mkdtemp under os.tmpdir() */
  baseDir?: string;
  /** @default DEFAULT_HEARTBEAT_INTERVAL_MS (1000) */
  heartbeatIntervalMs?: number;
  /** Idle sandboxes are stopped after this long. @default DEFAULT_KEEP_ALIVE_MS (5 min) */
  keepAliveMs?: number;
  /** Started, function-less Node.js sandboxes kept ready. @default DEFAULT_PREINITIALIZED_POOL_SIZE (2) */
  preinitializedPoolSize?: number;
  /** Live sandboxes at most, pre-initialized ones included. @default DEFAULT_MAX_SANDBOXES (32) */
  maxSandboxes?: number;
  /** Sum of MemorySize over live sandboxes at most, in MB. @default 75% of os.totalmem() */
  memoryMb?: number;
  /**
   * Start of the uid/gid range sandboxes run under when the worker runs as
   * root. Each worker leases a block of 1024 uids from it, host-wide (lock
   * files under /run/gust/uid-leases), so workers sharing a host never share
   * a uid, and kills leftover processes of its block at start.
   * @default DEFAULT_SANDBOX_UID_BASE (61000)
   */
  sandboxUidBase?: number;
  /** AWS_REGION inside sandboxes. @default DEFAULT_REGION ("us-east-1") */
  region?: string;
  /** Longest a runtime may take to start and load its handler. @default DEFAULT_INIT_TIMEOUT_MS (10 s) */
  initTimeoutMs?: number;
  /**
   * Invocations of short functions handed to sandboxes at once; more wait
   * their turn (dispatch-window.ts). 0 hands every invocation out at once.
   * @default DISPATCH_SLOTS_PER_CORE (2) × os.availableParallelism()
   */
  dispatchSlots?: number;
  /**
   * The longest a short invocation holds its slot, answered or not.
   * @default DEFAULT_DISPATCH_HOLD_MS (10)
   */
  dispatchHoldMs?: number;
  /**
   * Jail each sandbox (namespaces, private /tmp, Runtime API on a unix
   * socket; see jail.ts) where the host allows it: root, bubblewrap, socat.
   * @default true
   */
  jail?: boolean;
  /**
   * Every tenant is trusted: the worker starts even where it cannot isolate
   * sandboxes from each other and from the platform (no root, no namespaces).
   * `gust dev` on a laptop is that case. Without it such a worker refuses to start.
   * @default false
   */
  trustTenants?: boolean;
  /** Size of each sandbox's private /tmp, in MB. @default DEFAULT_EPHEMERAL_STORAGE_MB (512) */
  ephemeralStorageMb?: number;
  /**
   * Jailed sandboxes may reach the world, as in Lambda (a veth of their own,
   * NAT, never the host itself, link-local addresses, other sandboxes or
   * `denyCidrs`; see network/README.md). A tenant can still be denied egress
   * in the tenants file. Needs `ip` and `iptables`; without them sandboxes get
   * loopback only.
   * @default true
   */
  egress?: boolean;
  /**
   * Networks no sandbox may reach although egress is allowed: where the
   * platform lives (NATS, frontends, the coordinator, the hosts' LAN).
   * @default []
   */
  denyCidrs?: string[];
  /**
   * How jailed sandboxes share the CPU: `memory` (Lambda's model) caps each at
   * MemorySize / 1,769 MB of a CPU after its init, on top of equal weights per
   * tenant; `shared` keeps the weights only, so a function may use idle CPU
   * beyond its share. `--sandbox-cpu`. @default "memory"
   */
  sandboxCpu?: SandboxCpuModel;
  /** Where sandbox links' addresses come from, one /30 each. @default "10.213.0.0/16" */
  sandboxAddressPool?: string;
}

export interface ResolvedWorkerOptions {
  workerId: string;
  /** Undefined when the worker creates (and later removes) its own directory. */
  baseDir: string | undefined;
  heartbeatIntervalMs: number;
  keepAliveMs: number;
  preinitializedPoolSize: number;
  maxSandboxes: number;
  memoryMb: number;
  sandboxUidBase: number;
  region: string;
  initTimeoutMs: number;
  dispatchSlots: number;
  dispatchHoldMs: number;
  jail: boolean;
  trustTenants: boolean;
  ephemeralStorageMb: number;
  egress: boolean;
  denyCidrs: string[];
  sandboxCpu: SandboxCpuModel;
  sandboxAddressPool: string | undefined;
}

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A short random id that is also a valid subject token. */
export function randomWorkerId(): string {
  const bytes = randomBytes(10);
  let id = "";
  for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return id;
}

function integer(name: string, value: number | undefined, fallback: number, min: number): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < min) {
    throw new ConfigError(
      `WorkerOptions.${name} must be an integer ≥ ${min}, got ${String(value)}`,
    );
  }
  return resolved;
}

export function resolveWorkerOptions(options: WorkerOptions = {}): ResolvedWorkerOptions {
  const workerId = options.workerId ?? randomWorkerId();
  if (!isSubjectToken(workerId)) {
    throw new ConfigError(
      `WorkerOptions.workerId must be 1–128 characters of [A-Za-z0-9_-], got ${JSON.stringify(workerId)}`,
    );
  }
  if (
    options.baseDir !== undefined &&
    (typeof options.baseDir !== "string" || options.baseDir === "")
  ) {
    throw new ConfigError("WorkerOptions.baseDir must be a non-empty path");
  }
  const region = options.region ?? DEFAULT_REGION;
  if (!/^[a-z0-9-]{1,32}$/.test(region)) {
    throw new ConfigError(`WorkerOptions.region is not a region name: ${JSON.stringify(region)}`);
  }
  const defaultMemoryMb = Math.floor((os.totalmem() / (1024 * 1024)) * DEFAULT_MEMORY_SHARE);
  return {
    workerId,
    baseDir: options.baseDir,
    heartbeatIntervalMs: integer(
      "heartbeatIntervalMs",
      options.heartbeatIntervalMs,
      DEFAULT_HEARTBEAT_INTERVAL_MS,
      1,
    ),
    keepAliveMs: integer("keepAliveMs", options.keepAliveMs, DEFAULT_KEEP_ALIVE_MS, 1),
    preinitializedPoolSize: integer(
      "preinitializedPoolSize",
      options.preinitializedPoolSize,
      DEFAULT_PREINITIALIZED_POOL_SIZE,
      0,
    ),
    maxSandboxes: integer("maxSandboxes", options.maxSandboxes, DEFAULT_MAX_SANDBOXES, 1),
    memoryMb: integer("memoryMb", options.memoryMb, defaultMemoryMb, 128),
    // Uids below 1000 belong to system accounts.
    sandboxUidBase: integer(
      "sandboxUidBase",
      options.sandboxUidBase,
      DEFAULT_SANDBOX_UID_BASE,
      1000,
    ),
    region,
    initTimeoutMs: integer("initTimeoutMs", options.initTimeoutMs, DEFAULT_INIT_TIMEOUT_MS, 1),
    dispatchSlots: integer(
      "dispatchSlots",
      options.dispatchSlots,
      DISPATCH_SLOTS_PER_CORE * os.availableParallelism(),
      0,
    ),
    dispatchHoldMs: integer("dispatchHoldMs", options.dispatchHoldMs, DEFAULT_DISPATCH_HOLD_MS, 1),
    jail: options.jail ?? true,
    trustTenants: options.trustTenants ?? false,
    // Lambda's range: 512–10,240 MB.
    ephemeralStorageMb: integer(
      "ephemeralStorageMb",
      options.ephemeralStorageMb,
      DEFAULT_EPHEMERAL_STORAGE_MB,
      1,
    ),
    egress: options.egress ?? true,
    denyCidrs: [...(options.denyCidrs ?? [])],
    sandboxCpu: options.sandboxCpu ?? "memory",
    sandboxAddressPool: options.sandboxAddressPool,
  };
}
