/**
 * What a simulation measures: per item, who got it when and over how many
 * hops, how many copies arrived, and the overlay's shortest-path bound; over
 * the network, traffic per node and item and the share of honest nodes whose
 * peers are all attackers.
 *
 * A {@link Metrics} is the network's {@link SimObserver}: it watches every item
 * copy and NOTIFICATION of tracked items. Items are told apart by a 4-byte tag
 * at the start of their data.
 *
 * Definitions (docs/SIMULATION.md):
 * - **delivered**: the module of an honest node got the NOTIFICATION (the
 *   origin's own module is not notified and does not count);
 * - **eligible**: honest nodes other than the origin that were up for the
 *   whole measurement window of the item (alive at the announcement and not
 *   restarted or stopped before the window closed);
 * - **time to x%**: since the announcement, until x% of the eligible nodes
 *   were delivered (null when they never were);
 * - **shortest-path bound**: the same percentile of the reachable eligible
 *   nodes' distances from the origin in the session graph at the announcement, over
 *   honest relays only, each link weighted by its base one-way delay plus the
 *   item's serialisation at the sender's uplink, each relay adding its
 *   module's validation delay (a node forwards only what its module accepted);
 * - **duplicates per delivery**: item copies that reached eligible nodes,
 *   divided by the deliveries, minus one;
 * - **hops**: the hop count of the first copy that reached each node.
 *
 * @module
 */

import { type ItemMessage, PeerMessageType } from "../codec/peer_messages.ts";
import type { ConnectionStats } from "../core/connection_manager.ts";
import type { GossipItem } from "../protocol/item.ts";
import type { Direction } from "../protocol/membership.ts";
import type { SimNetwork, SimNode, SimObserver, TrafficCounters } from "./network.ts";

/** One tracked item. */
export interface TrackedItem {
  /** Tag (first 4 bytes of the data). */
  readonly tag: number;
  /** Index of the origin node. */
  readonly origin: number;
  /** Virtual time of the announcement. */
  readonly announcedAt: number;
  /** Delivery time per node index (NaN: not delivered). */
  readonly deliveredAt: Float64Array;
  /** Hop count of the first copy per node index (255: none). */
  readonly firstHops: Uint8Array;
  /** Item copies per node index. */
  readonly copies: Uint16Array;
  /** Shortest-path distance per node index at the announcement (Infinity: unreachable). */
  readonly bound: Float64Array;
}

/** Summary of one item. */
export interface ItemSummary {
  /** Tag. */
  readonly tag: number;
  /** Origin's index. */
  readonly origin: number;
  /** Announcement time, virtual ms. */
  readonly announcedAt: number;
  /** Eligible honest nodes. */
  readonly eligible: number;
  /** Of those, delivered. */
  readonly delivered: number;
  /** delivered / eligible. */
  readonly deliveryRatio: number;
  /** Time to 50%, 99% and 100% of the eligible nodes (ms; null: never). */
  readonly t50: number | null;
  /** See t50. */
  readonly t99: number | null;
  /** See t50. */
  readonly t100: number | null;
  /**
   * Eligible nodes with no path of honest relays from the origin at the
   * announcement (partitioned, eclipsed, or between sessions).
   */
  readonly unreachable: number;
  /** The shortest-path bound for the same percentiles, over the reachable eligible nodes (ms). */
  readonly bound50: number | null;
  /** See bound50. */
  readonly bound99: number | null;
  /** See bound50. */
  readonly bound100: number | null;
  /** Item copies received by eligible nodes per delivery, minus one. */
  readonly duplicatesPerDelivery: number;
  /** Largest first-copy hop count among eligible nodes. */
  readonly maxHops: number;
}

/** One of an origin's sessions in an {@link OriginSnapshot}. */
export interface TracedSession {
  /** The peer's node index. */
  readonly index: number;
  /** Whether the peer is honest. */
  readonly honest: boolean;
  /** Who opened the session. */
  readonly direction: Direction;
  /** The peer's score at the origin. */
  readonly score: number;
  /**
   * Whether the peer's module was notified of the item (an attacker's too:
   * it gets items it then drops).
   */
  readonly delivered: boolean;
}

