import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidBusArgumentError } from "./errors.js";
import {
  assertKvFilter,
  assertKvKey,
  assertPublishSubject,
  matchSubject,
  normalizeHeaders,
  parsePattern,
} from "./names.js";

const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/);
const subject = fc.array(token, { minLength: 1, maxLength: 6 });

describe("subject matching", () => {
  it.each([
    ["a.b.c", "a.b.c", true],
    ["a.*.c", "a.b.c", true],
    ["a.*", "a.b.c", false],
    ["a.>", "a.b.c", true],
    ["a.>", "a", false],
    [">", "a", true],
    ["*", "a.b", false],
    ["a.*.>", "a.b", false],
    ["a.*.>", "a.b.c.d", true],
    ["a.b", "a.b.c", false],
    ["a.b.c", "a.b", false],
  ])("%s matches %s: %s", (pattern, literal, expected) => {
    expect(matchSubject(pattern, literal)).toBe(expected);
  });

  it("matches any subject against itself with tokens turned into * or the tail into >", () => {
    fc.assert(
      fc.property(
        subject,
        fc.array(fc.boolean(), { maxLength: 6 }),
        fc.nat(6),
        (tokens, stars, cut) => {
          const pattern = tokens.map((t, i) => (stars[i] ? "*" : t));
          const at = Math.min(cut, pattern.length - 1);
          const withTail = [...pattern.slice(0, at), ">"];
          const literal = tokens.join(".");
          expect(matchSubject(pattern.join("."), literal)).toBe(true);
          expect(matchSubject(withTail.join("."), literal)).toBe(true);
        },
      ),
    );
  });

  it("never matches when a literal token differs", () => {
    fc.assert(
      fc.property(subject, fc.nat(), (tokens, index) => {
        const i = index % tokens.length;
        const changed = tokens.map((t, j) => (j === i ? `${t}x` : t));
        expect(matchSubject(changed.join("."), tokens.join("."))).toBe(false);
      }),
    );
  });
});

describe("name rules", () => {
  it.each(["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "a\tb"])(
    "refuses to publish to %j",
    (bad) => {
      expect(() => assertPublishSubject(bad)).toThrow(InvalidBusArgumentError);
    },
  );

  it.each(["a.>.b", "a*", "a.b>", "a..*"])("refuses the pattern %j", (bad) => {
    expect(() => parsePattern(bad)).toThrow(InvalidBusArgumentError);
  });

  it("accepts JetStream KV keys and refuses the rest", () => {
    for (const good of ["a", "t1.fn-name", "a/b=c_d", "A.B.C"])
      expect(() => assertKvKey(good)).not.toThrow();
    for (const bad of ["", ".a", "a.", "a..b", "a b", "a*", "a.>", "ü"]) {
      expect(() => assertKvKey(bad)).toThrow(InvalidBusArgumentError);
    }
    expect(() => assertKvFilter("t1.*.x")).not.toThrow();
    expect(() => assertKvFilter("t1.>")).not.toThrow();
    expect(() => assertKvFilter("t1 .>")).toThrow(InvalidBusArgumentError);
  });

  it("trims header values and refuses names NATS cannot carry", () => {
    expect(normalizeHeaders({ "gust-request-id": "  r1 " })).toEqual({ "gust-request-id": "r1" });
    expect(() => normalizeHeaders({ "a:b": "x" })).toThrow(InvalidBusArgumentError);
    expect(() => normalizeHeaders({ "": "x" })).toThrow(InvalidBusArgumentError);
    expect(() => normalizeHeaders({ a: "x\ny" })).toThrow(InvalidBusArgumentError);
  });
});
