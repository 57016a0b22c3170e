/**
 * The frontend's admission: @gust/admission's AdmissionController, kept in
 * step with the tenant directory and the function registry, behind the
 * frontend's Admission seam.
 *
 * What it mirrors, and from where:
 * - a tenant's maximum M: every tenant of the directory at start, a tenant
 *   seen on a request whose M differs from the one mirrored, and, at most
 *   once a second, the whole directory when a peer's report names a tenant
 *   not mirrored yet (a peer may hear of a new tenant first; until then the
 *   controller would assume the default M for it);
 * - reserved concurrency: every function with one at start (only tenants
 *   the registry counts reservations for are listed), then every change the
 *   registry reports (`onChange`, fed by its KV watch in a fleet).
 *
 * One judge of Lambda's rule. PutFunctionConcurrency is checked by the
 * registry alone, against its fleet-wide store and the caller's M: the
 * controller's view of reservations lags the store (by a watch event), so it
 * must not second-guess what the store accepted. It is therefore built with
 * `minUnreserved: 0`, and a reservation it still refuses (more reserved than
 * M, after racing puts or a lowered M) is applied anyway: its pool and the
 * shrunken unreserved pool must match what the registry holds, or a
 * function reserved at 0 would run.
 */
import {
  AdmissionController,
  type AdmissionPolicyOptions,
  type DemandReport,
  type LoanMessage,
  type Rejection as ControllerRejection,
  type ShareMode,
  type Ticket as ControllerTicket,
  type TenantSnapshot,
} from "@gust/admission";
import type { Bus } from "@gust/bus";
import { LambdaApiError, type FunctionRecord } from "@gust/protocol";
import type { FunctionRegistry, Tenant, TenantDirectory } from "@gust/registry";
import { observeTenantLimits, type Logger, type TenantLimitSample } from "@gust/telemetry";
import type { Admission, Rejection, Ticket } from "./admission.js";
import { GossipTransport } from "./gossip.js";
import type { ResolvedFrontendOptions } from "./options.js";
import { workerCensus } from "./worker-census.js";

export interface FleetAdmissionDeps {
  registry: Pick<FunctionRegistry, "onChange" | "list" | "reservedTotal">;
  tenants: Pick<TenantDirectory, "list">;
  logger: Logger;
  /** The controller's clock. */
  now: () => number;
}

export interface FleetAdmissionOptions {
  /** Unique per process start (FrontendOptions' instanceId). */
  instanceId: string;
  standalone: boolean;
  fleetSizeHint: number;
  policy: AdmissionPolicyOptions;
  /** Delivers a loan message to the frontend it names; must not throw. */
  sendLoanMessage?: (message: LoanMessage) => void;
  /** The transport asks the workers what departed or never-heard frontends left running. */
  workerCensus?: boolean;
}

/** How often a peer's report naming an unknown tenant may make this frontend re-read the directory. */
const DIRECTORY_RESYNC_MS = 1000;

/** Pages of ListFunctions read at start to find reserved functions. */
const LIST_PAGE = 1000;

export class FleetAdmission implements Admission {
  readonly controller: AdmissionController;
  readonly loanWaitMs: number;
  /** M as last given to the controller, per tenant. */
  private readonly maxima = new Map<string, number>();
  private readonly tickets = new WeakMap<Ticket, ControllerTicket>();
  private readonly rejections = new WeakMap<Rejection, ControllerRejection>();
  private lastResync = Number.NEGATIVE_INFINITY;
  private readonly standalone: boolean;
  private stopWatching: (() => void) | undefined;
  private stopMetrics: (() => void) | undefined;

  constructor(
    private readonly deps: FleetAdmissionDeps,
    options: FleetAdmissionOptions,
  ) {
    this.controller = new AdmissionController({
      frontendId: options.instanceId,
      standalone: options.standalone,
      fleetSizeHint: options.fleetSizeHint,
      policy: { ...options.policy, minUnreserved: 0 },
      ...(options.sendLoanMessage === undefined
        ? {}
        : { sendLoanMessage: options.sendLoanMessage }),
      workerCensus: options.workerCensus ?? false,
    });
    // A loan comes within loanTimeoutMs; a raise waiting for acknowledgement (a pool
    // waking from idle) within about a gossip interval.
    this.loanWaitMs = Math.max(
      this.controller.policy.loanTimeoutMs,
      this.controller.policy.gossipIntervalMs,
    );
    this.standalone = options.standalone;
  }

  get instanceId(): string {
    return this.controller.frontendId;
  }

