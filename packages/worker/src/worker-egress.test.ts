/**
 * A jailed sandbox's network, end to end through a worker: with egress it
 * reaches the world (a host of this test's own, in a network namespace it
 * makes), never the host itself, link-local metadata or an operator-denied
 * network; a tenant denied egress reaches nothing, whether its sandbox starts
 * cold or was pre-initialized before its tenant was known.
 */
import { randomInt } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "@gust/bus";
import { createLogger } from "@gust/telemetry";
import { detectCgroups } from "./cgroup/index.js";
import { detectJail } from "./jail.js";
import { detectNetworkIsolation } from "./network/index.js";
import { METADATA_ADDRESS, TestWorld, WORLD_PORT, removeTestRules } from "./network/test-world.js";
import { startWorker } from "./worker.js";
import type { Worker } from "./worker.js";
import {
  MapCodeSource,
  invoke,
  makeFunction,
  nodeFunction,
  uniqueUidBase,
} from "./test-support.js";

const [jail, cgroups, network] = await Promise.all([
  detectJail(),
  detectCgroups(),
  detectNetworkIsolation(),
]);
const skipReason = !jail.available
  ? jail.reason
  : !cgroups.available
    ? cgroups.reason
    : !network.egress.available
      ? network.egress.reason
      : undefined;

/** The bash runtime: each event is `{"targets":"ip:port ip:port"}`; the answer says what each gave. */
const PROBE_BOOTSTRAP = `#!/bin/bash
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -LD "$HEADERS" "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  OUT=""
  for target in $(printf '%s' "$EVENT" | sed -e 's/.*"targets":"\\([^"]*\\)".*/\\1/'); do
    host=\${target%:*}; port=\${target##*:}
    word=$(timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port && head -c 16 <&3" 2>/dev/null)
    OUT="$OUT $target=\${word:-no}"
  done
  curl -sS "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "$OUT" >/dev/null
done
`;

describe.skipIf(skipReason !== undefined)(
  `sandbox egress through a worker${skipReason === undefined ? "" : ` (skipped: ${skipReason})`}`,
  () => {
    const logger = createLogger("worker-test", { level: "silent" });
    const bus = new MemoryBus({ logger });
    const code = new MapCodeSource();
    const pool = `10.215.${randomInt(1, 255)}.0/24`;
    let world: TestWorld;
    let worker: Worker;
    let hostAddresses: string[];
    /** A service on every address of the host, as a platform service bound to 0.0.0.0 would be. */
    let hostService: net.Server;
    let hostPort: number;

    beforeAll(async () => {
      world = await TestWorld.create(pool);
      hostService = net.createServer((socket) => socket.end("host"));
      hostService.listen(0, "0.0.0.0");
      await once(hostService, "listening");
      hostPort = (hostService.address() as AddressInfo).port;
      worker = await startWorker(
        {
          preinitializedPoolSize: 1,
          sandboxUidBase: uniqueUidBase(),
          trustTenants: true,
          sandboxAddressPool: pool,
          denyCidrs: [world.deniedPrefix],
        },
        { bus, code, logger },
      );
      hostAddresses = Object.values(os.networkInterfaces())
        .flat()
        .filter((entry) => entry !== undefined && entry.family === "IPv4" && !entry.internal)
        .map((entry) => (entry as os.NetworkInterfaceInfoIPv4).address)
        .slice(0, 3);
    });

    afterAll(async () => {
      await worker?.close();
      await bus.close();
      hostService?.close();
      await world?.close();
      if (world) await removeTestRules(pool, world.deniedPrefix);
    });

    const probe = async (egress: "deny" | undefined, targets: string[]) => {
      const fn = await makeFunction(
        code,
        [
          { path: "bootstrap", data: PROBE_BOOTSTRAP, mode: 0o755 },
          { path: "function.sh", data: "# the bootstrap probes\n" },
        ],
        {
          runtime: "provided.al2023",
          handler: "function.handler",
          ...(egress === undefined ? {} : { egress }),
        },
      );
      const reply = await invoke(bus, worker.id, fn.target, {
        payload: { targets: targets.join(" ") },
      });
      if (reply.type !== "invoke.result") throw new Error(reply.error.message);
      return Buffer.from(reply.payload).toString();
    };

    it("reaches the world, and nothing of the host, link-local or a denied network", async () => {
      const worldTarget = `${world.address}:${WORLD_PORT}`;
      const answer = await probe(undefined, [
        worldTarget,
        `${world.deniedAddress}:${WORLD_PORT}`,
        `${METADATA_ADDRESS}:${WORLD_PORT}`,
        `${world.hostAddress}:${hostPort}`,
        ...hostAddresses.map((address) => `${address}:${hostPort}`),
      ]);
      expect(answer).toContain(`${worldTarget}=world`);
      // Everything else: refused or unreachable.
      const reached = answer
        .trim()
        .split(" ")
        .filter((entry) => !entry.endsWith("=no") && !entry.startsWith(worldTarget));
      expect(reached).toEqual([]);
    });

    it("gives a tenant denied egress nothing beyond its loopback, started cold", async () => {
      const answer = await probe("deny", [`${world.address}:${WORLD_PORT}`]);
      expect(answer.trim()).toBe(`${world.address}:${WORLD_PORT}=no`);
    });

    it("takes the link away from a pre-initialized sandbox assigned to a tenant denied egress", async () => {
      const fn = await nodeFunction(
        code,
        `import net from "node:net";
         export const handler = async (event) => new Promise((resolve) => {
           const socket = net.connect({ host: event.host, port: event.port });
           socket.setTimeout(3000, () => { socket.destroy(); resolve("timeout"); });
           socket.once("data", (data) => { socket.destroy(); resolve("reached " + data); });
           socket.once("error", (error) => resolve(error.code));
         });`,
        { egress: "deny" },
      );
      const reply = await invoke(bus, worker.id, fn.target, {
        payload: { host: world.address, port: WORLD_PORT },
      });
      if (reply.type !== "invoke.result") throw new Error(reply.error.message);
      expect(reply.startKind).not.toBe("cold");
      const result = JSON.parse(Buffer.from(reply.payload).toString()) as string;
      expect(result).not.toMatch(/^reached/);
    });
  },
);
