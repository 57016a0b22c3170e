/**
 * The operator commands' HTTP client for a frontend's admin API
 * (`/gust/admin/...`): a bearer token, JSON both ways, and errors that say
 * which endpoint answered what.
 */
import { GustError } from "@gust/protocol";

export interface AdminEndpoint {
  endpoint: string;
  token: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

/** Calls the admin API; `code` names the command in errors (e.g. "rollout-admin"). */
export async function adminCall<T>(
  admin: AdminEndpoint,
  code: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(new URL(path, admin.endpoint), {
      method,
      headers: {
        authorization: `Bearer ${admin.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    throw new GustError(
      `cannot reach ${admin.endpoint}: ${cause instanceof Error ? cause.message : String(cause)}`,
      code,
      { cause: error },
    );
  }
  const text = await response.text();
  if (response.status >= 300) {
    let message = text;
    try {
      const parsed = (JSON.parse(text) as { message?: unknown }).message;
      if (typeof parsed === "string") message = parsed;
    } catch {
      // Not JSON: show it as it came.
    }
    throw new GustError(`${admin.endpoint} answered ${response.status}: ${message}`, code);
  }
  return JSON.parse(text) as T;
}
