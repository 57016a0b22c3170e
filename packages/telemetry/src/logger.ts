/**
 * One structured logger for every service: JSON lines on stderr, so stdout
 * stays free for what a command prints to its user (e.g. `gust dev`'s
 * credentials). Level from GUST_LOG_LEVEL (debug|info|warn|error|silent).
 */
export const LogLevels = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LogLevels;

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** @default process.env.GUST_LOG_LEVEL ?? "info" */
  level?: LogLevel;
  /** @default process.stderr */
  write?: (line: string) => void;
}

function isLogLevel(value: string | undefined): value is LogLevel {
  return value !== undefined && Object.hasOwn(LogLevels, value);
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const envLevel = process.env["GUST_LOG_LEVEL"];
  const level: LogLevel = options.level ?? (isLogLevel(envLevel) ? envLevel : "info");
  const threshold = LogLevels[level];
  const write = options.write ?? ((line: string) => void process.stderr.write(line));

  const make = (bound: LogFields): Logger => {
    const log = (at: Exclude<LogLevel, "silent">, message: string, fields?: LogFields) => {
      if (LogLevels[at] < threshold) return;
      const record: LogFields = { time: new Date().toISOString(), level: at, component, message };
      for (const [key, value] of Object.entries({ ...bound, ...fields })) {
        record[key] = errorFields(value);
      }
      write(`${JSON.stringify(record)}\n`);
    };
    return {
      debug: (m, f) => log("debug", m, f),
      info: (m, f) => log("info", m, f),
      warn: (m, f) => log("warn", m, f),
      error: (m, f) => log("error", m, f),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}
