/**
 * A sandbox's output as Lambda presents it: everything the runtime writes to
 * stdout and stderr, between the platform's START/END/REPORT lines. Only the
 * last 4 KB of an invocation are kept (Lambda's LogResult), so a function that
 * prints gigabytes costs the worker nothing; complete lines go on to the
 * worker's logger as they arrive.
 */
import { StringDecoder } from "node:string_decoder";

/** Lambda returns the last 4 KB of the log with LogType=Tail. */
export const LOG_TAIL_BYTES = 4096;
/** A line longer than this is passed on in pieces. */
const MAX_LINE_CHARS = 16 * 1024;

export type LogStream = "stdout" | "stderr" | "platform";

/** The last `limit` bytes appended. */
export class TailBuffer {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const chunk =
      bytes.length > this.#limit
        ? Buffer.from(bytes.subarray(bytes.length - this.#limit))
        : Buffer.from(bytes);
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size - (this.#chunks[0]?.length ?? 0) >= this.#limit) {
      this.#size -= this.#chunks.shift()?.length ?? 0;
    }
  }

  text(): string {
    let bytes = Buffer.concat(this.#chunks);
    if (bytes.length > this.#limit) bytes = bytes.subarray(bytes.length - this.#limit);
    // Cutting may split a UTF-8 character: drop its continuation bytes.
    let start = 0;
    while (start < bytes.length && start < 4 && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++;
    return bytes.subarray(start).toString("utf8");
  }

  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }
}

class LineSplitter {
  readonly #decoder = new StringDecoder("utf8");
  readonly #emit: (line: string) => void;
  #partial = "";

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  write(chunk: Uint8Array): void {
    this.#partial += this.#decoder.write(Buffer.from(chunk));
    let newline = this.#partial.indexOf("\n");
    while (newline !== -1) {
      this.#emit(this.#partial.slice(0, newline).replace(/\r$/, ""));
      this.#partial = this.#partial.slice(newline + 1);
      newline = this.#partial.indexOf("\n");
    }
    while (this.#partial.length > MAX_LINE_CHARS) {
      this.#emit(this.#partial.slice(0, MAX_LINE_CHARS));
      this.#partial = this.#partial.slice(MAX_LINE_CHARS);
    }
  }

  flush(): void {
    if (this.#partial !== "") this.#emit(this.#partial);
    this.#partial = "";
  }
}

export class LogBuffer {
  readonly #tail = new TailBuffer(LOG_TAIL_BYTES);
  readonly #stdout: LineSplitter;
  readonly #stderr: LineSplitter;
  readonly #onLine: (line: string, stream: LogStream) => void;

  constructor(onLine: (line: string, stream: LogStream) => void) {
    this.#onLine = onLine;
    this.#stdout = new LineSplitter((line) => onLine(line, "stdout"));
    this.#stderr = new LineSplitter((line) => onLine(line, "stderr"));
  }

  write(stream: "stdout" | "stderr", chunk: Uint8Array): void {
    this.#tail.append(chunk);
    (stream === "stdout" ? this.#stdout : this.#stderr).write(chunk);
  }

  /** A line of the platform's own (START, END, REPORT). */
  platform(line: string): void {
    this.flush();
    this.#tail.append(Buffer.from(`${line}\n`));
    this.#onLine(line, "platform");
  }

  /** Pass on partial lines (the runtime may not end its last line). */
  flush(): void {
    this.#stdout.flush();
    this.#stderr.flush();
  }

  /** The tail since the last call, which starts the next invocation's log. */
  takeTail(): string {
    const text = this.#tail.text();
    this.#tail.clear();
    return text;
  }

  /** As takeTail, for an invocation whose caller did not ask for its log. */
  dropTail(): undefined {
    this.#tail.clear();
    return undefined;
  }
}
