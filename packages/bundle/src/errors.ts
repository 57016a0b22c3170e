import { GustError } from "@gust/protocol";
import type { GustErrorOptions } from "@gust/protocol";

/**
 * Why a bundle was refused. Callers map these to Lambda's answers: a zip over
 * `maxZipBytes` is RequestEntityTooLarge, the rest InvalidParameterValue.
 */
export const BundleErrorReasons = {
  notAZip: "not-a-zip",
  malformed: "malformed",
  zipTooLarge: "zip-too-large",
  tooManyEntries: "too-many-entries",
  unzippedTooLarge: "unzipped-too-large",
  unsafePath: "unsafe-path",
  symlink: "symlink",
  specialFile: "special-file",
  unsupportedEntry: "unsupported-entry",
  invalidInput: "invalid-input",
  io: "io",
} as const;
export type BundleErrorReason = (typeof BundleErrorReasons)[keyof typeof BundleErrorReasons];

/**
 * A code bundle that cannot be accepted, read or written. Never retryable:
 * the same bytes fail the same way. `entry` names the offending zip entry
 * when there is one.
 */
export class BundleError extends GustError {
  override name = "BundleError";
  readonly reason: BundleErrorReason;
  readonly entry: string | undefined;
  constructor(
    reason: BundleErrorReason,
    message: string,
    options: GustErrorOptions & { entry?: string } = {},
  ) {
    super(message, "bundle", { ...options, retryable: false });
    this.reason = reason;
    this.entry = options.entry;
  }
}
