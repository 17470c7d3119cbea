/**
 * Leveled, one-line-per-event logging.
 *
 * The daemon is quiet by default (`warn`); `info` adds one line per peer
 * connection and lifecycle event, and `debug` every connection and item.
 * Two formats:
 *
 * - `text` (default): `ISO-time LEVEL [component] message key=value...`, for
 *   people and grep; values with spaces, quotes or `=` are JSON-quoted.
 * - `json`: one JSON object per line, `{"time","level","component","msg",...fields}`,
 *   for log collectors (journald, Loki, Elasticsearch); bigints become strings.
 *
 * A logger and every {@link Logger.child} share one level and format, so
 * {@link Logger.setLevel} changes them all at run time (the daemon does so on SIGHUP).
 *
 * @module
 */

/** Log levels from most to least verbose. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** All level names, in order of increasing severity. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** Line formats: `text` for people, `json` for log collectors. */
export type LogFormat = "text" | "json";

/** All format names. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** Field names that JSON lines use themselves; fields with these names get a `field_` prefix. */
const RESERVED = new Set(["time", "level", "component", "msg"]);

/** Structured fields appended to a log line as `key=value`. */
export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

/** Where finished log lines go. */
export type LogSink = (level: LogLevel, line: string) => void;

/** Writes lines to standard error, the usual place for daemon logs. */
export const stderrSink: LogSink = (_level, line) => {
  console.error(line);
};

/** Level and format shared by a logger and its children. */
interface LoggerState {
  level: LogLevel;
  readonly format: LogFormat;
  /** True for {@link silentLogger}, which many nodes share: its level never changes. */
  fixed?: boolean;
}

/** A component-scoped leveled logger. */
export class Logger {
  private state: LoggerState;

  /** Creates a logger; `component` appears in brackets (text) or as `component` (json). */
  constructor(
    level: LogLevel = "warn",
    readonly component = "gossip",
    readonly sink: LogSink = stderrSink,
    format: LogFormat = "text",
  ) {
    this.state = { level, format };
  }

  /** Creates a logger that writes nothing and ignores {@link Logger.setLevel}. */
  static silent(): Logger {
    const logger = new Logger("silent");
    logger.state.fixed = true;
    return logger;
  }

  /** The current level, shared with every child. */
  get level(): LogLevel {
    return this.state.level;
  }

  /** The line format, shared with every child. */
  get format(): LogFormat {
    return this.state.format;
  }

  /**
   * Changes the level of this logger, its parent and every child at once
   * ({@link silentLogger} and its children stay silent).
   */
  setLevel(level: LogLevel): void {
    if (!this.state.fixed) this.state.level = level;
  }

  /** Returns a logger for a sub-component sharing level, format and sink. */
  child(component: string): Logger {
    const child = new Logger(this.state.level, component, this.sink, this.state.format);
    child.state = this.state;
    return child;
  }

  /** True when lines of `level` are written (use to skip building costly messages). */
  enabled(level: LogLevel): boolean {
    return SEVERITY[level] >= SEVERITY[this.state.level] && level !== "silent";
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
    const line = this.state.format === "json"
      ? jsonLine(level, this.component, message, fields)
      : textLine(level, this.component, message, fields);
    this.sink(level, line);
  }
}

function textLine(level: LogLevel, component: string, message: string, fields?: LogFields): string {
  // deno-lint-ignore no-control-regex -- a message must not break the line.
  const text = message.replace(/[\u0000-\u001f\u007f]/g, " ");
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${component}] ${text}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      const shown = String(value);
      line += ` ${key}=${/[\s"=]/.test(shown) || shown === "" ? JSON.stringify(shown) : shown}`;
    }
  }
  return line;
}

function jsonLine(level: LogLevel, component: string, message: string, fields?: LogFields): string {
  const record: Record<string, string | number | boolean> = {
    time: new Date().toISOString(),
    level,
    component,
    msg: message,
  };
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      const name = RESERVED.has(key) ? `field_${key}` : key;
      record[name] = typeof value === "bigint" ? value.toString() : value;
    }
  }
  return JSON.stringify(record);
}

/** A logger that writes nothing (and cannot be made to); the default for library use and tests. */
export const silentLogger: Logger = Logger.silent();

/** True when `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** True when `value` names a log format. */
export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}
