/**
 * @module
 * The Node.js runtime for Gust sandboxes. The worker copies `bootstrapDir`
 * (self-contained: node: builtins only) somewhere the sandbox user can read
 * and starts `node … <copy>/<bootstrapEntry>`.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the built directory holding the bootstrap and everything it imports. */
export const bootstrapDir: string = join(dirname(fileURLToPath(import.meta.url)), "bootstrap");

/**
 * The file inside bootstrapDir to run. It is an .mjs module so that it stays
 * ESM wherever the directory is copied, with no package.json beside it.
 */
export const bootstrapEntry = "bootstrap.mjs";

export { RUNTIME_NODE_VERSION } from "./bootstrap/version.mjs";
export { RuntimeApiPaths } from "./bootstrap/runtime-api.mjs";

export type { Assignment, LambdaErrorBody } from "./bootstrap/runtime-api.mjs";
