/**
 * Function code as a worker sees it: zips fetched once per CodeSha256 from a
 * CodeSource (the registry in production) and kept on the worker's disk, so a
 * function's tenth cold start costs a file read, not a trip to the store.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { GustError } from "@gust/protocol";
import type { GustErrorOptions } from "@gust/protocol";

/** Where a worker gets function zips; the registry's FunctionRegistry satisfies it. */
export interface CodeSource {
  fetchCode(codeSha256: string): Promise<Uint8Array | undefined>;
}

/** The zip for an invocation could not be had; retryable when the store itself failed. */
export class CodeUnavailableError extends GustError {
  override name = "CodeUnavailableError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "code-unavailable", options);
  }
}

/** Lambda's CodeSha256: the base64 SHA-256 of the zip. */
export function codeSha256Of(zip: Uint8Array): string {
  return createHash("sha256").update(zip).digest("base64");
}

export class CodeCache {
  readonly #dir: string;
  readonly #source: CodeSource;
  readonly #inflight = new Map<string, Promise<Uint8Array>>();
  #dirReady: Promise<unknown> | undefined;

  constructor(dir: string, source: CodeSource) {
    this.#dir = dir;
    this.#source = source;
  }

  /** The zip whose CodeSha256 is given, from disk if this worker has seen it. */
  get(codeSha256: string): Promise<Uint8Array> {
    const pending = this.#inflight.get(codeSha256);
    if (pending) return pending;
    const loading = this.#load(codeSha256).finally(() => this.#inflight.delete(codeSha256));
    this.#inflight.set(codeSha256, loading);
    return loading;
  }

  #file(codeSha256: string): string {
    // The hash is caller-supplied text; hashing it again gives a safe file name.
    return path.join(this.#dir, `${createHash("sha256").update(codeSha256).digest("hex")}.zip`);
  }

  async #load(codeSha256: string): Promise<Uint8Array> {
    const file = this.#file(codeSha256);
    try {
      return await readFile(file);
    } catch {
      // Not cached yet (or unreadable): fetch it.
    }
    let zip: Uint8Array | undefined;
    try {
      zip = await this.#source.fetchCode(codeSha256);
    } catch (cause) {
      throw new CodeUnavailableError(`fetching code ${codeSha256} failed`, {
        cause,
        retryable: true,
      });
    }
    if (zip === undefined) {
      throw new CodeUnavailableError(`no code stored for CodeSha256 ${codeSha256}`);
    }
    // A worker runs exactly the bytes the function was deployed with, or nothing.
    const actual = codeSha256Of(zip);
    if (actual !== codeSha256) {
      throw new CodeUnavailableError(`code for ${codeSha256} has CodeSha256 ${actual}`);
    }
    this.#dirReady ??= mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await this.#dirReady;
    const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
    await writeFile(partial, zip, { mode: 0o600 });
    await rename(partial, file);
    return zip;
  }
}
