/**
 * @module
 * Observability shared by Gust's services.
 */
export { createLogger, LogLevels } from "./logger.js";
export type { Logger, LogLevel, LogFields, LoggerOptions } from "./logger.js";
