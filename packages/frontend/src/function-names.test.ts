import { describe, expect, it } from "vitest";
import { parseFunctionRef } from "./function-names.js";

const tenant = { id: "t", accountId: "123456789012", maxConcurrency: 10 };
const context = { tenant, region: "us-east-1" };

describe("parseFunctionRef", () => {
  it("accepts Lambda's forms of a name", () => {
    expect(parseFunctionRef("my-fn", context)).toEqual({ name: "my-fn" });
    expect(parseFunctionRef("my-fn:$LATEST", context)).toEqual({
      name: "my-fn",
      qualifier: "$LATEST",
    });
    expect(
      parseFunctionRef("arn:aws:lambda:us-east-1:123456789012:function:my-fn", context),
    ).toEqual({ name: "my-fn" });
    expect(parseFunctionRef("123456789012:function:my-fn", context)).toEqual({ name: "my-fn" });
    expect(parseFunctionRef("my-fn", { ...context, qualifier: "$LATEST" })).toEqual({
      name: "my-fn",
      qualifier: "$LATEST",
    });
  });

  it("refuses other accounts, unknown qualifiers and malformed names", () => {
    expect(() =>
      parseFunctionRef("arn:aws:lambda:us-east-1:999999999999:function:my-fn", context),
    ).toThrow(expect.objectContaining({ errorType: "AccessDeniedException" }));
    expect(() => parseFunctionRef("999999999999:function:my-fn", context)).toThrow(
      expect.objectContaining({ errorType: "AccessDeniedException" }),
    );
    expect(() => parseFunctionRef("my-fn:prod", context)).toThrow(
      expect.objectContaining({ errorType: "ResourceNotFoundException" }),
    );
    expect(() => parseFunctionRef("my-fn:$LATEST", { ...context, qualifier: "1" })).toThrow(
      expect.objectContaining({ errorType: "InvalidParameterValueException" }),
    );
    expect(() => parseFunctionRef("my-fn:$LATEST", { ...context, allowQualifier: false })).toThrow(
      expect.objectContaining({ errorType: "InvalidParameterValueException" }),
    );
    expect(() => parseFunctionRef("a/b", context)).toThrow(
      expect.objectContaining({ statusCode: 400 }),
    );
    expect(() => parseFunctionRef("x".repeat(65), context)).toThrow(
      expect.objectContaining({ statusCode: 400 }),
    );
    expect(() =>
      parseFunctionRef("arn:aws:lambda:eu-west-1:123456789012:function:my-fn", context),
    ).toThrow(expect.objectContaining({ errorType: "ResourceNotFoundException" }));
  });
});
