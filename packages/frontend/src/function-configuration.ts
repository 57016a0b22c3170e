/**
 * Lambda's FunctionConfiguration (the shape every control operation returns)
 * from Gust's FunctionRecord, and the request members of CreateFunction,
 * UpdateFunctionCode and UpdateFunctionConfiguration checked for type. Ranges
 * (timeout, memory, environment size, handler) are the registry's to check,
 * so one rule serves every caller.
 *
 * Reference: https://docs.aws.amazon.com/lambda/latest/api/API_FunctionConfiguration.html
 */
import {
  FunctionLimits,
  isRuntime,
  Runtimes,
  type FunctionRecord,
  type Runtime,
} from "@gust/protocol";
import { effectiveRuntimeVersion, type FunctionConfigInput } from "@gust/registry";
import { ApiErrors } from "./api-errors.js";
import { Base64Problems, decodeBase64 } from "./base64-decoder.js";
import { zippedTooLarge } from "./code-request.js";
import { LATEST } from "./function-names.js";

export function toFunctionConfiguration(record: FunctionRecord): Record<string, unknown> {
  // The version it runs on now: the pinned one, or its runtime's default (Auto).
  const runtimeVersion = effectiveRuntimeVersion(record);
  return {
    FunctionName: record.name,
    FunctionArn: record.functionArn,
    Runtime: record.runtime,
    Role: record.role,
    Handler: record.handler,
    CodeSize: record.codeSize,
    Description: record.description,
    Timeout: record.timeoutSec,
    MemorySize: record.memoryMb,
    LastModified: record.lastModified,
    CodeSha256: record.codeSha256,
    Version: LATEST,
    Environment: { Variables: { ...record.environment } },
    TracingConfig: { Mode: "PassThrough" },
    RevisionId: record.revisionId,
    State: "Active",
    LastUpdateStatus: "Successful",
    PackageType: "Zip",
    Architectures: ["x86_64"],
    EphemeralStorage: { Size: 512 },
    ...(runtimeVersion === undefined
      ? {}
      : { RuntimeVersionConfig: { RuntimeVersionArn: runtimeVersion.arn } }),
  };
}

type Json = Record<string, unknown>;

/** The body of a control request as a JSON object; an empty body is `{}`. */
export function parseJsonObject(text: string): Json {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw ApiErrors.invalidRequestContent(
      `Could not parse request body into json: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw ApiErrors.invalidRequestContent(
      "Could not parse request body into json: expected an object",
    );
  }
  return value as Json;
}

function typeError(member: string, expected: string): Error {
  return ApiErrors.invalidParameter(`${member} must be ${expected}`);
}

function optionalString(body: Json, member: string): string | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw typeError(member, "a string");
  return value;
}

function optionalInteger(body: Json, member: string): number | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw typeError(member, "an integer");
  return value;
}

function optionalBoolean(body: Json, member: string): boolean | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw typeError(member, "a boolean");
  return value;
}

function optionalRuntime(body: Json): Runtime | undefined {
  const value = optionalString(body, "Runtime");
  if (value === undefined) return undefined;
  if (!isRuntime(value)) {
    throw ApiErrors.invalidParameter(
      `The runtime parameter of ${value} is not supported by Gust. Use one of: ${Object.values(Runtimes).join(", ")}.`,
    );
  }
  return value;
}

function optionalEnvironment(body: Json): Record<string, string> | undefined {
  const environment = body["Environment"];
  if (environment === undefined || environment === null) return undefined;
  if (typeof environment !== "object" || Array.isArray(environment)) {
    throw typeError("Environment", "an object with Variables");
  }
  const variables = (environment as Json)["Variables"];
  if (variables === undefined || variables === null) return {};
  if (typeof variables !== "object" || Array.isArray(variables)) {
    throw typeError("Environment.Variables", "a map of strings");
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(variables as Json)) {
    if (typeof value !== "string") throw typeError(`Environment.Variables.${key}`, "a string");
    out[key] = value;
  }
  return out;
}

function checkArchitectures(body: Json): void {
  const value = body["Architectures"];
  if (value === undefined || value === null) return;
  if (!Array.isArray(value) || value.length !== 1 || value[0] !== "x86_64") {
    throw ApiErrors.invalidParameter(
      'Gust supports only the x86_64 architecture: Architectures must be ["x86_64"]',
    );
  }
}

function checkUnsupported(body: Json): void {
  const packageType = body["PackageType"];
  if (packageType !== undefined && packageType !== null && packageType !== "Zip") {
    throw ApiErrors.invalidParameter("Gust supports only PackageType Zip");
  }
  const layers = body["Layers"];
  if (Array.isArray(layers) && layers.length > 0) {
    // Without its layers the function would fail at run time; say so now.
    throw ApiErrors.invalidParameter("Gust does not support layers: include them in the zip");
  }
}

/**
 * The zip of Code.ZipFile (CreateFunction) or ZipFile (UpdateFunctionCode):
 * `decoded` when the body's reader decoded it on arrival (its member is then
 * `null` here), else the member's base64, decoded strictly in one pass.
 */
function zipFrom(container: Json, where: string, decoded: Uint8Array | undefined): Uint8Array {
  for (const member of ["S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"]) {
    if (container[member] !== undefined && container[member] !== null) {
      throw ApiErrors.invalidParameter(
        `Gust accepts function code only as ${where}ZipFile (base64); ${member} (S3 or container image code) is not supported`,
      );
    }
  }
  const zipFile = container["ZipFile"];
  const zip =
    decoded !== undefined && zipFile === null
      ? decoded
      : typeof zipFile === "string"
        ? decodeBase64(zipFile, FunctionLimits.maxZipBytes)
        : undefined;
  if (zip === undefined || zip.length === 0) {
    throw ApiErrors.invalidParameter(
      `${where}ZipFile is required: the function's code as a base64 zip`,
    );
  }
  if (zip === Base64Problems.tooLarge) throw zippedTooLarge();
  if (zip === Base64Problems.invalid) {
    throw ApiErrors.invalidParameter(`${where}ZipFile is not valid base64`);
  }
  return zip;
}

