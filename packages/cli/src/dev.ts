/**
 * `gust dev`: frontend, worker and coordinator in one process on the
 * in-memory infrastructure. No server to install; state lives as long as the
 * process. Binds loopback by default: the dev credentials are for this
 * machine only.
 */
import { createMemoryInfrastructure } from "@gust/bus";
import type { FrontendOptions } from "@gust/frontend";
import { TenantKeyring, type TenantRecord } from "@gust/registry";
import type { WorkerOptions } from "@gust/worker";
import {
  closeAll,
  startCoordinatorService,
  startFrontendService,
  startWorkerService,
  type Service,
} from "./services.js";

export interface DevOptions {
  /** @default "127.0.0.1" */
  host?: string;
  /** @default 9000; 0 picks a free port */
  port?: number;
  /** Tenants to create, e.g. the dev tenant. */
  tenants?: TenantRecord[];
  /** A tenants config file instead of `tenants`. */
  tenantsFile?: string;
  /** Load a tenants file other users could read, with a warning. @default false */
  allowReadableTenantsFile?: boolean;
  worker?: WorkerOptions;
  frontend?: FrontendOptions;
}

export const DEFAULT_DEV_PORT = 9000;

export interface DevServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startDev(options: DevOptions = {}): Promise<DevServer> {
  const infra = createMemoryInfrastructure();
  const services: Service[] = [];
  // The store lives in this process only, so a key that does too is enough:
  // tenants' secrets are sealed in it as in a fleet.
  const tenantKeyring = TenantKeyring.ephemeral();
  try {
    services.push(
      await startCoordinatorService(infra, {
        tenantKeyring,
        ...(options.allowReadableTenantsFile === true ? { allowReadableTenantsFile: true } : {}),
        ...(options.tenantsFile === undefined ? {} : { tenantsFile: options.tenantsFile }),
        ...(options.tenants === undefined ? {} : { tenants: options.tenants }),
      }),
    );
    const worker = await startWorkerService(infra, options.worker);
    services.push(worker);
    const frontend = await startFrontendService(infra, {
      // The worker shares the process: invocations reach it without encoding.
      localWorkers: [worker.worker],
      tenantKeyring,
      host: options.host ?? "127.0.0.1",
      port: options.port ?? DEFAULT_DEV_PORT,
      // The only frontend: it admits each tenant's whole limit, without gossip.
      frontend: { standalone: true, ...options.frontend },
    });
    services.push(frontend);
    return { url: frontend.url, port: frontend.port, close: () => closeAll(services, infra) };
  } catch (error) {
    await closeAll(services, infra);
    throw error;
  }
}
