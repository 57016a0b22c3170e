/**
 * A hostile tenant on a fleet (a real, authenticated nats-server; the
 * frontend, worker and coordinator on the bus; sandboxes jailed), attacking
 * from a Node.js handler and from a bash custom runtime: the platform's
 * services, another tenant's files, and every limit. Each attack here worked
 * before sandboxes were jailed and given control groups.
 *
 * Runs where the host can jail sandboxes (root, bubblewrap, socat, writable
 * control groups); elsewhere it says why it skips.
 */
import { readFile, readdir } from "node:fs/promises";
import { CreateFunctionCommand, InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { zipFiles } from "@gust/bundle";
import { detectCgroups, detectJail } from "@gust/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGust, type TestGust } from "./support/gust.js";
import { lambdaFor } from "./support/lambda.js";
import { testTenant } from "./support/tenants.js";

/** A custom runtime that runs the event's base64 `script` in bash and answers its output, on one line. */
const SCRIPT_BOOTSTRAP = `#!/bin/bash
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -LD "$HEADERS" "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  rm -f "$HEADERS"
  SCRIPT=$(printf '%s' "$EVENT" | sed -e 's/.*"script":"\\([^"]*\\)".*/\\1/' | base64 -d)
  OUT=$(bash -c "$SCRIPT" 2>&1 | tr '\\n' ' ')
  curl -sS "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "$OUT" >/dev/null
done
`;

/** A Node.js handler that runs the event's `code` as an async function body with net and fs. */
const CODE_HANDLER = `import net from "node:net";
import fs from "node:fs";
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
export const handler = async (event) => new AsyncFunction("net", "fs", "event", event.code)(net, fs, event);
`;

const jail = await detectJail();
const cgroups = await detectCgroups();
const skipReason = !jail.available
  ? jail.reason
  : !cgroups.available
    ? `control groups: ${cgroups.reason}`
    : undefined;

const attacker = testTenant("mallory");
const victim = testTenant("victim");

async function createFunction(
  client: LambdaClient,
  name: string,
  kind: "bash" | "node",
  extra: { MemorySize?: number; Timeout?: number } = {},
): Promise<void> {
  const zip =
    kind === "bash"
      ? await zipFiles([
          { path: "bootstrap", data: SCRIPT_BOOTSTRAP, mode: 0o755 },
          { path: "function.sh", data: "# the bootstrap runs the event's script\n" },
        ])
      : await zipFiles([{ path: "index.mjs", data: CODE_HANDLER }]);
  await client.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: kind === "bash" ? "provided.al2023" : "nodejs20.x",
      Handler: kind === "bash" ? "function.handler" : "index.handler",
      Role: "arn:aws:iam::000000000000:role/test",
      Code: { ZipFile: zip },
      MemorySize: extra.MemorySize ?? 128,
      Timeout: extra.Timeout ?? 30,
    }),
  );
}

interface Answer {
  text: string;
  functionError: string | undefined;
}

async function run(client: LambdaClient, name: string, event: object): Promise<Answer> {
  const result = await client.send(
    new InvokeCommand({
      FunctionName: name,
      Payload: new TextEncoder().encode(JSON.stringify(event)),
    }),
  );
  return {
    text: new TextDecoder().decode(result.Payload ?? new Uint8Array()).trim(),
    functionError: result.FunctionError,
  };
}

const bash = (client: LambdaClient, name: string, script: string) =>
  run(client, name, { script: Buffer.from(script).toString("base64") });