/** What a traced item's origin looked like at one time after the announcement. */
export interface OriginSnapshot {
  /** Ms since the announcement. */
  readonly afterMs: number;
  /** Whether the origin was running. */
  readonly alive: boolean;
  /** The origin's sessions. */
  readonly sessions: readonly TracedSession[];
  /** Honest nodes (origin excluded) that had notified the item so far. */
  readonly reached: number;
  /** The origin's connection counters at that time; absent while it was down. */
  readonly connections?: ConnectionStats;
}

/** The trace of one item (see {@link Metrics.traceTags}). */
export interface ItemTrace {
  /** The item's tag. */
  readonly tag: number;
  /** The origin's node index. */
  readonly origin: number;
  /** Virtual time of the announcement. */
  readonly announcedAt: number;
  /** The origin's configured bootstrappers (node index, honest or not). */
  readonly bootstrappers: readonly { index: number; honest: boolean }[];
  /** Snapshots at {@link TRACE_OFFSETS_MS} after the announcement. */
  readonly snapshots: OriginSnapshot[];
}

/** When a traced item's origin is looked at, in ms after the announcement. */
export const TRACE_OFFSETS_MS: readonly number[] = [
  0,
  250,
  500,
  1_000,
  2_000,
  3_000,
  5_000,
  8_000,
  12_000,
  15_000,
];

/** Options of {@link Metrics.summarize}. */
export interface SummaryOptions {
  /** Measurement window after each announcement (eligibility), ms. */
  readonly windowMs: number;
}

/** Watches tracked items; see the module documentation. */
export class Metrics implements SimObserver {
  private readonly items = new Map<number, TrackedItem>();
  private net: SimNetwork | undefined;
  /** Validation delay the bound charges per relay (ms). */
  validationDelayMs = 0;
  /**
   * Tags of the items to trace: their origin's sessions, scores and
   * connection counters at {@link TRACE_OFFSETS_MS} after the announcement,
   * in {@link traces} (to find out why an item reached few nodes).
   */
  traceTags: ReadonlySet<number> = new Set();
  /** The traces of the traced items announced so far. */
  readonly traces: ItemTrace[] = [];

  /** Items tracked so far, in announcement order. */
  get tracked(): TrackedItem[] {
    return [...this.items.values()];
  }

  /** Binds the network (once, before the first announcement). */
  attach(net: SimNetwork): void {
    this.net = net;
  }

  /**
   * Announces item `tag` at `origin` (data of `size` bytes) and starts
   * tracking it; computes its shortest-path bound over the current sessions.
   */
  announce(origin: SimNode, tag: number, size = 1024): TrackedItem {
    const net = this.net;
    if (!net) throw new Error("Metrics.attach(net) first");
    const n = net.nodes.length;
    const item: TrackedItem = {
      tag,
      origin: origin.index,
      announcedAt: net.clock.now(),
      deliveredAt: new Float64Array(n).fill(NaN),
      firstHops: new Uint8Array(n).fill(255),
      copies: new Uint16Array(n),
      bound: shortestPaths(net, origin, size + 42, this.validationDelayMs),
    };
    this.items.set(tag, item);
    net.announce(origin, tag, { size });
    if (this.traceTags.has(tag)) this.trace(item, origin);
    return item;
  }

  /** Starts the snapshots of `item`'s origin (see {@link traceTags}). */
  private trace(item: TrackedItem, origin: SimNode): void {
    const net = this.net!;
    const trace: ItemTrace = {
      tag: item.tag,
      origin: origin.index,
      announcedAt: item.announcedAt,
      bootstrappers: (origin.options.bootstrap ?? []).map((b) => ({
        index: b.index,
        honest: b.honest,
      })),
      snapshots: [],
    };
    this.traces.push(trace);
    const snapshot = (afterMs: number) => {
      const sessions = origin.alive
        ? origin.core.peers().map((peer) => {
          const node = net.byId(peer.identity);
          const index = node?.index ?? -1;
          return {
            index,
            honest: node?.honest ?? false,
            direction: peer.direction,
            score: Math.round(peer.score * 100) / 100,
            delivered: index >= 0 && !Number.isNaN(item.deliveredAt[index]),
          };
        })
        : [];
      let reached = 0;
      for (let i = 0; i < item.deliveredAt.length; i++) {
        if (i !== item.origin && net.nodes[i].honest && !Number.isNaN(item.deliveredAt[i])) {
          reached++;
        }
      }
      trace.snapshots.push({
        afterMs,
        alive: origin.alive,
        sessions,
        reached,
        ...(origin.alive ? { connections: { ...origin.core.stats().connections } } : {}),
      });
    };
    for (const afterMs of TRACE_OFFSETS_MS) {
      if (afterMs === 0) snapshot(0);
      else net.clock.setTimeout(() => snapshot(afterMs), afterMs);
    }
  }

