/**
 * Epidemic spreading with validation gating and pull-based repair.
 *
 * Per item the engine remembers which peers are known to hold it. On first
 * receipt a node tells every other peer `IHAVE` at once (so they stop pushing it
 * here), hands the item to local validation, and after a valid verdict pushes it
 * to up to `degree` random peers not known to hold it, never back to the
 * sender. A peer that hears `IHAVE` for an item it lacks waits `pullDelayMs` for
 * the push to arrive, then asks one holder with `IWANT`, trying the next holder
 * after `pullTimeoutMs`. Every node that forwards an item thus advertises it to
 * all its peers, so delivery is complete on a connected overlay while eager
 * pushes keep latency low and `IHAVE` suppresses most duplicates.
 *
 * Invalid, unanswered and unsubscribed items are neither pushed nor served. An
 * item whose TTL ends here is not advertised. The seen-cache is bounded in
 * size and age. Pure state machine: sending is delegated to
 * {@link SpreadingActions}; time comes from a {@link Scheduler}.
 *
 * @module
 */

import { forwardTtl, type GossipItem } from "./item.ts";
import { defaultRandom, type RandomSource, sample } from "./random.ts";
import { realScheduler, type Scheduler, type TimerHandle } from "./scheduler.ts";
import type { Verdict } from "./validation_tracker.ts";

/** Identifies a connected peer (hex of its identity). */
export type PeerKey = string;

/** What the engine asks its environment to do. */
export interface SpreadingActions {
  /** Currently connected peers. */
  peers(): readonly PeerKey[];
  /** Sends the item (with the TTL to put on the wire) to `peer`. */
  sendItem(peer: PeerKey, item: GossipItem): void;
  /** Tells `peer` that this node has item `id` (may be batched). */
  sendHave(peer: PeerKey, id: bigint): void;
  /** Asks `peer` for item `id` (may be batched). */
  sendWant(peer: PeerKey, id: bigint): void;
  /**
   * Hands a newly received item to local subscribers. Returns false when no
   * local module subscribed to its type (then it is not propagated); otherwise
   * validation has begun and {@link Spreading.validated} will follow.
   */
  deliver(item: GossipItem, from: PeerKey): boolean;
  /** Local validation found an item from `peer` invalid (for peer scoring). */
  rejected?(peer: PeerKey, id: bigint): void;
}

/** Tuning of a {@link Spreading} engine. */
export interface SpreadingOptions {
  /**
   * Peers of each node that an item should reach: a forwarding node pushes it
   * to `degree` minus the peers already known to hold it (they count as
   * reached), but always to at least `minPushes` peers that do not.
   */
  readonly degree: number;
  /** Fewest peers a forwarding node pushes to (default: half the degree, rounded up). */
  readonly minPushes?: number;
  /** Most item IDs remembered. */
  readonly seenCapacity: number;
  /** How long an item ID is remembered. */
  readonly seenTtlMs: number;
  /** After this age an entry keeps only its ID (drops item and peer sets). */
  readonly detailRetentionMs: number;
  /**
   * Wait after an IHAVE before pulling the item: the initial and smallest value.
   * The wait then adapts to how long pushes take to follow an IHAVE (like TCP's
   * retransmission timer: smoothed lag plus two deviations), up to `maxPullDelayMs`,
   * so that a loaded network is not answered with needless pulls. Two deviations
   * rather than TCP's four: a needless pull costs one duplicate, a late one the tail
   * latency (50-process bench: p99 to all nodes 75-79 ms instead of 129-143 ms,
   * duplicates per delivery 1.41 instead of 1.35).
   */
  readonly pullDelayMs: number;
  /** Largest adaptive pull wait; equal to `pullDelayMs` for a fixed wait. */
  readonly maxPullDelayMs?: number;
  /** Wait for an IWANT answer before asking the next holder. */
  readonly pullTimeoutMs: number;
  /** Most holders remembered per missing item. */
  readonly maxPullCandidates: number;
  /** Most missing items tracked at once; further IHAVEs are ignored (flood guard). */
  readonly maxWanted: number;
  /** Most missing items first advertised by one peer (a quarter of `maxWanted` by default). */
  readonly maxWantedPerPeer?: number;
  /**
   * Most payload bytes kept for forwarding and IWANT answers; beyond it the oldest
   * validated items' payloads are dropped (they can no longer be served).
   */
  readonly maxRetainedBytes: number;
  /** Peer choice randomness. */
  readonly random?: RandomSource;
  /** Clock and timers. */
  readonly scheduler?: Scheduler;
}

