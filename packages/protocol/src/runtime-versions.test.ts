import { describe, expect, it } from "vitest";
import {
  BUILT_IN_RUNTIME_VERSIONS,
  builtInDefaultRuntimeVersion,
  ConfigError,
  parseRuntimeRecipe,
  parseRuntimeVersionArn,
  parseRuntimeVersionRef,
  runtimeVersionArn,
  runtimeVersionHash,
  runtimeVersionLabel,
  type NodeRuntimeRecipe,
} from "@gust/protocol";

const node = (bootstrap: string, nodeFlags: string[] = []): NodeRuntimeRecipe => ({
  kind: "node",
  bootstrap,
  nodeFlags,
});

describe("runtime version identity", () => {
  it("hashes runtime, version and recipe, so any change is a new ARN", () => {
    const base = runtimeVersionHash("nodejs20.x", "1.0.0", node("1.0.0"));
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(runtimeVersionHash("nodejs20.x", "1.0.0", node("1.0.0"))).toBe(base);
    for (const other of [
      runtimeVersionHash("nodejs20.x", "1.0.1", node("1.0.0")),
      runtimeVersionHash("nodejs20.x", "1.0.0", node("2.0.0")),
      runtimeVersionHash("nodejs20.x", "1.0.0", node("1.0.0", ["--no-warnings"])),
    ]) {
      expect(other).not.toBe(base);
    }
  });

  it("writes and reads Lambda's ARN form", () => {
    const hash = "a".repeat(64);
    const arn = runtimeVersionArn("eu-west-1", hash);
    expect(arn).toBe(`arn:aws:lambda:eu-west-1::runtime:${hash}`);
    expect(parseRuntimeVersionArn(arn)).toEqual({ region: "eu-west-1", hash });
    expect(parseRuntimeVersionArn("arn:aws:lambda:eu-west-1::runtime:abc")).toBeUndefined();
    expect(parseRuntimeVersionArn(`arn:aws:lambda:eu-west-1:123:function:${hash}`)).toBeUndefined();
  });

  it("labels versions as Lambda's INIT_START does", () => {
    expect(runtimeVersionLabel("nodejs20.x", "1.0.0")).toBe("nodejs:20.v1.0.0");
    expect(runtimeVersionLabel("provided", "1.0.0")).toBe("provided.v1.0.0");
    expect(runtimeVersionLabel("provided.al2023", "7")).toBe("provided:al2023.v7");
  });

  it("has one built-in default per runtime", () => {
    for (const runtime of ["nodejs20.x", "provided", "provided.al2", "provided.al2023"] as const) {
      const defaults = BUILT_IN_RUNTIME_VERSIONS.filter(
        (version) => version.runtime === runtime && version.isDefault,
      );
      expect(defaults).toHaveLength(1);
      expect(builtInDefaultRuntimeVersion("us-east-1", runtime).runtime).toBe(runtime);
    }
  });
});

describe("recipes", () => {
  it("fills defaults and refuses what a sandbox must not get", () => {
    expect(parseRuntimeRecipe("nodejs20.x", { bootstrap: "2.0.0" })).toEqual(node("2.0.0"));
    expect(
      parseRuntimeRecipe("nodejs20.x", {
        bootstrap: "1.0.0",
        permissions: { childProcess: true, workerThreads: false },
      }),
    ).toEqual({ ...node("1.0.0"), permissions: { childProcess: true } });
    // Granting nothing is the same recipe as saying nothing.
    expect(
      parseRuntimeRecipe("nodejs20.x", {
        bootstrap: "1.0.0",
        permissions: { childProcess: false },
      }),
    ).toEqual(node("1.0.0"));
    expect(parseRuntimeRecipe("provided.al2", {})).toEqual({
      kind: "provided",
      entrypoint: "bootstrap",
    });
    for (const [runtime, recipe] of [
      ["nodejs20.x", { bootstrap: "3.0.0" }],
      ["nodejs20.x", { bootstrap: "1.0.0", nodeFlags: ["--allow-child-process"] }],
      ["nodejs20.x", { bootstrap: "1.0.0", nodeFlags: ["--enable-source-maps --allow-fs-read=/"] }],
      ["nodejs20.x", { kind: "provided", entrypoint: "bootstrap" }],
      ["nodejs20.x", { bootstrap: "1.0.0", permissions: { fsReadAll: true } }],
      ["nodejs20.x", { bootstrap: "1.0.0", permissions: { childProcess: "yes" } }],
      ["nodejs20.x", { bootstrap: "1.0.0", permissions: ["childProcess"] }],
      ["provided", { entrypoint: "../../bin/sh" }],
      ["provided", { entrypoint: "/bin/sh" }],
      ["provided", null],
    ] as const) {
      expect(() => parseRuntimeRecipe(runtime, recipe)).toThrow(ConfigError);
    }
  });

  it("checks a reference off the wire against the function's runtime", () => {
    const ref = builtInDefaultRuntimeVersion("us-east-1", "nodejs20.x");
    expect(parseRuntimeVersionRef("nodejs20.x", { ...ref, extra: 1 })).toEqual(ref);
    expect(() => parseRuntimeVersionRef("provided", ref)).toThrow(ConfigError);
    expect(() => parseRuntimeVersionRef("nodejs20.x", { ...ref, version: "1.0.0 " })).toThrow(
      ConfigError,
    );
    expect(() => parseRuntimeVersionRef("nodejs20.x", "nodejs20.x:1.0.0")).toThrow(ConfigError);
  });
});
