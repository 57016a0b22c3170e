import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  call,
  CREDENTIALS_A,
  errorOf,
  signedRequest,
  startHarness,
  TEST_HOST,
  type Harness,
} from "./test-util.js";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
  await h.createFunction("signed");
});
afterEach(async () => {
  await h.close();
});

const INVOKE = "/2015-03-31/functions/signed/invocations";

describe("SigV4 authentication", () => {
  it("accepts a request signed by the SDK's signer", async () => {
    const response = await call(h.app, "GET", "/2015-03-31/functions/signed/configuration");
    expect(response.status).toBe(200);
  });

  it("accepts a signed query string and an ARN in the path", async () => {
    const arn = encodeURIComponent("arn:aws:lambda:us-east-1:111111111111:function:signed");
    const response = await call(h.app, "GET", `/2015-03-31/functions/${arn}`, undefined, {
      query: { Qualifier: "$LATEST" },
    });
    expect(response.status).toBe(200);
  });

  it("refuses a request whose body was changed after signing", async () => {
    const error = await errorOf(
      await signedRequest(h.app, {
        method: "PUT",
        path: "/2015-03-31/functions/signed/configuration",
        body: JSON.stringify({ Timeout: 10 }),
        tamper: (request) => {
          request.body = new TextEncoder().encode(JSON.stringify({ Timeout: 99 }));
          // x-amz-content-sha256 still names the original body: the server must hash what it got.
        },
      }),
    );
    expect(error.status).toBe(403);
    expect(error.type).toBe("InvalidSignatureException");
    const config = (await (
      await call(h.app, "GET", "/2015-03-31/functions/signed/configuration")
    ).json()) as {
      Timeout: number;
    };
    expect(config.Timeout).toBe(3);
  });

  it("refuses a tampered body even when the content hash header is dropped", async () => {
    const error = await errorOf(
      await signedRequest(h.app, {
        method: "PUT",
        path: "/2015-03-31/functions/signed/configuration",
        body: JSON.stringify({ Timeout: 10 }),
        tamper: (request) => {
          delete request.headers["x-amz-content-sha256"];
          request.body = new TextEncoder().encode(JSON.stringify({ Timeout: 99 }));
        },
      }),
    );
    expect(error.status).toBe(403);
    expect(error.type).toBe("InvalidSignatureException");
  });

  it("refuses a changed query string or signed header", async () => {
    const query = await errorOf(
      await signedRequest(h.app, {
        method: "GET",
        path: "/2015-03-31/functions/",
        query: { MaxItems: "1" },
        tamper: (request) => {
          request.query["MaxItems"] = "2";
        },
      }),
    );
    expect(query.type).toBe("InvalidSignatureException");
    const header = await errorOf(
      await signedRequest(h.app, {
        method: "POST",
        path: INVOKE,
        body: "{}",
        headers: { "x-amz-invocation-type": "DryRun" },
        tamper: (request) => {
          request.headers["x-amz-invocation-type"] = "Event";
        },
      }),
    );
    expect(header.type).toBe("InvalidSignatureException");
  });

  it("refuses a wrong secret, an unknown key and a missing signature", async () => {
    const wrongSecret = await errorOf(
      await call(h.app, "GET", "/2015-03-31/functions/", undefined, {
        credentials: { accessKeyId: CREDENTIALS_A.accessKeyId, secretAccessKey: "guess" },
      }),
    );
    expect(wrongSecret.status).toBe(403);
    expect(wrongSecret.type).toBe("InvalidSignatureException");

    const unknown = await errorOf(
      await call(h.app, "GET", "/2015-03-31/functions/", undefined, {
        credentials: { accessKeyId: "AKIANOBODYNOBODYNOBO", secretAccessKey: "x" },
      }),
    );
    expect(unknown.status).toBe(403);
    expect(unknown.type).toBe("UnrecognizedClientException");
    expect(unknown.body["message"]).toBe("The security token included in the request is invalid.");

    const missing = await h.app.request(`http://${TEST_HOST}/2015-03-31/functions/`, {
      headers: { host: TEST_HOST },
    });
    const missingError = await errorOf(missing);
    expect(missingError.status).toBe(403);
    expect(missingError.type).toBe("MissingAuthenticationTokenException");
    expect(missing.headers.get("x-amzn-requestid")).toBeTruthy();

    const garbled = await errorOf(
      await h.app.request(`http://${TEST_HOST}/2015-03-31/functions/`, {
        headers: { host: TEST_HOST, authorization: "AWS4-HMAC-SHA256 nonsense" },
      }),
    );
    expect(garbled.status).toBe(400);
    expect(garbled.type).toBe("IncompleteSignatureException");
  });

  it("refuses a signature more than 15 minutes off, either way", async () => {
    for (const offsetMin of [-16, 16]) {
      const error = await errorOf(
        await call(h.app, "GET", "/2015-03-31/functions/", undefined, {
          date: new Date(Date.now() + offsetMin * 60_000),
        }),
      );
      expect(error.status).toBe(403);
      expect(error.type).toBe("InvalidSignatureException");
      expect(error.body["message"]).toMatch(
        offsetMin < 0 ? /^Signature expired/ : /^Signature not yet current/,
      );
    }
    const slightlyOff = await call(h.app, "GET", "/2015-03-31/functions/", undefined, {
      date: new Date(Date.now() - 5 * 60_000),
    });
    expect(slightlyOff.status).toBe(200);
  });

  it("refuses a credential scoped to another service", async () => {
    const response = await signedRequest(h.app, {
      method: "GET",
      path: "/2015-03-31/functions/",
      tamper: (request) => {
        request.headers["authorization"] = request.headers["authorization"]!.replace(
          "/lambda/",
          "/s3/",
        );
      },
    });
    expect((await errorOf(response)).type).toBe("InvalidSignatureException");
  });
});
