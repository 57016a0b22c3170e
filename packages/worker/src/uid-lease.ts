/**
 * Host-wide leases of sandbox uid blocks. Workers that share a host (a dev
 * box running several, a fleet's node running two) must never hand one uid
 * to two sandboxes, and a worker sweeping for processes a dead predecessor
 * left behind must sweep only uids no live worker uses. Each worker leases a
 * block of UID_BLOCK_SIZE uids by creating a lock file with O_EXCL; a lock
 * whose holder process is gone is reclaimed.
 *
 * Reclaiming renames the stale lock away first (rename is atomic, so one
 * reclaimer wins) and checks the renamed file still names the dead holder;
 * if a live worker re-leased the block in between, its lock is linked back.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CapacityError } from "@gust/protocol";

/** uids per worker; a worker's sandbox slots are numbered within its block. */
export const UID_BLOCK_SIZE = 1024;
/** Blocks tried from the range start: 64 workers on one host. */
export const UID_BLOCKS = 64;
/** A lock without a pid yet is being written; only an old one is abandoned. */
const UNWRITTEN_LOCK_GRACE_MS = 10_000;

/** tmpfs on most Linux hosts, so leases vanish with a reboot, as the processes do. */
export function defaultLeaseDir(): string {
  return process.getuid?.() === 0
    ? "/run/gust/uid-leases"
    : path.join(os.tmpdir(), "gust-uid-leases");
}

export interface UidLease {
  /** First uid of the block. */
  base: number;
  release(): Promise<void>;
}

export interface UidLeaseOptions {
  /** First uid of the range blocks are cut from. */
  rangeStart: number;
  dir?: string;
  blocks?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function holderOf(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(file, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function youngerThan(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(file)).mtimeMs < ms;
  } catch {
    return false;
  }
}

async function tryCreate(file: string): Promise<boolean> {
  try {
    const handle = await open(file, "wx", 0o644);
    await handle.writeFile(String(process.pid));
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/** Moves a dead holder's lock out of the way; true if the block is free to create now. */
async function reclaim(file: string, deadPid: number): Promise<boolean> {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await rename(file, aside);
  } catch {
    return false; // another reclaimer won, or the holder released it
  }
  const moved = await holderOf(aside);
  if (moved !== undefined && moved !== deadPid && alive(moved)) {
    // A live worker leased it between our read and our rename: give it back.
    await link(aside, file).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    return false;
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

export async function leaseUidBlock(options: UidLeaseOptions): Promise<UidLease> {
  const dir = options.dir ?? defaultLeaseDir();
  const blocks = options.blocks ?? UID_BLOCKS;
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (let block = 0; block < blocks; block++) {
    const file = path.join(dir, `block-${options.rangeStart}-${block}`);
    let leased = await tryCreate(file);
    if (!leased) {
      const holder = await holderOf(file);
      if (holder !== undefined && (holder === process.pid || alive(holder))) continue;
      if (holder === undefined && (await youngerThan(file, UNWRITTEN_LOCK_GRACE_MS))) continue;
      leased = (await reclaim(file, holder ?? -1)) && (await tryCreate(file));
    }
    if (leased) {
      return {
        base: options.rangeStart + block * UID_BLOCK_SIZE,
        release: async () => {
          if ((await holderOf(file)) === process.pid) await unlink(file).catch(() => undefined);
        },
      };
    }
  }
  throw new CapacityError(
    `no free block of ${UID_BLOCK_SIZE} sandbox uids from ${options.rangeStart} (${blocks} blocks in ${dir} are leased by live workers)`,
  );
}
