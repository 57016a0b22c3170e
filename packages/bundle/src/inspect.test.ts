import { createHash } from "node:crypto";
import { GustError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { BundleError, inspectZip, zipFiles } from "./index.js";
import { renameEntry, zerosZip, zipWithMode } from "./test-zips.js";

async function rejection(promise: Promise<unknown>): Promise<BundleError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleError);
  return error as BundleError;
}

describe("inspectZip", () => {
  it("describes a bundle: Lambda's CodeSha256, sizes, entries, files and exec bits", async () => {
    const files = [
      { path: "index.js", data: "exports.handler = async () => 42;\n" },
      { path: "lib/util.js", data: new Uint8Array([0, 1, 2, 255]) },
      { path: "bootstrap", data: "#!/bin/sh\n", mode: 0o755 },
    ];
    const zip = await zipFiles(files);
    const info = await inspectZip(zip);
    expect(info.codeSha256).toBe(createHash("sha256").update(zip).digest("base64"));
    expect(info.codeSize).toBe(zip.byteLength);
    expect(info.entryCount).toBe(3);
    expect(info.unzippedBytes).toBe(34 + 4 + 10);
    expect([...info.files].sort()).toEqual(["bootstrap", "index.js", "lib/util.js"]);
    expect(info.hasFile("index.js")).toBe(true);
    expect(info.hasFile("./lib/util.js")).toBe(true);
    expect(info.hasFile("lib")).toBe(false);
    expect(info.hasFile("missing.js")).toBe(false);
    expect(info.isExecutable("bootstrap")).toBe(true);
    expect(info.isExecutable("index.js")).toBe(false);
  });

  it("stores a file as is when told not to compress it", async () => {
    const data = new Uint8Array(100_000).fill(7);
    const deflated = await zipFiles([{ path: "a.bin", data }]);
    const stored = await zipFiles([{ path: "a.bin", data, compress: false }]);
    expect(deflated.byteLength).toBeLessThan(1000);
    expect(stored.byteLength).toBeGreaterThan(data.byteLength);
    expect((await inspectZip(stored)).unzippedBytes).toBe(data.byteLength);
  });

  it("refuses bytes that are not a zip", async () => {
    const error = await rejection(
      inspectZip(new TextEncoder().encode("this is not a zip file at all")),
    );
    expect(error).toBeInstanceOf(GustError);
    expect(error.code).toBe("bundle");
    expect(error.reason).toBe("not-a-zip");
    expect(error.message).toMatch(/not a zip/);
    expect((await rejection(inspectZip(new Uint8Array(0)))).reason).toBe("not-a-zip");
  });

  it("refuses a zip larger than maxZipBytes", async () => {
    const zip = await zipFiles([{ path: "a.txt", data: "x".repeat(100) }]);
    const error = await rejection(inspectZip(zip, { maxZipBytes: zip.byteLength - 1 }));
    expect(error.reason).toBe("zip-too-large");
    expect(error.message).toContain(String(zip.byteLength - 1));
    await expect(inspectZip(zip, { maxZipBytes: zip.byteLength })).resolves.toBeDefined();
  });

  it("refuses more entries than maxEntries", async () => {
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `f${i}.txt`, data: "x" }));
    const zip = await zipFiles(files);
    const error = await rejection(inspectZip(zip, { maxEntries: 5 }));
    expect(error.reason).toBe("too-many-entries");
    expect(error.message).toMatch(/6 entries, over the limit of 5/);
    expect((await inspectZip(zip, { maxEntries: 6 })).entryCount).toBe(6);
  });

  it("refuses a zip whose declared unzipped size passes the limit (300 MB of zeros)", async () => {
    const bomb = await zerosZip(300);
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    const error = await rejection(inspectZip(bomb));
    expect(error.reason).toBe("unzipped-too-large");
    expect(error.message).toMatch(/262144000/);
  });

  it.each([
    ["../evil", "xx/evil"],
    ["/etc/x", "aetc/x"],
    ["..\\evil", "xxxevil"],
    ["C:/evil", "xxxevil"],
    ["a/../../b", "a/xx/xx/b"],
  ])("refuses the zip-slip entry name %j", async (unsafe, placeholder) => {
    const zip = renameEntry(
      await zipFiles([{ path: placeholder, data: "pwned" }]),
      placeholder,
      unsafe,
    );
    const error = await rejection(inspectZip(zip));
    expect(error.reason).toBe("unsafe-path");
    expect(error.message).toContain(unsafe.replace("\\", "/"));
  });

  it("refuses a symlink entry", async () => {
    const zip = await zipWithMode("link", "/etc/passwd", 0o120777);
    const error = await rejection(inspectZip(zip));
    expect(error.reason).toBe("symlink");
    expect(error.entry).toBe("link");
  });

  it("refuses special files such as a FIFO", async () => {
    const error = await rejection(inspectZip(await zipWithMode("pipe", "", 0o010644)));
    expect(error.reason).toBe("special-file");
  });

  it("names a bad limit", async () => {
    const zip = await zipFiles([{ path: "a", data: "a" }]);
    await expect(inspectZip(zip, { maxEntries: -1 })).rejects.toThrow(/maxEntries/);
  });
});
