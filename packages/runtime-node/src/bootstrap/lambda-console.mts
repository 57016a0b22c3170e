/**
 * Replaces console.* with Lambda's text log format:
 *   <ISO time>\t<request id>\t<LEVEL>\t<message>\n
 * Every level goes to stdout, as in Lambda, so one stream keeps the lines in
 * the order the handler wrote them. Before the first invocation the request
 * id is "undefined", which is what Lambda prints for init-phase logs.
 */
import { format } from "node:util";

let requestId: string | undefined;

export function setLogRequestId(id: string | undefined): void {
  requestId = id;
}

export type LogLevel = "INFO" | "WARN" | "ERROR" | "DEBUG" | "TRACE" | "FATAL";

export function formatLogLine(level: LogLevel, message: string, now = new Date()): string {
  return `${now.toISOString()}\t${String(requestId)}\t${level}\t${message}\n`;
}

export function writeLog(level: LogLevel, message: string): void {
  process.stdout.write(formatLogLine(level, message));
}

export function installLambdaConsole(): void {
  const bind =
    (level: LogLevel) =>
    (...args: unknown[]): void =>
      writeLog(level, format(...args));
  console.log = bind("INFO");
  console.info = bind("INFO");
  console.warn = bind("WARN");
  console.error = bind("ERROR");
  console.debug = bind("DEBUG");
  console.trace = (...args: unknown[]): void => {
    const frames = (new Error().stack ?? "").split("\n").slice(2).join("\n");
    writeLog("TRACE", `${format(...args)}\n${frames}`);
  };
}
