/**
 * The runtime version a worker runs an invocation on: the one the frontend
 * chose, checked field by field since it came off the wire, or, from a
 * frontend that chose none, the runtime's built-in default (what every
 * invocation ran on before runtime versions existed).
 */
import {
  builtInDefaultRuntimeVersion,
  ConfigError,
  DecodeError,
  GustError,
  parseRuntimeVersionRef,
  type InvokeTarget,
  type RuntimeVersionRef,
} from "@gust/protocol";

/** The target with its runtime version checked and filled in; throws DecodeError. */
export function withRuntimeVersion(target: InvokeTarget, region: string): InvokeTarget {
  if (target.runtimeVersion === undefined) {
    return { ...target, runtimeVersion: builtInDefaultRuntimeVersion(region, target.runtime) };
  }
  try {
    return {
      ...target,
      runtimeVersion: parseRuntimeVersionRef(target.runtime, target.runtimeVersion),
    };
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new DecodeError(`invoke.target.runtimeVersion: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** The runtime version of a target that went through withRuntimeVersion. */
export function runtimeVersionOf(target: InvokeTarget, region: string): RuntimeVersionRef {
  return target.runtimeVersion ?? builtInDefaultRuntimeVersion(region, target.runtime);
}

/**
 * This worker cannot start the version (a bootstrap of a newer release):
 * another worker may, so the frontend may try one.
 */
export class RuntimeUnavailableError extends GustError {
  override name = "RuntimeUnavailableError";
  constructor(message: string) {
    super(message, "runtime-unavailable", { retryable: true });
  }
}
