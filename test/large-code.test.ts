/**
 * Code at Lambda's limits through a frontend process of its own on a fleet:
 * a 40 MB zip of incompressible data deploys over HTTP and runs, and deploys
 * through the AWS CLI (when on PATH) to the same CodeSha256; a ~4 MB zip
 * deploys (a regular expression over its base64 once overflowed the stack);
 * 51 MB and just over 50 MB get Lambda's 413; and ten 45 MB uploads at once
 * leave the frontend's memory under the documented bound, baseline + N × the
 * largest request (N code uploads read at once), and give it back after.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  GetFunctionCommand,
  InvokeCommand,
  ListFunctionsCommand,
  type LambdaClient,
} from "@aws-sdk/client-lambda";
import { startNatsServer, type NatsServerHandle } from "@gust/bus";
import { GUST_MAIN, spawnGust, type GustProcess } from "@gust/cli";
import { DEFAULT_CODE_UPLOADS_IN_FLIGHT, MAX_CODE_REQUEST_BYTES } from "@gust/frontend";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createFunctionBody,
  incompressible,
  paddedEchoZip,
  uploadCode,
} from "./support/code-upload.js";
import { echoZip } from "./support/functions.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { testTenant } from "./support/tenants.js";

const run = promisify(execFile);
const MB = 1024 * 1024;

/** The AWS CLI on PATH, if any (`.ci/run` installs Debian's awscli). */
async function awsCliVersion(): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run("aws", ["--version"]);
    return (stdout || stderr).trim();
  } catch {
    return undefined;
  }
}
const AWS_CLI = await awsCliVersion();

/** Resident and peak resident memory of a process, in bytes (Linux). */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/**
 * The environment that gives the coordinator and the frontend the fleet's
 * tenant key, made with `gust tenant-key`; empty where gust has no such
 * command (its fleet then keeps no key).
 */
async function tenantKeyEnv(dir: string): Promise<Record<string, string>> {
  const file = join(dir, "tenant.key");
  try {
    await run(process.execPath, [GUST_MAIN, "tenant-key", "--out", file]);
  } catch {
    return {};
  }
  return { GUST_TENANT_KEY_FILE: file };
}

const mb = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;

/**
 * Room for a loaded 2-core machine: these tests move hundreds of MB through
 * a frontend and JetStream. A bound on time, not a claim about speed.
 */
const LARGE_TEST_TIMEOUT_MS = 180_000;

