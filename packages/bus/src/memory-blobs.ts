/**
 * In-memory blob store for `gust dev`: function zips keyed by their SHA-256.
 * Values are copied in and out so a caller that reuses its buffer cannot
 * change what was stored.
 */
import { BusClosedError, InvalidBusArgumentError, rejectOnThrow } from "./errors.js";
import { assertBlobName } from "./names.js";
import type { BlobStore } from "./types.js";

export class MemoryBlobStore implements BlobStore {
  readonly name: string;
  readonly #blobs = new Map<string, Uint8Array>();
  #closed = false;

  constructor(name: string) {
    this.name = name;
  }

  put(name: string, data: Uint8Array): Promise<void> {
    return rejectOnThrow(() => {
      this.#check(name);
      if (!(data instanceof Uint8Array))
        throw new InvalidBusArgumentError("blob data must be a Uint8Array");
      this.#blobs.set(name, data.slice());
    });
  }

  get(name: string): Promise<Uint8Array | undefined> {
    return rejectOnThrow(() => {
      this.#check(name);
      return this.#blobs.get(name)?.slice();
    });
  }

  has(name: string): Promise<boolean> {
    return rejectOnThrow(() => {
      this.#check(name);
      return this.#blobs.has(name);
    });
  }

  delete(name: string): Promise<void> {
    return rejectOnThrow(() => {
      this.#check(name);
      this.#blobs.delete(name);
    });
  }

  close(): void {
    this.#closed = true;
    this.#blobs.clear();
  }

  #check(name: string): void {
    if (this.#closed) throw new BusClosedError(`blob store ${this.name} is closed`);
    assertBlobName(name);
  }
}
