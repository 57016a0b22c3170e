/**
 * Gust's rollout settings of a function, beside Lambda's control API and
 * signed like it with the tenant's own SigV4 credentials:
 *
 *   GET /gust/2015-03-31/functions/{name}/rollout-settings   {"SafeToRepeat": false}
 *   PUT /gust/2015-03-31/functions/{name}/rollout-settings   {"SafeToRepeat": true}
 *
 * SafeToRepeat is the owner's word that the function may run twice on the
 * same payload: runtime rollouts then shadow it (rollout-shadow.ts) rather
 * than answer its callers from the new version. Lambda has no such setting
 * and UpdateFunctionConfiguration's members are fixed by the SDKs, hence a
 * path of Gust's own. It is a setting: the function keeps its revision.
 */
import type { FunctionRecord } from "@gust/protocol";
import type { Hono } from "hono";
import { ApiErrors } from "./api-errors.js";
import { bodyJson } from "./control-api.js";
import { json, lookUpFunction, type FrontendEnv, type Services } from "./http-context.js";

export const ROLLOUT_SETTINGS_PATH = "/gust/2015-03-31/functions/:name/rollout-settings";

function settingsOf(record: FunctionRecord): Record<string, unknown> {
  return {
    FunctionName: record.name,
    FunctionArn: record.functionArn,
    SafeToRepeat: record.safeToRepeat === true,
  };
}

/** Register after authentication: the tenant is the signer's. */
export function registerRolloutSettingsApi(app: Hono<FrontendEnv>, services: Services): void {
  app.get(ROLLOUT_SETTINGS_PATH, async (c) => {
    const { record } = await lookUpFunction(c, services, false);
    return json(c, settingsOf(record));
  });

  app.put(ROLLOUT_SETTINGS_PATH, async (c) => {
    const { record } = await lookUpFunction(c, services, false);
    const body = bodyJson(c);
    const safe = body["SafeToRepeat"];
    if (typeof safe !== "boolean") {
      throw ApiErrors.invalidParameter("SafeToRepeat must be true or false.");
    }
    for (const key of Object.keys(body)) {
      if (key !== "SafeToRepeat") {
        throw ApiErrors.invalidParameter(`Unknown member ${key}; the only one is SafeToRepeat.`);
      }
    }
    const updated = await services.registry.setSafeToRepeat(record.tenantId, record.name, safe);
    return json(c, settingsOf(updated));
  });
}
