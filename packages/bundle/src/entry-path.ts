import { posix } from "node:path";
import { BundleError, BundleErrorReasons } from "./errors.js";

/**
 * Checks a path as it appears inside a zip and returns it normalized
 * ("a/./b/" → "a/b"), or "" for the bundle root itself. Absolute paths,
 * drive letters and any ".." segment are refused outright rather than
 * normalized away: a bundle that contains them was built to escape the
 * directory it is extracted into (zip-slip).
 */
export function checkEntryPath(name: string): string {
  if (name.length === 0) {
    throw new BundleError(BundleErrorReasons.unsafePath, "zip entry has an empty name", {
      entry: name,
    });
  }
  if (name.includes("\0")) {
    throw new BundleError(
      BundleErrorReasons.unsafePath,
      `zip entry name contains a NUL byte: ${JSON.stringify(name)}`,
      {
        entry: name,
      },
    );
  }
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new BundleError(
      BundleErrorReasons.unsafePath,
      `zip entry has an absolute path: ${name}`,
      { entry: name },
    );
  }
  if (name.split("/").includes("..")) {
    throw new BundleError(
      BundleErrorReasons.unsafePath,
      `zip entry path leaves the bundle through "..": ${name}`,
      { entry: name },
    );
  }
  const normalized = posix.normalize(name).replace(/\/+$/, "");
  return normalized === "." ? "" : normalized;
}