  itemArrived(to: SimNode, _from: SimNode, message: ItemMessage): void {
    const item = this.items.get(tagOf(message.data));
    if (!item || to.index >= item.copies.length) return;
    const i = to.index;
    if (item.copies[i] < 65535) item.copies[i]++;
    if (item.firstHops[i] === 255) item.firstHops[i] = Math.min(254, message.hops);
  }

  notified(node: SimNode, delivered: GossipItem): void {
    const item = this.items.get(tagOf(delivered.data));
    if (!item || node.index >= item.deliveredAt.length) return;
    if (Number.isNaN(item.deliveredAt[node.index])) {
      item.deliveredAt[node.index] = this.net!.clock.now();
    }
  }

  /** Summaries of every tracked item (call after each item's window has passed). */
  summarize(options: SummaryOptions): ItemSummary[] {
    return this.tracked.map((item) => this.summarizeItem(item, options));
  }

  /** Summary of one item. */
  summarizeItem(item: TrackedItem, options: SummaryOptions): ItemSummary {
    const net = this.net!;
    const end = item.announcedAt + options.windowMs;
    const times: number[] = [];
    const bounds: number[] = [];
    let eligible = 0;
    let copies = 0;
    let maxHops = 0;
    for (let i = 0; i < item.deliveredAt.length; i++) {
      const node = net.nodes[i];
      if (i === item.origin || !node.honest || !node.alive) continue;
      if (node.startedAt > item.announcedAt) continue;
      eligible++;
      if (Number.isFinite(item.bound[i])) bounds.push(item.bound[i]);
      copies += item.copies[i];
      const at = item.deliveredAt[i];
      if (!Number.isNaN(at) && at <= end) {
        times.push(at - item.announcedAt);
        if (item.firstHops[i] !== 255) maxHops = Math.max(maxHops, item.firstHops[i]);
      }
    }
    times.sort((a, b) => a - b);
    bounds.sort((a, b) => a - b);
    const delivered = times.length;
    return {
      tag: item.tag,
      origin: item.origin,
      announcedAt: item.announcedAt,
      eligible,
      delivered,
      deliveryRatio: eligible === 0 ? 1 : delivered / eligible,
      t50: reachTime(times, eligible, 0.5),
      t99: reachTime(times, eligible, 0.99),
      t100: reachTime(times, eligible, 1),
      unreachable: eligible - bounds.length,
      bound50: reachTime(bounds, bounds.length, 0.5),
      bound99: reachTime(bounds, bounds.length, 0.99),
      bound100: reachTime(bounds, bounds.length, 1),
      duplicatesPerDelivery: delivered === 0 ? 0 : copies / delivered - 1,
      maxHops,
    };
  }

  /**
   * Mean fraction of eligible nodes reached at each time of `grid` (ms since
   * the announcement), over `items`; and the same for the shortest-path bound.
   */
  reachCurve(
    items: readonly TrackedItem[],
    grid: readonly number[],
    options: SummaryOptions,
  ): { actual: number[]; bound: number[] } {
    const net = this.net!;
    const actual = new Array(grid.length).fill(0);
    const bound = new Array(grid.length).fill(0);
    let counted = 0;
    for (const item of items) {
      const times: number[] = [];
      const bounds: number[] = [];
      for (let i = 0; i < item.deliveredAt.length; i++) {
        const node = net.nodes[i];
        if (i === item.origin || !node.honest || !node.alive) continue;
        if (node.startedAt > item.announcedAt) continue;
        bounds.push(item.bound[i]);
        const at = item.deliveredAt[i];
        times.push(Number.isNaN(at) ? Infinity : at - item.announcedAt);
        // Unreachable nodes count as never reached by the bound either.
      }
      if (times.length === 0) continue;
      counted++;
      times.sort((a, b) => a - b);
      bounds.sort((a, b) => a - b);
      const end = options.windowMs;
      for (let g = 0; g < grid.length; g++) {
        const t = Math.min(grid[g], end);
        actual[g] += countAtMost(times, t) / times.length;
        bound[g] += countAtMost(bounds, grid[g]) / bounds.length;
      }
    }
    return {
      actual: actual.map((v) => counted === 0 ? 0 : v / counted),
      bound: bound.map((v) => counted === 0 ? 0 : v / counted),
    };
  }
}

