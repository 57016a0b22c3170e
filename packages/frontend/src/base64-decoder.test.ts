import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Base64Decoder, Base64Problems, decodeBase64 } from "./base64-decoder.js";

const ascii = (text: string) => Buffer.from(text, "latin1");

/** Decodes `text` fed in pieces of `size` bytes. */
function decodeInPieces(text: string, size: number, maxBytes = 1 << 20) {
  const decoder = new Base64Decoder({ maxBytes });
  const bytes = ascii(text);
  for (let at = 0; at < bytes.byteLength; at += size) {
    decoder.write(bytes, at, Math.min(bytes.byteLength, at + size));
  }
  return decoder.end();
}

describe("Base64Decoder", () => {
  it("decodes what Buffer encodes, in pieces of any size", () => {
    for (const length of [0, 1, 2, 3, 4, 5, 100, 1001]) {
      const data = randomBytes(length);
      const text = data.toString("base64");
      for (const size of [1, 3, 7, 4096]) {
        expect(Buffer.from(decodeInPieces(text, size) as Uint8Array)).toEqual(data);
      }
    }
  });

  it("refuses what Lambda refuses: other characters, missing or misplaced padding", () => {
    for (const text of ["QUJD\n", "QUJD RA==", "QUI", "QQ=", "Q===", "QUJ=RA==", "QUJD-_==", "é"]) {
      expect(decodeBase64(text, 100), text).toBe(Base64Problems.invalid);
    }
  });

  it("says the zip is too large at one byte over, and not at the limit", () => {
    const data = randomBytes(301);
    expect(decodeBase64(data.toString("base64"), 301)).toHaveLength(301);
    expect(decodeBase64(data.toString("base64"), 300)).toBe(Base64Problems.tooLarge);
    expect(decodeBase64(randomBytes(303).toString("base64"), 300)).toBe(Base64Problems.tooLarge);
  });

  it("grows in place when the size is not known, and gives its memory back on release", () => {
    const data = randomBytes(300_000);
    const decoder = new Base64Decoder({ maxBytes: 1 << 20 });
    const text = Buffer.from(data.toString("base64"));
    for (let at = 0; at < text.byteLength; at += 4093) {
      decoder.write(text, at, Math.min(text.byteLength, at + 4093));
    }
    const decoded = decoder.end() as Uint8Array;
    expect(Buffer.from(decoded).equals(data)).toBe(true);
    decoder.release();
    expect(decoded.byteLength).toBe(0);
  });

  it("decodes a 20 MB string in one pass without running out of stack", () => {
    const data = randomBytes(15 * 1024 * 1024);
    const decoded = decodeBase64(data.toString("base64"), 50 * 1024 * 1024);
    expect(Buffer.from(decoded as Uint8Array).equals(data)).toBe(true);
  });
});
