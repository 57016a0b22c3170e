/**
 * The one error a control group operation throws: which file, what was being
 * done, the errno code when the kernel refused, and whether trying again can
 * help (a group that is still emptying can be removed later; a read-only
 * hierarchy will stay read-only).
 */
export class CgroupError extends Error {
  override readonly name = "CgroupError";
  /** The cgroup file or directory the operation was on. */
  readonly path: string;
  /** errno code (`EBUSY`, `EACCES`, …) when the kernel refused, else a Gust code such as `NOT_EMPTY`. */
  readonly code: string;
  readonly retryable: boolean;

  constructor(
    message: string,
    fields: { path: string; code: string; retryable: boolean },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.path = fields.path;
    this.code = fields.code;
    this.retryable = fields.retryable;
  }
}

/** errno codes after which the same write may succeed later (the group is still busy). */
const RETRYABLE_CODES = new Set(["EBUSY", "EAGAIN", "EINTR", "ENOTEMPTY"]);

export function errnoCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : "EUNKNOWN";
}

export function cgroupErrorFrom(action: string, path: string, error: unknown): CgroupError {
  const code = errnoCode(error);
  return new CgroupError(
    `${action} ${path}: ${code}`,
    { path, code, retryable: RETRYABLE_CODES.has(code) },
    { cause: error },
  );
}
