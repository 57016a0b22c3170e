/**
 * Strict base64 (RFC 4648 §4: the standard alphabet, padded to whole
 * quantums) decoded as it arrives, one pass over the bytes, into one buffer.
 *
 * A regular expression matching a 60 MB ZipFile quantum by quantum
 * recursed past the stack, and Buffer.from(text, "base64") skips characters
 * that are not base64 where Lambda refuses them; this checks and decodes
 * piece by piece, and needs neither the whole text as a string nor more than
 * the decoded bytes in memory.
 *
 * The bytes live in a resizable ArrayBuffer: it grows in place (no copy),
 * and `release()` shrinks it to nothing, which gives its pages back to the
 * system at once. A 45 MB buffer merely dropped stays resident until V8
 * next collects its old generation, which an idle frontend may not do for
 * a long while.
 */

/** ES2024's resizable ArrayBuffer (Node ≥ 20), which lib ES2023 does not declare. */
interface ResizableArrayBuffer extends ArrayBuffer {
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => ResizableArrayBuffer;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PAD = 0x3d; // "="
/** Each byte's six bits, or -1 for a byte outside the alphabet. */
const SIXTETS = new Int8Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) SIXTETS[ALPHABET.charCodeAt(i)] = i;

/** Where the output grows from when the decoded size is not known in advance. */
const INITIAL_CAPACITY = 64 * 1024;

export const Base64Problems = {
  /** A byte outside the alphabet, data after padding, or an unfinished quantum. */
  invalid: "invalid",
  /** More decoded bytes than `maxBytes`. */
  tooLarge: "too-large",
} as const;
export type Base64Problem = (typeof Base64Problems)[keyof typeof Base64Problems];

export interface Base64DecoderOptions {
  /** Decoded bytes allowed; one more is a `tooLarge` problem. Reserved as address space. */
  maxBytes: number;
  /**
   * An upper bound on the decoded size (from the request's Content-Length),
   * made room for at once. Pages never written are never resident, so an
   * overestimate costs nothing.
   */
  expectedBytes?: number;
}

/**
 * Whole quanta (four characters, three bytes) are decoded four bytes at a
 * time, with one check for all four; the characters of a quantum split
 * between pieces, and padding, take the slow path. This runs at a few
 * hundred MB/s, where a byte-at-a-time state machine ran at 50 and a regular
 * expression search for a stray character at 30.
 */
export class Base64Decoder {
  readonly #maxBytes: number;
  readonly #buffer: ResizableArrayBuffer;
  /** Tracks the buffer's length as it grows. */
  readonly #out: Uint8Array;
  #length = 0;
  /** The sixtets of a quantum split between pieces, and how many there are. */
  #bits = 0;
  #count = 0;
  /** Padding seen: only more padding may follow. */
  #padding = 0;
  #problem: Base64Problem | undefined;

