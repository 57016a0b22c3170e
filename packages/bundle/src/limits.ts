import { ConfigError, FunctionLimits } from "@gust/protocol";

/** The sizes a bundle may reach. Lambda's deployment package limits by default. */
export interface BundleLimits {
  /** Size of the zip itself. @default FunctionLimits.maxZipBytes (50 MB) */
  maxZipBytes: number;
  /** Total size of all entries once inflated. @default FunctionLimits.maxUnzippedBytes (250 MB) */
  maxUnzippedBytes: number;
  /** Number of entries, directories included. @default FunctionLimits.maxZipEntries (10,000) */
  maxEntries: number;
}

export const DEFAULT_MAX_ZIP_BYTES = FunctionLimits.maxZipBytes;
export const DEFAULT_MAX_UNZIPPED_BYTES = FunctionLimits.maxUnzippedBytes;
export const DEFAULT_MAX_ENTRIES = FunctionLimits.maxZipEntries;

export const DEFAULT_BUNDLE_LIMITS: Readonly<BundleLimits> = Object.freeze({
  maxZipBytes: DEFAULT_MAX_ZIP_BYTES,
  maxUnzippedBytes: DEFAULT_MAX_UNZIPPED_BYTES,
  maxEntries: DEFAULT_MAX_ENTRIES,
});

/** Fills in defaults; a limit that is not a non-negative safe integer is a ConfigError naming it. */
export function resolveBundleLimits(limits: Partial<BundleLimits> = {}): BundleLimits {
  const resolved: BundleLimits = {
    maxZipBytes: limits.maxZipBytes ?? DEFAULT_MAX_ZIP_BYTES,
    maxUnzippedBytes: limits.maxUnzippedBytes ?? DEFAULT_MAX_UNZIPPED_BYTES,
    maxEntries: limits.maxEntries ?? DEFAULT_MAX_ENTRIES,
  };
  for (const [key, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ConfigError(
        `bundle limit ${key} must be a non-negative integer, got ${String(value)}`,
      );
    }
  }
  return resolved;
}
