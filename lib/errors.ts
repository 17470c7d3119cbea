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

/** A configuration file or value that is wrong; `key` names the offending key. */
export class ConfigError extends GossipError {
  /** Creates the error for `key` (the config key or CLI flag) with an explanation. */
  constructor(readonly key: string, message: string, readonly line?: number) {
    super(line === undefined ? `${key}: ${message}` : `${key} (line ${line}): ${message}`);
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
