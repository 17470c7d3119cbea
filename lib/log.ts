/**
 * Leveled, one-line-per-event logging.
 *
 * The daemon is quiet by default (`warn`); `--log-level debug` shows every
 * connection and item. Each line is `ISO-time LEVEL [component] message key=value...`
 * so that logs can be grepped and parsed without a JSON tool.
 *
 * @module
 */

/** Log levels from most to least verbose. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** All level names, in order of increasing severity. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** Structured fields appended to a log line as `key=value`. */
export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

/** Where finished log lines go. */
export type LogSink = (level: LogLevel, line: string) => void;

/** Writes lines to standard error, the usual place for daemon logs. */
export const stderrSink: LogSink = (_level, line) => {
  console.error(line);
};

/** A component-scoped leveled logger. */
export class Logger {
  /** Creates a logger; `component` appears in brackets on every line. */
  constructor(
    readonly level: LogLevel = "warn",
    readonly component = "gossip",
    readonly sink: LogSink = stderrSink,
  ) {}

  /** Returns a logger for a sub-component sharing level and sink. */
  child(component: string): Logger {
    return new Logger(this.level, component, this.sink);
  }

  /** True when lines of `level` are written (use to skip building costly messages). */
  enabled(level: LogLevel): boolean {
    return SEVERITY[level] >= SEVERITY[this.level] && level !== "silent";
  }

  /** Logs a debug line. */
  debug(message: string, fields?: LogFields): void {
    this.write("debug", message, fields);
  }

  /** Logs an info line. */
  info(message: string, fields?: LogFields): void {
    this.write("info", message, fields);
  }

  /** Logs a warning line. */
  warn(message: string, fields?: LogFields): void {
    this.write("warn", message, fields);
  }

  /** Logs an error line. */
  error(message: string, fields?: LogFields): void {
    this.write("error", message, fields);
  }

  /** Formats and writes one line if `level` is enabled. */
  private write(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    let line = `${new Date().toISOString()} ${
      level.toUpperCase().padEnd(5)
    } [${this.component}] ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        const text = String(value);
        line += ` ${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
      }
    }
    this.sink(level, line);
  }
}

/** A logger that writes nothing; the default for library use and tests. */
export const silentLogger: Logger = new Logger("silent");

/** True when `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}
