import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "@gust/telemetry";
import { MAX_RUNTIME_BODY_BYTES, RuntimeApiServer } from "./runtime-api-server.js";
import type { RuntimeApiListener, RuntimeInvocation } from "./runtime-api-server.js";

const logger = createLogger("runtime-api-test", { level: "silent" });
let servers: RuntimeApiServer[] = [];

async function start(
  listener: RuntimeApiListener = {},
): Promise<{ api: RuntimeApiServer; base: string }> {
  const api = await RuntimeApiServer.start({ logger, listener });
  servers.push(api);
  return { api, base: `http://${api.address}/2018-06-01/runtime` };
}

afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});

const invocation = (requestId = "req-1"): RuntimeInvocation => ({
  requestId,
  payload: Buffer.from('{"hello":"world"}'),
  deadlineMs: 1_900_000_000_000,
  functionArn: "arn:aws:lambda:us-east-1:123456789012:function:f",
  traceId: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
  clientContext: '{"custom":{"a":1}}',
});

describe("RuntimeApiServer", () => {
  it("long-polls invocation/next and delivers the event with Lambda's headers", async () => {
    const { api, base } = await start();
    const next = fetch(`${base}/invocation/next`);
    // The poll waits: nothing to deliver yet.
    const early = await Promise.race([
      next.then(() => "answered"),
      new Promise((r) => setTimeout(() => r("waiting"), 100)),
    ]);
    expect(early).toBe("waiting");
    const outcome = api.deliver(invocation());
    const response = await next;
    expect(response.status).toBe(200);
    expect(response.headers.get("lambda-runtime-aws-request-id")).toBe("req-1");
    expect(response.headers.get("lambda-runtime-deadline-ms")).toBe("1900000000000");
    expect(response.headers.get("lambda-runtime-invoked-function-arn")).toContain(":function:f");
    expect(response.headers.get("lambda-runtime-trace-id")).toContain("Root=1-5759e988");
    expect(response.headers.get("lambda-runtime-client-context")).toBe('{"custom":{"a":1}}');
    expect(await response.text()).toBe('{"hello":"world"}');

    const posted = await fetch(`${base}/invocation/req-1/response`, {
      method: "POST",
      body: '"done"',
    });
    expect(posted.status).toBe(202);
    const result = await outcome;
    expect(result.kind).toBe("response");
    expect(result.kind === "response" && Buffer.from(result.body).toString()).toBe('"done"');
  });

  it("takes a result on Gust's exchange and answers with the next event", async () => {
    const polls: boolean[] = [];
    const { api, base } = await start({ onNext: (resultPending) => polls.push(resultPending) });
    const first = api.deliver(invocation("req-a"));
    expect(
      (await fetch(`${base}/invocation/next`)).headers.get("lambda-runtime-aws-request-id"),
    ).toBe("req-a");
    const exchange = fetch(`${base}/gust/invocation/req-a/response`, {
      method: "POST",
      headers: { "gust-run-duration-us": "1250" },
      body: '"first"',
    });
    const result = await first;
    expect(result.kind === "response" && Buffer.from(result.body).toString()).toBe('"first"');
    // Gust's runtime says how long the run took inside the sandbox.
    expect(result.kind === "response" && result.runDurationMs).toBe(1.25);
    // The poll came with the result: the runtime is done with the invocation.
    expect(polls).toEqual([false, true]);
    const second = api.deliver(invocation("req-b"));
    const response = await exchange;
    expect(response.status).toBe(200);
    expect(response.headers.get("lambda-runtime-aws-request-id")).toBe("req-b");
    expect(await response.text()).toBe('{"hello":"world"}');

    // An error, posted the same way.
    const failed = fetch(`${base}/gust/invocation/req-b/error`, {
      method: "POST",
      // Not a duration: left out.
      headers: { "lambda-runtime-function-error-type": "Handled", "gust-run-duration-us": "soon" },
      body: "not json",
    });
    expect(await second).toEqual({
      kind: "error",
      body: Buffer.from(JSON.stringify({ errorMessage: "not json", errorType: "Handled" })),
    });
    api.deliver(invocation("req-c")).catch(() => undefined);
    expect((await failed).headers.get("lambda-runtime-aws-request-id")).toBe("req-c");
  });

  it("refuses a result for another invocation on Gust's exchange, without waiting", async () => {
    const { api, base } = await start();
    const outcome = api.deliver(invocation("req-d"));
    await fetch(`${base}/invocation/next`);
    const refused = await fetch(`${base}/gust/invocation/someone-else/response`, {
      method: "POST",
      body: "{}",
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { errorType: string }).errorType).toBe("InvalidRequestID");
    api.abandon();
    expect(await outcome).toEqual({ kind: "abandoned" });
  });

  it("queues an invocation until the runtime asks for it", async () => {
    const { api, base } = await start();
    const outcome = api.deliver(invocation("req-2"));
    const response = await fetch(`${base}/invocation/next`);
    expect(response.headers.get("lambda-runtime-aws-request-id")).toBe("req-2");
    await fetch(`${base}/invocation/req-2/error`, {
      method: "POST",
      headers: { "lambda-runtime-function-error-type": "Handled" },
      body: JSON.stringify({ errorType: "Error", errorMessage: "boom" }),
    });
    const result = await outcome;
    expect(result.kind).toBe("error");
    expect(result.kind === "error" && JSON.parse(Buffer.from(result.body).toString())).toEqual({
      errorType: "Error",
      errorMessage: "boom",
    });
  });

  it("builds error JSON from the error-type header when the body is not JSON", async () => {
    const { api, base } = await start();
    const outcome = api.deliver(invocation());
    await fetch(`${base}/invocation/next`);
    await fetch(`${base}/invocation/req-1/error`, {
      method: "POST",
      headers: { "lambda-runtime-function-error-type": "Runtime.Crashed" },
      body: "it broke",
    });
    const result = await outcome;
    expect(result.kind === "error" && JSON.parse(Buffer.from(result.body).toString())).toEqual({
      errorType: "Runtime.Crashed",
      errorMessage: "it broke",
    });
  });

  it("answers 400 for a request id that is not in progress, and for a second result", async () => {
    const { api, base } = await start();
    const outcome = api.deliver(invocation());
    await fetch(`${base}/invocation/next`);
    const wrong = await fetch(`${base}/invocation/someone-else/response`, {
      method: "POST",
      body: "1",
    });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ errorType: "InvalidRequestID" });
    expect(
      (await fetch(`${base}/invocation/req-1/response`, { method: "POST", body: "1" })).status,
    ).toBe(202);
    expect(
      (await fetch(`${base}/invocation/req-1/response`, { method: "POST", body: "2" })).status,
    ).toBe(400);
    const result = await outcome;
    expect(result.kind === "response" && Buffer.from(result.body).toString()).toBe("1");
  });

  it("refuses a response over 6 MB with 413 and fails the invocation with Function.ResponseSizeTooLarge", async () => {
    const { api, base } = await start();
    const outcome = api.deliver(invocation());
    await fetch(`${base}/invocation/next`);
    const big = Buffer.alloc(MAX_RUNTIME_BODY_BYTES + 1, 0x61);
    const posted = await fetch(`${base}/invocation/req-1/response`, { method: "POST", body: big });
    expect(posted.status).toBe(413);
    const result = await outcome;
    expect(result.kind).toBe("error");
    expect(
      result.kind === "error" && JSON.parse(Buffer.from(result.body).toString()),
    ).toMatchObject({
      errorType: "Function.ResponseSizeTooLarge",
    });
  });

  it("reports init errors before the first next, and refuses them after", async () => {
    const errors: string[] = [];
    const { api, base } = await start({
      onInitError: (body) => errors.push(Buffer.from(body).toString()),
    });
    const body = JSON.stringify({
      errorType: "Runtime.ImportModuleError",
      errorMessage: "no module",
    });
    expect((await fetch(`${base}/init/error`, { method: "POST", body })).status).toBe(202);
    expect(errors).toEqual([body]);
    void api.deliver(invocation());
    await fetch(`${base}/invocation/next`);
    expect((await fetch(`${base}/init/error`, { method: "POST", body })).status).toBe(403);
  });

  it("answers the assignment poll when the function is assigned", async () => {
    let polled = 0;
    const { api, base } = await start({ onAssignmentRequest: () => polled++ });
    const poll = fetch(`${base}/gust/assignment`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(polled).toBe(1);
    api.assign({ handler: "index.handler", env: { A: "1" } });
    const response = await poll;
    expect(await response.json()).toEqual({ handler: "index.handler", env: { A: "1" } });
  });

  it("answers unknown paths with 404 and wrong methods with 405", async () => {
    const { base } = await start();
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`http://${servers[0]?.address}/other`)).status).toBe(404);
    expect((await fetch(`${base}/invocation/next`, { method: "POST", body: "x" })).status).toBe(
      405,
    );
  });

  it("abandoning an invocation makes the runtime's late result a 400", async () => {
    const { api, base } = await start();
    const outcome = api.deliver(invocation());
    await fetch(`${base}/invocation/next`);
    api.abandon();
    expect((await outcome).kind).toBe("abandoned");
    expect(
      (await fetch(`${base}/invocation/req-1/response`, { method: "POST", body: "1" })).status,
    ).toBe(400);
  });

  it("refuses connections the authorizer rejects", async () => {
    const api = await RuntimeApiServer.start({
      logger,
      listener: {},
      authorizeConnection: () => Promise.resolve(false),
    });
    servers.push(api);
    await expect(
      fetch(`http://${api.address}/2018-06-01/runtime/invocation/next`),
    ).rejects.toThrow();
  });
});
