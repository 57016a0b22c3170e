/**
 * A BlobStore on the JetStream object store: function zips (up to 50 MB) are
 * split into chunks below the server's max_payload, so no single message
 * carries a whole zip.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { ObjectStore } from "@nats-io/obj";
import { InvalidBusArgumentError } from "./errors.js";
import { assertBlobName, assertBucketName } from "./names.js";
import { toGustError } from "./nats-errors.js";
import type { JetStreamStorage } from "./nats-kv.js";
import type { BlobStore } from "./types.js";

/** Larger chunks than nats.js's 128 KB default mean fewer acknowledged publishes per zip. */
export const BLOB_CHUNK_BYTES = 1024 * 1024;

export interface NatsBlobStoreOptions {
  /** @default "file" */
  storage?: JetStreamStorage;
  /** @default 1 */
  replicas?: number;
}

export class NatsBlobStore implements BlobStore {
  readonly name: string;
  readonly #store: ObjectStore;

  private constructor(name: string, store: ObjectStore) {
    this.name = name;
    this.#store = store;
  }

  /** Opens the store, creating it if absent; safe when several processes do it at once. */
  static async open(
    js: JetStreamClient,
    name: string,
    options: NatsBlobStoreOptions = {},
  ): Promise<NatsBlobStore> {
    assertBucketName(name);
    const objm = new Objm(js);
    const config = { storage: options.storage ?? "file", replicas: options.replicas ?? 1 } as const;
    let store: ObjectStore;
    try {
      store = await objm.create(name, { ...config });
    } catch (first) {
      // Lost a creation race: the store exists now, so this opens it.
      try {
        store = await objm.create(name, { ...config });
      } catch {
        throw toGustError(first, `open object store ${name}`);
      }
    }
    return new NatsBlobStore(name, store);
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    assertBlobName(name);
    if (!(data instanceof Uint8Array))
      throw new InvalidBusArgumentError("blob data must be a Uint8Array");
    try {
      await this.#store.putBlob({ name, options: { max_chunk_size: BLOB_CHUNK_BYTES } }, data);
    } catch (error) {
      throw toGustError(error, `put blob ${this.name}/${name}`);
    }
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    assertBlobName(name);
    try {
      return (await this.#store.getBlob(name)) ?? undefined;
    } catch (error) {
      throw toGustError(error, `get blob ${this.name}/${name}`);
    }
  }

  async has(name: string): Promise<boolean> {
    assertBlobName(name);
    try {
      const info = await this.#store.info(name);
      return info !== null && !info.deleted;
    } catch (error) {
      throw toGustError(error, `look up blob ${this.name}/${name}`);
    }
  }

  async delete(name: string): Promise<void> {
    assertBlobName(name);
    try {
      const info = await this.#store.info(name);
      if (info === null || info.deleted) return;
      await this.#store.delete(name);
    } catch (error) {
      throw toGustError(error, `delete blob ${this.name}/${name}`);
    }
  }
}