/** Aggregate of item summaries. */
export interface DeliverySummary {
  /** Items measured. */
  readonly items: number;
  /** Deliveries over eligible node-item pairs. */
  readonly deliveryRatio: number;
  /** The worst item's delivery ratio. */
  readonly worstItemDeliveryRatio: number;
  /** Items that reached every eligible node. */
  readonly fullyDelivered: number;
  /** Mean and worst time to 50%, 99% and 100% (ms; null when some item never got there). */
  readonly t50: Spread;
  /** See t50. */
  readonly t99: Spread;
  /** See t50. */
  readonly t100: Spread;
  /** Mean and worst shortest-path bounds, over the items that have one. */
  readonly bound50: Spread;
  /** See bound50. */
  readonly bound99: Spread;
  /** See bound50. */
  readonly bound100: Spread;
  /** t99 / bound99 per item with a bound: mean and worst (null when some item never reached 99%). */
  readonly t99OverBound: Spread;
  /**
   * Duplicates per delivery over all items: each item's duplicates per
   * delivery weighted by its deliveries (an item that reached few nodes in
   * time, but many copies later, does not outweigh the rest).
   */
  readonly duplicatesPerDelivery: number;
  /** Largest hop count of a first copy. */
  readonly maxHops: number;
}

/** Mean and worst (largest) of a per-item figure; null when undefined for some item. */
export interface Spread {
  /** Mean over items. */
  readonly mean: number | null;
  /** Largest. */
  readonly max: number | null;
}

/** Aggregates item summaries. */
export function aggregate(items: readonly ItemSummary[]): DeliverySummary {
  let eligible = 0;
  let delivered = 0;
  let worst = 1;
  let full = 0;
  let duplicates = 0;
  let maxHops = 0;
  for (const item of items) {
    eligible += item.eligible;
    delivered += item.delivered;
    worst = Math.min(worst, item.deliveryRatio);
    if (item.delivered === item.eligible) full++;
    duplicates += item.duplicatesPerDelivery * item.delivered;
    maxHops = Math.max(maxHops, item.maxHops);
  }
  // Times: null when some item never got there. Bounds (and ratios to them):
  // over the items that have one (an origin cut off at the announcement has none).
  const spread = (values: (number | null)[], skipNull = false): Spread => {
    const numbers = values.filter((v): v is number => v !== null);
    if (numbers.length === 0 || (!skipNull && numbers.length < values.length)) {
      return { mean: null, max: null };
    }
    return {
      mean: round(numbers.reduce((a, b) => a + b, 0) / numbers.length),
      max: round(Math.max(...numbers)),
    };
  };
  return {
    items: items.length,
    deliveryRatio: eligible === 0 ? 1 : delivered / eligible,
    worstItemDeliveryRatio: worst,
    fullyDelivered: full,
    t50: spread(items.map((i) => i.t50)),
    t99: spread(items.map((i) => i.t99)),
    t100: spread(items.map((i) => i.t100)),
    bound50: spread(items.map((i) => i.bound50), true),
    bound99: spread(items.map((i) => i.bound99), true),
    bound100: spread(items.map((i) => i.bound100), true),
    t99OverBound: items.some((i) => i.t99 === null) ? { mean: null, max: null } : spread(
      items.map((i) => i.t99 === null || i.bound99 === null ? null : i.t99 / i.bound99),
      true,
    ),
    duplicatesPerDelivery: delivered === 0 ? 0 : round(duplicates / delivered),
    maxHops,
  };
}

/** Gossip traffic (ITEM, IHAVE, IWANT) between two counter snapshots. */
export interface GossipTraffic {
  /** Messages by type name. */
  readonly messages: Record<string, number>;
  /** Bytes by type name. */
  readonly bytes: Record<string, number>;
  /** All gossip messages. */
  readonly totalMessages: number;
  /** All gossip bytes. */
  readonly totalBytes: number;
}

const GOSSIP_TYPES: Record<number, string> = {
  [PeerMessageType.Item]: "ITEM",
  [PeerMessageType.IHave]: "IHAVE",
  [PeerMessageType.IWant]: "IWANT",
};

