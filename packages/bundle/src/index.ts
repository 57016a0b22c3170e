/**
 * @module
 * Function code bundles (Lambda deployment zips): inspection, safe extraction
 * with zip-slip and size limits, and creation.
 */
export { inspectZip } from "./inspect.js";
export { extractZip } from "./extract.js";
export { zipFiles, zipDirectory, DEFAULT_FILE_MODE } from "./create.js";
export {
  resolveBundleLimits,
  DEFAULT_BUNDLE_LIMITS,
  DEFAULT_MAX_ZIP_BYTES,
  DEFAULT_MAX_UNZIPPED_BYTES,
  DEFAULT_MAX_ENTRIES,
} from "./limits.js";
export { BundleError, BundleErrorReasons } from "./errors.js";

export type { BundleInfo } from "./inspect.js";
export type { ExtractResult } from "./extract.js";
export type { BundleFile } from "./create.js";
export type { BundleLimits } from "./limits.js";
export type { BundleErrorReason } from "./errors.js";