  /** Mirror the directory's tenants and the registry's reservations; report limits as metrics. */
  async start(): Promise<void> {
    if (this.stopWatching) return;
    // Watch first, then read, so no change falls between the two; applying
    // the same reservation twice changes nothing.
    this.stopWatching = this.deps.registry.onChange((key, record) => {
      if (record) {
        this.functionChanged(record.tenantId, record.name, record.reservedConcurrency);
        return;
      }
      // Deleted: the key is functionKey(tenantId, name).
      const slash = key.indexOf("/");
      if (slash > 0) this.functionChanged(key.slice(0, slash), key.slice(slash + 1), undefined);
    });
    this.resyncTenants();
    for (const tenant of this.deps.tenants.list()) {
      if (this.deps.registry.reservedTotal(tenant.id) === 0) continue;
      let marker: string | undefined;
      do {
        const page = await this.deps.registry.list(tenant.id, {
          maxItems: LIST_PAGE,
          ...(marker === undefined ? {} : { marker }),
        });
        for (const record of page.functions) {
          if (record.reservedConcurrency !== undefined) {
            this.functionChanged(record.tenantId, record.name, record.reservedConcurrency);
          }
        }
        marker = page.nextMarker;
      } while (marker !== undefined);
    }
    this.stopMetrics = observeTenantLimits(() => this.limitSamples());
  }

  stop(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.stopMetrics?.();
    this.stopMetrics = undefined;
  }

  // ---- the invocation path -----------------------------------------------------------

  tryAcquire(tenant: Tenant, fn: FunctionRecord): Ticket | Rejection {
    if (this.maxima.get(tenant.id) !== tenant.maxConcurrency) {
      this.setTenant(tenant.id, tenant.maxConcurrency);
    }
    return this.wrap(this.controller.tryAdmit(tenant.id, fn.name, this.deps.now()));
  }

  retryAcquire(rejection: Rejection): Ticket | Rejection {
    const original = this.rejections.get(rejection);
    if (original === undefined) return rejection;
    return this.wrap(this.controller.retryAdmit(original, this.deps.now()));
  }

  release(ticket: Ticket): void {
    const original = this.tickets.get(ticket);
    if (original === undefined) return;
    this.tickets.delete(ticket);
    this.controller.release(original, this.deps.now());
  }

  private wrap(decision: ControllerTicket | ControllerRejection): Ticket | Rejection {
    const { tenantId, functionName } = decision;
    const temporaryLimit = this.controller.localPool(tenantId)?.limit;
    if (decision.kind === "ticket") {
      const reserved = this.controller.reservedConcurrency(tenantId, functionName) !== undefined;
      const pool = this.controller.localPool(tenantId, reserved ? functionName : "");
      const ticket: Ticket = {
        kind: "ticket",
        tenantId,
        share: pool?.share,
        temporaryLimit,
        // Peers ask workers about a dead frontend's invocations; a standalone one has none.
        ...(this.standalone ? {} : { slot: { frontendId: this.instanceId, pool: decision.pool } }),
      };
      this.tickets.set(ticket, decision);
      return ticket;
    }
    const rejection: Rejection = {
      kind: "rejection",
      reason: decision.reason,
      retryAfterMs: decision.retryAfterMs,
      borrowing: decision.borrowing,
      share: decision.share,
      temporaryLimit,
    };
    this.rejections.set(rejection, decision);
    return rejection;
  }

  // ---- gossip (see gossip.ts) --------------------------------------------------------

  demandReport(now: number): DemandReport {
    return this.controller.demandReport(now);
  }

  receiveReport(value: unknown, now: number): boolean {
    if (this.namesUnknownTenant(value) && now - this.lastResync >= DIRECTORY_RESYNC_MS) {
      this.lastResync = now;
      this.resyncTenants();
    }
    return this.controller.receiveReport(value, now);
  }

  receiveLoanMessage(value: unknown, now: number): void {
    this.controller.receiveLoanMessage(value, now);
  }

  connectivity(connected: boolean, now: number): void {
    this.controller.connectivity(connected, now);
  }

  latePeers(now: number, afterIntervals: number): string[] {
    return this.controller.latePeers(now, afterIntervals);
  }

  peerGone(frontendId: string, now: number, censusFollows: boolean): boolean {
    return this.controller.peerGone(frontendId, now, censusFollows);
  }

  releaseGhosts(now: number): boolean {
    return this.controller.releaseGhosts(now);
  }

  ghostHolders(): string[] {
    return this.controller.ghostHolders();
  }

  knownFrontends(): string[] {
    return this.controller.knownFrontends();
  }

  reportSoon(): boolean {
    return this.controller.reportSoon();
  }

  applyCensus(running: ReadonlyMap<string, ReadonlyMap<string, number>>, now: number): boolean {
    return this.controller.applyCensus(running, now);
  }

  // ---- operators ----------------------------------------------------------------------

  /** The tenant's limits and every frontend's share, as this frontend sees them. */
  snapshot(tenantId: string): TenantSnapshot | undefined {
    return this.controller.snapshot(tenantId, this.deps.now());
  }

  /** How this frontend decides shares now, and the peers it hears. */
  fleetStatus(): { instanceId: string; mode: ShareMode; peers: number } {
    return {
      instanceId: this.instanceId,
      mode: this.controller.mode(this.deps.now()),
      peers: this.controller.peerCount,
    };
  }

