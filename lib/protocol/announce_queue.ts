/**
 * The queue of local announcements waiting to become items.
 *
 * API clients may announce faster than the node turns announcements into
 * items (an ID hash, a store insert and the first pushes each). Announcements
 * wait here, first in first out, and are taken in batches; beyond `capacity`
 * new ones are dropped and counted, so a runaway module cannot grow memory.
 *
 * @module
 */

/** A bounded FIFO of pending announcements. */
export class AnnounceQueue<T> {
  private entries: T[] = [];
  private droppedCount = 0;

  /** Creates an empty queue holding at most `capacity` entries. */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** Entries waiting. */
  get length(): number {
    return this.entries.length;
  }

  /** Entries refused because the queue was full, since creation. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Appends `entry`; false (and counted as dropped) when the queue is full. */
  push(entry: T): boolean {
    if (this.entries.length >= this.capacity) {
      this.droppedCount++;
      return false;
    }
    this.entries.push(entry);
    return true;
  }

  /** Removes and returns every waiting entry, oldest first. */
  takeAll(): T[] {
    const taken = this.entries;
    this.entries = [];
    return taken;
  }
}
