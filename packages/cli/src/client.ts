/**
 * The Lambda client `gust deploy` and `gust invoke` use: the real AWS SDK,
 * pointed at a Gust endpoint, with credentials from the environment or, for
 * a local `gust dev`, from the dev credentials file.
 */
import { LambdaClient } from "@aws-sdk/client-lambda";
import { readFile } from "node:fs/promises";
import { devCredentialsPath } from "./dev-credentials.js";

export const DEFAULT_ENDPOINT = "http://127.0.0.1:9000";

export interface ClientOptions {
  endpoint?: string;
  region?: string;
}

/** From the environment, else the dev credentials file. */
export async function credentials(): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const accessKeyId = process.env["AWS_ACCESS_KEY_ID"];
  const secretAccessKey = process.env["AWS_SECRET_ACCESS_KEY"];
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey };
  try {
    const stored = JSON.parse(await readFile(devCredentialsPath(), "utf8")) as {
      accessKeyId: string;
      secretAccessKey: string;
    };
    return { accessKeyId: stored.accessKeyId, secretAccessKey: stored.secretAccessKey };
  } catch {
    throw new Error(
      "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (gust dev prints them)",
    );
  }
}

/**
 * The SDK warns on every run that its releases from 2027 on need Node 22.
 * Gust pins a release that supports Node 20, so the warning only adds noise
 * to what `gust deploy` and `gust invoke` print.
 */
function silenceSdkNodeVersionWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = (warning: string | Error, ...rest: unknown[]) => {
    const type =
      typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    const name = warning instanceof Error ? warning.name : type;
    if (
      name === "NodeVersionSupportWarning" ||
      String(warning).includes("NodeVersionSupportWarning")
    ) {
      return;
    }
    emit(warning, ...rest);
  };
}

export async function lambdaClient(options: ClientOptions): Promise<LambdaClient> {
  silenceSdkNodeVersionWarning();
  return new LambdaClient({
    endpoint: options.endpoint ?? process.env["GUST_ENDPOINT"] ?? DEFAULT_ENDPOINT,
    region: options.region ?? process.env["AWS_REGION"] ?? "us-east-1",
    credentials: await credentials(),
    maxAttempts: 1,
  });
}
