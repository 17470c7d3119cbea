/**
 * The unit that gossip spreads, and how its ID is bound to its content.
 *
 * An item's ID is the first 8 bytes of
 * `SHA-256("gossip-item-v2" || nonce u64 || TTL u8 || data type u16 || data)`,
 * where the nonce is chosen at random by the originating node and TTL is the
 * TTL the item was announced with. A receiver recomputes the ID, so no peer can
 * occupy an ID with other content (a second preimage of 64 bits), and the
 * reach an item was announced with cannot be widened. Only the hop count
 * changes on the way.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

/** An announced item as it travels between peers. */
export interface GossipItem {
  /** Content-bound 64-bit identifier, the same on every node ({@link computeItemId}). */
  readonly id: bigint;
  /** Random 64-bit value chosen by the origin; part of the ID's input. */
  readonly nonce: bigint;
  /** TTL the item was announced with: the hops it may travel; 0 means unlimited. */
  readonly ttl: number;
  /** Application data type (the API's `data type`). */
  readonly dataType: number;
  /** Payload, 1..65527 bytes. */
  readonly data: Uint8Array;
}

const ID_LABEL = new TextEncoder().encode("gossip-item-v2");

/** The content-bound ID of an item with these fields. */
export function computeItemId(
  nonce: bigint,
  ttl: number,
  dataType: number,
  data: Uint8Array,
): bigint {
  const header = new DataView(new ArrayBuffer(11));
  header.setBigUint64(0, nonce);
  header.setUint8(8, ttl);
  header.setUint16(9, dataType);
  const digest = createHash("sha256").update(ID_LABEL).update(new Uint8Array(header.buffer))
    .update(data).digest();
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0);
}

/**
 * Whether two items carry the same content (nonce, TTL, data type and data).
 * A duplicate that matches a stored item, whose ID was checked, is the same
 * item without hashing it again; one that does not is a forgery of that ID.
 */
export function sameContent(a: GossipItem, b: GossipItem): boolean {
  return a.nonce === b.nonce && a.ttl === b.ttl && a.dataType === b.dataType &&
    Buffer.compare(a.data, b.data) === 0;
}

/** Builds a new item for a local announcement: a fresh nonce, the ID bound to it. */
export function newItem(
  ttl: number,
  dataType: number,
  data: Uint8Array,
  nonce = randomU64(),
): GossipItem {
  return { id: computeItemId(nonce, ttl, dataType, data), nonce, ttl, dataType, data };
}

/**
 * Whether a node that holds an item which travelled `hops` hops may pass it on
 * (hops 0 is the origin itself). An item announced with TTL n reaches nodes at
 * most n hops away; TTL 0 is unlimited.
 */
export function mayForward(ttl: number, hops: number): boolean {
  return ttl === 0 || hops < ttl;
}

/** A uniformly random 64-bit value from the platform CSPRNG. */
export function randomU64(): bigint {
  const bytes = new BigUint64Array(1);
  crypto.getRandomValues(bytes);
  return bytes[0];
}

/** An item ID as 16 lower-case hex digits, for logs. */
export function itemIdHex(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}
