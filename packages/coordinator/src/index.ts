/**
 * @module
 * Gust's control plane: tenants from the config file (and, later, runtime rollouts).
 */
export { startCoordinator } from "./coordinator.js";
export { applyTenants, syncTenantsFile } from "./tenant-sync.js";

export type { Coordinator, CoordinatorOptions } from "./coordinator.js";
export type { TenantFileSync } from "./tenant-sync.js";
