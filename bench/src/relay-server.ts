/**
 * The floor for running each invocation in a process of its own, as Lambda
 * (and Gust) do: a bare node:http server that hands each request's body to
 * an idle child process (relay-child.ts, one invocation at a time, as a
 * sandbox) and answers with what the child returns. Children are reached
 * over pipes with length-prefixed frames, the cheapest process hop Node
 * offers; a request that finds no idle child starts a new one (kept
 * afterwards), as a sandbox pool would. No authentication, routing,
 * admission, Runtime API or logs: only the hops every invocation must make
 * (client → server → sandbox → server → client). `POST /sleep/<ms>` makes
 * the child wait that long. Run as its own process; prints its port.
 *
 * BENCH_RELAY_WINDOW=N hands at most N requests to children at once, the
 * rest waiting their turn, as Gust's workers do with short invocations
 * (packages/worker/src/dispatch-window.ts); 0, the default, hands each out
 * at once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { serveBare } from "./bare-server.js";

const CHILD = fileURLToPath(new URL("./relay-child.js", import.meta.url));
const INITIAL_CHILDREN = 8;

interface Child {
  process: ChildProcess;
  pending: Buffer;
  answer: ((body: Buffer) => void) | undefined;
}

const idle: Child[] = [];
const waiting: Array<(child: Child) => void> = [];
const all: Child[] = [];

function startChild(): Child {
  const child: Child = {
    process: spawn(process.execPath, [CHILD], { stdio: ["pipe", "pipe", "inherit"] }),
    pending: Buffer.alloc(0),
    answer: undefined,
  };
  child.process.stdout!.on("data", (chunk: Buffer) => {
    child.pending = child.pending.length === 0 ? chunk : Buffer.concat([child.pending, chunk]);
    while (child.pending.length >= 4) {
      const length = child.pending.readUInt32BE(0);
      if (child.pending.length < 4 + length) break;
      const body = child.pending.subarray(4, 4 + length);
      child.pending = child.pending.subarray(4 + length);
      const answer = child.answer;
      child.answer = undefined;
      release(child);
      answer?.(body);
    }
  });
  all.push(child);
  return child;
}

function release(child: Child): void {
  const next = waiting.shift();
  if (next) next(child);
  else idle.push(child);
}

const WINDOW = Number(process.env["BENCH_RELAY_WINDOW"] ?? 0);
let handedOut = 0;
const held: Array<() => void> = [];

/** A turn within the window (at once without one). */
function turn(): Promise<void> {
  if (WINDOW <= 0 || handedOut < WINDOW) {
    handedOut++;
    return Promise.resolve();
  }
  return new Promise((resolve) => held.push(resolve));
}

function endTurn(): void {
  const next = held.shift();
  if (next) next();
  else handedOut--;
}

function acquire(): Promise<Child> {
  const child = idle.pop();
  if (child) return Promise.resolve(child);
  // Like a cold start: a new child for the next one waiting.
  idle.push(startChild());
  return new Promise((resolve) => waiting.push(resolve));
}

for (let i = 0; i < INITIAL_CHILDREN; i++) idle.push(startChild());

const server = serveBare((body, sleepMs, answer) => {
  void turn()
    .then(acquire)
    .then((child) => {
      child.answer = (reply) => {
        answer(reply);
        endTurn();
      };
      const header = Buffer.alloc(8);
      header.writeUInt32BE(4 + body.length, 0);
      header.writeUInt32BE(sleepMs, 4);
      child.process.stdin!.write(Buffer.concat([header, body]));
    });
});
process.on("SIGTERM", () => {
  for (const child of all) child.process.kill("SIGKILL");
  server.close(() => process.exit(0));
});
