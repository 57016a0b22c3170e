import { createHash } from "node:crypto";
import { posix } from "node:path";
import { resolveBundleLimits } from "./limits.js";
import type { BundleLimits } from "./limits.js";
import { readCentralDirectory } from "./zip-reader.js";

/** What the platform records about a function's code without unpacking it. */
export interface BundleInfo {
  /** Base64 SHA-256 of the zip bytes, as Lambda reports CodeSha256. */
  codeSha256: string;
  /** Size of the zip in bytes (Lambda's CodeSize). */
  codeSize: number;
  /** Sum of the sizes the entries declare once inflated. */
  unzippedBytes: number;
  /** Entries in the zip, directories included. */
  entryCount: number;
  /** Normalized paths of the file entries (no directories), in zip order. */
  files: readonly string[];
  /** Whether a file exists at this path ("./a//b" is the same as "a/b"). */
  hasFile(path: string): boolean;
  /** Whether the file at this path has an execute bit (e.g. a custom runtime's `bootstrap`). */
  isExecutable(path: string): boolean;
}

function normalizeLookup(path: string): string {
  return posix.normalize(path).replace(/^\/+/, "").replace(/\/+$/, "");
}

/**
 * Checks a bundle against the limits and zip-slip rules from its central
 * directory alone (nothing is inflated) and describes it. Rejects with a
 * BundleError naming the problem.
 */
export async function inspectZip(
  zip: Uint8Array,
  limits?: Partial<BundleLimits>,
): Promise<BundleInfo> {
  const directory = await readCentralDirectory(zip, resolveBundleLimits(limits));
  const modes = new Map<string, boolean>();
  for (const { facts } of directory.entries) {
    if (!facts.isDirectory) modes.set(facts.path, facts.executable);
  }
  const files = Object.freeze([...modes.keys()]);
  return {
    codeSha256: createHash("sha256").update(zip).digest("base64"),
    codeSize: zip.byteLength,
    unzippedBytes: directory.unzippedBytes,
    entryCount: directory.entries.length,
    files,
    hasFile: (path) => modes.has(normalizeLookup(path)),
    isExecutable: (path) => modes.get(normalizeLookup(path)) === true,
  };
}
