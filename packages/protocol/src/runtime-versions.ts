/**
 * Runtime versions: a runtime (`nodejs20.x`, `provided.al2023`, …) comes in
 * immutable, named versions, each a recipe for a sandbox. Functions name a
 * runtime; the platform picks the version (the runtime's default), unless the
 * owner pins one with Lambda's runtime management controls
 * (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html).
 *
 * A version is named `<runtime>:<version>` (`nodejs20.x:1.0.0`) and, as in
 * Lambda, identified by an ARN `arn:aws:lambda:<region>::runtime:<hash>`,
 * where the hash is the SHA-256 of the runtime, version and recipe: the same
 * recipe gets the same ARN on every process of a fleet, and nothing can
 * change a version behind its ARN.
 */
import { createHash } from "node:crypto";
import { ConfigError } from "./errors.js";
import { isRuntime, Runtimes, type Runtime } from "./functions.js";

/** Lambda's UpdateRuntimeOn: when a function moves to a newer runtime version. */
export const RuntimeUpdateModes = {
  /** Follow the runtime's default version. */
  auto: "Auto",
  /** Take the runtime's default version at each code or configuration update. */
  functionUpdate: "FunctionUpdate",
  /** Stay on the version the owner chose. */
  manual: "Manual",
} as const;
export type RuntimeUpdateMode = (typeof RuntimeUpdateModes)[keyof typeof RuntimeUpdateModes];

const UPDATE_MODES: ReadonlySet<string> = new Set(Object.values(RuntimeUpdateModes));
export function isRuntimeUpdateMode(value: unknown): value is RuntimeUpdateMode {
  return typeof value === "string" && UPDATE_MODES.has(value);
}

/** A function's runtime management configuration; a function without one is Auto. */
export interface RuntimeManagementConfig {
  updateRuntimeOn: RuntimeUpdateMode;
  /**
   * Manual: the version the owner chose. FunctionUpdate: the runtime's
   * default at the function's last code or configuration update. Absent for
   * Auto.
   */
  runtimeVersionArn?: string;
}

/** How a Node.js sandbox starts: a bootstrap build of @gust/runtime-node and Node's flags. */
export interface NodeRuntimeRecipe {
  kind: "node";
  /** The bootstrap version, one of NODE_BOOTSTRAP_VERSIONS. */
  bootstrap: string;
  /** Extra flags for `node`, from RECIPE_NODE_FLAGS; the permission flags are the worker's. */
  nodeFlags: string[];
  /**
   * What Node's permission model lets handlers do beyond reading their code
   * and using their temp dir. @default nothing more
   */
  permissions?: NodeRuntimePermissions;
}

/**
 * Permissions a Node.js runtime version may grant its sandboxes. Both let a
 * handler run code outside Node's permission model (a child process or a
 * worker thread does not inherit it), so only a worker running as root,
 * whose sandboxes each have a uid of their own, still keeps tenants apart
 * by the kernel.
 */
export interface NodeRuntimePermissions {
  /** `--allow-child-process`: `child_process` works (e.g. handlers that run a binary). */
  childProcess?: boolean;
  /** `--allow-worker`: `worker_threads` works. */
  workerThreads?: boolean;
}

/** How a custom-runtime sandbox starts: an executable of the function's bundle. */
export interface ProvidedRuntimeRecipe {
  kind: "provided";
  /** The executable to run, relative to the task root (Lambda's is `bootstrap`). */
  entrypoint: string;
}

export type RuntimeRecipe = NodeRuntimeRecipe | ProvidedRuntimeRecipe;

/** A runtime version as an invocation carries it: all a worker needs to start its sandbox. */
export interface RuntimeVersionRef {
  runtime: Runtime;
  /** e.g. "1.0.0" */
  version: string;
  arn: string;
  recipe: RuntimeRecipe;
}

/**
 * The Node.js bootstraps every worker of this release ships
 * (@gust/runtime-node's `nodeBootstraps`): a recipe may name only these.
 */
export const NODE_BOOTSTRAP_VERSIONS: readonly string[] = ["1.0.0", "2.0.0"];

/**
 * Node flags a recipe may add. None of them widens what the permission model
 * lets a sandbox read, write or load.
 */
export const RECIPE_NODE_FLAGS: readonly RegExp[] = [
  /^--enable-source-maps$/,
  /^--no-warnings$/,
  /^--no-deprecation$/,
  /^--pending-deprecation$/,
  /^--throw-deprecation$/,
  /^--trace-warnings$/,
  /^--trace-uncaught$/,
  /^--frozen-intrinsics$/,
  /^--disable-proto=(delete|throw)$/,
  /^--no-experimental-fetch$/,
  /^--no-experimental-global-webcrypto$/,
  /^--no-experimental-global-customevent$/,
  /^--experimental-detect-module$/,
  /^--stack-trace-limit=\d{1,6}$/,
  /^--unhandled-rejections=(strict|warn|none|throw|warn-with-error-code)$/,
  /^--max-http-header-size=\d{1,9}$/,
];

