/**
 * Installing and removing the sandbox chains, done in a scratch network
 * namespace of the test's own (iptables rules are per namespace), so the
 * host's chains, which other workers and tests may be using, are never
 * touched. (Opening SandboxNetworks still turns the host's IPv4 forwarding
 * on, as it would for any worker.)
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runChecked, runCommand } from "./commands.js";
import type { CommandRunner } from "./commands.js";
import { detectNetworkIsolation } from "./detect.js";
import {
  FirewallChains,
  findIptables,
  firewallInstalled,
  firewallIntact,
  installFirewall,
  uninstallSandboxFirewall,
} from "./firewall.js";
import type { IptablesTools } from "./firewall.js";
import { parseIpv4Prefix } from "./ipv4.js";
import { SandboxNetworks } from "./sandbox-networks.js";
import type { Ipv4Prefix } from "./ipv4.js";

const support = await detectNetworkIsolation();
const suffix = randomBytes(3).toString("hex");
const scratch = `gust-test-fw-${suffix}`;
/** Every tool run inside the scratch namespace. */
const inScratch: CommandRunner = (file, args, input) =>
  runCommand("nsenter", [`--net=/run/netns/${scratch}`, "--", file, ...args], input);

function prefix(text: string): Ipv4Prefix {
  const parsed = parseIpv4Prefix(text);
  if (!parsed) throw new Error(`bad prefix ${text}`);
  return parsed;
}

async function gustRules(): Promise<string[]> {
  const saved = await runChecked(inScratch, "iptables-save", []);
  return saved.split("\n").filter((line) => line.includes("GUST-SANDBOX"));
}

describe.skipIf(!support.egress.available)(
  support.egress.available
    ? "the sandbox firewall's installation"
    : `the sandbox firewall's installation (skipped: ${support.egress.reason})`,
  () => {
    let tools: IptablesTools;

    beforeAll(async () => {
      const found = await findIptables();
      if (typeof found === "string") throw new Error(found);
      tools = found;
      await runChecked(runCommand, "ip", ["netns", "add", scratch]);
    });

    afterAll(async () => {
      await runCommand("ip", ["netns", "delete", scratch]);
    });

    it("is idempotent, adds each worker's prefixes once, and comes off whole", async () => {
      const pool = prefix("10.213.0.0/16");
      expect(await firewallInstalled(inScratch, tools)).toBe(false);
      await installFirewall(inScratch, tools, pool, [prefix("192.0.2.0/24")]);
      const once = await gustRules();
      await installFirewall(inScratch, tools, pool, [prefix("192.0.2.0/24")]);
      expect(await gustRules()).toEqual(once);

      // A second worker with another pool and another denied prefix adds to both.
      await installFirewall(inScratch, tools, prefix("10.99.0.0/24"), [prefix("198.51.100.0/24")]);
      const rules = await gustRules();
      const denied = rules.filter((line) => line.startsWith(`-A ${FirewallChains.deny} `));
      expect(denied).toHaveLength(2);
      const masqueraded = rules.filter((line) => line.includes("MASQUERADE"));
      expect(masqueraded).toHaveLength(2);
      expect(await firewallIntact(inScratch, tools)).toBe(true);

      await uninstallSandboxFirewall(inScratch);
      expect(await gustRules()).toEqual([]);
      expect(await firewallInstalled(inScratch, tools)).toBe(false);
      expect(await firewallIntact(inScratch, tools)).toBe(false);
    });

    it("is put back by ensureFirewall once a flush took it away", async () => {
      const networks = await SandboxNetworks.open(
        { workerTag: `fw${suffix}`, addressPool: "10.213.0.0/16" },
        { run: inScratch },
      );
      try {
        expect(await firewallIntact(inScratch, tools)).toBe(true);
        expect(await networks.ensureFirewall()).toBe(false);
        await runChecked(inScratch, tools.iptables, ["-w", "-F", "INPUT"]);
        expect(await firewallIntact(inScratch, tools)).toBe(false);
        expect(await networks.ensureFirewall()).toBe(true);
        expect(await firewallIntact(inScratch, tools)).toBe(true);
      } finally {
        await networks.close();
        await uninstallSandboxFirewall(inScratch);
      }
    });
  },
);
