/**
 * @module
 * The `gust` command's building blocks, for tests and embedding: start Gust
 * in dev mode, or one fleet service on an Infrastructure.
 */
export { startDev, DEFAULT_DEV_PORT } from "./dev.js";
export {
  startFrontendService,
  startWorkerService,
  startCoordinatorService,
  closeAll,
} from "./services.js";
export { devCredentials, devTenant, DEV_TENANT_ID } from "./dev-credentials.js";
export { deploy } from "./deploy.js";
export { invoke } from "./invoke.js";
export { spawnGust, GUST_MAIN } from "./gust-process.js";

export type { DevOptions, DevServer } from "./dev.js";
export type {
  Service,
  FrontendService,
  FrontendServiceOptions,
  WorkerService,
  CoordinatorService,
} from "./services.js";
export type { DeployOptions } from "./deploy.js";
export type { InvokeOptions, InvokeOutcome } from "./invoke.js";
export type { GustProcess } from "./gust-process.js";
