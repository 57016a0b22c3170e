/**
 * @module
 * Gust's control plane: tenants from the config file and runtime rollouts.
 */
export { startCoordinator } from "./coordinator.js";
export { applyTenants, syncTenantsFile } from "./tenant-sync.js";
export { RolloutEngine, DEFAULT_ROLLOUT_FLUSH_MS } from "./rollout-engine.js";
export {
  judge,
  twoProportionZ,
  resolveVerdictRule,
  DEFAULT_Z_CRITICAL,
  DEFAULT_MIN_RATE_INCREASE,
} from "./rollout-verdict.js";
export {
  RolloutNotifier,
  signWebhookBody,
  verdictEvent,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_EVENT_HEADER,
} from "./rollout-notify.js";

export type { Coordinator, CoordinatorOptions } from "./coordinator.js";
export type { TenantFileSync, TenantFileSyncOptions } from "./tenant-sync.js";
export type { RolloutEngineOptions } from "./rollout-engine.js";
export type { Judgement, VerdictRule, VerdictRuleOptions } from "./rollout-verdict.js";
