import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  call,
  createFunctionBody,
  CREDENTIALS_B,
  errorOf,
  nodeZip,
  signedRequest,
  startHarness,
  zipOf,
  type Harness,
} from "./test-util.js";

const FUNCTIONS = "/2015-03-31/functions";
const ARN_A = (name: string) => `arn:aws:lambda:us-east-1:111111111111:function:${name}`;

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

describe("CreateFunction", () => {
  it("answers 201 with Lambda's FunctionConfiguration", async () => {
    const response = await call(
      h.app,
      "POST",
      FUNCTIONS,
      await createFunctionBody("hello", {
        Description: "says hello",
        Timeout: 7,
        MemorySize: 256,
        Environment: { Variables: { GREETING: "hi" } },
        Publish: true,
        Architectures: ["x86_64"],
      }),
    );
    expect(response.status).toBe(201);
    expect(response.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    const config = (await response.json()) as Record<string, unknown>;
    expect(config).toMatchObject({
      FunctionName: "hello",
      FunctionArn: ARN_A("hello"),
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: "arn:aws:iam::111111111111:role/gust",
      Description: "says hello",
      Timeout: 7,
      MemorySize: 256,
      Version: "$LATEST",
      Environment: { Variables: { GREETING: "hi" } },
      State: "Active",
      LastUpdateStatus: "Successful",
      PackageType: "Zip",
      Architectures: ["x86_64"],
    });
    const zip = await nodeZip();
    expect(config["CodeSize"]).toBe(zip.byteLength);
    expect(config["CodeSha256"]).toBe(
      (await import("node:crypto")).createHash("sha256").update(zip).digest("base64"),
    );
    expect(config["RevisionId"]).toEqual(expect.any(String));
    expect(config["LastModified"]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);
  });

  it("refuses a name that exists with ResourceConflictException", async () => {
    await h.createFunction("twice");
    const error = await errorOf(
      await call(h.app, "POST", FUNCTIONS, await createFunctionBody("twice")),
    );
    expect(error.status).toBe(409);
    expect(error.type).toBe("ResourceConflictException");
    expect(error.body["Type"]).toBe("User");
    expect(error.body["message"]).toMatch(/twice/);
  });

  it("accepts only zip code given inline", async () => {
    const s3 = await errorOf(
      await call(
        h.app,
        "POST",
        FUNCTIONS,
        await createFunctionBody("s3", { Code: { S3Bucket: "b", S3Key: "k" } }),
      ),
    );
    expect(s3.status).toBe(400);
    expect(s3.type).toBe("InvalidParameterValueException");
    expect(s3.body["message"]).toMatch(/ZipFile/);

    const notZip = await errorOf(
      await call(
        h.app,
        "POST",
        FUNCTIONS,
        await createFunctionBody("junk", {
          Code: { ZipFile: Buffer.from("this is not a zip").toString("base64") },
        }),
      ),
    );
    expect(notZip.status).toBe(400);
    expect(notZip.type).toBe("InvalidParameterValueException");

    const notBase64 = await errorOf(
      await call(
        h.app,
        "POST",
        FUNCTIONS,
        await createFunctionBody("b64", { Code: { ZipFile: "%%%" } }),
      ),
    );
    expect(notBase64.type).toBe("InvalidParameterValueException");
  });

  it("requires a bootstrap in a custom runtime's zip", async () => {
    const without = await errorOf(
      await call(
        h.app,
        "POST",
        FUNCTIONS,
        await createFunctionBody("custom", { Runtime: "provided.al2023", Handler: undefined }),
      ),
    );
    expect(without.status).toBe(400);
    expect(without.type).toBe("InvalidParameterValueException");
    expect(without.body["message"]).toMatch(/bootstrap/);

    const zip = await zipOf([{ path: "bootstrap", data: "#!/bin/sh\n", mode: 0o755 }]);
    const ok = await call(h.app, "POST", FUNCTIONS, {
      FunctionName: "custom",
      Runtime: "provided.al2023",
      Code: { ZipFile: Buffer.from(zip).toString("base64") },
    });
    expect(ok.status).toBe(201);
  });

  it("validates members: runtime, ranges, architectures, JSON", async () => {
    const runtime = await errorOf(
      await call(
        h.app,
        "POST",
        FUNCTIONS,
        await createFunctionBody("r", { Runtime: "python3.12" }),
      ),
    );
    expect(runtime.type).toBe("InvalidParameterValueException");
    const timeout = await errorOf(
      await call(h.app, "POST", FUNCTIONS, await createFunctionBody("t", { Timeout: 901 })),
    );
    expect(timeout.type).toBe("InvalidParameterValueException");
    const memory = await errorOf(
      await call(h.app, "POST", FUNCTIONS, await createFunctionBody("m", { MemorySize: "lots" })),
    );
    expect(memory.type).toBe("InvalidParameterValueException");
    const arch = await errorOf(
      await call(
        h.app,
        "POST",
        FUNCTIONS,
        await createFunctionBody("a", { Architectures: ["arm64"] }),
      ),
    );
    expect(arch.type).toBe("InvalidParameterValueException");
    const json = await errorOf(await call(h.app, "POST", FUNCTIONS, "{not json"));
    expect(json.status).toBe(400);
    expect(json.type).toBe("InvalidRequestContentException");
    const name = await errorOf(
      await call(h.app, "POST", FUNCTIONS, await createFunctionBody("bad name!")),
    );
    expect(name.status).toBe(400);
  });
});

describe("GetFunction and GetFunctionConfiguration", () => {
  beforeEach(async () => {
    await h.createFunction("get-me");
  });

  it("returns Configuration and a Code location that downloads the zip", async () => {
    const response = await call(h.app, "GET", `${FUNCTIONS}/get-me`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      Configuration: Record<string, unknown>;
      Code: { RepositoryType: string; Location: string };
    };
    expect(body.Configuration["FunctionName"]).toBe("get-me");
    expect(body.Code.RepositoryType).toBe("S3");
    const location = new URL(body.Code.Location);
    expect(location.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);

    const download = await h.app.request(body.Code.Location, { headers: { host: location.host } });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(Buffer.from(await nodeZip()));

    const forged = new URL(location);
    forged.searchParams.set("CodeSha256", "AAAA");
    const refused = await errorOf(
      await h.app.request(forged.toString(), { headers: { host: location.host } }),
    );
    expect(refused.status).toBe(403);
    expect(refused.type).toBe("InvalidSignatureException");
  });

  it("finds a function by name, full ARN, partial ARN and $LATEST", async () => {
    for (const ref of [
      "get-me",
      ARN_A("get-me"),
      "111111111111:function:get-me",
      `${ARN_A("get-me")}:$LATEST`,
    ]) {
      const response = await call(
        h.app,
        "GET",
        `${FUNCTIONS}/${encodeURIComponent(ref)}/configuration`,
      );
      expect(response.status, ref).toBe(200);
      expect(((await response.json()) as Record<string, unknown>)["FunctionArn"]).toBe(
        ARN_A("get-me"),
      );
    }
    const latest = await call(h.app, "GET", `${FUNCTIONS}/get-me/configuration`, undefined, {
      query: { Qualifier: "$LATEST" },
    });
    expect(latest.status).toBe(200);
  });

  it("answers ResourceNotFoundException for a missing function or another qualifier", async () => {
    const missing = await errorOf(await call(h.app, "GET", `${FUNCTIONS}/nope`));
    expect(missing.status).toBe(404);
    expect(missing.type).toBe("ResourceNotFoundException");
    expect(missing.body["message"]).toBe(`Function not found: ${ARN_A("nope")}`);

    const version = await errorOf(
      await call(h.app, "GET", `${FUNCTIONS}/get-me`, undefined, { query: { Qualifier: "1" } }),
    );
    expect(version.status).toBe(404);
    expect(version.type).toBe("ResourceNotFoundException");
  });

  it("keeps tenants apart: another tenant's function is invisible, its ARN refused", async () => {
    const byName = await errorOf(
      await call(h.app, "GET", `${FUNCTIONS}/get-me`, undefined, { credentials: CREDENTIALS_B }),
    );
    expect(byName.status).toBe(404);
    const byArn = await errorOf(
      await call(h.app, "GET", `${FUNCTIONS}/${encodeURIComponent(ARN_A("get-me"))}`, undefined, {
        credentials: CREDENTIALS_B,
      }),
    );
    expect(byArn.status).toBe(403);
    expect(byArn.type).toBe("AccessDeniedException");
    const list = await call(h.app, "GET", `${FUNCTIONS}/`, undefined, {
      credentials: CREDENTIALS_B,
    });
    expect(((await list.json()) as { Functions: unknown[] }).Functions).toEqual([]);
    const del = await errorOf(
      await call(h.app, "DELETE", `${FUNCTIONS}/get-me`, undefined, { credentials: CREDENTIALS_B }),
    );
    expect(del.status).toBe(404);
    expect((await call(h.app, "GET", `${FUNCTIONS}/get-me`)).status).toBe(200);
  });
});

describe("ListFunctions", () => {
  it("pages with MaxItems and Marker, in name order", async () => {
    const names = ["fn-c", "fn-a", "fn-e", "fn-b", "fn-d"];
    for (const name of names) await h.createFunction(name);
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const response = await call(h.app, "GET", `${FUNCTIONS}/`, undefined, {
        query: { MaxItems: "2", ...(marker === undefined ? {} : { Marker: marker }) },
      });
      expect(response.status).toBe(200);
      const page = (await response.json()) as {
        Functions: { FunctionName: string }[];
        NextMarker?: string;
      };
      expect(page.Functions.length).toBeLessThanOrEqual(2);
      seen.push(...page.Functions.map((f) => f.FunctionName));
      marker = page.NextMarker;
      pages++;
    } while (marker !== undefined && pages < 10);
    expect(seen).toEqual([...names].sort());
    expect(pages).toBe(3);
  });

  it("defaults to 50 and refuses MaxItems out of range", async () => {
    const empty = await call(h.app, "GET", FUNCTIONS);
    expect(await empty.json()).toEqual({ Functions: [] });
    for (const bad of ["0", "10001", "x"]) {
      const error = await errorOf(
        await call(h.app, "GET", `${FUNCTIONS}/`, undefined, { query: { MaxItems: bad } }),
      );
      expect(error.status, bad).toBe(400);
      expect(error.type).toBe("InvalidParameterValueException");
    }
  });
});

