/** Function bundles the integration tests deploy. */
import { zipFiles } from "@gust/bundle";

/** A CommonJS handler that echoes, fails, sleeps or calls back on request. */
export const ECHO_HANDLER = `
exports.handler = async (event, context) => {
  if (event.notify) {
    await fetch(event.notify, {
      method: "POST",
      body: JSON.stringify({ requestId: context.awsRequestId, event }),
    });
  }
  if (event.sleepMs) await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  if (event.fail) throw new Error("boom: " + event.fail);
  console.log("hello from", context.functionName);
  return {
    echo: event,
    functionName: context.functionName,
    greeting: process.env.GREETING ?? null,
    remainingMs: context.getRemainingTimeInMillis(),
  };
};
`;

export function echoZip(): Promise<Uint8Array> {
  return zipFiles([{ path: "index.js", data: ECHO_HANDLER }]);
}

export function versionZip(version: string): Promise<Uint8Array> {
  return zipFiles([
    {
      path: "index.mjs",
      data: `export const handler = async () => ({ version: ${JSON.stringify(version)} });\n`,
    },
  ]);
}

/**
 * The bash custom runtime from AWS's custom-runtime tutorial: a `bootstrap`
 * that speaks the Runtime API with curl and a handler script it sources.
 */
export function bashRuntimeZip(): Promise<Uint8Array> {
  // Amazon Linux's /bin/sh is bash; Debian's is dash, which lacks pipefail.
  const bootstrap = `#!/bin/bash
set -euo pipefail
source $LAMBDA_TASK_ROOT/"$(echo $_HANDLER | cut -d. -f1).sh"
while true
do
  HEADERS="$(mktemp)"
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  RESPONSE=$($(echo "$_HANDLER" | cut -d. -f2) "$EVENT_DATA")
  curl "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" -d "$RESPONSE"
done
`;
  const handler = `function handler () {
  EVENT_DATA=$1
  RESPONSE="Echoing request: '$EVENT_DATA'"
  echo $RESPONSE
}
`;
  return zipFiles([
    { path: "bootstrap", data: bootstrap, mode: 0o755 },
    { path: "function.sh", data: handler, mode: 0o644 },
  ]);
}

/**
 * A custom runtime whose every invocation runs `script` in bash and answers
 * its output (stdout and stderr) as the response.
 */
export function bashScriptZip(script: string): Promise<Uint8Array> {
  const bootstrap = `#!/bin/bash
while true; do
  HEADERS="$(mktemp)"
  curl -sS -LD "$HEADERS" -o /dev/null "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next"
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  OUT=$(bash "$LAMBDA_TASK_ROOT/script.sh" 2>&1)
  curl -sS "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" --data-binary "$OUT" >/dev/null
done
`;
  return zipFiles([
    { path: "bootstrap", data: bootstrap, mode: 0o755 },
    { path: "script.sh", data: `${script}\n`, mode: 0o644 },
  ]);
}
