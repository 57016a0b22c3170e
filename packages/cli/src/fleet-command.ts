/**
 * `gust fleet [--tenant ID] [--endpoint URL]`: what one frontend knows of
 * each tenant's concurrency (its admin endpoint, `GET /gust/admin/concurrency`),
 * as tables: M, the temporary limit T, fleet-wide inflight, reserved pools,
 * and every frontend's share and demand. With GUST_ADMIN_TOKEN it shows every
 * tenant; otherwise it signs with the credentials `gust deploy` uses and shows
 * that tenant only.
 *
 * Behind a load balancer each call reaches one frontend; the shares it shows
 * are that frontend's view, which its peers share within a gossip round.
 */
import { ADMIN_CONCURRENCY_PATH, presignUrl, type ConcurrencyReport } from "@gust/frontend";
import { GustError } from "@gust/protocol";
import { credentials, DEFAULT_ENDPOINT } from "./client.js";
import { textTable } from "./text-table.js";

export interface FleetStatusOptions {
  /** @default $GUST_ENDPOINT, else DEFAULT_ENDPOINT */
  endpoint?: string;
  /** Only this tenant. */
  tenant?: string;
  /** @default $GUST_ADMIN_TOKEN; without one the request is SigV4-signed */
  adminToken?: string;
  /** @default $AWS_REGION, else us-east-1 */
  region?: string;
  /** What to sign with when there is no admin token. @default the credentials `gust deploy` uses */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** How long a presigned admin URL stays valid; it is used at once. */
const PRESIGN_TTL_SEC = 60;
const REQUEST_TIMEOUT_MS = 10_000;

export async function fetchFleetStatus(
  options: FleetStatusOptions = {},
): Promise<ConcurrencyReport> {
  const endpoint = options.endpoint ?? process.env["GUST_ENDPOINT"] ?? DEFAULT_ENDPOINT;
  const token = options.adminToken ?? process.env["GUST_ADMIN_TOKEN"];
  const query: Record<string, string> =
    options.tenant === undefined ? {} : { tenant: options.tenant };
  let url: string;
  const headers: Record<string, string> = {};
  if (token !== undefined && token !== "") {
    const target = new URL(ADMIN_CONCURRENCY_PATH, endpoint);
    for (const [key, value] of Object.entries(query)) target.searchParams.set(key, value);
    url = target.toString();
    headers["authorization"] = `Bearer ${token}`;
  } else {
    const { accessKeyId, secretAccessKey } = options.credentials ?? (await credentials());
    url = await presignUrl({
      baseUrl: endpoint,
      path: ADMIN_CONCURRENCY_PATH,
      query,
      accessKeyId,
      secretAccessKey,
      region: options.region ?? process.env["AWS_REGION"] ?? "us-east-1",
      expiresInSec: PRESIGN_TTL_SEC,
      now: new Date(),
    });
  }
  const response = await fetch(url, {
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status !== 200) {
    let message = text;
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === "string") message = parsed.message;
    } catch {
      // Not JSON: show it as it came.
    }
    throw new GustError(`${endpoint} answered ${response.status}: ${message}`, "fleet-status");
  }
  return JSON.parse(text) as ConcurrencyReport;
}

function table(rows: Array<Array<string | number>>, indent = "  "): string {
  return textTable(rows, indent);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

export function formatFleetStatus(report: ConcurrencyReport): string {
  const lines = [
    `frontend ${report.frontendId} (gossip id ${report.instanceId}): ${report.mode}, ` +
      `${report.peers} peer${report.peers === 1 ? "" : "s"} heard, at ${report.generatedAt}`,
  ];
  if (report.tenants.length === 0) lines.push("", "no tenant known to this frontend");
  for (const tenant of report.tenants) {
    lines.push(
      "",
      `tenant ${tenant.tenantId}: M ${tenant.maxConcurrency}, T ${tenant.temporaryLimit} ` +
        `(floor ${tenant.temporaryLimitFloor}), unreserved ${tenant.unreservedConcurrency}, ` +
        `reserved ${tenant.reservedConcurrency}`,
    );
    const pools = [tenant.unreserved, ...tenant.reserved];
    lines.push(
      table([
        ["pool", "limit", "share here", "fleet inflight", "fleet demand", "borrowed", "lent"],
        ...pools.map((pool) => [
          pool.functionName === "" ? "(unreserved)" : pool.functionName,
          pool.limit,
          pool.share,
          pool.fleetInflight,
          round(pool.fleetDemand),
          pool.borrowed,
          pool.lent,
        ]),
      ]),
    );
    for (const pool of pools) {
      const name = pool.functionName === "" ? "unreserved" : `reserved ${pool.functionName}`;
      lines.push(
        "",
        `  ${name}, by frontend (* this one):`,
        table(
          [
            ["frontend", "share", "inflight", "demand", "arrivals"],
            ...pool.frontends.map((frontend) => [
              `${frontend.frontendId}${frontend.self ? " *" : ""}`,
              frontend.share,
              frontend.inflight,
              round(frontend.demand),
              frontend.arrivals,
            ]),
          ],
          "    ",
        ),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