/** The value of `key=` in a bash answer. */
function field(answer: Answer, key: string): string | undefined {
  return new RegExp(`(?:^|\\s)${key}=(\\S*)`).exec(answer.text)?.[1];
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(skipReason !== undefined)(
  `a hostile tenant on a fleet${skipReason === undefined ? "" : ` (skipped: ${skipReason})`}`,
  () => {
    let gust: TestGust;
    let mallory: LambdaClient;
    let alice: LambdaClient;
    let natsPort: number;
    let frontendPort: number;

    beforeAll(async () => {
      gust = await startGust("fleet", {
        tenants: [attacker, victim],
        worker: { preinitializedPoolSize: 0 },
      });
      natsPort = gust.nats?.port ?? 0;
      expect(natsPort).toBeGreaterThan(0);
      frontendPort = Number(new URL(gust.url).port);
      mallory = lambdaFor(gust.url, attacker);
      alice = lambdaFor(gust.url, victim);
      await createFunction(mallory, "probe", "bash");
      await createFunction(mallory, "probe-1vcpu", "bash", { MemorySize: 1769 });
      await createFunction(mallory, "node-probe", "node");
      await createFunction(mallory, "big", "bash", { MemorySize: 1024 });
      await createFunction(mallory, "short", "bash", { Timeout: 2 });
      await createFunction(alice, "diary", "bash");
    });

    afterAll(async () => {
      mallory?.destroy();
      alice?.destroy();
      await gust?.close();
    });

    it("cannot reach nats-server, a frontend or anything on the host's loopback, from bash", async () => {
      const answer = await bash(
        mallory,
        "probe",
        `for port in ${natsPort} ${frontendPort}; do
           if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port$port=open"; else echo "port$port=closed"; fi
         done
         if curl -s -m 3 http://127.0.0.1:${frontendPort}/healthz >/dev/null; then echo http=reached; else echo http=refused; fi
         echo api=$AWS_LAMBDA_RUNTIME_API`,
      );
      expect(field(answer, `port${natsPort}`)).toBe("closed");
      expect(field(answer, `port${frontendPort}`)).toBe("closed");
      expect(field(answer, "http")).toBe("refused");
      expect(field(answer, "api")).toBe("127.0.0.1:9001");
    });

    it("cannot reach nats-server or a frontend from a Node.js handler either", async () => {
      const answer = await run(mallory, "node-probe", {
        ports: [natsPort, frontendPort],
        code: `const attempt = (port) => new Promise((resolve) => {
                 const socket = net.connect({ host: "127.0.0.1", port });
                 socket.once("connect", () => { socket.destroy(); resolve("open"); });
                 socket.once("error", (error) => resolve(error.code));
               });
               const out = {};
               for (const port of event.ports) out[port] = await attempt(port);
               return out;`,
      });
      expect(answer.functionError).toBeUndefined();
      const result = JSON.parse(answer.text) as Record<string, string>;
      expect(result[String(natsPort)]).toBe("ECONNREFUSED");
      expect(result[String(frontendPort)]).toBe("ECONNREFUSED");
    });

    it("sees no other process, and no host file, from bash", async () => {
      const answer = await bash(
        mallory,
        "probe",
        `echo procs=$(ls /proc | grep -c '^[0-9]')
         if cat /proc/1/environ >/dev/null 2>&1; then echo init=readable; else echo init=hidden; fi
         if grep -qs 'nats[-]server' /proc/*/cmdline; then echo nats=seen; else echo nats=unseen; fi
         if ls /root /home >/dev/null 2>&1; then echo home=listed; else echo home=hidden; fi
         if [ -e /run/gust/uid-leases ] || [ -e /etc/shadow ]; then echo host=visible; else echo host=hidden; fi`,
      );
      expect(Number(field(answer, "procs"))).toBeLessThan(12);
      expect(field(answer, "init")).toBe("hidden");
      expect(field(answer, "nats")).toBe("unseen");
      expect(field(answer, "home")).toBe("hidden");
      expect(field(answer, "host")).toBe("hidden");
    });

    it("cannot see another tenant's /tmp, /dev/shm or code", async () => {
      const left = await bash(
        alice,
        "diary",
        `echo "dear diary" > /tmp/diary.txt; chmod 644 /tmp/diary.txt
         echo secret > /dev/shm/shared; chmod 666 /dev/shm/shared; echo uid=$(id -u)`,
      );
      expect(field(left, "uid")).toMatch(/^\d+$/);
      const answer = await bash(
        mallory,
        "probe",
        `if cat /tmp/diary.txt 2>/dev/null; then echo tmp=read; else echo tmp=none; fi
         if cat /dev/shm/shared 2>/dev/null; then echo shm=read; else echo shm=none; fi
         echo code=$(ls /var/task | tr '\\n' ,) uid=$(id -u)`,
      );
      expect(field(answer, "tmp")).toBe("none");
      expect(field(answer, "shm")).toBe("none");
      expect(field(answer, "code")).toBe("bootstrap,function.sh,");
      expect(field(answer, "uid")).not.toBe(field(left, "uid"));
    });

    it(
      "holds a double-forked process to the function's MemorySize",
      { timeout: 60_000 },
      async () => {
        const answer = await bash(
          mallory,
          "probe",
          // One 1 GB string, filled at memset speed: at 128 MB the function has 7% of a CPU
          // (Lambda's model), too little for a hog that grows by reading, like tail /dev/zero.
          `setsid perl -e '$x = "x" x (1 << 30); sleep 60' >/dev/null 2>&1 < /dev/null &
         HOG=$!
         for i in $(seq 1 100); do kill -0 $HOG 2>/dev/null || break; sleep 0.2; done
         if kill -0 $HOG 2>/dev/null; then echo hog=alive; else echo hog=killed; fi
         echo rss=$(ps -o rss= -p $HOG 2>/dev/null | tr -d ' ')`,
        );
        // The kernel killed the hog (the largest process in the group); the handler lived on.
        expect(answer.functionError).toBeUndefined();
        expect(field(answer, "hog"), answer.text).toBe("killed");
      },
    );

    it("caps the processes a function can start at 1,024", async () => {
      const answer = await bash(
        mallory,
        "big",
        // perl's fork fails at once where bash's would retry for seconds.
        `perl -e 'my @kids; for (1..1500) { my $pid = fork(); last unless defined $pid;
             if ($pid == 0) { close STDOUT; close STDERR; sleep 30; exit 0 } push @kids, $pid }
           print "started=" . scalar(@kids) . "\n"; kill "KILL", @kids'`,
      );
      expect(Number(field(answer, "started")), answer.text).toBeLessThanOrEqual(1024);
      expect(Number(field(answer, "started"))).toBeGreaterThan(100);
    });

    it("caps open files at 1,024", async () => {
      const answer = await bash(
        mallory,
        "probe",
        `echo limit=$(ulimit -n)
         n=0; for i in $(seq 10 5000); do eval "exec $i</dev/null" 2>/dev/null || break; n=$((n+1)); done
         echo opened=$n
         if ulimit -n 8192 2>/dev/null; then echo raise=allowed; else echo raise=refused; fi`,
      );
      expect(field(answer, "limit")).toBe("1024");
      expect(Number(field(answer, "opened"))).toBeLessThan(1024);
      expect(field(answer, "raise")).toBe("refused");
    });

    it("caps /tmp at EphemeralStorage (512 MB) and /dev/shm, however much memory there is", async () => {
      const answer = await bash(
        mallory,
        "big",
        `echo size=$(df -m /tmp | tail -1 | awk '{print $2}')
         dd if=/dev/zero of=/tmp/fill bs=1M count=700 2>/dev/null; echo tmp=$(du -sm /tmp | cut -f1)
         dd if=/dev/zero of=/dev/shm/fill bs=1M count=300 2>/dev/null; echo shm=$(du -sm /dev/shm | cut -f1)
         rm -f /tmp/fill /dev/shm/fill`,
      );
      expect(Number(field(answer, "size"))).toBe(512);
      expect(Number(field(answer, "tmp"))).toBeLessThanOrEqual(512);
      expect(Number(field(answer, "shm"))).toBeLessThanOrEqual(64);
    });

    it("kills everything a function started at its timeout, escaped or not", async () => {
      const answer = await bash(
        mallory,
        "short",
        `setsid bash -c 'while :; do :; done' >/dev/null 2>&1 < /dev/null &
         (setsid sleep 600 >/dev/null 2>&1 < /dev/null &) ; echo uid=$(id -u) >&2; sleep 30`,
      );
      expect(answer.functionError).toBe("Unhandled");
      expect(answer.text).toContain("Task timed out");
      // Nothing it started, in its session or out of it, outlives the timeout for long.
      const leftovers = async () => {
        const found: string[] = [];
        for (const entry of await readdir("/proc")) {
          if (!/^\d+$/.test(entry)) continue;
          const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
          if (
            cmdline === "sleep\u0000600\u0000" ||
            cmdline.startsWith("bash\u0000-c\u0000while :")
          ) {
            found.push(`${entry}: ${cmdline.replaceAll("\u0000", " ")}`);
          }
        }
        return found;
      };
      expect(await waitUntil(async () => (await leftovers()).length === 0, 10_000)).toBe(true);
    });

    it("freezes what a function left running between its invocations", async () => {
      // A whole CPU (1,769 MB), so the handler's own work around the pause is quick and
      // what the loop writes meanwhile is little beside what it would write unfrozen.
      await bash(
        mallory,
        "probe-1vcpu",
        `rm -f /tmp/ticks; setsid bash -c 'while :; do echo x >> /tmp/ticks; sleep 0.05; done' >/dev/null 2>&1 < /dev/null &
         echo started=1`,
      );
      // Unfrozen, the loop would add about 80 lines in these four seconds.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      const answer = await bash(
        mallory,
        "probe-1vcpu",
        `echo ticks=$(wc -l < /tmp/ticks); pkill -f ticks`,
      );
      expect(Number(field(answer, "ticks"))).toBeLessThan(30);
    });
  },
);

