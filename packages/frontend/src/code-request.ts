/**
 * The body of CreateFunction or UpdateFunctionCode, taken apart as it
 * arrives: the base64 zip (`Code.ZipFile`, `ZipFile`) is checked and decoded
 * straight into one buffer, the rest of the JSON (a few KB) is kept as bytes
 * with `null` where the zip was, and the whole body is hashed for SigV4.
 *
 * So an upload costs about its decoded zip (≤ 50 MB) in memory, where
 * reading the body, decoding it as text, JSON.parse and Buffer.from held
 * four copies of it (body, text, the ZipFile string, the zip), three of them
 * larger than the zip.
 *
 * The scan knows only as much JSON as it takes to find the member: strings
 * (with escapes), objects, arrays, keys. The rest is JSON.parse's to check,
 * on the remainder, which has the same structure as the body.
 */
import { createHash, type Hash } from "node:crypto";
import { FunctionLimits, LambdaApiError } from "@gust/protocol";
import { ApiErrors } from "./api-errors.js";
import { Base64Decoder, Base64Problems } from "./base64-decoder.js";
import type { BodySink } from "./body.js";

/** Where each operation carries its zip. */
export const ZipFileMembers = {
  createFunction: ["Code", "ZipFile"],
  updateFunctionCode: ["ZipFile"],
} as const satisfies Record<string, readonly string[]>;
export type ZipFileMember = (typeof ZipFileMembers)[keyof typeof ZipFileMembers];

/** Lambda's answer to a code request over its size, naming the operation. */
export function codeRequestTooLarge(limit: number, operation: string): LambdaApiError {
  return new LambdaApiError(
    "RequestEntityTooLargeException",
    413,
    `Request must be smaller than ${limit} bytes for the ${operation} operation`,
  );
}

/** Lambda's answer to a zip over 50 MB (since 2023; the request-size message before it). */
export function zippedTooLarge(limit: number = FunctionLimits.maxZipBytes): LambdaApiError {
  return new LambdaApiError(
    "RequestEntityTooLargeException",
    413,
    `Zipped size must be smaller than ${limit} bytes`,
  );
}

export interface CodeRequestOptions {
  /** The member whose string is the base64 zip. */
  member: ZipFileMember;
  /** The operation's name, for Lambda's error message. */
  operation: string;
  /** The decoded zip may have this many bytes. @default FunctionLimits.maxZipBytes */
  maxZipBytes?: number;
  /** Everything but the zip may have this many bytes. */
  maxRestBytes: number;
  /** The request's own limit, named when the rest is too large. */
  maxRequestBytes: number;
  /** The body's Content-Length, when declared: bounds the zip's buffer at once. */
  declaredLength?: number;
}

export interface CodeRequest {
  /** The body's JSON with the zip's string replaced by `null`. */
  rest: Uint8Array;
  /**
   * The decoded zip; undefined when the member is absent or not a string.
   * Valid until `release()`.
   */
  zip: Uint8Array | undefined;
  /** Gives the zip's memory back at once (base64-decoder.ts); the zip is empty afterwards. */
  release(): void;
  /** Hex SHA-256 of the whole body, as SigV4 signs it. */
  bodySha256: string;
  /**
   * Why the request is refused. The body is still read to its end, so the
   * client sees this answer (not a reset connection), and the signature is
   * checked first, as for any other request.
   */
  failure: LambdaApiError | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const SLASH = 0x2f;
const NULL = new TextEncoder().encode("null");
const ESCAPED_SLASH = new Uint8Array([SLASH]);
/** Not a base64 character: what an escape other than "\/" stands for. */
const NOT_BASE64 = new Uint8Array([0]);

/** Longer keys cannot be a member's name; they are not collected. */
const MAX_KEY_BYTES = 64;

const Scan = {
  between: 0,
  string: 1,
  stringEscape: 2,
  key: 3,
  keyEscape: 4,
  zip: 5,
  zipEscape: 6,
} as const;
type ScanState = (typeof Scan)[keyof typeof Scan];

interface Frame {
  isObject: boolean;
  /** In an object: the next string is a key. */
  expectKey: boolean;
  /** In an object: the key of the value being read. */
  key: string | undefined;
}

/** Grows by whole chunks: the rest is small, and copied once at the end. */
class RestBytes {
  readonly #parts: Uint8Array[] = [];
  #size = 0;
  constructor(readonly limit: number) {}
  get size(): number {
    return this.#size;
  }
  /** False once over the limit (nothing more is kept). */
  append(bytes: Uint8Array): boolean {
    if (bytes.byteLength === 0) return true;
    this.#size += bytes.byteLength;
    if (this.#size > this.limit) return false;
    // A copy: the chunk is a view of the socket's read buffer.
    this.#parts.push(bytes.slice());
    return true;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.#parts, this.#size);
  }
}

export class CodeRequestReader implements BodySink<CodeRequest> {
  readonly #options: CodeRequestOptions;
  readonly #maxZipBytes: number;
  readonly #hash: Hash = createHash("sha256");
  readonly #rest: RestBytes;
  readonly #stack: Frame[] = [];
  #state: ScanState = Scan.between;
  #key: number[] = [];
  #keyTooLong = false;
  #keyHasEscape = false;
  /** The zip's decoder while its string is read. */
  #decoder: Base64Decoder | undefined;
  /** The decoder that holds the finished zip's bytes, until released. */
  #decoded: Base64Decoder | undefined;
  #zip: Uint8Array | undefined;
  #received = 0;
  #failure: LambdaApiError | undefined;

