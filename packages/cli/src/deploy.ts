/**
 * `gust deploy <dir> --name fn`: zip a directory and create the function, or
 * update its code (and the configuration given on the command line) when it
 * exists — one command for the first deploy and every one after.
 */
import {
  CreateFunctionCommand,
  GetFunctionConfigurationCommand,
  ResourceNotFoundException,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type FunctionConfiguration,
  type Runtime,
} from "@aws-sdk/client-lambda";
import { zipDirectory } from "@gust/bundle";
import { lambdaClient, type ClientOptions } from "./client.js";

export interface DeployOptions extends ClientOptions {
  dir: string;
  name: string;
  /** @default "nodejs20.x" */
  runtime?: string;
  /** @default "index.handler" */
  handler?: string;
  timeoutSec?: number;
  memoryMb?: number;
  environment?: Record<string, string>;
}

export async function deploy(options: DeployOptions): Promise<FunctionConfiguration> {
  const client = await lambdaClient(options);
  try {
    const zip = await zipDirectory(options.dir);
    let exists = true;
    try {
      await client.send(new GetFunctionConfigurationCommand({ FunctionName: options.name }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
      exists = false;
    }
    const config = {
      ...(options.timeoutSec === undefined ? {} : { Timeout: options.timeoutSec }),
      ...(options.memoryMb === undefined ? {} : { MemorySize: options.memoryMb }),
      ...(options.environment === undefined
        ? {}
        : { Environment: { Variables: options.environment } }),
    };
    if (!exists) {
      return await client.send(
        new CreateFunctionCommand({
          FunctionName: options.name,
          Runtime: (options.runtime ?? "nodejs20.x") as Runtime,
          Handler: options.handler ?? "index.handler",
          Role: "arn:aws:iam::000000000000:role/gust",
          Code: { ZipFile: zip },
          ...config,
        }),
      );
    }
    let result = await client.send(
      new UpdateFunctionCodeCommand({ FunctionName: options.name, ZipFile: zip }),
    );
    const changes = {
      ...config,
      ...(options.runtime === undefined ? {} : { Runtime: options.runtime as Runtime }),
      ...(options.handler === undefined ? {} : { Handler: options.handler }),
    };
    if (Object.keys(changes).length > 0) {
      result = await client.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: options.name, ...changes }),
      );
    }
    return result;
  } finally {
    client.destroy();
  }
}
