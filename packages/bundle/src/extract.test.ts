import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BundleError, extractZip, inspectZip, zipDirectory, zipFiles } from "./index.js";
import { declareUncompressedSize, renameEntry, zerosZip } from "./test-zips.js";

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), "gust-bundle-"));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<BundleError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleError);
  return error as BundleError;
}

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory())
      out.push(`${path}/`, ...(await listTree(join(dir, entry.name), `${path}/`)));
    else out.push(path);
  }
  return out;
}

describe("extractZip", () => {
  it("round-trips files, keeps the execute bit and creates directories", async () => {
    const binary = new Uint8Array(70_000).map((_, i) => (i * 7919) % 256);
    const zip = await zipFiles([
      { path: "index.mjs", data: "export const handler = async () => 1;\n" },
      { path: "deep/nested/dir/data.bin", data: binary },
      { path: "bootstrap", data: "#!/bin/sh\necho hi\n", mode: 0o755 },
      { path: "ünïcode.txt", data: "héllo" },
    ]);
    const dest = join(work, "task");
    const result = await extractZip(zip, dest);
    expect(result).toEqual({ files: 4, bytes: 38 + 70_000 + 18 + 6 });
    expect(await readFile(join(dest, "index.mjs"), "utf8")).toBe(
      "export const handler = async () => 1;\n",
    );
    expect(new Uint8Array(await readFile(join(dest, "deep/nested/dir/data.bin")))).toEqual(binary);
    expect(await readFile(join(dest, "ünïcode.txt"), "utf8")).toBe("héllo");
    expect((await stat(join(dest, "bootstrap"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dest, "index.mjs"))).mode & 0o777).toBe(0o644);
    // The bootstrap really runs: the execute bit survived.
    expect(execFileSync(join(dest, "bootstrap"), { encoding: "utf8" })).toBe("hi\n");
  });

  it("extracts into an existing directory", async () => {
    const zip = await zipFiles([{ path: "a.txt", data: "a" }]);
    await mkdir(join(work, "existing"));
    await writeFile(join(work, "existing", "keep.txt"), "mine");
    await extractZip(zip, join(work, "existing"));
    expect(await listTree(join(work, "existing"))).toEqual(["a.txt", "keep.txt"]);
  });

  it.each([
    ["../evil", "xx/evil"],
    ["/etc/x", "aetc/x"],
  ])("refuses the zip-slip entry %j and writes nothing", async (unsafe, placeholder) => {
    const zip = renameEntry(
      await zipFiles([
        { path: "first.txt", data: "ok" },
        { path: placeholder, data: "pwned" },
      ]),
      placeholder,
      unsafe,
    );
    const dest = join(work, "task");
    const error = await rejection(extractZip(zip, dest));
    expect(error.reason).toBe("unsafe-path");
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(work, "evil"))).toBe(false);
  });

  it("does not write through a symlink already inside the destination", async () => {
    const dest = join(work, "task");
    const outside = join(work, "outside");
    await mkdir(dest);
    await mkdir(outside);
    await symlink(outside, join(dest, "link"));
    const zip = await zipFiles([{ path: "link/sub/escaped.txt", data: "pwned" }]);
    const error = await rejection(extractZip(zip, dest));
    expect(error.reason).toBe("unsafe-path");
    expect(await readdir(outside)).toEqual([]);
  });

  it("refuses an honest 300 MB zip bomb before writing anything", async () => {
    const dest = join(work, "task");
    const error = await rejection(extractZip(await zerosZip(300), dest));
    expect(error.reason).toBe("unzipped-too-large");
    expect(existsSync(dest)).toBe(false);
  });

  it("stops a zip bomb whose header lies about its size and removes what was written", async () => {
    // 300 MB of zeros declared as 1,000 bytes: the headers pass every check.
    const liar = declareUncompressedSize(
      await zerosZip(300, "zeros.bin", [["readme.txt", "hello"]]),
      "zeros.bin",
      1000,
    );
    const info = await inspectZip(liar);
    expect(info.unzippedBytes).toBe(1005);

    const dest = join(work, "task");
    const error = await rejection(extractZip(liar, dest));
    expect(error.message).toMatch(/zeros\.bin/);
    expect(["malformed", "unzipped-too-large"]).toContain(error.reason);
    expect(existsSync(dest)).toBe(false);

    // Into a directory that already holds the user's files: only those remain.
    const existing = join(work, "existing");
    await mkdir(existing);
    await writeFile(join(existing, "keep.txt"), "mine");
    await rejection(extractZip(liar, existing));
    expect(await listTree(existing)).toEqual(["keep.txt"]);
  });

  it("refuses not-a-zip and too many entries", async () => {
    const dest = join(work, "task");
    expect((await rejection(extractZip(new TextEncoder().encode("nope"), dest))).reason).toBe(
      "not-a-zip",
    );
    const zip = await zipFiles(Array.from({ length: 4 }, (_, i) => ({ path: `f${i}`, data: "x" })));
    expect((await rejection(extractZip(zip, dest, { maxEntries: 3 }))).reason).toBe(
      "too-many-entries",
    );
    expect(existsSync(dest)).toBe(false);
  });
});

