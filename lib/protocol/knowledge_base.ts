/**
 * The knowledge base: the most recent `capacity` items, oldest dropped first.
 *
 * @module
 */

import type { GossipItem } from "./item.ts";

/** Bounded store of items by ID with first-in-first-out eviction. */
export class KnowledgeBase {
  private readonly items = new Map<bigint, GossipItem>();
  private evictedCount = 0;

  /** Creates a store that holds at most `capacity` items (at least 1). */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** Number of items held. */
  get size(): number {
    return this.items.size;
  }

  /** Items dropped because the store was full. */
  get evicted(): number {
    return this.evictedCount;
  }

  /** Stores `item` (no-op if its ID is present); evicts the oldest when full. */
  add(item: GossipItem): void {
    if (this.items.has(item.id)) return;
    if (this.items.size >= this.capacity) {
      const oldest = this.items.keys().next().value as bigint;
      this.items.delete(oldest);
      this.evictedCount++;
    }
    this.items.set(item.id, item);
  }

  /** The item with `id`, if still held. */
  get(id: bigint): GossipItem | undefined {
    return this.items.get(id);
  }

  /** True if the item with `id` is held. */
  has(id: bigint): boolean {
    return this.items.has(id);
  }

  /** Items from oldest to newest. */
  values(): IterableIterator<GossipItem> {
    return this.items.values();
  }
}
