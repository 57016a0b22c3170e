/** A logger for tests that keeps their output readable; set GUST_TEST_LOGS=1 to see the lines. */
import { createLogger } from "@gust/telemetry";
import type { Logger } from "@gust/telemetry";

export function silentLogger(): Logger {
  return createLogger("bus", { level: process.env["GUST_TEST_LOGS"] === "1" ? "debug" : "silent" });
}