describe("updates and delete", () => {
  beforeEach(async () => {
    await h.createFunction("change-me");
  });

  it("UpdateFunctionCode stores new code under a new revision", async () => {
    const before = (await (
      await call(h.app, "GET", `${FUNCTIONS}/change-me/configuration`)
    ).json()) as Record<string, string>;
    const zip = await nodeZip("exports.handler = async () => 'v2';");
    const response = await call(h.app, "PUT", `${FUNCTIONS}/change-me/code`, {
      ZipFile: Buffer.from(zip).toString("base64"),
      RevisionId: before["RevisionId"],
    });
    expect(response.status).toBe(200);
    const after = (await response.json()) as Record<string, unknown>;
    expect(after["CodeSha256"]).not.toBe(before["CodeSha256"]);
    expect(after["CodeSize"]).toBe(zip.byteLength);
    expect(after["RevisionId"]).not.toBe(before["RevisionId"]);

    const stale = await errorOf(
      await call(h.app, "PUT", `${FUNCTIONS}/change-me/code`, {
        ZipFile: Buffer.from(zip).toString("base64"),
        RevisionId: before["RevisionId"],
      }),
    );
    expect(stale.status).toBe(412);
    expect(stale.type).toBe("PreconditionFailedException");
  });

  it("UpdateFunctionConfiguration changes only what is sent", async () => {
    const response = await call(h.app, "PUT", `${FUNCTIONS}/change-me/configuration`, {
      Timeout: 30,
      MemorySize: 512,
      Environment: { Variables: { ALPHA: "1" } },
      Description: "changed",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      Timeout: 30,
      MemorySize: 512,
      Environment: { Variables: { ALPHA: "1" } },
      Description: "changed",
      Handler: "index.handler",
      Runtime: "nodejs20.x",
    });
    const bad = await errorOf(
      await call(h.app, "PUT", `${FUNCTIONS}/change-me/configuration`, { MemorySize: 64 }),
    );
    expect(bad.status).toBe(400);
    expect(bad.type).toBe("InvalidParameterValueException");
    const toCustom = await errorOf(
      await call(h.app, "PUT", `${FUNCTIONS}/change-me/configuration`, { Runtime: "provided.al2" }),
    );
    expect(toCustom.type).toBe("InvalidParameterValueException");
    expect(toCustom.body["message"]).toMatch(/bootstrap/);
  });

  it("DeleteFunction answers 204, then the function is gone", async () => {
    const response = await call(h.app, "DELETE", `${FUNCTIONS}/change-me`);
    expect(response.status).toBe(204);
    expect(response.headers.get("x-amzn-requestid")).toBeTruthy();
    expect((await call(h.app, "GET", `${FUNCTIONS}/change-me`)).status).toBe(404);
    expect((await errorOf(await call(h.app, "DELETE", `${FUNCTIONS}/change-me`))).type).toBe(
      "ResourceNotFoundException",
    );
  });
});

describe("GetAccountSettings and unknown operations", () => {
  it("reports limits and the tenant's usage", async () => {
    await h.createFunction("one");
    await h.createFunction("two");
    const response = await call(h.app, "GET", "/2016-08-19/account-settings/");
    expect(response.status).toBe(200);
    const zipSize = (await nodeZip()).byteLength;
    expect(await response.json()).toEqual({
      AccountLimit: {
        TotalCodeSize: 80_530_636_800,
        CodeSizeUnzipped: 262_144_000,
        CodeSizeZipped: 52_428_800,
        ConcurrentExecutions: 1000,
        UnreservedConcurrentExecutions: 1000,
      },
      AccountUsage: { TotalCodeSize: 2 * zipSize, FunctionCount: 2 },
    });
  });

  it("answers UnknownOperationException 404 for a route Lambda does not have", async () => {
    const error = await errorOf(
      await signedRequest(h.app, { method: "GET", path: "/2099-01-01/nothing" }),
    );
    expect(error.status).toBe(404);
    expect(error.type).toBe("UnknownOperationException");
  });
});
