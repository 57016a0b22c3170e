/**
 * Unpacks a checked bundle into a directory. The central directory has been
 * vetted first (readCentralDirectory), so a zip refused on its headers writes
 * nothing; what can only be found while inflating (a header that lies about
 * sizes, corrupt data) stops the extraction and removes what was written.
 */
import { constants } from "node:fs";
import { chmod, lstat, mkdir, open, realpath, rm } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import { Transform } from "node:stream";
import type { Writable } from "node:stream";
import type { Entry, ZipFile } from "yauzl";
import { pipeline } from "node:stream/promises";
import { BundleError, BundleErrorReasons } from "./errors.js";
import { resolveBundleLimits } from "./limits.js";
import type { BundleLimits } from "./limits.js";
import { messageOf, readCentralDirectory } from "./zip-reader.js";

export interface ExtractResult {
  /** File entries written (directories not counted). */
  files: number;
  /** Inflated bytes written. */
  bytes: number;
}

/** Lambda needs bundle files world-readable; only the execute bit comes from the zip. */
const FILE_MODE = 0o644;
const EXECUTABLE_MODE = 0o755;
const DIRECTORY_MODE = 0o755;
// O_NOFOLLOW: a symlink already sitting at a target path is never written through.
const WRITE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

interface InflateBudget {
  used: number;
  readonly limit: number;
}

/**
 * Counts inflated bytes across the whole bundle. yauzl already stops an entry
 * at its declared size; this is the bundle-wide backstop that holds even if
 * that check were bypassed, so a bomb never writes past the limit.
 */
function countInflatedBytes(budget: InflateBudget, entryPath: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      budget.used += chunk.length;
      if (budget.used > budget.limit) {
        callback(
          new BundleError(
            BundleErrorReasons.unzippedTooLarge,
            `zip inflates to more than ${budget.limit} bytes (limit passed while writing ${entryPath})`,
            { entry: entryPath },
          ),
        );
        return;
      }
      callback(null, chunk);
    },
  });
}

function inflateError(entryPath: string, cause: unknown): BundleError {
  if (cause instanceof BundleError) return cause;
  const message = messageOf(cause);
  if (typeof (cause as NodeJS.ErrnoException | undefined)?.syscall === "string") {
    // The disk, not the zip: e.g. ENOSPC while writing.
    return new BundleError(BundleErrorReasons.io, `cannot write ${entryPath}: ${message}`, {
      entry: entryPath,
      cause,
    });
  }
  if (/^(too many|not enough) bytes in the stream/.test(message)) {
    return new BundleError(
      BundleErrorReasons.malformed,
      `zip entry ${entryPath} inflates to a different size than its header declares (${message})`,
      { entry: entryPath, cause },
    );
  }
  return new BundleError(
    BundleErrorReasons.malformed,
    `cannot inflate zip entry ${entryPath}: ${message}`,
    {
      entry: entryPath,
      cause,
    },
  );
}

/** Creates paths under one root, remembering each so a failed extraction can undo them. */
class TreeWriter {
  private readonly verified = new Set<string>();
  constructor(
    private readonly root: string,
    private readonly created: string[],
  ) {
    this.verified.add(root);
  }

  /** Resolves an entry path and refuses anything that lands outside the root. */
  target(entryPath: string): string {
    const target = resolve(this.root, entryPath);
    if (target !== this.root && !target.startsWith(this.root + sep)) {
      throw new BundleError(
        BundleErrorReasons.unsafePath,
        `zip entry path resolves outside the destination: ${entryPath}`,
        {
          entry: entryPath,
        },
      );
    }
    return target;
  }

