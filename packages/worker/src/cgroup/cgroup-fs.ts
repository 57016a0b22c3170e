/**
 * Every read and write of a cgroup file goes through here, so the rest of the
 * module is about what to write, not how. cgroupfs is not a regular file
 * system: a value must arrive in one write(2), files cannot be created
 * (so writes never pass O_CREAT: a missing interface file is an error, not a
 * new file), and the kernel's refusal (EBUSY, EINVAL, EACCES) is the answer
 * to report, wrapped in a CgroupError naming the file.
 */
import { constants } from "node:fs";
import { access, mkdir, open, readFile, readdir, rmdir, stat } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { cgroupErrorFrom, errnoCode } from "./errors.js";

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw cgroupErrorFrom("cannot read", file, error);
  }
}

/** The file's text, or undefined when this kernel or controller has no such file. */
export async function readTextIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw cgroupErrorFrom("cannot read", file, error);
  }
}

export async function writeText(file: string, value: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, constants.O_WRONLY);
    await handle.write(value);
  } catch (error) {
    throw cgroupErrorFrom(`cannot write ${JSON.stringify(value)} to`, file, error);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Why this process may not create groups in `dir` (an errno code), or undefined if it may. */
export async function writeAccessError(dir: string): Promise<string | undefined> {
  try {
    await access(dir, constants.W_OK);
    return undefined;
  } catch (error) {
    return errnoCode(error);
  }
}

/** mkdir -p; true when the last directory was created by this call. */
export async function makeDirectories(dir: string): Promise<boolean> {
  try {
    return (await mkdir(dir, { recursive: true })) !== undefined;
  } catch (error) {
    throw cgroupErrorFrom("cannot create", dir, error);
  }
}

/** mkdir of a directory that must not exist yet (a sandbox's own group). */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (error) {
    throw cgroupErrorFrom("cannot create", dir, error);
  }
}

/** rmdir; a directory that is already gone counts as removed. */
export async function removeDirectory(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return;
    throw cgroupErrorFrom("cannot remove", dir, error);
  }
}

/** Names of the child groups (subdirectories) of a group; none if it is gone. */
export async function childGroups(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return [];
    throw cgroupErrorFrom("cannot list", dir, error);
  }
}

/**
 * A file kept open for reading and writing. cgroup v2's memory.peak (Linux
 * 6.12+) resets per open file: a write through a descriptor makes later reads
 * through that same descriptor start again from current usage, without
 * disturbing other readers. Undefined when the file is absent or read-only
 * (older kernels), which the caller treats as "cannot reset".
 */
export class HeldFile {
  readonly #handle: FileHandle;
  readonly path: string;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  static async open(path: string): Promise<HeldFile | undefined> {
    try {
      return new HeldFile(path, await open(path, constants.O_RDWR));
    } catch {
      return undefined;
    }
  }

  async read(): Promise<string> {
    const buffer = Buffer.alloc(64);
    try {
      const { bytesRead } = await this.#handle.read(buffer, 0, buffer.length, 0);
      return buffer.toString("latin1", 0, bytesRead);
    } catch (error) {
      throw cgroupErrorFrom("cannot read", this.path, error);
    }
  }

  async write(value: string): Promise<void> {
    try {
      await this.#handle.write(value, 0);
    } catch (error) {
      throw cgroupErrorFrom(`cannot write ${JSON.stringify(value)} to`, this.path, error);
    }
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => undefined);
  }
}
