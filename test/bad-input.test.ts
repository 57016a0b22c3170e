/**
 * Hostile and malformed input gets a clear Lambda-style error and leaves the
 * platform serving: bad JSON, hostile zips, unsigned requests, unknown
 * routes, and garbage msgpack on the NATS subjects Gust listens on.
 */
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { zipFiles } from "@gust/bundle";
import { Subjects } from "@gust/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ECHO_HANDLER } from "./support/functions.js";
import { MODES, startGust, type TestGust } from "./support/gust.js";
import { signedFetch } from "./support/signed-fetch.js";
import { testTenant } from "./support/tenants.js";

/** Patches an entry name in a zip in place (same length), to make names yazl refuses to write. */
function renameEntry(zip: Uint8Array, from: string, to: string): Uint8Array {
  const patched = Buffer.from(zip);
  const source = Buffer.from(from);
  let at = patched.indexOf(source);
  expect(at).toBeGreaterThanOrEqual(0);
  while (at !== -1) {
    Buffer.from(to).copy(patched, at);
    at = patched.indexOf(source, at + source.length);
  }
  return patched;
}

function createBody(name: string, zip: Uint8Array): string {
  return JSON.stringify({
    FunctionName: name,
    Runtime: "nodejs20.x",
    Handler: "index.handler",
    Role: "arn:aws:iam::000000000000:role/test",
    Code: { ZipFile: Buffer.from(zip).toString("base64") },
  });
}

describe.each(MODES)("bad input against gust %s", (mode) => {
  const tenant = testTenant("hostile");
  let gust: TestGust;

  beforeAll(async () => {
    gust = await startGust(mode, { tenants: [tenant], worker: { workerId: "w-bad-input" } });
    const created = await signedFetch(
      gust.url,
      tenant,
      "POST",
      "/2015-03-31/functions",
      createBody("echo", await zipFiles([{ path: "index.js", data: ECHO_HANDLER }])),
    );
    expect(created.status).toBe(201);
  });
  afterAll(async () => {
    await gust?.close();
  });

  const stillServes = async () => {
    const result = await signedFetch(
      gust.url,
      tenant,
      "POST",
      "/2015-03-31/functions/echo/invocations",
      '{"ok":1}',
    );
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ echo: { ok: 1 } });
  };

  it("answers malformed JSON with InvalidRequestContentException", async () => {
    const result = await signedFetch(gust.url, tenant, "POST", "/2015-03-31/functions", "{ nope");
    expect(result.status).toBe(400);
    expect(result.headers.get("x-amzn-errortype")).toMatch(/^InvalidRequestContentException/);
    expect(result.headers.get("x-amzn-requestid")).toBeTruthy();
    await stillServes();
  });

  it("refuses zips that escape their directory or bomb", async () => {
    const slip = renameEntry(
      await zipFiles([
        { path: "xx/evil.js", data: "x" },
        { path: "index.js", data: ECHO_HANDLER },
      ]),
      "xx/evil.js",
      "../evil.js",
    );
    const slipped = await signedFetch(
      gust.url,
      tenant,
      "POST",
      "/2015-03-31/functions",
      createBody("slip", slip),
    );
    expect(slipped.status).toBe(400);
    expect(slipped.headers.get("x-amzn-errortype")).toMatch(/^InvalidParameterValueException/);

    // 300 MiB of zeros deflates to well under a megabyte.
    const zeros = await zipFiles([
      { path: "index.js", data: ECHO_HANDLER },
      { path: "zeros.bin", data: new Uint8Array(300 * 1024 * 1024) },
    ]);
    expect(zeros.length).toBeLessThan(2 * 1024 * 1024);
    const bombed = await signedFetch(
      gust.url,
      tenant,
      "POST",
      "/2015-03-31/functions",
      createBody("bomb", zeros),
    );
    expect(bombed.status).toBe(400);
    expect(bombed.body).toMatch(/unzipped|uncompressed|250/i);

    for (const name of ["slip", "bomb"]) {
      const got = await signedFetch(gust.url, tenant, "GET", `/2015-03-31/functions/${name}`);
      expect(got.status).toBe(404);
    }
    await stillServes();
  });

  it("refuses unsigned requests and unknown routes", async () => {
    const unsigned = await fetch(`${gust.url}/2015-03-31/functions/`);
    expect(unsigned.status).toBe(403);
    expect(unsigned.headers.get("x-amzn-errortype")).toMatch(
      /^MissingAuthenticationTokenException/,
    );
    const unknown = await signedFetch(gust.url, tenant, "GET", "/2099-01-01/nothing-here");
    expect(unknown.status).toBeGreaterThanOrEqual(400);
    expect(unknown.status).toBeLessThan(500);
    await stillServes();
  });

  it.runIf(mode === "fleet")("shrugs off garbage msgpack on its NATS subjects", async () => {
    // An authenticated peer with every right (the admin key), so the garbage reaches the services.
    const admin = gust.nats!.auth!.credentials.admin.seed;
    const nc = await connect({
      servers: gust.nats!.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(admin)),
    });
    try {
      const garbage = new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]);
      const reply = await nc.request(Subjects.invoke("w-bad-input"), garbage, { timeout: 5000 });
      expect(new TextDecoder().decode(reply.data)).toContain("invoke.rejected");
      nc.publish(Subjects.workerHeartbeat, garbage);
      nc.publish(Subjects.workerGone, garbage);
      nc.publish(Subjects.events("hostile"), garbage);
      await nc.flush();
    } finally {
      await nc.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    await stillServes();
  });
});
