import { describe, expect, it } from "vitest";
import { ConfigError } from "@gust/protocol";
import { fixedChainsScript } from "./firewall.js";
import { formatIpv4Prefix, linkAt, linkCount, parseIpv4Prefix } from "./ipv4.js";
import { DEFAULT_ADDRESS_POOL, resolveSandboxNetworkOptions } from "./options.js";
import { reachableNameservers } from "./resolver.js";
import { linkInterfaceName, namespaceName, slotOfNamespace } from "./names.js";

describe("sandbox network options", () => {
  it("default to egress from 10.213.0.0/16 with nothing extra denied", () => {
    const resolved = resolveSandboxNetworkOptions({ workerTag: "w1" });
    expect(formatIpv4Prefix(resolved.addressPool)).toBe(DEFAULT_ADDRESS_POOL);
    expect(resolved).toMatchObject({ workerTag: "w1", denyCidrs: [], egress: true });
  });

  it("name the property that is wrong", () => {
    const bad = [
      [{ workerTag: "has space" }, /workerTag/],
      [{ workerTag: "w", addressPool: "10.213.0.1/16" }, /addressPool/],
      [{ workerTag: "w", addressPool: "10.213.0.0/31" }, /addressPool/],
      [{ workerTag: "w", denyCidrs: ["10.0.0.0/8", "nats.internal"] }, /denyCidrs\[1\]/],
      [{ workerTag: "w", denyCidrs: ["300.1.1.1"] }, /denyCidrs\[0\]/],
    ] as const;
    for (const [options, message] of bad) {
      expect(() => resolveSandboxNetworkOptions(options)).toThrow(ConfigError);
      expect(() => resolveSandboxNetworkOptions(options)).toThrow(message);
    }
  });

  it("take a bare address as a /32", () => {
    const resolved = resolveSandboxNetworkOptions({ workerTag: "w", denyCidrs: ["192.0.2.10"] });
    expect(resolved.denyCidrs.map(formatIpv4Prefix)).toEqual(["192.0.2.10/32"]);
  });
});

describe("sandbox links", () => {
  it("cut the pool into /30s: the host's end .1, the sandbox's .2", () => {
    const pool = parseIpv4Prefix("10.213.0.0/16");
    if (!pool) throw new Error("unparsed");
    expect(linkCount(pool)).toBe(16_384);
    const third = linkAt(pool, 2);
    expect(formatIpv4Prefix(third.subnet)).toBe("10.213.0.8/30");
    expect(third).toMatchObject({ hostAddress: "10.213.0.9", sandboxAddress: "10.213.0.10" });
    const last = linkAt(pool, linkCount(pool) - 1);
    expect(last.sandboxAddress).toBe("10.213.255.254");
  });

  it("are named for their subnet, within the kernel's 15 characters, matched by gust+", () => {
    const name = linkInterfaceName(linkAt({ network: 0x0ad50000, length: 16 }, 1).subnet);
    expect(name).toBe("gust0ad50004");
    expect(name.length).toBeLessThanOrEqual(15);
  });

  it("live in namespaces whose names give back their slot, for their tag only", () => {
    expect(namespaceName("w1", 7)).toBe("gust-w1-7");
    expect(slotOfNamespace("w1", "gust-w1-7")).toBe(7);
    expect(slotOfNamespace("w1", "gust-w1-x-7")).toBeUndefined();
    expect(slotOfNamespace("w", "gust-w1-7")).toBeUndefined();
  });
});

describe("the sandbox firewall", () => {
  it("rejects everything a sandbox sends the host, and metadata before the world is accepted", () => {
    const lines = fixedChainsScript().split("\n");
    expect(lines).toContain("-A GUST-SANDBOX-INPUT -j GUST-SANDBOX-REJECT");
    const forward = lines.filter((line) => line.startsWith("-A GUST-SANDBOX-FORWARD"));
    expect(forward.at(-1)).toBe("-A GUST-SANDBOX-FORWARD -i gust+ -j ACCEPT");
    expect(forward.findIndex((line) => line.includes("169.254.0.0/16"))).toBeLessThan(
      forward.length - 2,
    );
    expect(forward.findIndex((line) => line.includes("GUST-SANDBOX-DENY"))).toBe(
      forward.length - 2,
    );
  });
});

describe("nameservers for sandboxes", () => {
  it("are the host's IPv4 ones off its loopback, link-local and the denied prefixes", () => {
    const conf = [
      "# generated",
      "nameserver 127.0.0.53",
      "nameserver 169.254.169.253",
      "nameserver fd00::53",
      "nameserver 10.0.0.2",
      "nameserver 192.0.2.53",
      "options edns0",
    ].join("\n");
    const denied = resolveSandboxNetworkOptions({ workerTag: "w", denyCidrs: ["10.0.0.0/8"] });
    expect(reachableNameservers(conf, denied.denyCidrs)).toEqual(["192.0.2.53"]);
    expect(reachableNameservers("nameserver 127.0.0.53\n", [])).toEqual([]);
  });
});
