/**
 * Fair admission of peers' items to local validation.
 *
 * Local modules validate at their own pace. Items from peers are notified to
 * them at most `maxInFlight` items (and `maxInFlightBytes`) at a time; the
 * rest wait in one queue per peer, and a free slot goes to the next peer in
 * round-robin order, so a flooding peer delays only its own items. When the
 * waiting room (`maxQueuedBytes`, `maxQueuedPerPeer`) is full, the peer with
 * the most bytes waiting loses its newest item to make room for another
 * peer's; a peer that is itself that largest one has its new item refused and
 * is reported as beyond its share. Items dropped here are dropped for lack of
 * room, not for their content: the owner keeps them repairable.
 *
 * Pure state; the owner starts validations and reports when they end.
 *
 * @module
 */

import type { PeerKey } from "./item_store.ts";

/** Limits of a {@link ValidationQueue}. */
export interface ValidationQueueOptions {
  /** Validations running at once. */
  readonly maxInFlight: number;
  /** Payload bytes of validations running at once. */
  readonly maxInFlightBytes: number;
  /** Payload bytes waiting in all queues together. */
  readonly maxQueuedBytes: number;
  /** Items waiting from one peer. */
  readonly maxQueuedPerPeer: number;
}

/** Defaults of {@link ValidationQueueOptions}. */
export const DEFAULT_VALIDATION_QUEUE_OPTIONS: ValidationQueueOptions = {
  maxInFlight: 128,
  maxInFlightBytes: 8 * 1024 * 1024,
  maxQueuedBytes: 32 * 1024 * 1024,
  maxQueuedPerPeer: 1024,
};

/** One item waiting for validation. */
export interface QueuedValidation {
  /** Item ID. */
  readonly id: bigint;
  /** Payload bytes. */
  readonly bytes: number;
  /** The peer it came from. */
  readonly peer: PeerKey;
}

/** What the queue asks its owner to do. */
export interface ValidationQueueActions<T extends QueuedValidation> {
  /** Start validating `entry` now; {@link ValidationQueue.finished} follows. */
  start(entry: T): void;
  /** `entry` waited and was dropped to make room for another peer's item. */
  evicted(entry: T): void;
  /** `peer` sent more than its share while the waiting room was full. */
  overShare(peer: PeerKey): void;
}

/** Result of {@link ValidationQueue.offer}. */
export type QueueOutcome = "started" | "queued" | "refused";

/** Per-peer queues in front of local validation. */
export class ValidationQueue<T extends QueuedValidation> {
  private readonly queues = new Map<PeerKey, T[]>();
  private readonly queuedBytesByPeer = new Map<PeerKey, number>();
  private readonly inFlight = new Map<bigint, number>();
  private inFlightBytes = 0;
  private queuedBytes = 0;
  private queuedCount = 0;
  private pumping = false;
  /** Items refused or evicted, since creation. */
  dropped = 0;

  /** Creates empty queues. */
  constructor(
    private readonly options: ValidationQueueOptions,
    private readonly actions: ValidationQueueActions<T>,
  ) {}

  /** Validations running. */
  get running(): number {
    return this.inFlight.size;
  }

  /** Items waiting. */
  get waiting(): number {
    return this.queuedCount;
  }

  /** Payload bytes waiting. */
  get waitingBytes(): number {
    return this.queuedBytes;
  }

  /** Peers with items waiting. */
  get peersWaiting(): number {
    return this.queues.size;
  }

  /** Admits `entry`: starts it, queues it behind its peer's items, or refuses it. */
  offer(entry: T): QueueOutcome {
    if (this.queuedCount === 0 && this.hasSlot(entry.bytes)) {
      this.begin(entry);
      return "started";
    }
    const own = this.queues.get(entry.peer);
    if ((own?.length ?? 0) >= this.options.maxQueuedPerPeer) {
      this.refuse(entry.peer);
      return "refused";
    }
    while (this.queuedBytes + entry.bytes > this.options.maxQueuedBytes) {
      const hog = this.largestQueue();
      const ownBytes = this.queuedBytesByPeer.get(entry.peer) ?? 0;
      if (hog === undefined || hog === entry.peer || ownBytes + entry.bytes >= this.bytesOf(hog)) {
        this.refuse(entry.peer);
        return "refused";
      }
      const victim = this.queues.get(hog)!.pop()!;
      this.unqueue(victim);
      this.dropped++;
      this.actions.evicted(victim);
    }
    this.enqueue(entry);
    this.pump();
    return "queued";
  }

  /** Validation of `id` ended (verdict, or given up): frees its slot. */
  finished(id: bigint): void {
    const bytes = this.inFlight.get(id);
    if (bytes === undefined) return;
    this.inFlight.delete(id);
    this.inFlightBytes -= bytes;
    this.pump();
  }

  /** Forgets everything without callbacks (shutdown). */
  clear(): void {
    this.queues.clear();
    this.queuedBytesByPeer.clear();
    this.inFlight.clear();
    this.inFlightBytes = 0;
    this.queuedBytes = 0;
    this.queuedCount = 0;
  }

  private hasSlot(bytes: number): boolean {
    return this.inFlight.size < this.options.maxInFlight &&
      (this.inFlight.size === 0 || this.inFlightBytes + bytes <= this.options.maxInFlightBytes);
  }

  private begin(entry: T): void {
    this.inFlight.set(entry.id, entry.bytes);
    this.inFlightBytes += entry.bytes;
    this.actions.start(entry);
  }

  /**
   * Starts waiting items, one per peer in turn, while slots are free. Not
   * re-entrant: a validation that ends inside `start` (every subscriber muted,
   * say) frees its slot for this loop instead of recursing once per item.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queuedCount > 0) {
        // Map order is the round-robin order: take the first peer, then move it to the back.
        const [peer, queue] = this.queues.entries().next().value as [PeerKey, T[]];
        const next = queue[0];
        if (!this.hasSlot(next.bytes)) return;
        queue.shift();
        this.queues.delete(peer);
        this.unqueueBytes(next);
        if (queue.length > 0) this.queues.set(peer, queue);
        this.begin(next);
      }
    } finally {
      this.pumping = false;
    }
  }

  private enqueue(entry: T): void {
    let queue = this.queues.get(entry.peer);
    if (!queue) this.queues.set(entry.peer, queue = []);
    queue.push(entry);
    this.queuedCount++;
    this.queuedBytes += entry.bytes;
    this.queuedBytesByPeer.set(entry.peer, this.bytesOf(entry.peer) + entry.bytes);
  }

  /** Removes a popped entry's accounting; drops the peer's queue when empty. */
  private unqueue(entry: T): void {
    const queue = this.queues.get(entry.peer);
    if (queue && queue.length === 0) this.queues.delete(entry.peer);
    this.unqueueBytes(entry);
  }

  private unqueueBytes(entry: T): void {
    this.queuedCount--;
    this.queuedBytes -= entry.bytes;
    const left = this.bytesOf(entry.peer) - entry.bytes;
    if (left <= 0) this.queuedBytesByPeer.delete(entry.peer);
    else this.queuedBytesByPeer.set(entry.peer, left);
  }

  private refuse(peer: PeerKey): void {
    this.dropped++;
    this.actions.overShare(peer);
  }

  private bytesOf(peer: PeerKey): number {
    return this.queuedBytesByPeer.get(peer) ?? 0;
  }

  private largestQueue(): PeerKey | undefined {
    let largest: PeerKey | undefined;
    let bytes = -1;
    for (const [peer, queued] of this.queuedBytesByPeer) {
      if (queued > bytes) {
        largest = peer;
        bytes = queued;
      }
    }
    return largest;
  }
}
