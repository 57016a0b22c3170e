/**
 * Validation of a function's configuration against Lambda's rules, so a bad
 * value fails at CreateFunction/UpdateFunctionConfiguration with Lambda's
 * InvalidParameterValueException rather than at invocation.
 */
import {
  FunctionLimits,
  isRuntime,
  LambdaErrors,
  RESERVED_ENVIRONMENT_VARIABLES,
  type Runtime,
} from "@gust/protocol";

export interface FunctionConfigInput {
  runtime: Runtime;
  handler: string;
  description?: string;
  role?: string;
  timeoutSec?: number;
  memoryMb?: number;
  environment?: Record<string, string>;
}

export type FunctionConfig = Required<FunctionConfigInput>;

const ENV_NAME = /^[a-zA-Z]\w+$/;
const HANDLER = /^[^\s]{1,128}$/;

export function validateFunctionName(name: string): void {
  if (!FunctionLimits.namePattern.test(name)) {
    throw LambdaErrors.invalidParameter(
      `1 validation error detected: Value '${name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and have length 1-64`,
    );
  }
}

function integerIn(value: number, min: number, max: number, member: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw LambdaErrors.invalidParameter(
      `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: Member must have value between ${min} and ${max}`,
    );
  }
  return value;
}

function validateEnvironment(environment: Record<string, string>): Record<string, string> {
  let bytes = 0;
  for (const [key, value] of Object.entries(environment)) {
    if (!ENV_NAME.test(key)) {
      throw LambdaErrors.invalidParameter(`Environment variable name ${key} is not valid`);
    }
    if (RESERVED_ENVIRONMENT_VARIABLES.has(key)) {
      throw LambdaErrors.invalidParameter(
        `Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ${key}`,
      );
    }
    if (typeof value !== "string") {
      throw LambdaErrors.invalidParameter(`Environment variable ${key} must be a string`);
    }
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (bytes > FunctionLimits.maxEnvironmentBytes) {
    throw LambdaErrors.invalidParameter(
      `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${bytes}`,
    );
  }
  return { ...environment };
}

/** Fills defaults and checks every field; throws InvalidParameterValueException. */
export function resolveFunctionConfig(input: FunctionConfigInput): FunctionConfig {
  if (!isRuntime(input.runtime)) {
    throw LambdaErrors.invalidParameter(
      `Value ${String(input.runtime)} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, provided, provided.al2, provided.al2023]`,
    );
  }
  if (typeof input.handler !== "string" || !HANDLER.test(input.handler)) {
    throw LambdaErrors.invalidParameter(
      "Value at 'handler' failed to satisfy constraint: Member must have length less than or equal to 128 and no whitespace",
    );
  }
  const description = input.description ?? "";
  if (typeof description !== "string" || description.length > 256) {
    throw LambdaErrors.invalidParameter("Description must be a string of at most 256 characters");
  }
  const role = input.role ?? "";
  if (typeof role !== "string") throw LambdaErrors.invalidParameter("Role must be a string");
  return {
    runtime: input.runtime,
    handler: input.handler,
    description,
    role,
    timeoutSec: integerIn(
      input.timeoutSec ?? FunctionLimits.defaultTimeoutSec,
      FunctionLimits.minTimeoutSec,
      FunctionLimits.maxTimeoutSec,
      "timeout",
    ),
    memoryMb: integerIn(
      input.memoryMb ?? FunctionLimits.defaultMemoryMb,
      FunctionLimits.minMemoryMb,
      FunctionLimits.maxMemoryMb,
      "memorySize",
    ),
    environment: validateEnvironment(input.environment ?? {}),
  };
}
