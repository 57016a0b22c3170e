/**
 * @module
 * The Node.js runtime for Gust sandboxes. The worker copies `bootstrapDir`
 * (self-contained: node: builtins only) somewhere the sandbox user can read
 * and starts `node … <copy>/<entry>`, the entry of the bootstrap version the
 * sandbox's runtime version names.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the built directory holding the bootstraps and everything they import. */
export const bootstrapDir: string = join(dirname(fileURLToPath(import.meta.url)), "bootstrap");

/**
 * The file inside bootstrapDir to run for bootstrap 1.0.0. It is an .mjs
 * module so that it stays ESM wherever the directory is copied, with no
 * package.json beside it.
 */
export const bootstrapEntry = "bootstrap.mjs";

/** One bootstrap version: its directory (shared by all versions) and its entry file. */
export interface NodeBootstrap {
  version: string;
  dir: string;
  entry: string;
}

/**
 * Every bootstrap version this package ships, oldest first. Versions differ
 * only where their profiles (bootstrap/profile.mts) do:
 * - 1.0.0: Lambda's Node.js 20 runtime, callback handlers included;
 * - 2.0.0: no callback handlers (a handler declaring a third parameter fails
 *   init with Runtime.CallbackHandlerDeprecated) and a context without
 *   succeed/fail/done/callbackWaitsForEmptyEventLoop, as Lambda's nodejs24.x.
 */
export const nodeBootstraps: readonly NodeBootstrap[] = [
  { version: "1.0.0", dir: bootstrapDir, entry: bootstrapEntry },
  { version: "2.0.0", dir: bootstrapDir, entry: "bootstrap-2.0.0.mjs" },
];

/** The bootstrap of a version, or undefined when this package does not ship it. */
export function nodeBootstrap(version: string): NodeBootstrap | undefined {
  return nodeBootstraps.find((bootstrap) => bootstrap.version === version);
}

export { RUNTIME_NODE_VERSION } from "./bootstrap/version.mjs";
export { RuntimeApiPaths } from "./bootstrap/runtime-api.mjs";

export type { Assignment, LambdaErrorBody } from "./bootstrap/runtime-api.mjs";
