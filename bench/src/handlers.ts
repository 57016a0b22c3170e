/**
 * The functions every target runs, the request they all get, and the Lambda
 * API calls the benchmarks make on Gust (create a function, invoke it once).
 */
import { zipFiles } from "@gust/bundle";
import { signedHeaders, type Credential } from "./signing.js";

export const HANDLERS = {
  noop: "export const handler = async () => ({ ok: true });\n",
  sleep10:
    "export const handler = async () => {\n" +
    "  await new Promise((resolve) => setTimeout(resolve, 10));\n" +
    "  return { ok: true };\n" +
    "};\n",
} as const;
export type HandlerName = keyof typeof HANDLERS;
export const HANDLER_NAMES = Object.keys(HANDLERS) as HandlerName[];

/** What the bare echo does instead of each handler. */
export const ECHO_PATHS: Record<HandlerName, string> = { noop: "/", sleep10: "/sleep/10" };

/** Records when it started and ended (every process on the machine reads the same wall clock). */
export const TIMED_SLEEP_HANDLER =
  "export const handler = async (event) => {\n" +
  "  const start = Date.now();\n" +
  "  await new Promise((resolve) => setTimeout(resolve, event.sleepMs));\n" +
  "  return { start, end: Date.now() };\n" +
  "};\n";

/** A 100-byte JSON body, the size of the reference figures' POST. */
export const PAYLOAD = (() => {
  const shell = JSON.stringify({ ping: "" });
  return new TextEncoder().encode(JSON.stringify({ ping: "x".repeat(100 - shell.length) }));
})();

export interface GustEndpoint {
  name: string;
  url: string;
  credential: Credential;
}

export const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;

export async function createFunction(
  target: GustEndpoint,
  name: string,
  source: string,
  timeoutSeconds = 30,
): Promise<void> {
  const zip = await zipFiles([{ path: "index.mjs", data: source }]);
  const body = new TextEncoder().encode(
    JSON.stringify({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: "arn:aws:iam::000000000000:role/bench",
      Timeout: timeoutSeconds,
      Code: { ZipFile: Buffer.from(zip).toString("base64") },
    }),
  );
  const path = "/2015-03-31/functions";
  const headers = await signedHeaders(target.url, "POST", path, body, target.credential);
  const response = await fetch(target.url + path, { method: "POST", headers, body });
  if (response.status !== 201) {
    throw new Error(
      `CreateFunction on ${target.name}: ${response.status} ${await response.text()}`,
    );
  }
}

/** One synchronous invocation; resolves with its round trip in ms and the function's answer. */
export async function invokeOnce(
  target: GustEndpoint,
  name: string,
  payload: Uint8Array = PAYLOAD,
): Promise<{ ms: number; body: string }> {
  const path = invokePath(name);
  const headers = await signedHeaders(target.url, "POST", path, payload, target.credential);
  const began = performance.now();
  const response = await fetch(target.url + path, { method: "POST", headers, body: payload });
  const body = await response.text();
  const ms = performance.now() - began;
  if (response.status !== 200 || response.headers.get("x-amz-function-error")) {
    throw new Error(`invoke ${name} on ${target.name}: ${response.status} ${body}`);
  }
  return { ms, body };
}
