/**
 * The unit that gossip spreads.
 *
 * @module
 */

/** An announced item as it travels between peers. */
export interface GossipItem {
  /** Random 64-bit identifier, the same on every node. */
  readonly id: bigint;
  /** Remaining hops including the next one; 0 means unlimited. */
  readonly ttl: number;
  /** Application data type (the API's `data type`). */
  readonly dataType: number;
  /** Payload, 1..65527 bytes. */
  readonly data: Uint8Array;
  /**
   * Hops travelled: on a received item, how far it came (1 = from the origin);
   * on an item to send, the value to put on the wire. Absent means 1.
   */
  readonly hops?: number;
}

/**
 * TTL an item carries when forwarded by a node that received it with `ttl`,
 * or undefined when it must not travel further. An item announced with TTL n
 * travels n hops: the origin sends it with n, a receiver with TTL 1 keeps it,
 * a receiver with TTL k > 1 forwards it with k - 1; 0 (unlimited) stays 0.
 */
export function forwardTtl(ttl: number): number | undefined {
  if (ttl === 0) return 0;
  if (ttl === 1) return undefined;
  return ttl - 1;
}

/** A fresh random item ID from the platform CSPRNG. */
export function randomItemId(): bigint {
  const bytes = new BigUint64Array(1);
  crypto.getRandomValues(bytes);
  return bytes[0];
}

/** An item ID as 16 lower-case hex digits, for logs. */
export function itemIdHex(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}
