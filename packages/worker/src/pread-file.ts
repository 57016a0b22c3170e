/**
 * A small kernel file (/proc, cgroupfs) read again and again through one
 * descriptor kept open: each read is a single pread from offset 0, cheap
 * enough to do synchronously after every invocation, where an asynchronous
 * open-read-close would cost three thread-pool round trips.
 */
import { closeSync, openSync, readSync } from "node:fs";

export class PreadFile {
  readonly #fd: number;
  readonly #buffer: Buffer;

  private constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#buffer = Buffer.alloc(size);
  }

  /** Undefined when the file cannot be opened (gone, or not on this kernel). */
  static open(file: string, size = 128): PreadFile | undefined {
    try {
      return new PreadFile(openSync(file, "r"), size);
    } catch {
      return undefined;
    }
  }

  /** The file's text (its first `size` bytes); undefined once it cannot be read. */
  text(): string | undefined {
    try {
      return this.#buffer.toString(
        "latin1",
        0,
        readSync(this.#fd, this.#buffer, 0, this.#buffer.length, 0),
      );
    } catch {
      return undefined;
    }
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed.
    }
  }
}
