/**
 * Kernel-level separation of sandboxes, used when the worker runs as root:
 * each sandbox gets its own uid/gid, its task root is readable only by that
 * gid and its temp dir writable only by that uid, and its Runtime API answers
 * only connections that uid opened. Node's permission model alone is a
 * guard inside the process; this keeps one tenant's files from another's even
 * for custom runtimes, which have no such guard.
 */
import { chmod, chown, lchown, lstat, mkdir, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import type { Socket } from "node:net";
import { extractZip } from "@gust/bundle";
import type { SandboxPaths } from "./sandbox-environment.js";

export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

export interface SandboxIdentity {
  uid: number;
  gid: number;
}

/** Hands out the lowest free slot, so uids stay in a small, predictable range. */
export class SlotAllocator {
  readonly #used = new Set<number>();

  allocate(): number {
    let slot = 0;
    while (this.#used.has(slot)) slot++;
    this.#used.add(slot);
    return slot;
  }

  release(slot: number): void {
    this.#used.delete(slot);
  }
}

/** Sweeps repeat while they find processes: one may fork while the last sweep runs. */
const MAX_SWEEPS = 10;

/**
 * SIGKILL every process whose real or effective uid is in [low, high). A
 * sandbox's processes can leave its process group (setsid), not its uid; the
 * worker sweeps a sandbox's uid when the sandbox ends, and its whole range
 * when it starts (a previous worker may have died without cleaning up).
 */
export async function killProcessesOfUids(low: number, high: number): Promise<number> {
  let total = 0;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    const killed = await sweepOnce(low, high);
    total += killed;
    if (killed === 0) break;
  }
  return total;
}

async function sweepOnce(low: number, high: number): Promise<number> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return 0;
  }
  let killed = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = await readFile(`/proc/${entry}/status`, "utf8");
    } catch {
      continue;
    }
    const match = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    if (!match) continue;
    const inRange = (uid: number) => uid >= low && uid < high;
    if (!inRange(Number(match[1])) && !inRange(Number(match[2]))) continue;
    try {
      process.kill(Number(entry), "SIGKILL");
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

/**
 * A sandbox's directory with an empty task root and temp dir, owned as
 * described above when it has an identity (a pre-initialized sandbox's task
 * root must exist before Node starts: the permission model is fixed then).
 */
export async function prepareSandboxDirectories(
  directory: string,
  paths: SandboxPaths,
  identity: SandboxIdentity | undefined,
): Promise<void> {
  await mkdir(directory, { recursive: true, mode: 0o711 });
  await mkdir(paths.taskRoot, { mode: 0o755 });
  await mkdir(paths.tmpDir, { mode: 0o700 });
  if (identity) {
    await grantTaskRoot(paths.taskRoot, identity);
    await ownDirectory(paths.tmpDir, identity);
  }
}

/** Unpack a function's zip into its task root, readable by its sandbox only. */
export async function installFunctionCode(
  taskRoot: string,
  zip: Uint8Array,
  identity: SandboxIdentity | undefined,
): Promise<void> {
  await extractZip(zip, taskRoot);
  if (identity) await grantTaskRoot(taskRoot, identity);
}

/** A directory only the sandbox's uid may use (its temp dir). */
export async function ownDirectory(dir: string, identity: SandboxIdentity): Promise<void> {
  await chown(dir, identity.uid, identity.gid);
  await chmod(dir, 0o700);
}

/**
 * Make a task root readable by the sandbox's group and nobody else's: owner
 * root, group the sandbox, group read (and execute where the owner has it),
 * no access for others. The sandbox cannot change its own code.
 */
export async function grantTaskRoot(dir: string, identity: SandboxIdentity): Promise<void> {
  const walk = async (target: string): Promise<void> => {
    const stats = await lstat(target);
    if (stats.isSymbolicLink()) {
      await lchown(target, 0, identity.gid);
      return;
    }
    await chown(target, 0, identity.gid);
    const mode = stats.mode & 0o7777;
    if (stats.isDirectory()) {
      await chmod(target, (mode & 0o700) | 0o050);
      for (const name of await readdir(target)) await walk(path.join(target, name));
    } else {
      await chmod(target, (mode & 0o700) | 0o040 | (mode & 0o100 ? 0o010 : 0));
    }
  };
  await walk(dir);
  await chmod(dir, 0o750);
}

const PROC_NET_FILES = ["/proc/net/tcp", "/proc/net/tcp6"];

/**
 * The uid that owns the client end of a loopback TCP connection, read from
 * /proc/net/tcp{,6}: the entry whose local port is the client's and whose
 * remote port is the server's.
 */
export async function connectionOwnerUid(socket: Socket): Promise<number | undefined> {
  const clientPort = socket.remotePort;
  const serverPort = socket.localPort;
  if (clientPort === undefined || serverPort === undefined) return undefined;
  for (const file of PROC_NET_FILES) {
    let table: string;
    try {
      table = await readFile(file, "utf8");
    } catch {
      continue;
    }
    for (const line of table.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const remote = fields[2];
      const uid = fields[7];
      if (local === undefined || remote === undefined || uid === undefined) continue;
      if (portOf(local) === clientPort && portOf(remote) === serverPort) return Number(uid);
    }
  }
  return undefined;
}

function portOf(address: string): number {
  return Number.parseInt(address.slice(address.lastIndexOf(":") + 1), 16);
}
