/**
 * The `context` argument, with the fields and methods Lambda's Node runtime
 * gives it. https://docs.aws.amazon.com/lambda/latest/dg/nodejs-context.html
 */
import type { Invocation } from "./runtime-api.mjs";

export interface CognitoIdentity {
  cognitoIdentityId: string | undefined;
  cognitoIdentityPoolId: string | undefined;
}

/** The context of every runtime version. */
export interface LambdaContext {
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  /** A string, as in Lambda (it comes from AWS_LAMBDA_FUNCTION_MEMORY_SIZE). */
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  identity: CognitoIdentity | undefined;
  clientContext: unknown;
  getRemainingTimeInMillis(): number;
}

/** What a runtime with callback handlers adds (see profile.mts). */
export interface CallbackLambdaContext extends LambdaContext {
  callbackWaitsForEmptyEventLoop: boolean;
  succeed(result?: unknown): void;
  fail(error?: unknown): void;
  done(error?: unknown, result?: unknown): void;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The frontend passes JSON text; tolerate the base64 form clients send
    // in X-Amz-Client-Context in case it arrives undecoded.
    try {
      return JSON.parse(Buffer.from(text, "base64").toString("utf8")) as unknown;
    } catch {
      return undefined;
    }
  }
}

function parseIdentity(text: string | undefined): CognitoIdentity | undefined {
  const parsed = parseJson(text);
  if (parsed === null || typeof parsed !== "object") return undefined;
  const fields = parsed as Record<string, unknown>;
  const text_ = (value: unknown) => (typeof value === "string" ? value : undefined);
  return {
    cognitoIdentityId: text_(fields["cognitoIdentityId"]),
    cognitoIdentityPoolId: text_(fields["cognitoIdentityPoolId"]),
  };
}

export type Completion = (error: unknown, result: unknown) => void;

/** Builds the context for one invocation of a runtime without callbacks. */
export function createContext(invocation: Invocation, env: NodeJS.ProcessEnv): LambdaContext {
  const functionName = env["AWS_LAMBDA_FUNCTION_NAME"] ?? "";
  return {
    functionName,
    functionVersion: env["AWS_LAMBDA_FUNCTION_VERSION"] ?? "$LATEST",
    invokedFunctionArn: invocation.invokedFunctionArn,
    memoryLimitInMB: env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] ?? "",
    awsRequestId: invocation.requestId,
    logGroupName: env["AWS_LAMBDA_LOG_GROUP_NAME"] ?? `/aws/lambda/${functionName}`,
    logStreamName: env["AWS_LAMBDA_LOG_STREAM_NAME"] ?? "",
    identity: parseIdentity(invocation.cognitoIdentity),
    clientContext: parseJson(invocation.clientContext),
    getRemainingTimeInMillis: () => Math.max(0, invocation.deadlineMs - Date.now()),
  };
}

/** Builds the context of a runtime with callbacks; succeed/fail/done report through `complete`. */
export function createCallbackContext(
  invocation: Invocation,
  env: NodeJS.ProcessEnv,
  complete: Completion,
): CallbackLambdaContext {
  const base = createContext(invocation, env);
  return {
    functionName: base.functionName,
    functionVersion: base.functionVersion,
    invokedFunctionArn: base.invokedFunctionArn,
    memoryLimitInMB: base.memoryLimitInMB,
    awsRequestId: base.awsRequestId,
    logGroupName: base.logGroupName,
    logStreamName: base.logStreamName,
    identity: base.identity,
    clientContext: base.clientContext,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => base.getRemainingTimeInMillis(),
    succeed: (result?: unknown) => complete(null, result),
    fail: (error?: unknown) => complete(error ?? "handled", undefined),
    done: (error?: unknown, result?: unknown) => complete(error, result),
  };
}