describe("code at Lambda's size limits, through a frontend process", () => {
  const tenant = testTenant("large-code");
  let nats: NatsServerHandle;
  let dir: string;
  const processes: GustProcess[] = [];
  let frontend: GustProcess;
  let url: string;
  let lambda: LambdaClient;
  /** The frontend's resident memory once started and serving. */
  let baseline: number;

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    dir = await mkdtemp(join(tmpdir(), "gust-large-code-"));
    const tenantsFile = join(dir, "tenants.json");
    await writeFile(tenantsFile, JSON.stringify({ tenants: [tenant] }), { mode: 0o600 });
    const keyEnv = await tenantKeyEnv(dir);
    const coordinator = spawnGust(
      ["coordinator", "--nats", nats.url, "--tenants", tenantsFile],
      keyEnv,
    );
    processes.push(coordinator);
    const worker = spawnGust(["worker", "--nats", nats.url, "--id", "w-large", "--pool", "0"]);
    processes.push(worker);
    frontend = spawnGust(
      ["frontend", "--nats", nats.url, "--host", "127.0.0.1", "--port", "0"],
      keyEnv,
    );
    processes.push(frontend);
    await Promise.all([
      coordinator.waitForLog("coordinator started"),
      worker.waitForLog("worker started"),
    ]);
    url = (await frontend.waitForLog("frontend listening"))["url"] as string;
    lambda = lambdaFor(url, tenant);
    // Serving once, so the baseline counts what any frontend has after its first requests.
    const small = await uploadCode(
      url,
      tenant,
      "POST",
      "/2015-03-31/functions",
      createFunctionBody("small", await echoZip()),
    );
    expect(small.status).toBe(201);
    baseline = (await memoryOf(frontend.child.pid!)).rss;
  });

  afterAll(async () => {
    lambda?.destroy();
    await Promise.all(processes.map((process) => process.stop()));
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const invokes = async (name: string) => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: name, Payload: new TextEncoder().encode('{"n":7}') }),
    );
    expect(result.FunctionError).toBeUndefined();
    expect(decodePayload(result.Payload)).toMatchObject({ echo: { n: 7 }, functionName: name });
  };

  /** One 40 MB zip for the HTTP and the CLI upload: the second finds its code stored. */
  let forty: Promise<Uint8Array> | undefined;
  const fortyZip = () => (forty ??= paddedEchoZip(incompressible(40 * MB), "forty"));

  it(
    "deploys a 40 MB zip over HTTP and runs it",
    async () => {
      const zip = await fortyZip();
      expect(zip.byteLength).toBeGreaterThan(40 * MB);
      const created = await uploadCode(
        url,
        tenant,
        "POST",
        "/2015-03-31/functions",
        createFunctionBody("forty-http", zip),
      );
      expect(created.status, created.body).toBe(201);
      expect(JSON.parse(created.body)).toMatchObject({ CodeSize: zip.byteLength });
      await invokes("forty-http");
    },
    LARGE_TEST_TIMEOUT_MS,
  );

  it.runIf(AWS_CLI !== undefined)(
    `deploys a 40 MB zip with the AWS CLI (${AWS_CLI})`,
    async () => {
      const zipPath = join(dir, "forty.zip");
      await writeFile(zipPath, await fortyZip());
      const credential = tenant.credentials[0]!;
      const { stdout } = await run(
        "aws",
        [
          "lambda",
          "create-function",
          "--endpoint-url",
          url,
          "--function-name",
          "forty-cli",
          "--runtime",
          "nodejs20.x",
          "--handler",
          "index.handler",
          "--role",
          "arn:aws:iam::000000000000:role/test",
          "--zip-file",
          `fileb://${zipPath}`,
          "--output",
          "json",
        ],
        {
          env: {
            PATH: process.env["PATH"] ?? "",
            HOME: dir,
            AWS_ACCESS_KEY_ID: credential.accessKeyId,
            AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
            AWS_DEFAULT_REGION: "us-east-1",
            AWS_CONFIG_FILE: join(dir, "no-config"),
            AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-credentials"),
            // One attempt: a failure shows as it is, not after the CLI's retries.
            AWS_MAX_ATTEMPTS: "1",
            AWS_RETRY_MODE: "standard",
            AWS_PAGER: "",
          },
          maxBuffer: 16 * MB,
        },
      );
      // The same code as forty-http, which has run: the CLI's upload arrived whole.
      const http = await lambda.send(new GetFunctionCommand({ FunctionName: "forty-http" }));
      expect(JSON.parse(stdout)).toMatchObject({
        FunctionName: "forty-cli",
        CodeSize: (await fortyZip()).byteLength,
        CodeSha256: http.Configuration?.CodeSha256,
      });
    },
    LARGE_TEST_TIMEOUT_MS,
  );

  it("deploys a ~4 MB zip, a function with its node_modules", async () => {
    const created = await uploadCode(
      url,
      tenant,
      "POST",
      "/2015-03-31/functions",
      createFunctionBody("four", await paddedEchoZip(incompressible(4 * MB), "four")),
    );
    expect(created.status, created.body).toBe(201);
  });

  it(
    "refuses a 51 MB zip, and one just over 50 MB, with Lambda's RequestEntityTooLargeException",
    async () => {
      // 51 MB in base64 is over the request limit: refused by its Content-Length, unread.
      const over = await uploadCode(
        url,
        tenant,
        "POST",
        "/2015-03-31/functions",
        createFunctionBody("over", await paddedEchoZip(incompressible(51 * MB), "over")),
      );
      expect(over.status).toBe(413);
      expect(over.errorType).toBe("RequestEntityTooLargeException");
      expect(JSON.parse(over.body)).toMatchObject({
        message: `Request must be smaller than ${MAX_CODE_REQUEST_BYTES} bytes for the CreateFunction operation`,
      });
      // 50 MB and 100 KB fits the request, not the zip limit: refused once decoded.
      const justOver = await uploadCode(
        url,
        tenant,
        "POST",
        "/2015-03-31/functions",
        createFunctionBody("just-over", await paddedEchoZip(incompressible(50 * MB + 100_000))),
      );
      expect(justOver.status).toBe(413);
      expect(justOver.errorType).toBe("RequestEntityTooLargeException");
      expect(JSON.parse(justOver.body)).toMatchObject({
        message: "Zipped size must be smaller than 52428800 bytes",
      });
      const listed = await lambda.send(new ListFunctionsCommand({}));
      expect(listed.Functions?.map((fn) => fn.FunctionName)).not.toContain("just-over");
    },
    LARGE_TEST_TIMEOUT_MS,
  );

  it(
    "keeps ten concurrent 45 MB uploads under baseline + N × the largest request",
    async () => {
      const pid = frontend.child.pid!;
      // At rest, having served the uploads above: what they held has come back
      // (less than one upload's worth of allocator slack stays).
      const atRest = (await memoryOf(pid)).rss;
      expect(atRest - baseline).toBeLessThan(MAX_CODE_REQUEST_BYTES);
      // Peak memory counts from here (Linux: 5 resets VmHWM to the current RSS).
      await writeFile(`/proc/${pid}/clear_refs`, "5");
      // One zip for all ten: the object store keeps it once, so the test times the
      // frontend's reading of ten bodies rather than ten 45 MB writes to JetStream.
      const zip = await paddedEchoZip(incompressible(45 * MB), "many");
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          uploadCode(
            url,
            tenant,
            "POST",
            "/2015-03-31/functions",
            createFunctionBody(`many-${i}`, zip),
          ),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(201));
      const after = await memoryOf(pid);
      // The kernel may drop and refault node's own file pages: either reading is the baseline.
      const rest = Math.max(baseline, atRest);
      const bound = rest + DEFAULT_CODE_UPLOADS_IN_FLIGHT * MAX_CODE_REQUEST_BYTES;
      console.info(
        `frontend memory: first ${mb(baseline)}, at rest ${mb(atRest)}, peak ${mb(after.peak)}, after ${mb(after.rss)}, bound ${mb(bound)}`,
      );
      expect(after.peak).toBeLessThanOrEqual(bound);
      // And given back: each zip is released before its answer is sent.
      expect(after.rss - rest).toBeLessThan(MAX_CODE_REQUEST_BYTES);
    },
    LARGE_TEST_TIMEOUT_MS,
  );
});
