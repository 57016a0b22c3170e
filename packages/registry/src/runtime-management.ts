/**
 * Lambda's runtime management controls on a function record
 * (PutRuntimeManagementConfig, https://docs.aws.amazon.com/lambda/latest/api/API_PutRuntimeManagementConfig.html):
 * which runtime version a function runs on, and what a code or configuration
 * update does to that. The FunctionRegistry applies these rules; the
 * RuntimeVersionRegistry knows the versions.
 */
import {
  isRuntimeUpdateMode,
  LambdaErrors,
  parseRuntimeVersionArn,
  RuntimeUpdateModes,
  type FunctionRecord,
  type RuntimeManagementConfig,
} from "@gust/protocol";
import type { RuntimeVersionRecord, RuntimeVersionRegistry } from "./runtime-versions.js";

export function isRuntimeManagementConfig(value: unknown): value is RuntimeManagementConfig {
  if (typeof value !== "object" || value === null) return false;
  const { updateRuntimeOn, runtimeVersionArn } = value as Record<string, unknown>;
  return (
    isRuntimeUpdateMode(updateRuntimeOn) &&
    (runtimeVersionArn === undefined || typeof runtimeVersionArn === "string")
  );
}

/**
 * Checks a requested configuration: Manual needs the ARN of an existing
 * version, the other modes take none. Returns the version Manual pins.
 * Throws InvalidParameterValueException.
 */
export async function checkRuntimeManagementConfig(
  config: RuntimeManagementConfig,
  versions: RuntimeVersionRegistry,
): Promise<RuntimeVersionRecord | undefined> {
  const { updateRuntimeOn, runtimeVersionArn } = config;
  if (!isRuntimeUpdateMode(updateRuntimeOn)) {
    throw LambdaErrors.invalidParameter(
      `UpdateRuntimeOn must be one of ${Object.values(RuntimeUpdateModes).join(", ")}`,
    );
  }
  if (updateRuntimeOn !== RuntimeUpdateModes.manual) {
    if (runtimeVersionArn !== undefined) {
      throw LambdaErrors.invalidParameter(
        `RuntimeVersionArn can be given only when UpdateRuntimeOn is Manual, not ${updateRuntimeOn}.`,
      );
    }
    return undefined;
  }
  if (runtimeVersionArn === undefined || runtimeVersionArn === "") {
    throw LambdaErrors.invalidParameter(
      "RuntimeVersionArn is required when UpdateRuntimeOn is Manual.",
    );
  }
  if (parseRuntimeVersionArn(runtimeVersionArn) === undefined) {
    throw LambdaErrors.invalidParameter(
      `${runtimeVersionArn} is not a runtime version ARN (arn:aws:lambda:<region>::runtime:<64 hex digits>).`,
    );
  }
  const pinned = await versions.find(runtimeVersionArn);
  if (!pinned) {
    throw LambdaErrors.invalidParameter(`The runtime version ${runtimeVersionArn} does not exist.`);
  }
  return pinned;
}

/**
 * The record with a checked configuration applied. Auto drops the setting
 * (a record without one is Auto); Manual pins the chosen version, which must
 * be of the function's runtime; FunctionUpdate keeps the version the
 * function runs now until its next update.
 */
export function withRuntimeManagement(
  current: FunctionRecord,
  updateRuntimeOn: RuntimeManagementConfig["updateRuntimeOn"],
  pinned: RuntimeVersionRecord | undefined,
  versions: RuntimeVersionRegistry,
): FunctionRecord {
  const { runtimeManagement: _previous, ...rest } = current;
  if (updateRuntimeOn === RuntimeUpdateModes.auto) return rest;
  if (pinned) {
    if (pinned.runtime !== current.runtime) {
      throw LambdaErrors.invalidParameter(
        `The runtime version ${pinned.name} (${pinned.arn}) is not a version of the function's runtime ${current.runtime}.`,
      );
    }
    return { ...rest, runtimeManagement: { updateRuntimeOn, runtimeVersionArn: pinned.arn } };
  }
  const now = versions.effectiveVersion(current);
  return { ...rest, runtimeManagement: { updateRuntimeOn, runtimeVersionArn: now.arn } };
}

/**
 * The record after a code or configuration update (`after`, changed from
 * `before`): FunctionUpdate takes the runtime's default of the moment; a
 * Manual pin names a version of the old runtime, so a runtime change drops it
 * (back to Auto); anything else stays.
 */
export function afterFunctionUpdate(
  before: FunctionRecord,
  after: FunctionRecord,
  versions: RuntimeVersionRegistry,
): FunctionRecord {
  const config = after.runtimeManagement;
  if (config === undefined) return after;
  if (config.updateRuntimeOn === RuntimeUpdateModes.functionUpdate) {
    const runtimeVersionArn = versions.defaultVersion(after.runtime).arn;
    return {
      ...after,
      runtimeManagement: { updateRuntimeOn: config.updateRuntimeOn, runtimeVersionArn },
    };
  }
  if (config.updateRuntimeOn === RuntimeUpdateModes.manual && after.runtime !== before.runtime) {
    const { runtimeManagement: _dropped, ...rest } = after;
    return rest;
  }
  return after;
}
