/**
 * The local fleet as a user runs it: nats-server, a coordinator, a worker and
 * two frontends behind HAProxy, reached only through the load balancer with
 * the AWS SDK. Requests spread over both frontends, a frontend restarted in
 * place rejoins, the bus admits only the fleet's own keys and refuses none of
 * its processes, and stopping the fleet leaves no process and no temp dir.
 */
import { access, readdir, readFile, stat } from "node:fs/promises";
import { CreateFunctionCommand, InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import {
  FRONTEND_HEADER,
  GUST_MAIN,
  HAPROXY_INSTALL_HINT,
  findHaproxyBinary,
  startLocalFleet,
  type LocalFleet,
} from "@gust/cli";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bashScriptZip, echoZip } from "./support/functions.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";

const haproxy = await findHaproxyBinary();
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** Every process below this one, found through /proc (Linux). */
async function descendants(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // The command name is in parentheses and may hold spaces; ppid follows the state.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Running, as opposed to gone or a zombie waiting for a parent that may never reap it. */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
  } catch {
    return false;
  }
}

describe.skipIf(haproxy === undefined)(
  haproxy === undefined ? `local fleet (skipped: ${HAPROXY_INSTALL_HINT})` : "local fleet",
  () => {
    let fleet: LocalFleet;
    let lambda: LambdaClient;
    /** X-Gust-Frontend of every response, in order. */
    const servedBy: string[] = [];

    beforeAll(async () => {
      fleet = await startLocalFleet({ port: 0, frontends: 2, workers: 1, pool: 1 });
      if (fleet.tenant === undefined) throw new Error("the fleet generated no tenant");
      lambda = lambdaFor(fleet.url, fleet.tenant);
      lambda.middlewareStack.add(
        (next) => async (args) => {
          const result = await next(args);
          const headers = (result.response as { headers?: Record<string, string> }).headers;
          servedBy.push(headers?.[FRONTEND_HEADER.toLowerCase()] ?? "(none)");
          return result;
        },
        { step: "deserialize", name: "recordFrontend" },
      );
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: "echo",
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: "arn:aws:iam::000000000000:role/test",
          Code: { ZipFile: await echoZip() },
        }),
      );
    }, 180_000);

    afterAll(async () => {
      lambda?.destroy();
      await fleet?.stop();
    }, 60_000);

    const invoke = async (n: number) => {
      const result = await lambda.send(
        new InvokeCommand({ FunctionName: "echo", Payload: json({ n }) }),
      );
      expect(result.FunctionError).toBeUndefined();
      return (decodePayload(result.Payload) as { echo: { n: number } }).echo.n;
    };

    /** Invokes 1..count, a few at a time, and returns which frontends answered. */
    const invokeMany = async (count: number): Promise<Set<string>> => {
      const before = servedBy.length;
      const numbers = Array.from({ length: count }, (_, index) => index + 1);
      const echoed: number[] = [];
      for (let at = 0; at < numbers.length; at += 4) {
        echoed.push(...(await Promise.all(numbers.slice(at, at + 4).map(invoke))));
      }
      expect(echoed).toEqual(numbers);
      return new Set(servedBy.slice(before));
    };

    it("answers health checks through the load balancer without credentials", async () => {
      const response = await fetch(`${fleet.url}/healthz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: "ok" });
      for (const frontend of fleet.frontends) {
        const ready = await fetch(`${frontend.url}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toMatchObject({ status: "ready", frontendId: frontend.id });
      }
    });

    it("spreads 20 invocations over both frontends", async () => {
      const frontends = await invokeMany(20);
      expect([...frontends].sort()).toEqual(["fe1", "fe2"]);
      // HAProxy's own account agrees, and it sees both frontends healthy.
      const states = await fleet.loadBalancer.serverStates();
      expect(states.map((state) => state.name).sort()).toEqual(["fe1", "fe2"]);
      for (const state of states) {
        expect(state.status).toBe("UP");
        expect(state.sessionsTotal).toBeGreaterThan(0);
      }
    }, 120_000);

    it("takes a restarted frontend back", async () => {
      const old = fleet.frontends.find((frontend) => frontend.id === "fe2")!.process.child.pid;
      const restarted = await fleet.restartFrontend("fe2");
      expect(restarted.process.child.pid).not.toBe(old);
      await fleet.loadBalancer.waitForServersUp(["fe2"]);
      expect(await invokeMany(8)).toContain("fe2");
    }, 120_000);

    it("runs its processes on an authenticated bus, each with only its own role's key", async () => {
      const seeds = fleet.natsSeedFiles!;
      for (const member of [fleet.coordinator, ...fleet.workers, ...fleet.frontends]) {
        const args = member.process.child.spawnargs;
        const role = args[args.indexOf(GUST_MAIN) + 1];
        expect(args[args.indexOf("--nats-nkey") + 1]).toBe(seeds[role as "worker"]);
        expect(args.join(" ")).not.toContain(seeds.admin);
      }
      for (const file of Object.values(seeds)) expect((await stat(file)).mode & 0o777).toBe(0o600);
      await expect(connect({ servers: fleet.natsUrl, reconnect: false })).rejects.toThrow(
        /Authorization Violation/,
      );
      expect(fleet.nats!.permissionViolations()).toEqual([]);
    });

    it("keeps a tenant's bash runtime from the bus, the frontends, the load balancer and the keys", async () => {
      const ports = [
        new URL(fleet.natsUrl).port,
        String(fleet.port),
        ...fleet.frontends.map((frontend) => new URL(frontend.url).port),
      ];
      const files = [
        ...Object.values(fleet.natsSeedFiles!),
        fleet.tenantKeyFile,
        fleet.tenantsFile,
      ];
      const script = [
        ...ports.map(
          (port) =>
            `if (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null; then echo p${port}=open; else echo p${port}=closed; fi`,
        ),
        ...files.map(
          (file, index) =>
            `if [ -e '${file}' ]; then echo f${index}=seen; else echo f${index}=unseen; fi`,
        ),
      ].join("\n");
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: "prober",
          Runtime: "provided.al2023",
          Handler: "function.handler",
          Role: "arn:aws:iam::000000000000:role/test",
          Code: { ZipFile: await bashScriptZip(script) },
        }),
      );
      const result = await lambda.send(new InvokeCommand({ FunctionName: "prober" }));
      const answer = new TextDecoder().decode(result.Payload ?? new Uint8Array());
      expect(result.FunctionError, answer).toBeUndefined();
      for (const port of ports) expect(answer).toContain(`p${port}=closed`);
      files.forEach((_, index) => expect(answer).toContain(`f${index}=unseen`));
      expect(fleet.nats!.permissionViolations()).toEqual([]);
    }, 60_000);

    it("stops every process it started and removes its temp dir", async () => {
      const pids = await descendants(process.pid);
      // nats-server, HAProxy, coordinator, worker, two frontends, and sandboxes.
      expect(pids.length).toBeGreaterThanOrEqual(6);
      await fleet.stop();
      const states = await Promise.all(
        pids.map(async (pid) => ({ pid, running: await running(pid) })),
      );
      expect(states.filter((state) => state.running)).toEqual([]);
      await expect(access(fleet.dir)).rejects.toThrow();
    }, 60_000);
  },
);