export interface CreateFunctionInput {
  functionName: string;
  config: FunctionConfigInput;
  zip: Uint8Array;
}

export function parseCreateFunction(body: Json, zipFile?: Uint8Array): CreateFunctionInput {
  const functionName = optionalString(body, "FunctionName");
  if (functionName === undefined || functionName === "") {
    throw ApiErrors.validation(
      "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null",
    );
  }
  checkUnsupported(body);
  checkArchitectures(body);
  const runtime = optionalRuntime(body);
  if (runtime === undefined) {
    throw ApiErrors.invalidParameter("Runtime is required for a function whose code is a zip");
  }
  const code = body["Code"];
  if (typeof code !== "object" || code === null || Array.isArray(code)) {
    throw ApiErrors.invalidParameter('Code is required: { "ZipFile": "<base64 zip>" }');
  }
  const zip = zipFrom(code as Json, "Code.", zipFile);
  // A custom runtime's entry point is the bundle's `bootstrap`; Lambda lets it
  // go without a handler, so Gust does too.
  const handler =
    optionalString(body, "Handler") ?? (runtime === Runtimes.nodejs20 ? "" : "bootstrap");
  optionalBoolean(body, "Publish");
  return {
    functionName,
    zip,
    config: withoutUndefined({
      runtime,
      handler,
      description: optionalString(body, "Description"),
      role: optionalString(body, "Role"),
      timeoutSec: optionalInteger(body, "Timeout"),
      memoryMb: optionalInteger(body, "MemorySize"),
      environment: optionalEnvironment(body),
    }),
  };
}

export interface UpdateCodeInput {
  zip: Uint8Array;
  revisionId?: string;
  dryRun: boolean;
}

export function parseUpdateFunctionCode(body: Json, zipFile?: Uint8Array): UpdateCodeInput {
  checkArchitectures(body);
  const zip = zipFrom(body, "", zipFile);
  optionalBoolean(body, "Publish");
  return withoutUndefined({
    zip,
    revisionId: optionalString(body, "RevisionId"),
    dryRun: optionalBoolean(body, "DryRun") ?? false,
  });
}

export interface UpdateConfigurationInput {
  patch: Partial<FunctionConfigInput>;
  revisionId?: string;
}

export function parseUpdateFunctionConfiguration(body: Json): UpdateConfigurationInput {
  checkUnsupported(body);
  return withoutUndefined({
    revisionId: optionalString(body, "RevisionId"),
    patch: withoutUndefined({
      runtime: optionalRuntime(body),
      handler: optionalString(body, "Handler"),
      description: optionalString(body, "Description"),
      role: optionalString(body, "Role"),
      timeoutSec: optionalInteger(body, "Timeout"),
      memoryMb: optionalInteger(body, "MemorySize"),
      environment: optionalEnvironment(body),
    }),
  });
}

/** Drop undefined members, so a patch only names what the client sent. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
