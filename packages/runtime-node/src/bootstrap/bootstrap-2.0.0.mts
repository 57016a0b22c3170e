/**
 * Entry point of a Node.js sandbox on bootstrap 2.0.0: the same runtime as
 * bootstrap.mjs (1.0.0) without callback-style handlers, as a real runtime
 * upgrade might drop them (see profile.mts). Started the same way.
 */
import { PROFILE_2_0_0 } from "./profile.mjs";
import { runBootstrap } from "./runtime.mjs";

runBootstrap(PROFILE_2_0_0);