  /**
   * Creates a directory one level at a time from the root. mkdir's recursive
   * mode would follow a symlink left inside the destination and create
   * directories wherever it points; here every existing component is checked
   * before anything is created under it.
   */
  async ensureDirectory(directory: string, entryPath: string): Promise<void> {
    if (this.verified.has(directory)) return;
    await this.ensureDirectory(dirname(directory), entryPath);
    const stats = await lstat(directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (stats === undefined) {
      await mkdir(directory, { mode: DIRECTORY_MODE });
      this.created.push(directory);
      await chmod(directory, DIRECTORY_MODE);
    } else if (stats.isSymbolicLink()) {
      const real = await realpath(directory);
      if (real !== this.root && !real.startsWith(this.root + sep)) {
        throw new BundleError(
          BundleErrorReasons.unsafePath,
          `zip entry would be written through a link outside the destination: ${entryPath}`,
          { entry: entryPath },
        );
      }
    }
    this.verified.add(directory);
  }

  /**
   * Creates the file, fixes its mode, then lets `pump` stream the entry in.
   * The entry's stream is opened only once the file is ready: yauzl starts
   * inflating as soon as it opens, and an error from a stream nobody listens
   * to yet would crash the process.
   */
  async writeFile(
    target: string,
    entryPath: string,
    executable: boolean,
    pump: (destination: Writable) => Promise<void>,
  ): Promise<void> {
    const mode = executable ? EXECUTABLE_MODE : FILE_MODE;
    const handle = await open(target, WRITE_FLAGS, mode);
    this.created.push(target);
    try {
      // The process umask or an older file's mode must not decide the result.
      await handle.chmod(mode);
    } catch (error) {
      await handle.close();
      throw error;
    }
    try {
      await pump(handle.createWriteStream());
    } catch (cause) {
      throw inflateError(entryPath, cause);
    }
  }
}

/** Streams one entry through the byte counter into `destination`, listening from the first byte. */
function pumpEntry(
  zipfile: ZipFile,
  entry: Entry,
  counter: Transform,
  destination: Writable,
): Promise<void> {
  return new Promise((resolve, reject) => {
    zipfile.openReadStream(entry, (error, content) => {
      if (error) {
        reject(error);
        return;
      }
      pipeline(content, counter, destination).then(resolve, reject);
    });
  });
}

async function undo(created: readonly string[]): Promise<void> {
  for (const path of [...created].reverse()) {
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Extracts a bundle under destDir (created if missing), with the same checks
 * as inspectZip plus a running count of inflated bytes. Files get mode 0644,
 * or 0755 when the entry's Unix mode has an execute bit. On failure every
 * file and directory this call created is removed.
 */
export async function extractZip(
  zip: Uint8Array,
  destDir: string,
  limits?: Partial<BundleLimits>,
): Promise<ExtractResult> {
  const resolved = resolveBundleLimits(limits);
  const directory = await readCentralDirectory(zip, resolved);
  const root = resolve(destDir);
  const created: string[] = [];
  const budget: InflateBudget = { used: 0, limit: resolved.maxUnzippedBytes };
  let files = 0;
  let current = "";
  try {
    const first = await mkdir(root, { recursive: true, mode: DIRECTORY_MODE });
    if (first !== undefined) created.push(first);
    const writer = new TreeWriter(await realpath(root), created);
    for (const { entry, facts } of directory.entries) {
      current = facts.path;
      const target = writer.target(facts.path);
      if (facts.isDirectory) {
        await writer.ensureDirectory(target, facts.path);
        continue;
      }
      await writer.ensureDirectory(dirname(target), facts.path);
      const counter = countInflatedBytes(budget, facts.path);
      await writer.writeFile(target, facts.path, facts.executable, (destination) =>
        pumpEntry(directory.zipfile, entry, counter, destination),
      );
      files += 1;
    }
  } catch (cause) {
    await undo(created);
    if (cause instanceof BundleError) throw cause;
    throw new BundleError(
      BundleErrorReasons.io,
      `cannot extract bundle into ${root}${current ? ` (at ${current})` : ""}: ${messageOf(cause)}`,
      { cause, ...(current ? { entry: current } : {}) },
    );
  }
  return { files, bytes: budget.used };
}
