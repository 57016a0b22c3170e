/**
 * Starting Gust for integration tests, in either mode, with the same
 * services the `gust` command runs: "dev" on the in-memory infrastructure,
 * "fleet" on a nats-server of the test's own.
 */
import { connectNatsInfrastructure, startNatsServer, type NatsServerHandle } from "@gust/bus";
import {
  closeAll,
  startCoordinatorService,
  startDev,
  startFrontendService,
  startWorkerService,
  type Service,
} from "@gust/cli";
import type { TenantRecord } from "@gust/registry";
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
  const nats = await startNatsServer({ jetstream: true });
  const infra = await connectNatsInfrastructure({ servers: nats.url, name: "gust-test" });
  const services: Service[] = [];
  try {
    services.push(await startCoordinatorService(infra, { tenants: options.tenants }));
    services.push(await startWorkerService(infra, worker));
    const frontend = await startFrontendService(infra, {
      host: "127.0.0.1",
      port: 0,
      ...(options.frontend ? { frontend: options.frontend } : {}),
    });
    services.push(frontend);
    return {
      url: frontend.url,
      nats,
      close: async () => {
        await closeAll(services, infra);
        await nats.stop();
      },
    };
  } catch (error) {
    await closeAll(services, infra);
    await nats.stop();
    throw error;
  }
}