/** Versions are short names a KV key can carry once "." is mapped (see the registry). */
export const RUNTIME_VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/;
const ARN = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+)::runtime:([0-9a-f]{64})$/;
const ENTRYPOINT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const MAX_NODE_FLAGS = 32;

/** `nodejs20.x:1.0.0`, the name operators use. */
export function runtimeVersionName(runtime: Runtime, version: string): string {
  return `${runtime}:${version}`;
}

/**
 * The name Lambda prints in INIT_START: `nodejs:20.v13`, `provided:al2023.v7`.
 * Gust's versions keep their own numbering: `nodejs:20.v1.0.0`.
 */
export function runtimeVersionLabel(runtime: Runtime, version: string): string {
  const base =
    runtime === Runtimes.nodejs20
      ? "nodejs:20"
      : runtime === Runtimes.provided
        ? "provided"
        : runtime.replace(".", ":");
  return `${base}.v${version}`;
}

function canonicalRecipe(recipe: RuntimeRecipe): unknown[] {
  if (recipe.kind === "provided") return ["provided", recipe.entrypoint];
  const granted = grantedPermissions(recipe.permissions);
  // Recipes granting nothing hash as they did before permissions existed.
  return granted.length === 0
    ? ["node", recipe.bootstrap, [...recipe.nodeFlags]]
    : ["node", recipe.bootstrap, [...recipe.nodeFlags], granted];
}

/** The permission flags a recipe grants, in a fixed order. */
export function grantedPermissions(permissions: NodeRuntimePermissions | undefined): string[] {
  return [
    ...(permissions?.childProcess ? ["--allow-child-process"] : []),
    ...(permissions?.workerThreads ? ["--allow-worker"] : []),
  ];
}

function parsePermissions(value: unknown): NodeRuntimePermissions | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError("recipe.permissions must be an object");
  }
  const permissions: NodeRuntimePermissions = {};
  for (const [key, granted] of Object.entries(value as Record<string, unknown>)) {
    if (key !== "childProcess" && key !== "workerThreads") {
      throw new ConfigError(
        `recipe.permissions.${key} is not a permission (childProcess, workerThreads)`,
      );
    }
    if (typeof granted !== "boolean") {
      throw new ConfigError(`recipe.permissions.${key} must be true or false`);
    }
    if (granted) permissions[key] = true;
  }
  return Object.keys(permissions).length === 0 ? undefined : permissions;
}

/** 64 hex digits, as Lambda's runtime version ARNs end. */
export function runtimeVersionHash(
  runtime: Runtime,
  version: string,
  recipe: RuntimeRecipe,
): string {
  const canonical = JSON.stringify([runtime, version, canonicalRecipe(recipe)]);
  return createHash("sha256").update(canonical).digest("hex");
}

export function runtimeVersionArn(region: string, hash: string): string {
  return `arn:aws:lambda:${region}::runtime:${hash}`;
}

/** The region and hash of a runtime version ARN, or undefined if it is not one. */
export function parseRuntimeVersionArn(arn: string): { region: string; hash: string } | undefined {
  const match = ARN.exec(arn);
  if (!match) return undefined;
  const [, region = "", hash = ""] = match;
  return { region, hash };
}

/**
 * A recipe checked field by field (it may come from an operator or off the
 * wire). Throws ConfigError naming what is wrong.
 */
