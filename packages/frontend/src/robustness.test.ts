/**
 * Whatever a client sends, the frontend answers with a Lambda error of the
 * client's fault (4xx), never a 500 and never a crash.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startHarness, TEST_HOST, type Harness } from "./test-util.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.createFunction("target");
});
afterAll(async () => {
  await h.close();
});

const pathSegment = fc.oneof(
  fc.string(),
  fc.constantFrom("target", "%3A", "..", "arn%3Aaws%3Alambda", "%E0%A4%A", "__proto__"),
);

describe("hostile input", () => {
  it("unsigned or garbled requests get a 4xx with an error type", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
        fc.array(pathSegment, { maxLength: 4 }),
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.string(), { nil: undefined }),
        fc.uint8Array({ maxLength: 256 }),
        async (method, segments, authorization, amzDate, body) => {
          const path = `/2015-03-31/functions/${segments.map((s) => encodeURIComponent(s)).join("/")}`;
          const headers: Record<string, string> = { host: TEST_HOST };
          if (authorization !== undefined)
            headers["authorization"] = `AWS4-HMAC-SHA256 ${authorization}`;
          if (amzDate !== undefined) headers["x-amz-date"] = amzDate;
          const response = await h.app.request(`http://${TEST_HOST}${path}`, {
            method,
            headers,
            ...(method === "GET" || method === "DELETE" ? {} : { body }),
          });
          expect(response.status).toBeGreaterThanOrEqual(400);
          expect(response.status).toBeLessThan(500);
          expect(response.headers.get("x-amzn-errortype")).toBeTruthy();
          expect(response.headers.get("x-amzn-requestid")).toBeTruthy();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("signed requests with arbitrary JSON members get a 4xx, not a 500", async () => {
    const member = fc.oneof(
      fc.jsonValue(),
      fc.record({ Variables: fc.dictionary(fc.string(), fc.jsonValue()) }),
      fc.record({ ZipFile: fc.string() }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          ["POST", "/2015-03-31/functions"],
          ["PUT", "/2015-03-31/functions/target/configuration"],
          ["PUT", "/2015-03-31/functions/target/code"],
        ),
        fc.dictionary(
          fc.constantFrom(
            "FunctionName",
            "Runtime",
            "Handler",
            "Timeout",
            "MemorySize",
            "Environment",
            "Code",
            "ZipFile",
            "Architectures",
            "RevisionId",
            "__proto__",
          ),
          member,
        ),
        async ([method, path], body) => {
          const response = await call(h.app, method, path, JSON.stringify(body));
          if (response.status < 300) return;
          expect(response.status).toBeGreaterThanOrEqual(400);
          expect(response.status).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("DryRun invocations with arbitrary payloads get 204 or 400", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string()), async (payload) => {
        const response = await call(
          h.app,
          "POST",
          "/2015-03-31/functions/target/invocations",
          payload,
          {
            headers: { "x-amz-invocation-type": "DryRun" },
          },
        );
        let isJson = true;
        try {
          JSON.parse(payload.trim() === "" ? "{}" : payload);
        } catch {
          isJson = false;
        }
        expect(response.status).toBe(isJson ? 204 : 400);
      }),
      { numRuns: 150 },
    );
  });
});