/** Copies the counters (for a later {@link gossipTraffic}). */
export function snapshotTraffic(traffic: TrafficCounters): TrafficCounters {
  return { messages: { ...traffic.messages }, bytes: { ...traffic.bytes } };
}

/** Gossip traffic carried between snapshots `before` and `after`. */
export function gossipTraffic(before: TrafficCounters, after: TrafficCounters): GossipTraffic {
  const messages: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  let totalMessages = 0;
  let totalBytes = 0;
  for (const [type, name] of Object.entries(GOSSIP_TYPES)) {
    const key = Number(type);
    messages[name] = (after.messages[key] ?? 0) - (before.messages[key] ?? 0);
    bytes[name] = (after.bytes[key] ?? 0) - (before.bytes[key] ?? 0);
    totalMessages += messages[name];
    totalBytes += bytes[name];
  }
  return { messages, bytes, totalMessages, totalBytes };
}

/** Peer-count facts about honest live nodes. */
export interface EclipseCensus {
  /** Honest live nodes counted. */
  readonly honest: number;
  /**
   * Of those, with at least one peer and every peer an attacker. Peers here
   * are member sessions only (as in `memberEclipsed` of network.ts); feelers, feelers on
   * trial and delivery sessions do not count.
   */
  readonly eclipsed: number;
  /** Of those, with no member session at all. */
  readonly isolated: number;
  /** eclipsed / honest. */
  readonly eclipsedShare: number;
  /** Mean share of attackers among honest nodes' peers. */
  readonly attackerPeerShare: number;
  /**
   * Eclipsed nodes expected if every peer of every node were an attacker
   * independently with probability `attackerPeerShare`: the sum over nodes
   * with k peers of share^k. Close to `eclipsed` when eclipses are the luck of
   * the draw at that share and those peer counts; far below it when attackers
   * single nodes out.
   */
  readonly eclipsedByChance: number;
  /** Mean number of peers of the eclipsed nodes (0 when none). */
  readonly eclipsedMeanPeers: number;
  /** Mean number of inbound peers of the eclipsed nodes (0 when none). */
  readonly eclipsedMeanInbound: number;
  /**
   * Of the eclipsed nodes, those configured to bootstrap through attackers
   * only (the scenario gave them no honest bootstrapper): nothing but an
   * honest node dialling in can reach them.
   */
  readonly eclipsedAttackerBootstrapped: number;
  /** Of the eclipsed nodes, those (re)started less than {@link JUST_STARTED_MS} ago. */
  readonly eclipsedJustStarted: number;
  /**
   * Of the eclipsed nodes, those eclipsed for less than {@link RECENT_ECLIPSE_MS}:
   * their last session with an honest peer ended, or they (re)started, that
   * recently (a census at one moment also catches nodes in the middle of a
   * restart, or that just lost their last honest peer to churn).
   */
  readonly eclipsedRecently: number;
  /**
   * Of the eclipsed nodes, those that know no honest peer at all (none among
   * the peers they verified, what their peers file would hold): every address
   * they could dial is an attacker's, so no rule of whom to dial leads them
   * out; only an honest node dialling in can.
   */
  readonly eclipsedKnowingNoHonest: number;
  /**
   * Honest live nodes one departure away from an eclipse: every peer an
   * attacker but one, and at least one attacker. Their count says how many
   * more a census could catch when churn takes honest peers away.
   */
  readonly oneHonestPeer: number;
  /**
   * Of the eclipsed nodes, those with an honest session that is not a member
   * one (a feeler, a feeler on trial, a delivery session): a census that
   * counted every session as a peer would not have called them eclipsed.
   */
  readonly eclipsedHonestShortLived: number;
}

/** A node up for less than this is "just started" in the {@link EclipseCensus}. */
export const JUST_STARTED_MS = 30_000;

/** A node eclipsed for less than this is eclipsed "recently" in the {@link EclipseCensus}. */
export const RECENT_ECLIPSE_MS = 10_000;