  constructor(options: Base64DecoderOptions) {
    this.#maxBytes = options.maxBytes;
    this.#buffer = new ResizableArrayBuffer(0, { maxByteLength: Math.max(0, options.maxBytes) });
    this.#out = new Uint8Array(this.#buffer);
    this.#buffer.resize(
      Math.max(0, Math.min(options.maxBytes, options.expectedBytes ?? INITIAL_CAPACITY)),
    );
  }

  /**
   * Gives the decoded bytes' memory back now. Every view of them, the one
   * `end()` returned included, is empty afterwards: call it once nothing
   * reads them any more (a store that keeps them copies them).
   */
  release(): void {
    this.#buffer.resize(0);
    this.#length = 0;
  }

  /** Why the input cannot be decoded, once known; later input is then ignored. */
  get problem(): Base64Problem | undefined {
    return this.#problem;
  }

  /** Decodes the base64 characters in `bytes[start, end)`. */
  write(bytes: Uint8Array, start = 0, end = bytes.byteLength): void {
    let i = start;
    // Finish a quantum begun in an earlier piece.
    while (this.#count > 0 && i < end && this.#problem === undefined) this.#slow(bytes[i++]!);
    if (this.#problem !== undefined || this.#padding > 0) {
      while (i < end && this.#problem === undefined) this.#slow(bytes[i++]!);
      return;
    }
    const whole = i + (end - i - ((end - i) % 4));
    // The last quantum may turn out padded: only the limit's worth is made room for.
    this.#reserve(Math.min(((whole - i) / 4) * 3, this.#maxBytes - this.#length));
    const decoded = decodeQuanta(bytes, i, whole, this.#out, this.#length);
    if (decoded < 0) {
      this.#tooLarge();
      return;
    }
    i += ((decoded - this.#length) / 3) * 4;
    this.#length = decoded;
    while (i < end && this.#problem === undefined) this.#slow(bytes[i++]!);
  }

  /**
   * The decoded bytes, or the problem. The bytes are the decoder's until
   * `release()`: copy them to keep them longer.
   */
  end(): Uint8Array | Base64Problem {
    if (this.#problem === undefined && this.#count > 0) {
      // Unpadded input is refused, as Lambda refuses it.
      if (this.#count + this.#padding !== 4) {
        this.#problem = Base64Problems.invalid;
      } else {
        const tail = this.#count === 2 ? [this.#bits >>> 4] : [this.#bits >>> 10, this.#bits >>> 2];
        if (this.#reserve(tail.length)) {
          for (const byte of tail) this.#out[this.#length++] = byte & 0xff;
        }
      }
      this.#count = 0;
    } else if (this.#problem === undefined && this.#padding > 0) {
      this.#problem = Base64Problems.invalid;
    }
    if (this.#problem !== undefined) return this.#problem;
    return new Uint8Array(this.#buffer, 0, this.#length);
  }

  /** One character of a split quantum or of the end. */
  #slow(byte: number): void {
    const sixtet = SIXTETS[byte]!;
    if (sixtet >= 0 && this.#padding === 0) {
      this.#bits = (this.#bits << 6) | sixtet;
      if (++this.#count === 4) {
        if (!this.#reserve(3)) return;
        this.#out[this.#length++] = this.#bits >>> 16;
        this.#out[this.#length++] = (this.#bits >>> 8) & 0xff;
        this.#out[this.#length++] = this.#bits & 0xff;
        this.#bits = 0;
        this.#count = 0;
      }
    } else if (byte === PAD && this.#count >= 2 && this.#count + this.#padding < 4) {
      // Padding may only finish a quantum of two or three characters.
      this.#padding++;
    } else {
      this.#problem = Base64Problems.invalid;
    }
  }

  /**
   * Room for `bytes` more, as far as the limit allows; false (and the
   * problem set) when even that is too little.
   */
  #reserve(bytes: number): boolean {
    const needed = this.#length + bytes;
    const capacity = this.#buffer.byteLength;
    if (needed <= capacity) return true;
    if (capacity < this.#maxBytes) {
      this.#buffer.resize(Math.min(this.#maxBytes, Math.max(needed, capacity * 2)));
    }
    if (needed <= this.#buffer.byteLength) return true;
    this.#tooLarge();
    return false;
  }

  #tooLarge(): void {
    this.#problem = Base64Problems.tooLarge;
    // Nothing more will be written: let the memory go now.
    this.release();
  }
}

/**
 * Decodes the whole quanta of `bytes[from, to)` into `out` from `length` on,
 * stopping before the first quantum with padding or a stray character.
 * Returns the new length, or -1 when `out` is full. A function of its own:
 * as a method with the slow paths around it, V8 kept discarding its
 * optimized code.
 */
function decodeQuanta(
  bytes: Uint8Array,
  from: number,
  to: number,
  out: Uint8Array,
  length: number,
): number {
  const capacity = out.length;
  for (let i = from; i < to; i += 4) {
    const a = SIXTETS[bytes[i]!]!;
    const b = SIXTETS[bytes[i + 1]!]!;
    const c = SIXTETS[bytes[i + 2]!]!;
    const d = SIXTETS[bytes[i + 3]!]!;
    // A negative sixtet (padding, or not base64) sets the sign bit.
    if ((a | b | c | d) < 0) break;
    if (length + 3 > capacity) return -1;
    const bits = (a << 18) | (b << 12) | (c << 6) | d;
    out[length] = bits >>> 16;
    out[length + 1] = (bits >>> 8) & 0xff;
    out[length + 2] = bits & 0xff;
    length += 3;
  }
  return length;
}

/** Decodes a whole base64 string strictly (small inputs; large ones stream). */
export function decodeBase64(text: string, maxBytes: number): Uint8Array | Base64Problem {
  const decoder = new Base64Decoder({ maxBytes, expectedBytes: Math.ceil(text.length / 4) * 3 });
  // As UTF-8, a character outside ASCII becomes bytes no base64 character has.
  decoder.write(Buffer.from(text, "utf8"));
  return decoder.end();
}
