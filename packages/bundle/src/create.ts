/**
 * Builds bundles with yazl: from in-memory files (tests, generated code) or
 * from a directory on disk (`gust deploy <dir>`). Timestamps are fixed so the
 * same tree always yields the same bytes, hence the same CodeSha256, and a
 * redeploy of unchanged code is recognizable.
 */
import { readdir, realpath, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import { join } from "node:path";
import yazl from "yazl";
import { BundleError, BundleErrorReasons } from "./errors.js";
import { checkEntryPath } from "./entry-path.js";
import { messageOf } from "./zip-reader.js";

export interface BundleFile {
  /** Path inside the bundle, "/"-separated, relative. */
  path: string;
  /** Content; strings are written as UTF-8. */
  data: Uint8Array | string;
  /** Unix permission bits. @default 0o644 */
  mode?: number;
  /**
   * Deflate the content; false stores it as is, for data that does not
   * compress (media, archives, random bytes) and would only cost time.
   * @default true
   */
  compress?: boolean;
}

export const DEFAULT_FILE_MODE = 0o644;

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
// Local midnight 1980-01-01, the first instant a DOS timestamp can hold. With
// forceDosTimestamp it encodes to the same bytes in every time zone.
const FIXED_MTIME = new Date(1980, 0, 1);

function bundlePath(path: string): string {
  const normalized = checkEntryPath(path);
  if (normalized === "") {
    throw new BundleError(
      BundleErrorReasons.invalidInput,
      `bundle file path names the root: ${JSON.stringify(path)}`,
    );
  }
  return normalized;
}

function fileOptions(permissions: number, compress = true) {
  return {
    mtime: FIXED_MTIME,
    mode: S_IFREG | (permissions & 0o777),
    forceDosTimestamp: true,
    compress,
  };
}

/** Collects yazl's output; must be called before `end()` so no chunk is missed. */
function collect(zipfile: yazl.ZipFile): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const fail = (cause: unknown) =>
      reject(
        cause instanceof BundleError
          ? cause
          : new BundleError(BundleErrorReasons.io, `cannot build zip: ${messageOf(cause)}`, {
              cause,
            }),
      );
    zipfile.on("error", fail);
    zipfile.outputStream.on("error", fail);
    zipfile.outputStream.on("data", (chunk: Buffer) => chunks.push(chunk));
    zipfile.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

/** Zips in-memory files. Paths are checked like extracted ones; duplicates are refused. */
export async function zipFiles(files: ReadonlyArray<BundleFile>): Promise<Uint8Array> {
  const zipfile = new yazl.ZipFile();
  const output = collect(zipfile);
  const seen = new Set<string>();
  for (const file of files) {
    const path = bundlePath(file.path);
    if (seen.has(path)) {
      throw new BundleError(BundleErrorReasons.invalidInput, `bundle lists ${path} twice`, {
        entry: path,
      });
    }
    seen.add(path);
    // A view, not a copy: yazl only reads it.
    const data =
      typeof file.data === "string"
        ? Buffer.from(file.data, "utf8")
        : Buffer.from(file.data.buffer, file.data.byteOffset, file.data.byteLength);
    zipfile.addBuffer(data, path, fileOptions(file.mode ?? DEFAULT_FILE_MODE, file.compress));
  }
  zipfile.end();
  return output;
}

interface WalkedFile {
  realPath: string;
  path: string;
  mode: number;
}

interface WalkedTree {
  files: WalkedFile[];
  emptyDirectories: Array<{ path: string; mode: number }>;
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/**
 * Walks a directory in sorted order. Symlinks are followed (a bundle may not
 * contain links, but what they point at is part of the code); a dangling link
 * and sockets, FIFOs and devices are skipped, as they have no content to ship.
 * A link back to an ancestor is skipped instead of looping.
 */
async function walk(
  directory: string,
  prefix: string,
  ancestors: Set<string>,
  tree: WalkedTree,
): Promise<number> {
  const names = (await readdir(directory)).sort();
  let shipped = 0;
  for (const name of names) {
    const realPath = join(directory, name);
    const path = prefix === "" ? name : `${prefix}/${name}`;
    const stats = await statOrUndefined(realPath);
    if (stats === undefined) continue;
    if (stats.isDirectory()) {
      const real = await realpath(realPath);
      if (ancestors.has(real)) continue;
      ancestors.add(real);
      const inside = await walk(realPath, path, ancestors, tree);
      ancestors.delete(real);
      if (inside === 0) tree.emptyDirectories.push({ path, mode: stats.mode & 0o777 });
      shipped += 1;
    } else if (stats.isFile()) {
      tree.files.push({ realPath, path, mode: stats.mode & 0o777 });
      shipped += 1;
    }
  }
  return shipped;
}

/** Zips a directory tree recursively, keeping permission bits (the execute bit matters). */
export async function zipDirectory(dir: string): Promise<Uint8Array> {
  const root = await statOrUndefined(dir);
  if (root === undefined || !root.isDirectory()) {
    throw new BundleError(BundleErrorReasons.invalidInput, `not a directory: ${dir}`);
  }
  const tree: WalkedTree = { files: [], emptyDirectories: [] };
  try {
    await walk(dir, "", new Set([await realpath(dir)]), tree);
  } catch (cause) {
    throw new BundleError(BundleErrorReasons.io, `cannot read ${dir}: ${messageOf(cause)}`, {
      cause,
    });
  }
  const zipfile = new yazl.ZipFile();
  const output = collect(zipfile);
  for (const file of tree.files) {
    // addFile streams the content, so a large tree is never all in memory twice.
    zipfile.addFile(file.realPath, bundlePath(file.path), fileOptions(file.mode));
  }
  for (const directory of tree.emptyDirectories) {
    zipfile.addEmptyDirectory(bundlePath(directory.path), {
      mtime: FIXED_MTIME,
      mode: S_IFDIR | directory.mode,
      forceDosTimestamp: true,
    });
  }
  zipfile.end();
  return output;
}
