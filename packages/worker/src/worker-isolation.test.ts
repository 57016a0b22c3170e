/**
 * What a sandbox can see: only Lambda's environment, only its own files, only
 * its own Runtime API; and custom (`provided`) runtimes such as the bash
 * bootstrap of AWS's custom-runtime tutorial.
 */
import { readFile, readdir, readlink, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "@gust/bus";
import { createLogger } from "@gust/telemetry";
import { detectJail } from "./jail.js";
import { runningAsRoot } from "./sandbox-isolation.js";
import { SANDBOX_NICE } from "./sandbox-process.js";
import { startWorker } from "./worker.js";
import type { Worker } from "./worker.js";
import {
  MapCodeSource,
  invoke,
  makeFunction,
  nodeFunction,
  payloadOf,
  uniqueUidBase,
} from "./test-support.js";

const logger = createLogger("worker-test", { level: "silent" });
const bus = new MemoryBus({ logger });
const code = new MapCodeSource();
const uidBase = uniqueUidBase();
const CANARY = "GUST_TEST_CANARY_7f3a";
/** Sandboxes here are jailed where the host allows it; "uid only" is then tested below. */
const jailed = (await detectJail()).available;
let worker: Worker;

beforeAll(async () => {
  process.env[CANARY] = "host secret";
  worker = await startWorker(
    { preinitializedPoolSize: 1, sandboxUidBase: uidBase, trustTenants: true },
    { bus, code, logger },
  );
});

afterAll(async () => {
  delete process.env[CANARY];
  await worker?.close();
  await bus.close();
});

function resultOf(reply: Awaited<ReturnType<typeof invoke>>) {
  if (reply.type !== "invoke.result")
    throw new Error(`rejected: ${reply.error.name}: ${reply.error.message}`);
  return reply;
}

/** The bootstrap from AWS's custom runtime tutorial (docs.aws.amazon.com/lambda/latest/dg/runtimes-walkthrough.html). */
const TUTORIAL_BOOTSTRAP = `#!/bin/bash
set -euo pipefail

# Initialization - load function handler
source $LAMBDA_TASK_ROOT/"$(echo $_HANDLER | cut -d. -f1).sh"

# Processing
while true
do
  HEADERS="$(mktemp)"
  # Get an event. The HTTP request will block until one is received
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")

  # Extract request ID by scraping response headers received above
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)

  # Run the handler function from the script
  RESPONSE=$($(echo "$_HANDLER" | cut -d. -f2) "$EVENT_DATA")

  # Send the response
  curl -sS "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response"  -d "$RESPONSE"
done
`;

const TUTORIAL_FUNCTION = `function handler () {
  EVENT_DATA=$1
  echo "$EVENT_DATA" 1>&2;
  RESPONSE="Echoing request: '$EVENT_DATA'"

  echo $RESPONSE
}
`;

/** A custom runtime whose handler runs a shell snippet with the event in $EVENT and prints its output as the response. */
function shellFunction(script: string) {
  return makeFunction(
    code,
    [
      { path: "bootstrap", data: TUTORIAL_BOOTSTRAP, mode: 0o755 },
      { path: "function.sh", data: `function handler () {\n  EVENT="$1"\n  ${script}\n}\n` },
    ],
    { runtime: "provided.al2023", handler: "function.handler" },
  );
}

describe("custom runtimes", () => {
  it("runs the AWS tutorial's bash bootstrap, which speaks the Runtime API with curl", async () => {
    const fn = await makeFunction(
      code,
      [
        { path: "bootstrap", data: TUTORIAL_BOOTSTRAP, mode: 0o755 },
        { path: "function.sh", data: TUTORIAL_FUNCTION },
      ],
      { runtime: "provided", handler: "function.handler" },
    );
    const first = resultOf(
      await invoke(bus, worker.id, fn.target, { payload: { key: "v1" }, tailLog: true }),
    );
    expect(first).toMatchObject({ outcome: "success", startKind: "cold" });
    expect(Buffer.from(first.payload).toString()).toBe(`Echoing request: '{"key":"v1"}'`);
    // The handler's stderr line is part of the log.
    expect(first.logTail).toContain('{"key":"v1"}');
    expect(first.logTail).toContain("END RequestId:");
    const second = resultOf(await invoke(bus, worker.id, fn.target, { payload: { key: "v2" } }));
    expect(second.startKind).toBe("warm");
    expect(Buffer.from(second.payload).toString()).toBe(`Echoing request: '{"key":"v2"}'`);
  });

  it("fails a custom runtime without an executable bootstrap as an init error", async () => {
    const fn = await makeFunction(code, [{ path: "function.sh", data: TUTORIAL_FUNCTION }], {
      runtime: "provided.al2",
      handler: "function.handler",
    });
    const reply = resultOf(await invoke(bus, worker.id, fn.target));
    expect(reply.outcome).toBe("init-error");
    expect(payloadOf(reply)).toMatchObject({ errorType: "Runtime.InvalidEntrypoint" });
  });
});

describe("sandbox isolation", () => {
  it("gives a handler Lambda's environment and none of the host's", async () => {
    const fn = await nodeFunction(code, `export const handler = async () => process.env;`, {
      environment: {
        OWN_SETTING: "mine",
        AWS_LAMBDA_FUNCTION_NAME: "spoofed",
        NODE_OPTIONS: "--allow-fs-read=/ --enable-source-maps",
      },
    });
    const reply = resultOf(await invoke(bus, worker.id, fn.target));
    const env = payloadOf(reply) as Record<string, string>;
    expect(env[CANARY]).toBeUndefined();
    expect(env).toMatchObject({
      AWS_LAMBDA_FUNCTION_NAME: fn.target.name,
      AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128",
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.target.name}`,
      AWS_REGION: "us-east-1",
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_EXECUTION_ENV: "AWS_Lambda_nodejs20.x",
      TZ: ":UTC",
      _HANDLER: "index.handler",
      OWN_SETTING: "mine",
      // Flags that would widen the permission model are dropped.
      NODE_OPTIONS: "--enable-source-maps",
    });
    expect(env["AWS_LAMBDA_LOG_STREAM_NAME"]).toMatch(
      /^\d{4}\/\d\d\/\d\d\/\[\$LATEST\][0-9a-f]{32}$/,
    );
    // In a jail, Lambda's own address, forwarded to the sandbox's socket.
    expect(env["AWS_LAMBDA_RUNTIME_API"]).toMatch(
      jailed ? /^127\.0\.0\.1:9001$/ : /^127\.0\.0\.1:\d+$/,
    );
    expect(env["TMPDIR"]).toBe(env["HOME"]);
    // Nothing beyond what Lambda sets and what the function asked for.
    const lambdaVariables = [
      "AWS_LAMBDA_RUNTIME_API",
      "LAMBDA_TASK_ROOT",
      "LAMBDA_RUNTIME_DIR",
      "_HANDLER",
      "AWS_LAMBDA_FUNCTION_NAME",
      "AWS_LAMBDA_FUNCTION_VERSION",
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
      "AWS_LAMBDA_LOG_GROUP_NAME",
      "AWS_LAMBDA_LOG_STREAM_NAME",
      "AWS_LAMBDA_INITIALIZATION_TYPE",
      "AWS_REGION",
      "AWS_DEFAULT_REGION",
      "AWS_EXECUTION_ENV",
      "TZ",
      "LANG",
      "PATH",
      "TMPDIR",
      "HOME",
    ];
    expect(Object.keys(env).sort()).toEqual(
      [...lambdaVariables, "OWN_SETTING", "NODE_OPTIONS"].sort(),
    );
  });

  it("runs a sandbox below the worker's CPU priority", async () => {
    const fn = await nodeFunction(
      code,
      `import os from "node:os"; export const handler = async () => ({ nice: os.getPriority() });`,
    );
    const reply = resultOf(await invoke(bus, worker.id, fn.target));
    expect(payloadOf(reply)).toEqual({ nice: os.getPriority() + SANDBOX_NICE });
  });

  it("lets a Node.js handler read its code and write its temp dir, and nothing else", async () => {
    const fn = await nodeFunction(
      code,
      `import fs from "node:fs";
       const attempt = (f) => { try { f(); return "ok"; } catch (e) { return e.code; } };
       export const handler = async () => ({
         ownCode: attempt(() => fs.readFileSync(process.env.LAMBDA_TASK_ROOT + "/index.mjs")),
         tmp: attempt(() => { fs.writeFileSync(process.env.TMPDIR + "/x", "1"); fs.readFileSync(process.env.TMPDIR + "/x"); }),
         etc: attempt(() => fs.readFileSync("/etc/hostname")),
         writeCode: attempt(() => fs.writeFileSync(process.env.LAMBDA_TASK_ROOT + "/y", "1")),
       });`,
    );
    const reply = resultOf(await invoke(bus, worker.id, fn.target));
    expect(payloadOf(reply)).toEqual({
      ownCode: "ok",
      tmp: "ok",
      etc: "ERR_ACCESS_DENIED",
      writeCode: "ERR_ACCESS_DENIED",
    });
  });

  it.runIf(runningAsRoot())(
    "without a jail, runs each sandbox under its own uid, so the kernel keeps tenants' files apart",
    async () => {
      // A worker whose operator turned jails off (and so must trust its tenants).
      const uidOnlyBase = uniqueUidBase();
      const uidOnly = await startWorker(
        { preinitializedPoolSize: 0, sandboxUidBase: uidOnlyBase, jail: false, trustTenants: true },
        { bus, code, logger },
      );
      try {
        const victim = await nodeFunction(
          code,
          `export const handler = async () => ({
         taskRoot: process.env.LAMBDA_TASK_ROOT, tmp: process.env.TMPDIR,
         api: process.env.AWS_LAMBDA_RUNTIME_API, uid: process.getuid(),
       });`,
          { tenantId: "victim" },
        );
        const victimInfo = payloadOf(
          resultOf(await invoke(bus, uidOnly.id, victim.target)),
        ) as Record<string, string | number>;
        const uid = victimInfo["uid"] as number;
        expect(uid).toBeGreaterThanOrEqual(uidOnlyBase);
        expect(uid).toBeLessThan(uidOnlyBase + 32);
        const taskRoot = await stat(String(victimInfo["taskRoot"]));
        expect(taskRoot.mode & 0o777).toBe(0o750);
        expect(taskRoot.gid).toBe(uid);
        const tmp = await stat(String(victimInfo["tmp"]));
        expect([tmp.mode & 0o777, tmp.uid]).toEqual([0o700, uid]);

        // A bash runtime has no permission model of its own: only the kernel stands between it and the victim.
        const attacker = await shellFunction(
          `T=$(echo "$EVENT" | sed -e 's/.*"taskRoot":"\\([^"]*\\)".*/\\1/')
       P=$(echo "$EVENT" | sed -e 's/.*"tmp":"\\([^"]*\\)".*/\\1/')
       A=$(echo "$EVENT" | sed -e 's/.*"api":"\\([^"]*\\)".*/\\1/')
       if cat "$T/index.mjs" >/dev/null 2>&1; then R1=read; else R1=denied; fi
       if ls "$P" >/dev/null 2>&1; then R2=listed; else R2=denied; fi
       if curl -sS -m 5 -d x "http://$A/2018-06-01/runtime/invocation/none/response" >/dev/null 2>&1; then R3=served; else R3=refused; fi
       echo "code=$R1 tmp=$R2 api=$R3 uid=$(id -u)"`,
        );
        const event = {
          taskRoot: victimInfo["taskRoot"],
          tmp: victimInfo["tmp"],
          api: victimInfo["api"],
        };
        const reply = resultOf(await invoke(bus, uidOnly.id, attacker.target, { payload: event }));
        const text = Buffer.from(reply.payload).toString();
        expect(text).toMatch(/^code=denied tmp=denied api=refused uid=\d+$/);
        expect(text).not.toContain(`uid=${uid}`);
        // The victim's sandbox still works: the refused connection took nothing from it.
        expect(resultOf(await invoke(bus, uidOnly.id, victim.target)).startKind).toBe("warm");
      } finally {
        await uidOnly.close();
      }
    },
  );

  it.runIf(jailed)(
    "jails each sandbox: its own uid, /tmp, processes and Runtime API, nothing of another's",
    async () => {
      const victim = await shellFunction(
        `echo "victim secret" > /tmp/victim.txt; chmod 644 /tmp/victim.txt; echo "uid=$(id -u)"`,
      );
      const victimReply = resultOf(await invoke(bus, worker.id, victim.target));
      const victimUid = /uid=(\d+)/.exec(Buffer.from(victimReply.payload).toString())?.[1];
      expect(Number(victimUid)).toBeGreaterThanOrEqual(uidBase);
      // The attacker looks for the victim's file, processes and code where a shared host would
      // have them, and for any other Runtime API or service on loopback.
      const attacker = await shellFunction(
        `if cat /tmp/victim.txt >/dev/null 2>&1; then R1=read; else R1=none; fi
       R2=$(ls /proc | grep -c '^[0-9]')
       R3=$(ls /var/task | tr '\\n' ,)
       if [ -e ${"$"}{AWS_LAMBDA_RUNTIME_API%%:*} ] || [ "$AWS_LAMBDA_RUNTIME_API" != 127.0.0.1:9001 ]; then R4=odd; else R4=lambda; fi
       echo "tmp=$R1 procs=$R2 code=$R3 api=$R4 uid=$(id -u)"`,
      );
      const text = Buffer.from(
        resultOf(await invoke(bus, worker.id, attacker.target)).payload,
      ).toString();
      expect(text).toMatch(/^tmp=none procs=\d+ code=bootstrap,function.sh, api=lambda uid=\d+$/);
      expect(Number(/procs=(\d+)/.exec(text)?.[1])).toBeLessThan(12);
      expect(text).not.toContain(`uid=${victimUid}`);
      expect(resultOf(await invoke(bus, worker.id, victim.target)).startKind).toBe("warm");
    },
  );
});

describe("closing", () => {
  it("leaves no sandbox process and no files behind", async () => {
    const closingBus = new MemoryBus({ logger });
    const base = uniqueUidBase();
    const closing = await startWorker(
      { preinitializedPoolSize: 1, sandboxUidBase: base, trustTenants: true },
      { bus: closingBus, code, logger },
    );
    const fn = await nodeFunction(
      code,
      `export const handler = async () => process.env.LAMBDA_TASK_ROOT;`,
    );
    const taskRoot = payloadOf(resultOf(await invoke(closingBus, closing.id, fn.target))) as string;
    // A jailed runtime's working directory is /var/task in its own mount namespace.
    const sandboxPid = jailed
      ? (await processesWithUidIn(base, base + 32))[0]
      : await processRunningIn(taskRoot);
    expect(sandboxPid).toBeDefined();
    await closing.close();
    await closingBus.close();
    expect(processAlive(sandboxPid as number)).toBe(false);
    if (!jailed) {
      await expect(stat(taskRoot)).rejects.toThrow();
      // <baseDir>/sandboxes/<id>/task: the worker's own temp dir is gone too.
      await expect(stat(path.dirname(path.dirname(path.dirname(taskRoot))))).rejects.toThrow();
    }
    if (runningAsRoot()) expect(await processesWithUidIn(base, base + 32)).toEqual([]);
  });
});

/** A process whose cwd is `dir` (a sandbox runs in its task root). */
async function processRunningIn(dir: string): Promise<number | undefined> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/cwd`)) === dir) return Number(entry);
    } catch {
      // Gone, or not ours to read.
    }
  }
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function processesWithUidIn(low: number, high: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, "utf8");
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      if (uid >= low && uid < high) found.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}