/** Defaults for {@link SpreadingOptions} except `degree`. */
export const DEFAULT_SPREADING_OPTIONS: Omit<SpreadingOptions, "degree"> = {
  seenCapacity: 100_000,
  seenTtlMs: 10 * 60_000,
  detailRetentionMs: 60_000,
  pullDelayMs: 10,
  maxPullDelayMs: 500,
  pullTimeoutMs: 2_000,
  maxPullCandidates: 8,
  maxWanted: 4096,
  maxRetainedBytes: 64 * 1024 * 1024,
};

/** Counters of a {@link Spreading} engine. */
export interface SpreadingStats {
  /** Items first received from peers. */
  received: number;
  /** Copies of items already seen. */
  duplicates: number;
  /** Items originated by local modules. */
  originated: number;
  /** Item messages sent (pushes and pull answers). */
  itemsSent: number;
  /** Items not propagated: invalid verdict. */
  invalid: number;
  /** Items not propagated: no valid answer in time. */
  unanswered: number;
  /** Items not propagated: no local subscriber. */
  unsubscribed: number;
  /** Items obtained by IWANT. */
  pulled: number;
  /** IWANT requests sent. */
  wantsSent: number;
  /** Largest hop count of a received item. */
  maxHops: number;
  /** Current wait after an IHAVE before pulling, in ms. */
  pullDelayMs: number;
}

type EntryStatus = "wanted" | "validating" | "forwardable" | "final";

interface Entry {
  status: EntryStatus;
  readonly createdAt: number;
  /** The item as this node forwards it (outgoing TTL), while forwardable or validating. */
  item?: GossipItem;
  /** Peers known to hold the item. */
  holders?: Set<PeerKey>;
  /** Peers that asked for it while it was being validated. */
  requesters?: Set<PeerKey>;
  /** For wanted items: holders to pull from, in order heard. */
  candidates?: PeerKey[];
  /** For wanted items: holders already asked. */
  asked?: number;
  timer?: TimerHandle;
  /** The peer it came from. */
  from?: PeerKey;
  /** For wanted items: the peer whose IHAVE created the entry (for per-peer limits). */
  wantedFrom?: PeerKey;
}

/** The spreading engine of one node. */
export class Spreading {
  private readonly entries = new Map<bigint, Entry>();
  private wantedCount = 0;
  private readonly wantedByPeer = new Map<PeerKey, number>();
  private retainedBytes = 0;
  /** IDs of entries holding a payload, oldest first (consumed from `retainedHead`). */
  private retainedIds: bigint[] = [];
  private retainedHead = 0;
  private readonly options: Required<SpreadingOptions>;
  /** Counters. */
  readonly stats: SpreadingStats = {
    received: 0,
    duplicates: 0,
    originated: 0,
    itemsSent: 0,
    invalid: 0,
    unanswered: 0,
    unsubscribed: 0,
    pulled: 0,
    wantsSent: 0,
    maxHops: 0,
    pullDelayMs: 0,
  };
  /** Smoothed lag between an IHAVE and the item's arrival, and its deviation. */
  private lagMs: number | undefined;
  private lagDeviationMs = 0;

  /** Creates an engine. */
  constructor(options: SpreadingOptions, private readonly actions: SpreadingActions) {
    this.options = {
      random: defaultRandom,
      scheduler: realScheduler,
      maxWantedPerPeer: Math.max(1, Math.floor(options.maxWanted / 4)),
      maxPullDelayMs: options.pullDelayMs,
      minPushes: Math.ceil(options.degree / 2),
      ...options,
    };
    this.stats.pullDelayMs = this.options.pullDelayMs;
  }

  /** Number of remembered item IDs. */
  get size(): number {
    return this.entries.size;
  }

  /** Payload bytes currently kept for forwarding and IWANT answers. */
  get bytesRetained(): number {
    return this.retainedBytes;
  }

