/**
 * @module
 * The `gust` command's building blocks, for tests and embedding: start Gust
 * in dev mode, one fleet service on an Infrastructure, or a whole local fleet
 * of processes behind HAProxy.
 */
export { startDev, DEFAULT_DEV_PORT } from "./dev.js";
export {
  startFrontendService,
  startWorkerService,
  startCoordinatorService,
  closeAll,
  drainAll,
} from "./services.js";
export { devCredentials, devTenant, DEV_TENANT_ID } from "./dev-credentials.js";
export { deploy } from "./deploy.js";
export { invoke } from "./invoke.js";
export { fetchFleetStatus, formatFleetStatus } from "./fleet-command.js";
export { spawnGust, GUST_MAIN } from "./gust-process.js";
export {
  startLocalFleet,
  resolveLocalFleetOptions,
  DEFAULT_FLEET_PORT,
  DEFAULT_FLEET_FRONTENDS,
  DEFAULT_FLEET_WORKERS,
  DEFAULT_FLEET_START_TIMEOUT_MS,
  drainDelayFor,
} from "./local-fleet.js";
export {
  startHaproxy,
  haproxyConfig,
  checkHaproxyConfig,
  findHaproxyBinary,
  parseServerStates,
  HAPROXY_INSTALL_HINT,
  FRONTEND_HEADER,
  DEFAULT_HEALTH_CHECK_INTERVAL_MS,
} from "./haproxy.js";
export { startHealthServer, DEFAULT_HEALTH_HOST } from "./health-server.js";

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
export type { FleetStatusOptions } from "./fleet-command.js";
export type { GustProcess } from "./gust-process.js";
export type {
  LocalFleet,
  LocalFleetOptions,
  ResolvedLocalFleetOptions,
  FleetMember,
  FleetFrontend,
} from "./local-fleet.js";
export type {
  HaproxyHandle,
  HaproxyOptions,
  HaproxyConfigOptions,
  LoadBalancedServer,
  ServerState,
} from "./haproxy.js";
export type { HealthServer, HealthServerOptions } from "./health-server.js";
