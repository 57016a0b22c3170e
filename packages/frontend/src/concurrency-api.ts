/**
 * Lambda's reserved concurrency API: PutFunctionConcurrency,
 * GetFunctionConcurrency and DeleteFunctionConcurrency, each at the API
 * version Lambda serves it under.
 *
 * Reference: https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html
 */
import type { Hono } from "hono";
import { ApiErrors } from "./api-errors.js";
import { bodyJson } from "./control-api.js";
import { json, lookUpFunction, type FrontendEnv, type Services } from "./http-context.js";

const PUT_DELETE = "/2017-10-31/functions/:name/concurrency";
const GET = "/2019-09-30/functions/:name/concurrency";

export function registerConcurrencyApi(app: Hono<FrontendEnv>, services: Services): void {
  const { registry } = services;

  app.put(PUT_DELETE, async (c) => {
    const { ref } = await lookUpFunction(c, services, false);
    const reserved = bodyJson(c)["ReservedConcurrentExecutions"];
    if (typeof reserved !== "number") {
      throw ApiErrors.invalidParameter(
        "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null",
      );
    }
    const record = await registry.putReservedConcurrency(c.get("tenant"), ref.name, reserved);
    return json(c, { ReservedConcurrentExecutions: record.reservedConcurrency });
  });

  app.get(GET, async (c) => {
    const { record } = await lookUpFunction(c, services, false);
    // Lambda answers `{}` for a function without a reservation.
    return json(
      c,
      record.reservedConcurrency === undefined
        ? {}
        : { ReservedConcurrentExecutions: record.reservedConcurrency },
    );
  });

  app.delete(PUT_DELETE, async (c) => {
    const { ref } = await lookUpFunction(c, services, false);
    await registry.deleteReservedConcurrency(c.get("tenant").id, ref.name);
    return c.body(null, 204);
  });
}
