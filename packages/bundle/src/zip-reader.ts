/**
 * Reads a zip's central directory through yauzl and turns every entry into
 * checked facts (path, kind, declared size, executable bit). Both inspection
 * and extraction go through here, so they refuse exactly the same bundles.
 */
import yauzl from "yauzl";
import type { Entry, ZipFile } from "yauzl";
import { BundleError, BundleErrorReasons } from "./errors.js";
import { checkEntryPath } from "./entry-path.js";
import type { BundleLimits } from "./limits.js";

// yauzl 3 API that @types/yauzl (written for 2.x) does not describe.
declare module "yauzl" {
  interface Entry {
    fileNameRaw: Buffer;
    canDecodeFileData(): boolean;
  }
  interface ZipFile {
    eachEntry(): AsyncIterableIterator<Entry>;
  }
  function fromBufferPromise(buffer: Buffer, options?: Options): Promise<ZipFile>;
  function getFileNameLowLevel(
    generalPurposeBitFlag: number,
    fileNameBuffer: Buffer,
    extraFields: Array<{ id: number; data: Buffer }>,
    strictFileNames: boolean,
  ): string;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

export interface EntryFacts {
  /** Normalized, "/"-separated, no trailing slash; "" is the bundle root. */
  path: string;
  isDirectory: boolean;
  /** Inflated size the central directory claims. */
  declaredSize: number;
  /** Any execute bit set in the entry's Unix mode. */
  executable: boolean;
}

export interface ReadEntry {
  entry: Entry;
  facts: EntryFacts;
}

export interface CentralDirectory {
  zipfile: ZipFile;
  entries: ReadEntry[];
  /** Sum of the declared inflated sizes. */
  unzippedBytes: number;
}

export function describeEntry(entry: Entry): EntryFacts {
  // Names are decoded here rather than by yauzl so that an unsafe one is
  // reported as such (with the entry named) instead of as a generic read error.
  const rawName = yauzl.getFileNameLowLevel(
    entry.generalPurposeBitFlag,
    entry.fileNameRaw,
    entry.extraFields,
    false,
  );
  const path = checkEntryPath(rawName);
  const mode = entry.externalFileAttributes >>> 16;
  const type = mode & S_IFMT;
  if (type === S_IFLNK) {
    throw new BundleError(
      BundleErrorReasons.symlink,
      `zip entry is a symbolic link, which bundles may not contain: ${rawName}`,
      {
        entry: rawName,
      },
    );
  }
  if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) {
    throw new BundleError(
      BundleErrorReasons.specialFile,
      `zip entry is a special file (mode ${mode.toString(8)}), not a file or directory: ${rawName}`,
      { entry: rawName },
    );
  }
  const isDirectory = rawName.endsWith("/") || type === S_IFDIR;
  if (!isDirectory && path === "") {
    throw new BundleError(
      BundleErrorReasons.unsafePath,
      `zip entry names the bundle root as a file: ${rawName}`,
      {
        entry: rawName,
      },
    );
  }
  if (!isDirectory && entry.isEncrypted()) {
    throw new BundleError(
      BundleErrorReasons.unsupportedEntry,
      `zip entry is encrypted: ${rawName}`,
      { entry: rawName },
    );
  }
  if (!isDirectory && !entry.canDecodeFileData()) {
    throw new BundleError(
      BundleErrorReasons.unsupportedEntry,
      `zip entry uses compression method ${entry.compressionMethod}; only stored (0) and deflate (8) are supported: ${rawName}`,
      { entry: rawName },
    );
  }
  return {
    path,
    isDirectory,
    declaredSize: isDirectory ? 0 : entry.uncompressedSize,
    executable: !isDirectory && (mode & 0o111) !== 0,
  };
}

function asBuffer(zip: Uint8Array): Buffer {
  return Buffer.isBuffer(zip) ? zip : Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
}

/**
 * Opens the zip and checks every central-directory record against the limits
 * without inflating anything. Throws BundleError on the first problem.
 */
export async function readCentralDirectory(
  zip: Uint8Array,
  limits: BundleLimits,
): Promise<CentralDirectory> {
  if (!(zip instanceof Uint8Array)) {
    throw new BundleError(
      BundleErrorReasons.invalidInput,
      "bundle must be a Uint8Array of zip bytes",
    );
  }
  if (zip.byteLength > limits.maxZipBytes) {
    throw new BundleError(
      BundleErrorReasons.zipTooLarge,
      `zip is ${zip.byteLength} bytes, over the limit of ${limits.maxZipBytes}`,
    );
  }
  let zipfile: ZipFile;
  try {
    zipfile = await yauzl.fromBufferPromise(asBuffer(zip), {
      lazyEntries: true,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (cause) {
    throw new BundleError(BundleErrorReasons.notAZip, `not a zip file: ${messageOf(cause)}`, {
      cause,
    });
  }
  // The end-of-central-directory record states the count up front, so a zip
  // with a million entries is refused before any of them is read.
  if (zipfile.entryCount > limits.maxEntries) {
    throw new BundleError(
      BundleErrorReasons.tooManyEntries,
      `zip has ${zipfile.entryCount} entries, over the limit of ${limits.maxEntries}`,
    );
  }
  const entries: ReadEntry[] = [];
  let unzippedBytes = 0;
  try {
    for await (const entry of zipfile.eachEntry()) {
      const facts = describeEntry(entry);
      unzippedBytes += facts.declaredSize;
      if (unzippedBytes > limits.maxUnzippedBytes) {
        throw new BundleError(
          BundleErrorReasons.unzippedTooLarge,
          `zip declares more than ${limits.maxUnzippedBytes} bytes once unzipped (reached ${unzippedBytes} at ${facts.path})`,
          { entry: facts.path },
        );
      }
      entries.push({ entry, facts });
    }
  } catch (cause) {
    if (cause instanceof BundleError) throw cause;
    throw new BundleError(BundleErrorReasons.malformed, `malformed zip: ${messageOf(cause)}`, {
      cause,
    });
  }
  return { zipfile, entries, unzippedBytes };
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