/** Counts honest live nodes (of `among`, default all) whose peers are all attackers. */
export function eclipseCensus(net: SimNetwork, among?: readonly SimNode[]): EclipseCensus {
  let honest = 0;
  let eclipsed = 0;
  let isolated = 0;
  let share = 0;
  let eclipsedPeers = 0;
  let eclipsedInbound = 0;
  let attackerBootstrapped = 0;
  let justStarted = 0;
  let recently = 0;
  let knowingNoHonest = 0;
  let oneHonestPeer = 0;
  let honestShortLived = 0;
  const now = net.clock.now();
  const peerCounts: number[] = [];
  for (const node of among ?? net.nodes) {
    if (!node.honest || !node.alive) continue;
    honest++;
    let hostile = 0;
    let peers = 0;
    let honestOther = false;
    for (const peer of node.sessions.keys()) {
      const honestPeer = net.byId(peer)?.honest ?? true;
      if (node.core.sessionKind(peer) !== "member") {
        if (honestPeer) honestOther = true;
        continue;
      }
      peers++;
      if (!honestPeer) hostile++;
    }
    if (peers === 0) isolated++;
    else {
      peerCounts.push(peers);
      if (hostile === peers) {
        eclipsed++;
        eclipsedPeers += peers;
        eclipsedInbound += node.core.peers().filter((p) =>
          p.direction === "inbound" && p.kind === "member"
        ).length;
        const bootstrap = node.options.bootstrap ?? [];
        if (bootstrap.length > 0 && bootstrap.every((b) => !b.honest)) attackerBootstrapped++;
        if (now - node.startedAt < JUST_STARTED_MS) justStarted++;
        if (now - Math.max(node.startedAt, node.honestPeerLostAt) < RECENT_ECLIPSE_MS) recently++;
        const known = node.core.persistentState().peers;
        if (!known.some((peer) => net.byId(peer.identity)?.honest)) knowingNoHonest++;
        if (honestOther) honestShortLived++;
      }
      if (hostile > 0 && hostile === peers - 1) oneHonestPeer++;
      share += hostile / peers;
    }
  }
  const attackerPeerShare = honest - isolated === 0 ? 0 : share / (honest - isolated);
  let byChance = 0;
  for (const k of peerCounts) byChance += attackerPeerShare ** k;
  return {
    honest,
    eclipsed,
    isolated,
    eclipsedShare: honest === 0 ? 0 : eclipsed / honest,
    attackerPeerShare,
    eclipsedByChance: byChance,
    eclipsedMeanPeers: eclipsed === 0 ? 0 : eclipsedPeers / eclipsed,
    eclipsedMeanInbound: eclipsed === 0 ? 0 : eclipsedInbound / eclipsed,
    eclipsedAttackerBootstrapped: attackerBootstrapped,
    eclipsedJustStarted: justStarted,
    eclipsedRecently: recently,
    eclipsedKnowingNoHonest: knowingNoHonest,
    oneHonestPeer,
    eclipsedHonestShortLived: honestShortLived,
  };
}

/**
 * Time honest nodes spent eclipsed (every peer an attacker, at least one)
 * from the start of counting (T0, or the moment the attackers turn in the
 * covert flash) to the end, counted at every session change, not sampled: a
 * census at one moment also catches nodes a handshake away from an honest
 * peer, and misses eclipses that began and ended between two censuses.
 */
export interface EclipseTime {
  /** Seconds from T0 to the start of counting (0 unless the attackers turn later). */
  readonly fromSeconds: number;
  /** Honest nodes eclipsed when counting started (their eclipses count from then on). */
  readonly eclipsedAtStart: number;
  /** Seconds from the start of counting to the end. */
  readonly windowSeconds: number;
  /** Eclipsed seconds summed over honest nodes. */
  readonly nodeSeconds: number;
  /**
   * `nodeSeconds` / (`windowSeconds` × honest live nodes at the end): the
   * share of honest node-time spent eclipsed.
   */
  readonly share: number;
  /** Honest nodes eclipsed at some time in the window. */
  readonly nodes: number;
  /** Of those, eclipsed for {@link LONG_ECLIPSE_MS} or more in all. */
  readonly nodesLong: number;
  /** Longest single eclipse, seconds (one still in progress counts up to the end). */
  readonly longestSeconds: number;
}

/** Eclipsed time from which a node counts in {@link EclipseTime.nodesLong}. */
export const LONG_ECLIPSE_MS = 10_000;

/**
 * Sums the eclipsed time of honest nodes since `net`'s last
 * {@link SimNetwork.resetEclipseTime} at `fromMs`, up to now (`t0`: the
 * scenario's T0, for {@link EclipseTime.fromSeconds}).
 */