  constructor(options: CodeRequestOptions) {
    this.#options = options;
    this.#maxZipBytes = options.maxZipBytes ?? FunctionLimits.maxZipBytes;
    this.#rest = new RestBytes(options.maxRestBytes);
  }

  write(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    const offset = this.#received;
    this.#received += chunk.byteLength;
    if (this.#failure === undefined) this.#scan(chunk, offset);
  }

  end(): CodeRequest {
    if (this.#failure === undefined && this.#decoder !== undefined) {
      // The body ended inside the zip's string: JSON.parse refuses the rest.
      this.#finishZip();
    }
    return {
      rest: this.#failure === undefined ? this.#rest.bytes() : new Uint8Array(0),
      zip: this.#failure === undefined ? this.#zip : undefined,
      release: () => this.#release(),
      bodySha256: this.#hash.digest("hex"),
      failure: this.#failure,
    };
  }

  #fail(error: LambdaApiError): void {
    this.#failure = error;
    // Whatever was decoded is let go now, not when the request ends.
    this.#release();
  }

  /** Gives the zip's memory back, whether or not the body was read to its end. */
  release(): void {
    this.#release();
  }

  #release(): void {
    this.#decoder?.release();
    this.#decoded?.release();
    this.#decoder = undefined;
    this.#decoded = undefined;
    this.#zip = undefined;
  }

  #keep(bytes: Uint8Array): void {
    if (!this.#rest.append(bytes)) {
      this.#fail(codeRequestTooLarge(this.#options.maxRequestBytes, this.#options.operation));
    }
  }

