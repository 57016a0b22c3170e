/**
 * The operators' view of admission: `GET /gust/admin/concurrency[?tenant=ID]`
 * answers, per tenant, its maximum M, its temporary limit T, the fleet-wide
 * inflight, its reserved pools and each known frontend's share and demand,
 * as this frontend sees them (`gust fleet` prints it as a table). Enough to
 * tell why a request was throttled: the frontend's share was used up, T was
 * below demand, or a reservation was full.
 *
 * Who may look:
 * - `Authorization: Bearer <token>` with the frontend's admin token
 *   (GUST_ADMIN_TOKEN): every tenant, or the one `tenant` names;
 * - a SigV4-signed request (header or presigned URL), as for Lambda's API:
 *   the caller's own tenant only;
 * - anything else: 403.
 * The route sits ahead of the API's authentication middleware so that a
 * bearer token is looked at before SigV4 would refuse it.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { ShareMode, TenantSnapshot } from "@gust/admission";
import type { Context, Hono } from "hono";
import { ApiErrors } from "./api-errors.js";
import { authentication } from "./authentication.js";
import type { FrontendEnv, Services } from "./http-context.js";

export const ADMIN_CONCURRENCY_PATH = "/gust/admin/concurrency";

/** What the endpoint reads: FleetAdmission. */
export interface ConcurrencyView {
  fleetStatus(): { instanceId: string; mode: ShareMode; peers: number };
  snapshot(tenantId: string): TenantSnapshot | undefined;
  tenantIds(): string[];
}

/** The endpoint's answer. */
export interface ConcurrencyReport {
  frontendId: string;
  /** This frontend's id in gossip (frontendId plus a start nonce when the name was given). */
  instanceId: string;
  mode: ShareMode;
  /** Other frontends heard within the expiry period. */
  peers: number;
  /** ISO 8601. */
  generatedAt: string;
  tenants: TenantSnapshot[];
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const NO_STORE = { "content-type": "application/json", "cache-control": "no-store" };

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Constant-time comparison; hashing first makes the lengths equal. */
function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function registerAdminApi(
  app: Hono<FrontendEnv>,
  services: Services,
  view: ConcurrencyView | undefined,
): void {
  const authenticate = authentication(services);

  const answer = (c: Context<FrontendEnv>, tenantIds: string[]): Response => {
    if (view === undefined) {
      throw ApiErrors.notFound("This frontend's admission does not report fleet shares.");
    }
    const status = view.fleetStatus();
    const tenants: TenantSnapshot[] = [];
    for (const id of tenantIds) {
      const snapshot = view.snapshot(id);
      if (snapshot) tenants.push(snapshot);
    }
    const report: ConcurrencyReport = {
      frontendId: services.options.frontendId,
      instanceId: status.instanceId,
      mode: status.mode,
      peers: status.peers,
      generatedAt: new Date(services.now()).toISOString(),
      tenants,
    };
    return c.body(JSON.stringify(report), 200, NO_STORE);
  };

  app.get(ADMIN_CONCURRENCY_PATH, async (c) => {
    const wanted = c.req.query("tenant");
    const bearer = BEARER.exec(c.req.header("authorization") ?? "");
    if (bearer) {
      const requestId = randomUUID();
      c.set("requestId", requestId);
      c.header("x-amzn-RequestId", requestId);
      const expected = services.options.adminToken;
      if (expected === undefined) {
        throw ApiErrors.accessDenied("This frontend has no admin token (GUST_ADMIN_TOKEN).");
      }
      if (!tokenMatches(bearer[1] ?? "", expected)) {
        throw ApiErrors.accessDenied("The admin token is not valid.");
      }
      if (wanted === undefined || wanted === "") return answer(c, view?.tenantIds() ?? []);
      if (view !== undefined && view.snapshot(wanted) === undefined) {
        throw ApiErrors.notFound(`Tenant ${wanted} is not known to this frontend.`);
      }
      return answer(c, [wanted]);
    }
    // SigV4, as every API call: a tenant sees itself.
    let response: Response | undefined;
    await authenticate(c, () => {
      const own = c.get("tenant").id;
      if (wanted !== undefined && wanted !== "" && wanted !== own) {
        throw ApiErrors.accessDenied(
          "A signed request sees its own tenant only; other tenants need the admin token.",
        );
      }
      response = answer(c, [own]);
      return Promise.resolve();
    });
    if (response === undefined) throw ApiErrors.accessDenied("Not authorized.");
    return response;
  });
}