export function parseRuntimeRecipe(runtime: Runtime, value: unknown): RuntimeRecipe {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError("a runtime recipe must be an object");
  }
  const fields = value as Record<string, unknown>;
  if (runtime === Runtimes.nodejs20) {
    if (fields["kind"] !== undefined && fields["kind"] !== "node") {
      throw new ConfigError(
        `a ${runtime} recipe has kind "node", not ${JSON.stringify(fields["kind"])}`,
      );
    }
    const bootstrap = fields["bootstrap"];
    if (typeof bootstrap !== "string" || !NODE_BOOTSTRAP_VERSIONS.includes(bootstrap)) {
      throw new ConfigError(
        `recipe.bootstrap must be one of the Node.js bootstraps Gust ships (${NODE_BOOTSTRAP_VERSIONS.join(", ")}), got ${JSON.stringify(bootstrap)}`,
      );
    }
    const flags = fields["nodeFlags"] ?? [];
    if (!Array.isArray(flags) || flags.length > MAX_NODE_FLAGS) {
      throw new ConfigError(`recipe.nodeFlags must be a list of at most ${MAX_NODE_FLAGS} flags`);
    }
    const nodeFlags: string[] = [];
    for (const flag of flags) {
      if (typeof flag !== "string" || !RECIPE_NODE_FLAGS.some((pattern) => pattern.test(flag))) {
        throw new ConfigError(
          `recipe.nodeFlags: ${JSON.stringify(flag)} is not a flag a runtime version may set`,
        );
      }
      nodeFlags.push(flag);
    }
    const permissions = parsePermissions(fields["permissions"]);
    return permissions === undefined
      ? { kind: "node", bootstrap, nodeFlags }
      : { kind: "node", bootstrap, nodeFlags, permissions };
  }
  if (fields["kind"] !== undefined && fields["kind"] !== "provided") {
    throw new ConfigError(
      `a ${runtime} recipe has kind "provided", not ${JSON.stringify(fields["kind"])}`,
    );
  }
  const entrypoint = fields["entrypoint"] ?? "bootstrap";
  if (
    typeof entrypoint !== "string" ||
    entrypoint.length > 128 ||
    !ENTRYPOINT.test(entrypoint) ||
    entrypoint.split("/").some((part) => part === "." || part === "..")
  ) {
    throw new ConfigError(
      `recipe.entrypoint must be a path inside the function's bundle, got ${JSON.stringify(entrypoint)}`,
    );
  }
  return { kind: "provided", entrypoint };
}

/**
 * A runtime version reference checked field by field, as a worker receives
 * it off the wire. Throws ConfigError naming what is wrong.
 */
export function parseRuntimeVersionRef(runtime: Runtime, value: unknown): RuntimeVersionRef {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError("a runtime version must be an object");
  }
  const fields = value as Record<string, unknown>;
  if (fields["runtime"] !== runtime) {
    throw new ConfigError(
      `the runtime version is for ${JSON.stringify(fields["runtime"])}, the function runs ${runtime}`,
    );
  }
  const version = fields["version"];
  if (typeof version !== "string" || !RUNTIME_VERSION_PATTERN.test(version)) {
    throw new ConfigError(`runtime version ${JSON.stringify(version)} is not a version name`);
  }
  const arn = fields["arn"];
  if (typeof arn !== "string" || parseRuntimeVersionArn(arn) === undefined) {
    throw new ConfigError(`${JSON.stringify(arn)} is not a runtime version ARN`);
  }
  return { runtime, version, arn, recipe: parseRuntimeRecipe(runtime, fields["recipe"]) };
}

/** A version every installation has from its first start. */
export interface BuiltInRuntimeVersion {
  runtime: Runtime;
  version: string;
  recipe: RuntimeRecipe;
  description: string;
  /** The runtime's default until an operator chooses another. */
  isDefault: boolean;
}

const PROVIDED_RECIPE: ProvidedRuntimeRecipe = { kind: "provided", entrypoint: "bootstrap" };

export const BUILT_IN_RUNTIME_VERSIONS: readonly BuiltInRuntimeVersion[] = [
  {
    runtime: Runtimes.nodejs20,
    version: "1.0.0",
    recipe: { kind: "node", bootstrap: "1.0.0", nodeFlags: [] },
    description: "Node.js 20: async and callback handlers, context.succeed/fail/done",
    isDefault: true,
  },
  {
    runtime: Runtimes.nodejs20,
    version: "2.0.0",
    recipe: { kind: "node", bootstrap: "2.0.0", nodeFlags: [] },
    description:
      "Node.js 20 without callback handlers (Runtime.CallbackHandlerDeprecated) nor context.succeed/fail/done, as Lambda's nodejs24.x",
    isDefault: false,
  },
  ...[Runtimes.provided, Runtimes.providedAl2, Runtimes.providedAl2023].map((runtime) => ({
    runtime,
    version: "1.0.0",
    recipe: PROVIDED_RECIPE,
    description: "the bundle's executable bootstrap, started with no arguments",
    isDefault: true,
  })),
];

/** The reference to a built-in version in a region. */
export function builtInRuntimeVersionRef(
  region: string,
  builtIn: BuiltInRuntimeVersion,
): RuntimeVersionRef {
  return {
    runtime: builtIn.runtime,
    version: builtIn.version,
    arn: runtimeVersionArn(
      region,
      runtimeVersionHash(builtIn.runtime, builtIn.version, builtIn.recipe),
    ),
    recipe: builtIn.recipe,
  };
}

/** The runtime's built-in default version: what a fresh installation runs. */
export function builtInDefaultRuntimeVersion(region: string, runtime: Runtime): RuntimeVersionRef {
  const builtIn = BUILT_IN_RUNTIME_VERSIONS.find(
    (candidate) => candidate.runtime === runtime && candidate.isDefault,
  );
  if (!builtIn || !isRuntime(runtime)) throw new ConfigError(`no built-in version of ${runtime}`);
  return builtInRuntimeVersionRef(region, builtIn);
}
