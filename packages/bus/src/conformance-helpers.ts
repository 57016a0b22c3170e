/**
 * Helpers shared by the conformance suites and the NATS fault tests.
 */
import type { Infrastructure } from "./types.js";

/**
 * Two clients of the same state; on NATS, two connections. They change per
 * test, so suites read them inside each test, never when declaring it.
 */
export interface ConformanceClients {
  readonly a: Infrastructure;
  readonly b: Infrastructure;
}

const te = new TextEncoder();
const td = new TextDecoder();
export const bytes = (value: string): Uint8Array => te.encode(value);
export const text = (data: Uint8Array): string => td.decode(data);
export const MB = 1024 * 1024;

/** Polls until the condition holds; generous by default for a loaded 2-core machine. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

export function thrown(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}
