import { afterEach, describe, expect, it } from "vitest";
import { ADMIN_CONCURRENCY_PATH, type ConcurrencyReport } from "./admin-api.js";
import { presignUrl } from "./sigv4.js";
import {
  call,
  CREDENTIALS_B,
  errorOf,
  startHarness,
  TENANT_A,
  TENANT_B,
  TEST_HOST,
  type Harness,
  type HarnessOptions,
} from "./test-util.js";

const TOKEN = "admin-token-0123456789abcdef";
const url = (query = "") => `http://${TEST_HOST}${ADMIN_CONCURRENCY_PATH}${query}`;

let h: Harness | undefined;
async function harness(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness({
    tenants: [{ ...TENANT_A, maxConcurrency: 300 }, TENANT_B],
    ...options,
    frontend: { adminToken: TOKEN, frontendId: "fe1", ...options.frontend },
  });
  return h;
}
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function withToken(h: Harness, query = "", token = TOKEN): Promise<Response> {
  return h.app.request(url(query), { headers: { authorization: `Bearer ${token}` } });
}

describe("GET /gust/admin/concurrency", () => {
  it("shows every tenant's limits and each frontend's share to the admin token", async () => {
    const h = await harness();
    await h.createFunction("checkout");
    await call(h.app, "PUT", "/2017-10-31/functions/checkout/concurrency", {
      ReservedConcurrentExecutions: 120,
    });
    const response = await withToken(h);
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const report = (await response.json()) as ConcurrencyReport;
    expect(report.frontendId).toBe("fe1");
    // A given name gets a start nonce in gossip.
    expect(report.instanceId).toMatch(/^fe1-[0-9a-f]{6}$/);
    expect(report.mode).toBe("standalone");
    expect(report.tenants.map((tenant) => tenant.tenantId)).toEqual(["tenant-a", "tenant-b"]);
    const a = report.tenants[0]!;
    expect(a).toMatchObject({
      maxConcurrency: 300,
      temporaryLimit: 180,
      unreservedConcurrency: 180,
      reservedConcurrency: 120,
    });
    expect(a.unreserved.frontends).toEqual([
      expect.objectContaining({ frontendId: report.instanceId, self: true, share: 180 }),
    ]);
    expect(a.reserved).toEqual([
      expect.objectContaining({ functionName: "checkout", limit: 120, share: 120 }),
    ]);

    const one = (await (await withToken(h, "?tenant=tenant-b")).json()) as ConcurrencyReport;
    expect(one.tenants.map((tenant) => tenant.tenantId)).toEqual(["tenant-b"]);
    expect((await errorOf(await withToken(h, "?tenant=nobody"))).status).toBe(404);
  });

  it("shows a signed caller its own tenant only", async () => {
    const h = await harness();
    const own = await call(h.app, "GET", ADMIN_CONCURRENCY_PATH, undefined, {
      credentials: CREDENTIALS_B,
    });
    expect(own.status).toBe(200);
    const report = (await own.json()) as ConcurrencyReport;
    expect(report.tenants.map((tenant) => tenant.tenantId)).toEqual(["tenant-b"]);
    // A presigned URL (what `gust fleet` sends without an admin token) is a signature too.
    const presigned = await presignUrl({
      baseUrl: `http://${TEST_HOST}`,
      path: ADMIN_CONCURRENCY_PATH,
      query: {},
      ...CREDENTIALS_B,
      region: "us-east-1",
      expiresInSec: 60,
      now: new Date(),
    });
    const viaResponse = await h.app.request(presigned, { headers: { host: TEST_HOST } });
    const viaUrl = (await viaResponse.json()) as ConcurrencyReport;
    expect(viaUrl.tenants.map((tenant) => tenant.tenantId)).toEqual(["tenant-b"]);
    const other = await call(h.app, "GET", ADMIN_CONCURRENCY_PATH, undefined, {
      credentials: CREDENTIALS_B,
      query: { tenant: "tenant-a" },
    });
    const error = await errorOf(other);
    expect(error.status).toBe(403);
    expect(error.type).toBe("AccessDeniedException");
  });

  it("refuses a request without credentials, a wrong token, and a token where none is set", async () => {
    const h = await harness();
    expect((await errorOf(await h.app.request(url()))).status).toBe(403);
    const wrong = await errorOf(await withToken(h, "", "not-the-admin-token-at-all"));
    expect(wrong).toMatchObject({ status: 403, type: "AccessDeniedException" });
    const noToken = await startHarness({ frontend: { frontendId: "fe2" } });
    try {
      const refused = await errorOf(
        await noToken.app.request(url(), { headers: { authorization: `Bearer ${TOKEN}` } }),
      );
      expect(refused).toMatchObject({ status: 403, type: "AccessDeniedException" });
    } finally {
      await noToken.close();
    }
  });
});
