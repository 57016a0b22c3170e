/**
 * The forms in which Lambda accepts a function's name: `my-function`, a full
 * ARN `arn:aws:lambda:us-east-1:123456789012:function:my-function`, a partial
 * ARN `123456789012:function:my-function`, each optionally with a
 * `:qualifier`, plus a `Qualifier` query parameter. Gust has only $LATEST.
 *
 * A tenant only ever sees its own account: an ARN that names another account
 * is refused without looking anything up, so the answer reveals nothing about
 * whether that function exists.
 */
import { FunctionLimits, functionArn } from "@gust/protocol";
import type { Tenant } from "@gust/registry";
import { ApiErrors } from "./api-errors.js";

export const LATEST = "$LATEST";

const NAME = "[A-Za-z0-9_-]{1,64}";
const QUALIFIER = "(?::(\\$LATEST|[A-Za-z0-9_-]{1,128}))?";
const FULL_ARN = new RegExp(
  `^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\\d{12}):function:(${NAME})${QUALIFIER}$`,
);
const PARTIAL_ARN = new RegExp(`^(\\d{12}):function:(${NAME})${QUALIFIER}$`);
const PLAIN = new RegExp(`^(${NAME})${QUALIFIER}$`);

export interface FunctionRef {
  name: string;
  /** The qualifier from the name or the query; undefined means $LATEST. */
  qualifier?: string;
}

export interface FunctionNameContext {
  tenant: Tenant;
  region: string;
  /** The `Qualifier` query parameter, if any. */
  qualifier?: string | undefined;
  /** Whether a qualifier is acceptable at all (CreateFunction takes none). */
  allowQualifier?: boolean;
}

function invalidName(value: string): Error {
  return ApiErrors.validation(
    `1 validation error detected: Value '${value}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?`,
  );
}

/** Resolve the `{name}` of a request to a function name of the caller's account. */
export function parseFunctionRef(value: string, context: FunctionNameContext): FunctionRef {
  let name: string;
  let qualifier: string | undefined;
  let match = FULL_ARN.exec(value);
  if (match) {
    const [, region, account, fnName, fnQualifier] = match;
    if (account !== context.tenant.accountId) throw accessDenied(value, context.tenant);
    if (region !== context.region) {
      throw ApiErrors.notFound(`Function not found: ${value}`);
    }
    name = fnName ?? "";
    qualifier = fnQualifier;
  } else if ((match = PARTIAL_ARN.exec(value))) {
    const [, account, fnName, fnQualifier] = match;
    if (account !== context.tenant.accountId) throw accessDenied(value, context.tenant);
    name = fnName ?? "";
    qualifier = fnQualifier;
  } else if ((match = PLAIN.exec(value))) {
    name = match[1] ?? "";
    qualifier = match[2];
  } else {
    throw invalidName(value);
  }
  if (!FunctionLimits.namePattern.test(name)) throw invalidName(value);

  const fromQuery = context.qualifier;
  if (fromQuery !== undefined && fromQuery !== "") {
    if (qualifier !== undefined && qualifier !== fromQuery) {
      throw ApiErrors.invalidParameter(
        "The derived qualifier from the function name does not match the specified qualifier.",
      );
    }
    qualifier = fromQuery;
  }
  if (qualifier !== undefined) {
    if (context.allowQualifier === false) {
      throw ApiErrors.invalidParameter(`A qualifier is not allowed in the function name: ${value}`);
    }
    if (qualifier !== LATEST) {
      // Versions and aliases do not exist in Gust yet: such a function is not found.
      throw ApiErrors.notFound(
        `Function not found: ${functionArn(context.region, context.tenant.accountId, name)}:${qualifier}`,
      );
    }
  }
  return qualifier === undefined ? { name } : { name, qualifier };
}

function accessDenied(value: string, tenant: Tenant): Error {
  return ApiErrors.accessDenied(
    `User: arn:aws:iam::${tenant.accountId}:root is not authorized to perform this action on resource: ${value} because it belongs to another account`,
  );
}

export function notFoundFor(region: string, tenant: Tenant, name: string): Error {
  return ApiErrors.notFound(`Function not found: ${functionArn(region, tenant.accountId, name)}`);
}
