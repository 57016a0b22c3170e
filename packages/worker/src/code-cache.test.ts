import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CodeCache, CodeUnavailableError, codeSha256Of } from "./code-cache.js";
import { MapCodeSource } from "./test-support.js";

let dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "gust-code-cache-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  dirs = [];
});

describe("CodeCache", () => {
  it("fetches a zip once, even for concurrent callers, and serves it from disk afterwards", async () => {
    const dir = await tempDir();
    const source = new MapCodeSource();
    const sha = source.add(Buffer.from("zip bytes"));
    const cache = new CodeCache(dir, source);
    const [a, b] = await Promise.all([cache.get(sha), cache.get(sha)]);
    expect(Buffer.from(a).toString()).toBe("zip bytes");
    expect(Buffer.from(b).toString()).toBe("zip bytes");
    expect(source.fetches).toBe(1);
    // A new cache over the same directory (a restarted worker) finds it on disk.
    const again = await new CodeCache(dir, source).get(sha);
    expect(Buffer.from(again).toString()).toBe("zip bytes");
    expect(source.fetches).toBe(1);
    expect((await readdir(dir)).filter((name) => name.endsWith(".part"))).toEqual([]);
  });

  it("refuses code whose CodeSha256 does not match, and code that is not there", async () => {
    const dir = await tempDir();
    const claimed = codeSha256Of(Buffer.from("what was deployed"));
    const lying = {
      fetchCode: () => Promise.resolve(new Uint8Array(Buffer.from("something else"))),
    };
    await expect(new CodeCache(dir, lying).get(claimed)).rejects.toBeInstanceOf(
      CodeUnavailableError,
    );
    const missing = new CodeCache(dir, new MapCodeSource()).get(claimed);
    await expect(missing).rejects.toMatchObject({ name: "CodeUnavailableError", retryable: false });
  });

  it("marks a failing store as retryable", async () => {
    const failing = { fetchCode: () => Promise.reject(new Error("store down")) };
    const error = await new CodeCache(await tempDir(), failing)
      .get("abc")
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: "CodeUnavailableError", retryable: true });
  });
});