describe.skipIf(skipReason !== undefined)(
  `a tenant given a uid another tenant had${skipReason === undefined ? "" : ` (skipped: ${skipReason})`}`,
  () => {
    let gust: TestGust;
    let mallory: LambdaClient;
    let alice: LambdaClient;

    beforeAll(async () => {
      // Idle sandboxes go within half a second, and uids are handed out lowest first:
      // the attacker's sandbox gets the uid the victim's just had.
      gust = await startGust("fleet", {
        tenants: [attacker, victim],
        worker: { preinitializedPoolSize: 0, keepAliveMs: 500 },
      });
      mallory = lambdaFor(gust.url, attacker);
      alice = lambdaFor(gust.url, victim);
      await createFunction(mallory, "heir", "bash");
      await createFunction(alice, "leaver", "bash");
    });

    afterAll(async () => {
      mallory?.destroy();
      alice?.destroy();
      await gust?.close();
    });

    it("finds nothing the previous holder of its uid left: files, shared memory, processes", async () => {
      const left = await bash(
        alice,
        "leaver",
        `echo secret > /tmp/left.txt; chmod 666 /tmp/left.txt; echo secret > /dev/shm/left
         setsid sleep 600 >/dev/null 2>&1 < /dev/null &
         echo uid=$(id -u)`,
      );
      const uid = field(left, "uid");
      expect(uid).toMatch(/^\d+$/);
      // The victim's sandbox is reaped (keep-alive), its group emptied, its uid free again:
      // nothing of it runs on the host, however it left its session.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const sleepers: string[] = [];
      for (const entry of await readdir("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        const status = await readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
        if (/^Uid:\s+(\d+)/m.exec(status)?.[1] === uid) sleepers.push(entry);
      }
      expect(sleepers).toEqual([]);
      const answer = await bash(
        mallory,
        "heir",
        `echo uid=$(id -u)
         if ls /tmp/left.txt /dev/shm/left >/dev/null 2>&1; then echo files=found; else echo files=none; fi
         if find / -xdev -user $(id -u) -not -path '/proc/*' 2>/dev/null | grep -v '^/tmp' | grep -q .; then echo owned=found; else echo owned=none; fi
         if pgrep -u $(id -u) -x sleep >/dev/null; then echo sleeper=found; else echo sleeper=none; fi`,
      );
      // Only meaningful if the uid really was handed on.
      expect(field(answer, "uid")).toBe(uid);
      expect(field(answer, "files")).toBe("none");
      expect(field(answer, "owned")).toBe("none");
      expect(field(answer, "sleeper")).toBe("none");
    });
  },
);
