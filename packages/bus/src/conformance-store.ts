/** Conformance of KvBucket and BlobStore implementations: see conformance.ts. */
import { randomBytes } from "node:crypto";
import { ConflictError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { InvalidBusArgumentError } from "./errors.js";
import { MB, bytes, rejection, sleep, text, waitFor } from "./conformance-helpers.js";
import type { ConformanceClients } from "./conformance-helpers.js";
import type { KvChange } from "./types.js";

export function describeStoreConformance(clients: ConformanceClients): void {
  describe("key-value", () => {
    it("creates, reads, updates with compare-and-set, and reports conflicts", async () => {
      const kv = await clients.a.kv("conf_kv_cas");
      expect(await kv.get("fn.one")).toBeUndefined();
      const r1 = await kv.create("fn.one", bytes("v1"));
      expect(r1).toBeGreaterThan(0);
      expect(await rejection(kv.create("fn.one", bytes("again")))).toBeInstanceOf(ConflictError);

      const entry = await (await clients.b.kv("conf_kv_cas")).get("fn.one");
      expect(
        entry && { key: entry.key, value: text(entry.value), revision: entry.revision },
      ).toEqual({
        key: "fn.one",
        value: "v1",
        revision: r1,
      });

      const r2 = await kv.update("fn.one", bytes("v2"), r1);
      expect(r2).toBeGreaterThan(r1);
      expect(await rejection(kv.update("fn.one", bytes("stale"), r1))).toBeInstanceOf(
        ConflictError,
      );
      expect(await rejection(kv.update("fn.never", bytes("x"), 1))).toBeInstanceOf(ConflictError);
      const r3 = await kv.put("fn.one", bytes("v3"));
      expect(r3).toBeGreaterThan(r2);
      expect(text((await kv.get("fn.one"))?.value ?? new Uint8Array())).toBe("v3");
    });

    it("deletes, with and without an expected revision, and allows create after delete", async () => {
      const kv = await clients.a.kv("conf_kv_delete");
      const r1 = await kv.put("k.a", bytes("1"));
      await kv.put("k.b", bytes("2"));
      expect(await rejection(kv.delete("k.a", r1 + 100))).toBeInstanceOf(ConflictError);
      expect(await kv.get("k.a")).toBeDefined();
      await kv.delete("k.a", r1);
      expect(await kv.get("k.a")).toBeUndefined();
      await kv.delete("k.b");
      await kv.delete("k.b"); // idempotent
      await kv.delete("k.never");
      expect(await kv.keys()).toEqual([]);
      const again = await kv.create("k.a", bytes("reborn"));
      expect(again).toBeGreaterThan(r1);
      expect(text((await kv.get("k.a"))?.value ?? new Uint8Array())).toBe("reborn");
    });

    it("lists live keys matching a wildcard filter, sorted", async () => {
      const kv = await clients.a.kv("conf_kv_keys");
      for (const key of ["t2.fn.b", "t1.fn.z", "t1.fn.a", "t1.meta", "t1.fn.gone"])
        await kv.put(key, bytes(key));
      await kv.delete("t1.fn.gone");
      expect(await kv.keys()).toEqual(["t1.fn.a", "t1.fn.z", "t1.meta", "t2.fn.b"]);
      expect(await kv.keys("t1.fn.*")).toEqual(["t1.fn.a", "t1.fn.z"]);
      expect(await kv.keys("*.fn.*")).toEqual(["t1.fn.a", "t1.fn.z", "t2.fn.b"]);
      expect(await kv.keys("t1.>")).toEqual(["t1.fn.a", "t1.fn.z", "t1.meta"]);
      expect(await kv.keys("t3.>")).toEqual([]);
    });

    it("watches later changes in order, filtered, without replaying the past", async () => {
      const kv = await clients.a.kv("conf_kv_watch");
      await kv.put("w.before", bytes("old"));
      const changes: KvChange[] = [];
      const watch = await kv.watch("w.>", (change) => changes.push(change));
      const other = await clients.b.kv("conf_kv_watch");
      const r1 = await other.put("w.one", bytes("1"));
      await other.put("x.ignored", bytes("x"));
      const r2 = await other.update("w.one", bytes("2"), r1);
      await other.delete("w.one");
      const r4 = await other.create("w.two", bytes("two"));
      await waitFor(() => changes.length >= 4, "four changes");
      const summary = changes.map((c) =>
        c.op === "put" ? `put ${c.key} ${text(c.value)} ${c.revision}` : `delete ${c.key}`,
      );
      expect(summary).toEqual([
        `put w.one 1 ${r1}`,
        `put w.one 2 ${r2}`,
        "delete w.one",
        `put w.two two ${r4}`,
      ]);
      const deleted = changes[2];
      expect(deleted?.op === "delete" && deleted.revision > r2 && deleted.revision < r4).toBe(true);

      watch.stop();
      await other.put("w.after", bytes("late"));
      await sleep(300);
      expect(changes).toHaveLength(4);
    });

    it("keeps watching after a listener throws", async () => {
      const kv = await clients.a.kv("conf_kv_throwing");
      const seen: string[] = [];
      await kv.watch(">", (change) => {
        seen.push(change.key);
        if (seen.length === 1) throw new Error("listener blew up");
      });
      await kv.put("first", bytes("1"));
      await kv.put("second", bytes("2"));
      await waitFor(() => seen.length === 2, "both changes");
      expect(seen).toEqual(["first", "second"]);
    });

    it("refuses invalid keys and filters", async () => {
      const kv = await clients.a.kv("conf_kv_names");
      expect(await rejection(kv.put("has space", bytes("x")))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(await rejection(kv.put(".leading", bytes("x")))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(await rejection(kv.put("wild.*", bytes("x")))).toBeInstanceOf(InvalidBusArgumentError);
      expect(await rejection(kv.keys("a.>.b"))).toBeInstanceOf(InvalidBusArgumentError);
      expect(await rejection(clients.a.kv("bad.bucket"))).toBeInstanceOf(InvalidBusArgumentError);
    });

    it("keeps the stored value when the caller reuses its buffer", async () => {
      const kv = await clients.a.kv("conf_kv_copy");
      const buffer = bytes("original");
      await kv.put("k", buffer);
      buffer.fill(0);
      expect(text((await kv.get("k"))?.value ?? new Uint8Array())).toBe("original");
    });
  });

  describe("blobs", () => {
    it("stores and returns a 10 MB blob, and deletes it", async () => {
      const store = await clients.a.blobs("conf_code");
      const zip = randomBytes(10 * MB);
      const name = "0f343b0931126a20f133d67c2b018a3b1e0e7a3cc7dc05ffbbd3c3d3c5e2d9a1";
      expect(await store.has(name)).toBe(false);
      expect(await store.get(name)).toBeUndefined();
      await store.put(name, zip);
      const other = await clients.b.blobs("conf_code");
      expect(await other.has(name)).toBe(true);
      const read = await other.get(name);
      expect(read?.byteLength).toBe(zip.byteLength);
      expect(Buffer.from(read ?? new Uint8Array()).equals(zip)).toBe(true);

      await store.put(name, bytes("replaced"));
      expect(text((await store.get(name)) ?? new Uint8Array())).toBe("replaced");
      await store.delete(name);
      await store.delete(name); // idempotent
      expect(await store.has(name)).toBe(false);
      expect(await store.get(name)).toBeUndefined();
    });
  });
}