  #scan(chunk: Uint8Array, offset: number): void {
    // Bytes from `kept` on go to the rest, except the zip's string.
    let kept = 0;
    let state = this.#state;
    for (let i = 0; i < chunk.byteLength; i++) {
      if (state === Scan.zip) {
        // The hot loop: everything up to the closing quote or an escape is base64.
        const quote = chunk.indexOf(QUOTE, i);
        const backslash = chunk.indexOf(BACKSLASH, i);
        let end = quote < 0 ? chunk.byteLength : quote;
        if (backslash >= 0 && backslash < end) end = backslash;
        this.#decoder!.write(chunk, i, end);
        if (this.#decoder!.problem !== undefined) {
          // Refused already: stop decoding (and let a too-large buffer go).
          this.#finishZip();
          return;
        }
        if (end === chunk.byteLength) {
          i = end;
          break;
        }
        i = end;
        if (chunk[i] === BACKSLASH) {
          state = Scan.zipEscape;
          continue;
        }
        this.#finishZip();
        if (this.#failure !== undefined) return;
        kept = i + 1;
        state = Scan.between;
        continue;
      }
      const byte = chunk[i]!;
      switch (state) {
        case Scan.zipEscape:
          // JSON may escape "/"; no other escape stands for a base64 character.
          this.#decoder!.write(byte === SLASH ? ESCAPED_SLASH : NOT_BASE64);
          if (this.#decoder!.problem !== undefined) {
            this.#finishZip();
            return;
          }
          state = Scan.zip;
          break;
        case Scan.string:
          if (byte === BACKSLASH) state = Scan.stringEscape;
          else if (byte === QUOTE) state = Scan.between;
          break;
        case Scan.stringEscape:
          state = Scan.string;
          break;
        case Scan.key:
          if (byte === QUOTE) {
            this.#endKey();
            state = Scan.between;
          } else {
            if (byte === BACKSLASH) {
              this.#keyHasEscape = true;
              state = Scan.keyEscape;
            }
            this.#collectKey(byte);
          }
          break;
        case Scan.keyEscape:
          this.#collectKey(byte);
          state = Scan.key;
          break;
        case Scan.between:
          state = this.#structure(byte);
          if (state === Scan.zip) {
            // Keep what came before the string; `null` stands in for it.
            this.#keep(chunk.subarray(kept, i));
            this.#keep(NULL);
            if (this.#failure === undefined) this.#startZip(offset + i);
            if (this.#failure !== undefined) return;
          }
          break;
      }
    }
    this.#state = state;
    if (state !== Scan.zip && state !== Scan.zipEscape) this.#keep(chunk.subarray(kept));
  }

  /** A byte between strings; returns the state it leads to. */
  #structure(byte: number): ScanState {
    const top = this.#stack[this.#stack.length - 1];
    switch (byte) {
      case OPEN_OBJECT:
        this.#stack.push({ isObject: true, expectKey: true, key: undefined });
        return Scan.between;
      case OPEN_ARRAY:
        this.#stack.push({ isObject: false, expectKey: false, key: undefined });
        return Scan.between;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        this.#stack.pop();
        return Scan.between;
      case COLON:
        if (top !== undefined) top.expectKey = false;
        return Scan.between;
      case COMMA:
        if (top?.isObject === true) top.expectKey = true;
        return Scan.between;
      case QUOTE:
        if (top?.isObject === true && top.expectKey) {
          this.#key = [];
          this.#keyTooLong = false;
          this.#keyHasEscape = false;
          return Scan.key;
        }
        return this.#atMember() ? Scan.zip : Scan.string;
      default:
        return Scan.between;
    }
  }

  #atMember(): boolean {
    const { member } = this.#options;
    if (this.#stack.length !== member.length) return false;
    return member.every((name, depth) => {
      const frame = this.#stack[depth]!;
      return frame.isObject && frame.key === name;
    });
  }

  #collectKey(byte: number): void {
    if (this.#key.length < MAX_KEY_BYTES) this.#key.push(byte);
    else this.#keyTooLong = true;
  }

  #endKey(): void {
    const top = this.#stack[this.#stack.length - 1];
    if (top === undefined) return;
    let key: string | undefined;
    if (!this.#keyTooLong) {
      const raw = Buffer.from(this.#key).toString("latin1");
      try {
        key = this.#keyHasEscape ? (JSON.parse(`"${raw}"`) as string) : raw;
      } catch {
        key = undefined; // JSON.parse refuses the body later.
      }
    }
    top.key = key;
  }

  #startZip(at: number): void {
    if (this.#decoded !== undefined || this.#decoder !== undefined) {
      this.#fail(ApiErrors.invalidRequestContent(`${this.#memberName()} appears more than once`));
      return;
    }
    const declared = this.#options.declaredLength;
    this.#decoder = new Base64Decoder({
      maxBytes: this.#maxZipBytes,
      // What remains of the body, decoded, bounds the zip.
      ...(declared === undefined ? {} : { expectedBytes: Math.floor((declared - at) / 4) * 3 }),
    });
  }

  #finishZip(): void {
    const decoder = this.#decoder!;
    const decoded = decoder.end();
    this.#decoder = undefined;
    this.#decoded = decoder;
    if (decoded === Base64Problems.tooLarge) {
      this.#fail(zippedTooLarge(this.#maxZipBytes));
    } else if (decoded === Base64Problems.invalid) {
      this.#fail(ApiErrors.invalidParameter(`${this.#memberName()} is not valid base64`));
    } else {
      this.#zip = decoded;
    }
  }

  #memberName(): string {
    return this.#options.member.join(".");
  }
}
