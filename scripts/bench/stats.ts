/**
 * Small statistics helpers of the benchmark.
 *
 * @module
 */

import type { NodeStats } from "../../lib/node.ts";
import type { SpreadingStats } from "../../lib/protocol/spreading.ts";

/**
 * Nearest-rank percentile `p` (0..100) of `values`; Infinity entries count as
 * larger than everything. Returns NaN for an empty list.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** Median. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Minimum, median and maximum of finite `values` (NaN when none). */
export function spread(values: readonly number[]): { min: number; median: number; max: number } {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { min: NaN, median: NaN, max: NaN };
  return { min: Math.min(...finite), median: median(finite), max: Math.max(...finite) };
}

/** Summed counters of all nodes, the difference between two snapshots. */
export interface CounterDelta {
  /** Sum of spreading.received (first receipts from peers). */
  readonly received: number;
  /** Sum of spreading.duplicates. */
  readonly duplicates: number;
  /** duplicates / received. */
  readonly duplicatesPerDelivery: number;
  /** Sum of spreading.itemsSent. */
  readonly itemsSent: number;
  /** Sum of spreading.pulled (items obtained by IWANT). */
  readonly pulled: number;
  /** Sum of spreading.wantsSent. */
  readonly wantsSent: number;
  /** Sum of spreading.unanswered + invalid + unsubscribed. */
  readonly notPropagated: number;
  /** Sum of notificationsDropped. */
  readonly notificationsDropped: number;
  /** Sum of announceDropped. */
  readonly announceDropped: number;
  /** Largest spreading.maxHops of any node after the phase (cumulative). */
  readonly maxHops: number;
  /** Sum of peerReads: socket reads from peers that returned bytes (wake-ups for peer input). */
  readonly peerReads: number;
  /** Sum of peerWrites: socket writes to peers. */
  readonly peerWrites: number;
  /** Sum of messagesReceived, by message type name. */
  readonly messages: Readonly<Record<string, number>>;
}

function sum(stats: readonly NodeStats[], pick: (s: NodeStats) => number): number {
  let total = 0;
  for (const s of stats) total += pick(s);
  return total;
}

/** Counters of the phase between `before` and `after` (same node order). */
export function counterDelta(
  before: readonly NodeStats[],
  after: readonly NodeStats[],
): CounterDelta {
  const d = (pick: (s: NodeStats) => number) => sum(after, pick) - sum(before, pick);
  const sp = (key: Exclude<keyof SpreadingStats, "hops">) => d((s) => s.spreading[key]);
  const received = sp("received");
  const duplicates = sp("duplicates");
  return {
    received,
    duplicates,
    duplicatesPerDelivery: received > 0 ? duplicates / received : NaN,
    itemsSent: sp("itemsSent"),
    pulled: sp("pulled"),
    wantsSent: sp("wantsSent"),
    notPropagated: sp("unanswered") + sp("invalid") + sp("unsubscribed"),
    notificationsDropped: d((s) => s.local.notificationsDropped),
    announceDropped: d((s) => s.local.announceDropped),
    maxHops: Math.max(0, ...after.map((s) => s.spreading.maxHops)),
    peerReads: d((s) => s.peerReads),
    peerWrites: d((s) => s.peerWrites),
    messages: messageDelta(before, after),
  };
}

function messageDelta(
  before: readonly NodeStats[],
  after: readonly NodeStats[],
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [stats, sign] of [[after, 1], [before, -1]] as const) {
    for (const s of stats) {
      for (const [name, count] of Object.entries(s.messagesReceived)) {
        delta[name] = (delta[name] ?? 0) + sign * count;
      }
    }
  }
  for (const name of Object.keys(delta)) if (delta[name] === 0) delete delta[name];
  return delta;
}

/** Whether the peer graph of `stats` is connected, with degree figures. */
export interface OverlayShape {
  /** Every node reachable from node 0 over peer links. */
  readonly connected: boolean;
  /** Nodes reachable from node 0. */
  readonly reachable: number;
  /** Connected peers per node. */
  readonly peers: { min: number; median: number; max: number };
  /** Outbound peers per node. */
  readonly outbound: { min: number; median: number; max: number };
  /**
   * Nodes with their `degree` outbound peers, or connected to every other node
   * (then nobody is left to dial: early nodes collect many inbound peers).
   */
  readonly saturated: number;
}

/** Analyses the overlay described by every node's peer list. */
export function overlayShape(stats: readonly NodeStats[], degree: number): OverlayShape {
  const byIdentity = new Map(stats.map((s, i) => [s.identity, i]));
  const adjacency = stats.map(() => new Set<number>());
  stats.forEach((s, i) => {
    for (const peer of s.peers) {
      const j = byIdentity.get(peer.identity);
      if (j === undefined) continue;
      adjacency[i].add(j);
      adjacency[j].add(i);
    }
  });
  const seen = new Set<number>(stats.length > 0 ? [0] : []);
  const stack = [...seen];
  while (stack.length > 0) {
    for (const next of adjacency[stack.pop()!]) {
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  const outbound = stats.map((s) => s.peers.filter((p) => p.direction === "outbound").length);
  const wanted = Math.min(degree, stats.length - 1);
  return {
    connected: seen.size === stats.length,
    reachable: seen.size,
    peers: spread(stats.map((s) => s.peers.length)),
    outbound: spread(outbound),
    saturated: stats.filter((s, i) => outbound[i] >= wanted || s.peers.length >= stats.length - 1)
      .length,
  };
}