  /** Tenants this frontend mirrors, sorted. */
  tenantIds(): string[] {
    return [...this.maxima.keys()].sort();
  }

  // ---- mirroring -----------------------------------------------------------------------

  private setTenant(tenantId: string, maxConcurrency: number): void {
    try {
      this.controller.setTenant(tenantId, { maxConcurrency });
      this.maxima.set(tenantId, maxConcurrency);
    } catch (error) {
      // The directory validates M; a record that slipped past keeps the default.
      this.deps.logger.warn("ignoring a tenant's maximum concurrency", { tenantId, error });
      this.maxima.set(tenantId, maxConcurrency);
    }
  }

  private resyncTenants(): void {
    for (const tenant of this.deps.tenants.list()) {
      if (this.maxima.get(tenant.id) !== tenant.maxConcurrency) {
        this.setTenant(tenant.id, tenant.maxConcurrency);
      }
    }
  }

  private namesUnknownTenant(value: unknown): boolean {
    if (typeof value !== "object" || value === null) return false;
    const pools = (value as { pools?: unknown }).pools;
    if (!Array.isArray(pools)) return false;
    for (const entry of pools as unknown[]) {
      const tenantId: unknown = Array.isArray(entry) ? entry[0] : undefined;
      if (typeof tenantId === "string" && !this.maxima.has(tenantId)) return true;
    }
    return false;
  }

  private functionChanged(tenantId: string, name: string, reserved: number | undefined): void {
    // A function without a reservation that the controller has none for:
    // nothing to do, and no tenant to create.
    if (reserved === undefined && this.controller.reservedConcurrency(tenantId, name) === undefined)
      return;
    if (!this.maxima.has(tenantId)) this.resyncTenants();
    try {
      this.controller.setReservedConcurrency(tenantId, name, reserved);
    } catch (error) {
      if (!(error instanceof LambdaApiError) || reserved === undefined) {
        this.deps.logger.error("could not mirror a reservation", { tenantId, name, error });
        return;
      }
      this.forceReservation(tenantId, name, reserved);
    }
  }

  /** Apply a reservation the registry holds even though it leaves less than nothing unreserved. */
  private forceReservation(tenantId: string, name: string, reserved: number): void {
    const snapshot = this.controller.snapshot(tenantId, this.deps.now());
    if (snapshot === undefined) return;
    const others =
      snapshot.reservedConcurrency - (this.controller.reservedConcurrency(tenantId, name) ?? 0);
    const max = snapshot.maxConcurrency;
    this.controller.setTenant(tenantId, { maxConcurrency: Math.max(1, others + reserved, max) });
    this.controller.setReservedConcurrency(tenantId, name, reserved);
    this.controller.setTenant(tenantId, { maxConcurrency: max });
    this.deps.logger.warn("a tenant's reservations exceed its maximum concurrency", {
      tenantId,
      maxConcurrency: max,
      reservedConcurrency: others + reserved,
    });
  }

  private *limitSamples(): Iterable<TenantLimitSample> {
    for (const tenantId of this.maxima.keys()) {
      const pool = this.controller.localPool(tenantId);
      if (pool) yield { tenantId, temporaryLimit: pool.limit, share: pool.share };
    }
  }
}

/** A frontend's admission and the gossip that keeps it current, started and stopped together. */
export interface FleetAdmissionRuntime {
  admission: FleetAdmission;
  gossip: GossipTransport;
  start(): Promise<void>;
  /** Stop gossiping (peers drop this frontend after a few silent intervals). Idempotent. */
  stop(): void;
}

export function createFleetAdmission(
  deps: FleetAdmissionDeps & {
    bus: Bus;
    /** The workers a census of a departed peer's invocations asks (WorkerDirectory.workerIds). */
    workerIds?: () => string[];
  },
  options: Pick<
    ResolvedFrontendOptions,
    "instanceId" | "standalone" | "fleetSizeHint" | "admissionPolicy"
  >,
): FleetAdmissionRuntime {
  const admission = new FleetAdmission(deps, {
    instanceId: options.instanceId,
    standalone: options.standalone,
    fleetSizeHint: options.fleetSizeHint,
    policy: options.admissionPolicy,
    workerCensus: deps.workerIds !== undefined,
    // The transport exists before anything can borrow: loans start with gossip.
    sendLoanMessage: (message) => transport.sendLoanMessage(message),
  });
  const intervalMs = admission.controller.policy.gossipIntervalMs;
  const transport = new GossipTransport(deps.bus, admission, deps.logger, {
    intervalMs,
    standalone: options.standalone,
    now: deps.now,
    ...(deps.workerIds === undefined
      ? {}
      : { census: workerCensus(deps.bus, deps.workerIds, intervalMs) }),
  });
  return {
    admission,
    gossip: transport,
    async start() {
      await admission.start();
      transport.start();
    },
    stop() {
      transport.stop();
      admission.stop();
    },
  };
}