  /** True when `id` was seen (received, originated, or being pulled). */
  has(id: bigint): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && entry.status !== "wanted";
  }

  /**
   * Spreads an item announced by a local module: pushed to `degree` random
   * peers at once (local modules are trusted with their own items) and
   * advertised to the rest.
   */
  originate(item: GossipItem): void {
    this.stats.originated++;
    const entry = this.remember(item.id, "forwardable");
    this.retain(item.id, entry, item);
    entry.holders = new Set();
    this.push(entry, true);
  }

  /** Handles an ITEM from `from`. */
  receiveItem(from: PeerKey, item: GossipItem): void {
    let entry = this.entries.get(item.id);
    if (entry && entry.status !== "wanted") {
      this.stats.duplicates++;
      entry.holders?.add(from);
      return;
    }
    if (entry) {
      this.leaveWanted(entry);
      this.stats.pulled += entry.asked ? 1 : 0;
      this.observeLag(this.options.scheduler.now() - entry.createdAt);
      this.clearTimer(entry);
      entry.status = "validating";
    } else {
      entry = this.remember(item.id, "validating");
    }
    this.stats.received++;
    entry.from = from;
    // Peers that advertised it hold it too: never push it to them.
    entry.holders = new Set([from, ...(entry.candidates ?? [])]);
    entry.candidates = undefined;
    const outgoing = forwardTtl(item.ttl);
    const hops = item.hops ?? 1;
    if (hops > this.stats.maxHops) this.stats.maxHops = hops;
    if (outgoing !== undefined) {
      this.retain(item.id, entry, { ...item, ttl: outgoing, hops: Math.min(hops + 1, 255) });
    }
    if (!this.actions.deliver(item, from)) {
      this.stats.unsubscribed++;
      this.finalize(entry);
      return;
    }
    if (entry.item && entry.status === "validating") {
      // Tell every peer we have it before validation, so they stop pushing it here.
      for (const peer of this.actions.peers()) {
        if (!entry.holders.has(peer)) this.actions.sendHave(peer, item.id);
      }
    }
  }

  /** Applies the local validation verdict of item `id`. */
  validated(id: bigint, verdict: Verdict): void {
    const entry = this.entries.get(id);
    if (!entry || entry.status !== "validating") return;
    if (verdict !== "valid") {
      if (verdict === "invalid") {
        this.stats.invalid++;
        if (entry.from !== undefined) this.actions.rejected?.(entry.from, id);
      } else {
        this.stats.unanswered++;
      }
      this.finalize(entry);
      return;
    }
    if (!entry.item) {
      // TTL ends here.
      this.finalize(entry);
      return;
    }
    entry.status = "forwardable";
    const requesters = entry.requesters;
    entry.requesters = undefined;
    if (requesters) {
      for (const peer of requesters) this.sendItem(entry, peer);
    }
    this.push(entry, false);
  }

  /** Handles an IHAVE from `from`. */
  receiveHave(from: PeerKey, ids: readonly bigint[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry) {
        if (this.wantedCount >= this.options.maxWanted) continue;
        const fromPeer = this.wantedByPeer.get(from) ?? 0;
        if (fromPeer >= this.options.maxWantedPerPeer) continue;
        const wanted = this.remember(id, "wanted");
        this.wantedCount++;
        this.wantedByPeer.set(from, fromPeer + 1);
        wanted.wantedFrom = from;
        wanted.candidates = [from];
        wanted.asked = 0;
        wanted.timer = this.options.scheduler.setTimeout(
          () => this.pullNext(id),
          this.stats.pullDelayMs,
        );
      } else if (entry.status === "wanted") {
        const candidates = entry.candidates!;
        if (candidates.length < this.options.maxPullCandidates && !candidates.includes(from)) {
          candidates.push(from);
        }
      } else {
        entry.holders?.add(from);
      }
    }
  }

  /** Handles an IWANT from `from`: answers with items it holds and may forward. */
  receiveWant(from: PeerKey, ids: readonly bigint[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry || !entry.item) continue;
      if (entry.status === "forwardable") {
        // Serve each peer once: a repeated IWANT must not make us resend 64 KiB.
        if (!entry.holders?.has(from)) this.sendItem(entry, from);
      } else if (entry.status === "validating") {
        entry.requesters ??= new Set();
        if (entry.requesters.size < 64) entry.requesters.add(from);
      }
    }
  }

  /**
   * Forgets old entries: IDs older than `seenTtlMs` entirely, details of
   * entries older than `detailRetentionMs`. Call periodically.
   */
  sweep(): void {
    const now = this.options.scheduler.now();
    for (const [id, entry] of this.entries) {
      const age = now - entry.createdAt;
      if (age < this.options.detailRetentionMs) break;
      if (age >= this.options.seenTtlMs) {
        this.forget(id, entry);
        continue;
      }
      if (entry.status === "forwardable" || entry.status === "final") {
        this.finalize(entry);
        entry.holders = undefined;
      }
    }
  }

  /** Cancels every timer; the engine must not be used afterwards. */
  close(): void {
    for (const entry of this.entries.values()) this.clearTimer(entry);
    this.entries.clear();
    this.wantedCount = 0;
    this.wantedByPeer.clear();
    this.retainedBytes = 0;
    this.retainedIds = [];
    this.retainedHead = 0;
  }

  private remember(id: bigint, status: EntryStatus): Entry {
    if (this.entries.size >= this.options.seenCapacity) {
      const [oldestId, oldest] = this.entries.entries().next().value as [bigint, Entry];
      this.forget(oldestId, oldest);
    }
    const entry: Entry = { status, createdAt: this.options.scheduler.now() };
    this.entries.set(id, entry);
    return entry;
  }

  private push(entry: Entry, advertise: boolean): void {
    const item = entry.item!;
    const holders = entry.holders!;
    const peers = this.actions.peers();
    const fresh = peers.filter((peer) => !holders.has(peer));
    // Peers that already hold it count towards the degree: fewer duplicates, while
    // the floor keeps the epidemic growing and IHAVE/IWANT repairs the rest.
    const { degree, minPushes } = this.options;
    const count = Math.max(minPushes, degree - (peers.length - fresh.length));
    const targets = sample(fresh, count, this.options.random);
    for (const peer of targets) this.sendItem(entry, peer);
    if (advertise) {
      for (const peer of fresh) {
        if (!holders.has(peer)) this.actions.sendHave(peer, item.id);
      }
    }
  }

  private sendItem(entry: Entry, peer: PeerKey): void {
    entry.holders?.add(peer);
    this.stats.itemsSent++;
    this.actions.sendItem(peer, entry.item!);
  }

  private finalize(entry: Entry): void {
    entry.status = "final";
    this.release(entry);
    entry.requesters = undefined;
  }

  /** Keeps `item` on `entry`, then trims the oldest payloads beyond the byte budget. */
  private retain(id: bigint, entry: Entry, item: GossipItem): void {
    this.release(entry);
    entry.item = item;
    this.retainedBytes += item.data.length;
    this.retainedIds.push(id);
    while (
      this.retainedBytes > this.options.maxRetainedBytes &&
      this.retainedHead < this.retainedIds.length
    ) {
      const oldest = this.entries.get(this.retainedIds[this.retainedHead++]);
      // Payloads still being validated stay until their verdict (bounded by the node).
      if (oldest?.item && oldest.status === "forwardable") this.finalize(oldest);
    }
    if (this.retainedHead > 1024 && this.retainedHead * 2 > this.retainedIds.length) {
      this.retainedIds = this.retainedIds.slice(this.retainedHead);
      this.retainedHead = 0;
    }
  }

  /** Drops `entry`'s payload, if any, from the byte count. */
  private release(entry: Entry): void {
    if (entry.item) {
      this.retainedBytes -= entry.item.data.length;
      entry.item = undefined;
    }
  }

  /** Updates the adaptive pull wait with one IHAVE-to-item lag (RFC 6298 style). */
  private observeLag(sampleMs: number): void {
    const { pullDelayMs, maxPullDelayMs } = this.options;
    if (maxPullDelayMs <= pullDelayMs) return;
    if (this.lagMs === undefined) {
      this.lagMs = sampleMs;
      this.lagDeviationMs = sampleMs / 2;
    } else {
      this.lagDeviationMs = 0.75 * this.lagDeviationMs + 0.25 * Math.abs(this.lagMs - sampleMs);
      this.lagMs = 0.875 * this.lagMs + 0.125 * sampleMs;
    }
    const wait = this.lagMs + 2 * this.lagDeviationMs;
    this.stats.pullDelayMs = Math.min(maxPullDelayMs, Math.max(pullDelayMs, wait));
  }

  /** Bookkeeping when an entry stops being a wanted (missing) item. */
  private leaveWanted(entry: Entry): void {
    this.wantedCount--;
    const from = entry.wantedFrom;
    if (from === undefined) return;
    entry.wantedFrom = undefined;
    const count = (this.wantedByPeer.get(from) ?? 1) - 1;
    if (count <= 0) this.wantedByPeer.delete(from);
    else this.wantedByPeer.set(from, count);
  }

  private pullNext(id: bigint): void {
    const entry = this.entries.get(id);
    if (!entry || entry.status !== "wanted") return;
    entry.timer = undefined;
    const connected = new Set(this.actions.peers());
    const candidates = entry.candidates!;
    while (entry.asked! < candidates.length) {
      const peer = candidates[entry.asked!++];
      if (!connected.has(peer)) continue;
      this.stats.wantsSent++;
      this.actions.sendWant(peer, id);
      entry.timer = this.options.scheduler.setTimeout(
        () => this.pullNext(id),
        this.options.pullTimeoutMs,
      );
      return;
    }
    // Nobody left to ask: forget it, so a later IHAVE or push starts afresh.
    this.forget(id, entry);
  }

  private forget(id: bigint, entry: Entry): void {
    this.clearTimer(entry);
    if (entry.status === "wanted") this.leaveWanted(entry);
    this.release(entry);
    this.entries.delete(id);
  }

  private clearTimer(entry: Entry): void {
    if (entry.timer !== undefined) {
      this.options.scheduler.clearTimeout(entry.timer);
      entry.timer = undefined;
    }
  }
}
