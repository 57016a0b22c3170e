/**
 * `gust invoke <name> [payload]`: a synchronous invocation that prints the
 * function's response on stdout and, with --log, its log tail on stderr.
 */
import { InvokeCommand, type InvocationType } from "@aws-sdk/client-lambda";
import { lambdaClient, type ClientOptions } from "./client.js";

export interface InvokeOptions extends ClientOptions {
  name: string;
  /** JSON text. @default "{}" */
  payload?: string;
  /** @default "RequestResponse" */
  invocationType?: InvocationType;
  tailLog?: boolean;
}

export interface InvokeOutcome {
  statusCode: number;
  payload: string;
  functionError?: string;
  log?: string;
  executedVersion?: string;
}

export async function invoke(options: InvokeOptions): Promise<InvokeOutcome> {
  const client = await lambdaClient(options);
  try {
    const result = await client.send(
      new InvokeCommand({
        FunctionName: options.name,
        Payload: new TextEncoder().encode(options.payload ?? "{}"),
        InvocationType: options.invocationType ?? "RequestResponse",
        LogType: options.tailLog ? "Tail" : "None",
      }),
    );
    return {
      statusCode: result.StatusCode ?? 0,
      payload: result.Payload ? new TextDecoder().decode(result.Payload) : "",
      ...(result.FunctionError ? { functionError: result.FunctionError } : {}),
      ...(result.LogResult
        ? { log: Buffer.from(result.LogResult, "base64").toString("utf8") }
        : {}),
      ...(result.ExecutedVersion ? { executedVersion: result.ExecutedVersion } : {}),
    };
  } finally {
    client.destroy();
  }
}
