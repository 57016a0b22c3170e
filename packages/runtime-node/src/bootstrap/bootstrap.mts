/**
 * Entry point of a Node.js sandbox on bootstrap 1.0.0. The worker starts it as
 *   node --experimental-permission --allow-fs-read=<runtime dir> --allow-fs-read=<task root>
 *        --allow-fs-write=<tmp dir> --max-old-space-size=<n> <runtime dir>/bootstrap.mjs
 * with an environment holding only what the function may see.
 *
 * Only node: builtins may be imported here and in every file this imports:
 * the directory is copied into the sandbox on its own.
 */
import { PROFILE_1_0_0 } from "./profile.mjs";
import { runBootstrap } from "./runtime.mjs";

runBootstrap(PROFILE_1_0_0);