describe("zipFiles", () => {
  it("produces the same bytes for the same files", async () => {
    const files = [
      { path: "a.js", data: "a" },
      { path: "b/c.js", data: "c", mode: 0o700 },
    ];
    expect(Buffer.from(await zipFiles(files)).equals(Buffer.from(await zipFiles(files)))).toBe(
      true,
    );
  });

  it("refuses unsafe and duplicate paths", async () => {
    expect((await rejection(zipFiles([{ path: "../x", data: "" }]))).reason).toBe("unsafe-path");
    expect((await rejection(zipFiles([{ path: "/x", data: "" }]))).reason).toBe("unsafe-path");
    expect(
      (
        await rejection(
          zipFiles([
            { path: "a/b", data: "" },
            { path: "./a//b", data: "" },
          ]),
        )
      ).reason,
    ).toBe("invalid-input");
  });
});

describe("zipDirectory", () => {
  it("zips a tree with modes, follows symlinks, keeps empty directories and skips FIFOs", async () => {
    const source = join(work, "src");
    await mkdir(join(source, "lib", "deep"), { recursive: true });
    await mkdir(join(source, "empty"));
    await writeFile(join(source, "index.js"), "exports.handler = () => 1;");
    await writeFile(join(source, "lib", "deep", "x.json"), "{}");
    await writeFile(join(source, "bootstrap"), "#!/bin/sh\necho ok\n");
    await chmod(join(source, "bootstrap"), 0o755);
    await symlink("index.js", join(source, "alias.js"));
    await symlink("missing-target", join(source, "dangling"));
    await symlink(".", join(source, "loop"));
    execFileSync("mkfifo", [join(source, "fifo")]);

    const zip = await zipDirectory(source);
    const info = await inspectZip(zip);
    expect([...info.files].sort()).toEqual([
      "alias.js",
      "bootstrap",
      "index.js",
      "lib/deep/x.json",
    ]);
    expect(info.isExecutable("bootstrap")).toBe(true);
    expect(info.isExecutable("index.js")).toBe(false);

    const dest = join(work, "out");
    await extractZip(zip, dest);
    expect(await listTree(dest)).toEqual([
      "alias.js",
      "bootstrap",
      "empty/",
      "index.js",
      "lib/",
      "lib/deep/",
      "lib/deep/x.json",
    ]);
    expect(await readFile(join(dest, "alias.js"), "utf8")).toBe("exports.handler = () => 1;");
    expect(execFileSync(join(dest, "bootstrap"), { encoding: "utf8" })).toBe("ok\n");
    // Unchanged tree, unchanged CodeSha256.
    expect((await inspectZip(await zipDirectory(source))).codeSha256).toBe(info.codeSha256);
  });

  it("refuses a path that is not a directory", async () => {
    await writeFile(join(work, "file"), "x");
    expect((await rejection(zipDirectory(join(work, "file")))).reason).toBe("invalid-input");
    expect((await rejection(zipDirectory(join(work, "missing")))).reason).toBe("invalid-input");
  });
});