export function eclipseTime(net: SimNetwork, fromMs: number, t0 = fromMs): EclipseTime {
  const now = net.clock.now();
  let totalMs = 0;
  let nodes = 0;
  let nodesLong = 0;
  let longestMs = 0;
  let honestLive = 0;
  for (const node of net.nodes) {
    if (!node.honest) continue;
    if (node.alive) honestLive++;
    const open = node.eclipsedSince === undefined ? 0 : now - node.eclipsedSince;
    const ms = node.eclipsedMs + open;
    if (ms <= 0) continue;
    totalMs += ms;
    nodes++;
    if (ms >= LONG_ECLIPSE_MS) nodesLong++;
    longestMs = Math.max(longestMs, node.longestEclipseMs, open);
  }
  const windowMs = Math.max(0, now - fromMs);
  return {
    fromSeconds: (fromMs - t0) / 1000,
    eclipsedAtStart: net.eclipsedAtReset,
    windowSeconds: windowMs / 1000,
    nodeSeconds: Math.round(totalMs) / 1000,
    share: windowMs === 0 || honestLive === 0 ? 0 : totalMs / (windowMs * honestLive),
    nodes,
    nodesLong,
    longestSeconds: Math.round(longestMs) / 1000,
  };
}

/**
 * Distances from `origin` over the current sessions, relaying through honest
 * live nodes only: see the module documentation.
 */
export function shortestPaths(
  net: SimNetwork,
  origin: SimNode,
  bytes: number,
  validationDelayMs: number,
): Float64Array {
  const n = net.nodes.length;
  const dist = new Float64Array(n).fill(Infinity);
  const done = new Uint8Array(n);
  const heap = new MinHeap();
  dist[origin.index] = 0;
  heap.push(0, origin.index);
  while (heap.size > 0) {
    const [d, u] = heap.pop();
    if (done[u] || d > dist[u]) continue;
    done[u] = 1;
    const node = net.nodes[u];
    if (u !== origin.index && (!node.honest || !node.alive)) continue;
    const relay = u === origin.index ? 0 : validationDelayMs;
    const send = node.uplinkBytesPerMs > 0 ? bytes / node.uplinkBytesPerMs : 0;
    for (const peer of node.sessions.keys()) {
      const next = net.byId(peer);
      if (!next || !next.alive) continue;
      const v = next.index;
      const candidate = d + relay + send + net.links.latency(u, v);
      if (candidate < dist[v]) {
        dist[v] = candidate;
        heap.push(candidate, v);
      }
    }
  }
  return dist;
}

/** The time by which `fraction` of `total` had happened (`times` sorted), or null (never, or nobody). */
function reachTime(times: readonly number[], total: number, fraction: number): number | null {
  if (total === 0) return null;
  const needed = Math.max(1, Math.ceil(fraction * total - 1e-9));
  if (times.length < needed) return null;
  const value = times[needed - 1];
  return Number.isFinite(value) ? round(value) : null;
}

/** Entries of sorted `values` at most `limit`. */
function countAtMost(values: readonly number[], limit: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (values[mid] <= limit) low = mid + 1;
    else high = mid;
  }
  return low;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** The 4-byte big-endian tag at the start of an item's data (-1 if shorter). */
export function tagOf(data: Uint8Array): number {
  if (data.length < 4) return -1;
  return ((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]) >>> 0;
}

/** A binary min-heap of (key, value) pairs. */
class MinHeap {
  private readonly keys: number[] = [];
  private readonly values: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(key: number, value: number): void {
    const keys = this.keys;
    const values = this.values;
    let i = keys.length;
    keys.push(key);
    values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= key) break;
      keys[i] = keys[parent];
      values[i] = values[parent];
      i = parent;
    }
    keys[i] = key;
    values[i] = value;
  }

  pop(): [number, number] {
    const keys = this.keys;
    const values = this.values;
    const topKey = keys[0];
    const topValue = values[0];
    const lastKey = keys.pop()!;
    const lastValue = values.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && keys[right] < keys[left] ? right : left;
        if (keys[child] >= lastKey) break;
        keys[i] = keys[child];
        values[i] = values[child];
        i = child;
      }
      keys[i] = lastKey;
      values[i] = lastValue;
    }
    return [topKey, topValue];
  }
}
