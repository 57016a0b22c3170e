/**
 * Hostile zips for the tests. yazl refuses to write unsafe names or lying
 * sizes, so these start from a well-formed zip and patch its bytes.
 */
import { Readable } from "node:stream";
import yazl from "yazl";

/** Replaces every occurrence of an entry name (local header and central directory) with another of equal length. */
export function renameEntry(zip: Uint8Array, from: string, to: string): Buffer {
  const source = Buffer.from(from, "utf8");
  const target = Buffer.from(to, "utf8");
  if (source.length !== target.length)
    throw new Error("renameEntry needs names of equal byte length");
  const patched = Buffer.from(zip);
  let at = patched.indexOf(source);
  let count = 0;
  while (at !== -1) {
    target.copy(patched, at);
    count += 1;
    at = patched.indexOf(source, at + source.length);
  }
  if (count === 0) throw new Error(`entry name ${from} not found in zip`);
  return patched;
}

/**
 * Overwrites the uncompressed size the central directory declares for one
 * entry (the field yauzl reads), leaving the data alone: a zip whose headers lie.
 */
export function declareUncompressedSize(zip: Uint8Array, entryName: string, size: number): Buffer {
  const patched = Buffer.from(zip);
  const eocd = patched.length - 22;
  if (patched.readUInt32LE(eocd) !== 0x06054b50)
    throw new Error("expected an end-of-central-directory record without comment");
  const entries = patched.readUInt16LE(eocd + 10);
  let at = patched.readUInt32LE(eocd + 16);
  for (let index = 0; index < entries; index += 1) {
    if (patched.readUInt32LE(at) !== 0x02014b50)
      throw new Error("expected a central directory header");
    const nameLength = patched.readUInt16LE(at + 28);
    if (patched.toString("utf8", at + 46, at + 46 + nameLength) === entryName)
      patched.writeUInt32LE(size, at + 24);
    at +=
      46 +
      patched.readUInt16LE(at + 28) +
      patched.readUInt16LE(at + 30) +
      patched.readUInt16LE(at + 32);
  }
  return patched;
}

/** A zip holding `megabytes` MiB of zeros in one deflated entry (about 1 KB per MiB). */
export async function zerosZip(
  megabytes: number,
  name = "zeros.bin",
  before: Array<[string, string]> = [],
): Promise<Buffer> {
  const zipfile = new yazl.ZipFile();
  for (const [path, content] of before) zipfile.addBuffer(Buffer.from(content), path);
  const chunk = Buffer.alloc(1 << 20);
  let sent = 0;
  const zeros = new Readable({
    read() {
      this.push(sent++ < megabytes ? chunk : null);
    },
  });
  zipfile.addReadStreamLazy(name, { compressionLevel: 9 }, (callback) => callback(null, zeros));
  zipfile.end();
  const parts: Buffer[] = [];
  for await (const part of zipfile.outputStream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** A zip with a single entry whose Unix mode is `mode` (e.g. a symlink, 0o120777). */
export async function zipWithMode(name: string, content: string, mode: number): Promise<Buffer> {
  const zipfile = new yazl.ZipFile();
  zipfile.addBuffer(Buffer.from(content), name, { mode });
  zipfile.end();
  const parts: Buffer[] = [];
  for await (const part of zipfile.outputStream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
