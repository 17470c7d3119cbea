/**
 * Typed errors. Each layer throws its own class so callers can tell bad input
 * from a peer (close that connection) from bad configuration (exit 2) from bugs.
 *
 * @module
 */

/** Base class of every error this package throws on purpose. */
export class GossipError extends Error {
  /** Creates the error; `name` is set to the concrete class name. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bytes that do not form a valid message (API or peer protocol). */
export class DecodeError extends GossipError {}

/** A frame larger than the configured hard limit. */
export class FrameTooLargeError extends DecodeError {}

/** Longest key (config key, flag or command) kept in an error message. */
const MAX_KEY_CHARS = 64;
// deno-lint-ignore no-control-regex -- escaping control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** Longest error message; longer ones are clipped (user text is clipped before, too). */
const MAX_MESSAGE_CHARS = 1000;

/**
 * `text` made safe for a one-line message: control characters escaped as
 * `\xNN` and, beyond `maxChars`, cut with `…` and the original length.
 */
export function clipText(text: string, maxChars = 80): string {
  const clipped = text.length > maxChars;
  let out = clipped ? text.slice(0, maxChars) : text;
  // Do not leave half of a surrogate pair at the cut.
  if (clipped && /[\ud800-\udbff]$/.test(out)) out = out.slice(0, -1);
  out = out.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return clipped ? `${out}… (${text.length} characters)` : out;
}

/**
 * A configuration file or value that is wrong; `key` names the offending key
 * (or command-line flag). The message reads `key: line N: problem`, or
 * `key: problem` without a line.
 */
export class ConfigError extends GossipError {
  /** The key or flag, clipped to a printable length. */
  readonly key: string;

  /** Creates the error for `key` (the config key or CLI flag) with an explanation. */
  constructor(key: string, message: string, readonly line?: number) {
    const name = clipText(key, MAX_KEY_CHARS);
    const text = line === undefined ? `${name}: ${message}` : `${name}: line ${line}: ${message}`;
    super(clipText(text, MAX_MESSAGE_CHARS));
    this.key = name;
  }
}

/** Why {@link readBoundedTextFile} refused a file (see lib/bounded_file.ts). */
export type FileReadProblem = "missing" | "not_regular" | "too_large" | "unreadable";

/** A file named by the configuration that cannot be used; {@link FileReadError.problem} says why. */
export class FileReadError extends ConfigError {
  /** Creates the error for the file at `path` named by `key`. */
  constructor(
    key: string,
    readonly path: string,
    readonly problem: FileReadProblem,
    message: string,
  ) {
    super(key, message);
  }
}

/** A listening address that cannot be bound; {@link ListenError.key} names its config key. */
export class ListenError extends GossipError {
  /** Creates the error for the config `key` (e.g. `p2p_address`) and `address`. */
  constructor(readonly key: string, readonly address: string, readonly reason: string) {
    super(`${key}: cannot listen on ${address}: ${reason}`);
  }

  /** Wraps the error of `Deno.listen`/`Deno.serve` for `key` and `address` (`host:port`). */
  static from(key: string, address: string, error: unknown): ListenError {
    const reason = error instanceof Deno.errors.AddrInUse
      ? "address already in use (is another node running? choose another port)"
      : error instanceof Deno.errors.AddrNotAvailable
      ? "address not available on this host (use one of its own addresses, or 0.0.0.0)"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied (ports below 1024 need privileges)"
      : error instanceof Deno.errors.NotCapable
      ? "not allowed by Deno's --allow-net"
      : error instanceof Error
      ? error.message
      : String(error);
    return new ListenError(key, address, reason);
  }
}

/** A peer broke the peer protocol (bad handshake, unexpected message, bad signature). */
export class ProtocolError extends GossipError {}

/**
 * A shared resource limit was reached (e.g. the memory budget of partial
 * frames); the connection that asked for more is closed.
 */
export class ResourceLimitError extends GossipError {}

/** A bounded wait ran out. */
export class TimeoutError extends GossipError {}
