/**
 * Starting Gust for integration tests, in either mode, with the same
 * services the `gust` command runs: "dev" on the in-memory infrastructure,
 * "fleet" on a nats-server of the test's own that admits only Gust's roles,
 * each service connected as its own role, as `gust frontend|worker|coordinator`
 * connect. A permission a service lacks shows as a violation in the server's
 * log, which close() refuses.
 */
import {
  connectNatsInfrastructure,
  startNatsServer,
  type BusRole,
  type Infrastructure,
  type NatsServerHandle,
} from "@gust/bus";
import {
  closeAll,
  startCoordinatorService,
  startDev,
  startFrontendService,
  startWorkerService,
  type Service,
} from "@gust/cli";
import { TenantKeyring, type TenantRecord } from "@gust/registry";
import type { WorkerOptions } from "@gust/worker";
import type { FrontendOptions } from "@gust/frontend";

export type Mode = "dev" | "fleet";
export const MODES: Mode[] = ["dev", "fleet"];

export interface TestGust {
  url: string;
  nats?: NatsServerHandle;
  close(): Promise<void>;
}

export interface TestGustOptions {
  tenants: TenantRecord[];
  worker?: WorkerOptions;
  frontend?: FrontendOptions;
}

export async function startGust(mode: Mode, options: TestGustOptions): Promise<TestGust> {
  const worker: WorkerOptions = { preinitializedPoolSize: 1, ...options.worker };
  if (mode === "dev") {
    const dev = await startDev({
      port: 0,
      tenants: options.tenants,
      worker,
      ...(options.frontend ? { frontend: options.frontend } : {}),
    });
    return { url: dev.url, close: () => dev.close() };
  }
  const nats = await startNatsServer({ jetstream: true, auth: true });
  const connections: Infrastructure[] = [];
  const connectAs = async (role: BusRole) => {
    const infra = await connectNatsInfrastructure(natsOptionsFor(nats, role, `gust-test-${role}`));
    connections.push(infra);
    return infra;
  };
  const services: Service[] = [];
  // As `gust coordinator|frontend --tenant-key-file`: tenants' secrets sealed in KV.
  const tenantKeyring = TenantKeyring.ephemeral();
  const closeEverything = async () => {
    await closeAll(services);
    for (const infra of connections.reverse()) await infra.close();
    await nats.stop();
  };
  try {
    services.push(
      await startCoordinatorService(await connectAs("coordinator"), {
        tenants: options.tenants,
        tenantKeyring,
      }),
    );
    services.push(await startWorkerService(await connectAs("worker"), worker));
    const frontend = await startFrontendService(await connectAs("frontend"), {
      host: "127.0.0.1",
      port: 0,
      tenantKeyring,
      ...(options.frontend ? { frontend: options.frontend } : {}),
    });
    services.push(frontend);
    return {
      url: frontend.url,
      nats,
      close: async () => {
        const violations = nats.permissionViolations();
        await closeEverything();
        if (violations.length > 0) {
          throw new Error(`NATS refused a Gust service:\n${violations.join("\n")}`);
        }
      },
    };
  } catch (error) {
    await closeEverything();
    throw error;
  }
}

/** Connection options for a role on a server started with `auth`. */
export function natsOptionsFor(nats: NatsServerHandle, role: BusRole, name: string) {
  const identity = nats.auth?.credentials[role];
  return {
    servers: nats.url,
    name,
    role,
    ...(identity === undefined ? {} : { nkeySeed: identity.seed }),
  };
}

export interface RoleConnections {
  frontend: Infrastructure;
  worker: Infrastructure;
  coordinator: Infrastructure;
  /** Every right: for a test's own look at the bus. */
  admin: Infrastructure;
  /** Closes every connection, then fails if the server refused any of them anything. */
  close(): Promise<void>;
}

/** One connection per role on a server started with `auth`, as a fleet's processes connect. */
export async function connectRoles(nats: NatsServerHandle): Promise<RoleConnections> {
  const roles = ["coordinator", "worker", "frontend", "admin"] as const;
  const connected: Infrastructure[] = [];
  try {
    for (const role of roles) {
      connected.push(
        await connectNatsInfrastructure(natsOptionsFor(nats, role, `gust-test-${role}`)),
      );
    }
  } catch (error) {
    for (const infra of connected) await infra.close();
    throw error;
  }
  const [coordinator, worker, frontend, admin] = connected as [
    Infrastructure,
    Infrastructure,
    Infrastructure,
    Infrastructure,
  ];
  return {
    coordinator,
    worker,
    frontend,
    admin,
    close: async () => {
      for (const infra of [...connected].reverse()) await infra.close();
      const violations = nats.permissionViolations();
      if (violations.length > 0) {
        throw new Error(`NATS refused a Gust service:\n${violations.join("\n")}`);
      }
    },
  };
}
