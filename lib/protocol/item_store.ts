/**
 * The item store: the one place items live on a node.
 *
 * Each stored item keeps its payload, data type, TTL, the fewest hops it was
 * seen with, its validation state, when it was first seen, who sent it first,
 * and which peers are known to hold it. The store answers deduplication (has
 * this ID been seen?) and IWANT (which payloads can be served?), and is where
 * anti-entropy finds recent items to offer.
 *
 * Bounds, oldest first:
 * - `maxItems` (the `cache_size` key) and `maxBytes` of payload bound the
 *   validated items (the knowledge base); the oldest are evicted first. Items
 *   still being validated are not counted and never evicted: the validation
 *   queue bounds them, by count and bytes.
 * - An evicted or settled item leaves a tombstone (its ID and time) so that a
 *   late copy is still recognised as a duplicate: at most `maxTombstones`, each
 *   for `tombstoneTtlMs`.
 * - Items dropped because no local module subscribed to their type are
 *   remembered apart, with their type, so that they stop counting as seen as
 *   soon as a module subscribes: such a drop says nothing about the content.
 *
 * Pure state: no I/O, time is passed in.
 *
 * @module
 */

import type { GossipItem } from "./item.ts";

/** Identifies a connected peer (hex of its identity). */
export type PeerKey = string;

/** Where a stored item stands. */
export type StoredItemState =
  /** From a peer, waiting for the local verdict (queued or notified). */
  | "validating"
  /** Validated, or announced by a local module: served and offered to peers. */
  | "valid";

/** One stored item with its spreading state. */
export interface StoredItem {
  /** The item as announced. */
  readonly item: GossipItem;
  /** Fewest hops it arrived with (0 for an item announced here). */
  hops: number;
  /** Validation state. */
  state: StoredItemState;
  /** When this node first saw it (ms, monotonic). */
  readonly firstSeen: number;
  /** The peer it came from first; undefined for a local announcement. */
  readonly from: PeerKey | undefined;
  /** Peers known to hold it (they sent it, advertised it, or were sent it). */
  readonly holders: PeerKey[];
  /** Peers this node told IHAVE (they know where to pull it). */
  readonly advertised: PeerKey[];
  /** Peers that asked for it (IWANT) before it was validated. */
  requesters: PeerKey[] | undefined;
}

/** Bounds of an {@link ItemStore}. */
export interface ItemStoreOptions {
  /** Most items kept with their payload (`cache_size`). */
  readonly maxItems: number;
  /** Most payload bytes kept. */
  readonly maxBytes: number;
  /** Most tombstones (IDs of items no longer stored) remembered. */
  readonly maxTombstones: number;
  /** How long a tombstone is remembered. */
  readonly tombstoneTtlMs: number;
  /** Most items remembered as dropped for want of a subscriber. */
  readonly maxUnsubscribed?: number;
}

/** Defaults of everything but `maxItems`. */
export const DEFAULT_ITEM_STORE_OPTIONS: Omit<ItemStoreOptions, "maxItems"> = {
  maxBytes: 64 * 1024 * 1024,
  maxTombstones: 100_000,
  tombstoneTtlMs: 10 * 60_000,
  maxUnsubscribed: 4096,
};

/** The bounded store of one node. */
export class ItemStore {
  private readonly items = new Map<bigint, StoredItem>();
  /** ID -> time the tombstone was made; insertion order is age order. */
  private readonly tombstones = new Map<bigint, number>();
  /** ID -> data type of items dropped because nobody subscribed. */
  private readonly unsubscribed = new Map<bigint, number>();
  private validCount = 0;
  private validBytes = 0;
  private validatingBytes = 0;
  private evictedCount = 0;

  /** Creates an empty store. */
  constructor(readonly options: ItemStoreOptions) {
    if (!Number.isInteger(options.maxItems) || options.maxItems < 1) {
      throw new RangeError(`maxItems must be a positive integer, got ${options.maxItems}`);
    }
  }

  /** Validated items held (what `maxItems` bounds). */
  get size(): number {
    return this.validCount;
  }

  /** Payload bytes of validated items held (what `maxBytes` bounds). */
  get bytes(): number {
    return this.validBytes;
  }

  /** Items held that are still being validated. */
  get validating(): number {
    return this.items.size - this.validCount;
  }

  /** Payload bytes of items still being validated. */
  get validatingPayloadBytes(): number {
    return this.validatingBytes;
  }

  /** Tombstones held. */
  get tombstoneCount(): number {
    return this.tombstones.size;
  }

  /** Items remembered as dropped for want of a subscriber. */
  get unsubscribedCount(): number {
    return this.unsubscribed.size;
  }

  /** Items evicted to respect the bounds, since creation. */
  get evicted(): number {
    return this.evictedCount;
  }

  /** The stored item with `id`. */
  get(id: bigint): StoredItem | undefined {
    return this.items.get(id);
  }

  /**
   * True when `id` was seen and must not be delivered again: stored, or
   * tombstoned. An item dropped for want of a subscriber counts only while
   * `subscribed(itsType)` is false.
   */
  isKnown(id: bigint, subscribed: (dataType: number) => boolean = () => false): boolean {
    if (this.items.has(id) || this.tombstones.has(id)) return true;
    const dataType = this.unsubscribed.get(id);
    if (dataType === undefined) return false;
    if (!subscribed(dataType)) return true;
    this.unsubscribed.delete(id);
    return false;
  }

