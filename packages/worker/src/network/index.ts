/**
 * @module
 * Sandbox networks: a network namespace per sandbox slot, loopback only or
 * with filtered, NATed egress to the world, and the host firewall that keeps
 * sandboxes from the host, the platform, cloud metadata and one another.
 */
export { SandboxNetworks } from "./sandbox-networks.js";
export { namespaceName, NETNS_DIR } from "./names.js";
export { detectNetworkIsolation } from "./detect.js";
export { sandboxResolvConf } from "./resolver.js";
export { resolveSandboxNetworkOptions, DEFAULT_ADDRESS_POOL } from "./options.js";
export { SandboxNetworkError } from "./commands.js";
export {
  FirewallChains,
  LINK_LOCAL,
  SANDBOX_LINK_PREFIX,
  uninstallSandboxFirewall,
} from "./firewall.js";

export type { SandboxNetwork, SandboxNetworksDeps } from "./sandbox-networks.js";
export type { Capability, NetworkIsolationSupport } from "./detect.js";
export type { SandboxResolvConf } from "./resolver.js";
export type { SandboxNetworkOptions, ResolvedSandboxNetworkOptions } from "./options.js";
export type { CommandRunner, CommandResult } from "./commands.js";