  /**
   * Stores a new item. A valid item evicts the oldest valid items until both
   * bounds hold; undefined (nothing stored) when it is larger than `maxBytes`
   * on its own. The ID must not be stored already.
   */
  add(
    item: GossipItem,
    details: { hops: number; state: StoredItemState; from?: PeerKey; now: number },
  ): StoredItem | undefined {
    const size = item.data.length;
    if (details.state === "valid") {
      if (size > this.options.maxBytes) return undefined;
      this.makeRoom(size, details.now);
    }
    this.tombstones.delete(item.id);
    this.unsubscribed.delete(item.id);
    const stored: StoredItem = {
      item,
      hops: details.hops,
      state: details.state,
      firstSeen: details.now,
      from: details.from,
      holders: details.from === undefined ? [] : [details.from],
      advertised: [],
      requesters: undefined,
    };
    this.items.set(item.id, stored);
    this.account(stored, 1);
    return stored;
  }

  /**
   * Marks a validating item valid: it joins the knowledge base, evicting the
   * oldest other valid items to respect the bounds. An item larger than
   * `maxBytes` on its own cannot join: it is settled (tombstoned) instead, and
   * false returned (the caller still holds the entry and may forward it).
   */
  markValid(id: bigint, now: number): boolean {
    const stored = this.items.get(id);
    if (!stored) return false;
    if (stored.state === "valid") return true;
    if (stored.item.data.length > this.options.maxBytes) {
      this.settle(id, now);
      return false;
    }
    this.account(stored, -1);
    this.makeRoom(stored.item.data.length, now, id);
    stored.state = "valid";
    this.account(stored, 1);
    return true;
  }

  /** Removes `id` and leaves a tombstone: it was judged, and must not come back. */
  settle(id: bigint, now: number): void {
    this.drop(id);
    this.addTombstone(id, now);
  }

  /**
   * Removes `id` without a tombstone: it was dropped for a reason other than
   * its content (capacity), so a later copy is accepted as new.
   */
  discard(id: bigint): void {
    this.drop(id);
  }

  /** Removes `id`, remembering it as dropped because nobody subscribed to `dataType`. */
  dropUnsubscribed(id: bigint, dataType: number): void {
    this.drop(id);
    const limit = this.options.maxUnsubscribed ?? 4096;
    if (limit <= 0) return;
    this.unsubscribed.delete(id);
    if (this.unsubscribed.size >= limit) {
      this.unsubscribed.delete(this.unsubscribed.keys().next().value as bigint);
    }
    this.unsubscribed.set(id, dataType);
  }

  /** Records that `peer` holds `id` (no-op when not stored). */
  addHolder(id: bigint, peer: PeerKey): void {
    const stored = this.items.get(id);
    if (stored) addOnce(stored.holders, peer);
  }

  /**
   * Valid items first seen at or after `since`, oldest first: the ones
   * anti-entropy offers.
   */
  *recentValid(since: number): Generator<StoredItem> {
    // Insertion order is first-seen order.
    for (const stored of this.items.values()) {
      if (stored.firstSeen >= since && stored.state === "valid") yield stored;
    }
  }

  /** Forgets `peer` in every item's holder and advertised lists (it disconnected). */
  forgetPeer(peer: PeerKey): void {
    for (const stored of this.items.values()) {
      removeOnce(stored.holders, peer);
      removeOnce(stored.advertised, peer);
      if (stored.requesters) removeOnce(stored.requesters, peer);
    }
  }

  /** Drops tombstones older than `tombstoneTtlMs`. Call periodically. */
  sweep(now: number): void {
    const cutoff = now - this.options.tombstoneTtlMs;
    for (const [id, at] of this.tombstones) {
      if (at > cutoff) break;
      this.tombstones.delete(id);
    }
  }

  /** Empties the store. */
  clear(): void {
    this.items.clear();
    this.tombstones.clear();
    this.unsubscribed.clear();
    this.validCount = 0;
    this.validBytes = 0;
    this.validatingBytes = 0;
  }

  private drop(id: bigint): void {
    const stored = this.items.get(id);
    if (!stored) return;
    this.items.delete(id);
    this.account(stored, -1);
  }

  /** Adds (`sign` 1) or removes (-1) `stored` from the counters of its state. */
  private account(stored: StoredItem, sign: 1 | -1): void {
    const size = stored.item.data.length * sign;
    if (stored.state === "valid") {
      this.validCount += sign;
      this.validBytes += size;
    } else {
      this.validatingBytes += size;
    }
  }

  private addTombstone(id: bigint, now: number): void {
    if (this.options.maxTombstones <= 0) return;
    this.tombstones.delete(id);
    if (this.tombstones.size >= this.options.maxTombstones) {
      this.tombstones.delete(this.tombstones.keys().next().value as bigint);
    }
    this.tombstones.set(id, now);
  }

  /**
   * Evicts the oldest valid items (never `keep`) until one more valid item of
   * `size` bytes fits both bounds.
   */
  private makeRoom(size: number, now: number, keep?: bigint): void {
    const { maxItems, maxBytes } = this.options;
    const fits = () => this.validCount + 1 <= maxItems && this.validBytes + size <= maxBytes;
    if (fits()) return;
    for (const [id, stored] of this.items) {
      if (stored.state !== "valid" || id === keep) continue;
      this.drop(id);
      this.addTombstone(id, now);
      this.evictedCount++;
      if (fits()) return;
    }
  }
}

/** Appends `value` to `list` unless present. */
export function addOnce<T>(list: T[], value: T): void {
  if (!list.includes(value)) list.push(value);
}

function removeOnce<T>(list: T[], value: T): void {
  const index = list.indexOf(value);
  if (index >= 0) list.splice(index, 1);
}
