/**
 * Node metrics for operators: the {@link NodeMetrics} snapshot the node
 * provides, and its rendering in the Prometheus text exposition format
 * (`GET /metrics` on `status_address`).
 *
 * Rendering uses prom-client (npm, works under Deno, including `deno bundle`
 * and without `--allow-env`): its registry, counters, gauges and text format.
 * prom-client is built for instrumenting call sites (`inc()`, `observe()`),
 * while the node hands over a snapshot of counters it keeps itself, so each
 * scrape sets every metric from the snapshot. For the hop-count histogram
 * prom-client has no public way to set bucket counts (only `observe()` one
 * value at a time), so {@link SnapshotHistogram} overrides the two methods that
 * produce its values; tests/metrics_test.ts parses the output and would catch
 * a prom-client change that breaks this (the version is pinned in deno.json).
 *
 * Names follow Prometheus conventions: a `gossip_` prefix, `_total` on
 * counters, base units (`_bytes`), labels for directions and reasons.
 *
 * @module
 */

import { Counter, Gauge, Histogram, type MetricType, Registry } from "prom-client";

/** Why an item (or a frame to a peer) was dropped or not forwarded. */
export const DROP_REASONS = [
  "announce_queue_full",
  "notification_queue_full",
  "validation_overflow",
  "validation_timeout",
  "invalid",
  "unsubscribed",
  "peer_send_queue_full",
] as const;

/** One of {@link DROP_REASONS}. */
export type DropReason = typeof DROP_REASONS[number];

/** Why a peer handshake failed. */
export const HANDSHAKE_FAILURE_REASONS = [
  "timeout",
  "connection_closed",
  "bad_signature",
  "proof_of_work",
  "protocol_version",
  "self",
  "protocol",
  "other",
] as const;

/** One of {@link HANDSHAKE_FAILURE_REASONS}. */
export type HandshakeFailureReason = typeof HANDSHAKE_FAILURE_REASONS[number];

/** Upper bounds (`le`) of the hop-count histogram's buckets; `+Inf` is added. */
export const HOP_BUCKETS: readonly number[] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32];

/**
 * Everything `GET /metrics` reports about one node, as the node provides it.
 * Counters only grow while the node runs; gauges are current values.
 */
export interface NodeMetrics {
  /** Hex identity (exported as the `identity` label of `gossip_node_info`). */
  readonly identity: string;
  /** Connected peers by direction (gauges). */
  readonly peers: { readonly inbound: number; readonly outbound: number };
  /** Known but unconnected peers (gauge). */
  readonly knownPeers: number;
  /** Connected API clients (gauge). */
  readonly apiClients: number;
  /** Items in the knowledge base (gauge). */
  readonly itemsStored: number;
  /** Items announced by local modules. */
  readonly itemsAnnounced: number;
  /** Items received from peers for the first time. */
  readonly itemsReceived: number;
  /** Copies of items received again. */
  readonly itemsDuplicate: number;
  /** Items obtained by asking a peer (IWANT). */
  readonly itemsPulled: number;
  /** Item messages sent to peers (pushes and answers to IWANT). */
  readonly itemsSent: number;
  /** NOTIFICATIONs queued to local modules. */
  readonly notificationsSent: number;
  /** Items awaiting a validation verdict (gauge). */
  readonly validationsPending: number;
  /** Items whose validation ran out of time without a valid answer. */
  readonly validationsTimedOut: number;
  /** Items dropped or not forwarded, by reason. */
  readonly drops: Readonly<Record<DropReason, number>>;
  /** Peers banned (flooding, invalid items). */
  readonly peersBanned: number;
  /** Inbound peer connections refused (ban, rate or range limit). */
  readonly connectionsRefused: number;
  /** Peer descriptors ignored (unsolicited, or over the per-round limit). */
  readonly offersIgnored: number;
  /** Failed peer handshakes, by reason. */
  readonly handshakeFailures: Readonly<Record<HandshakeFailureReason, number>>;
  /** Bytes received from peers. */
  readonly bytesIn: number;
  /** Bytes sent to peers. */
  readonly bytesOut: number;
  /**
   * Hop counts of items received from peers: `hopCounts[h]` items arrived
   * after `h` hops (index 0 unused). Rendered as the `gossip_item_hops` histogram.
   */
  readonly hopCounts: readonly number[];
}

/** A connected peer as the status snapshot lists it. */
export interface PeerStatus {
  /** Hex identity. */
  readonly identity: string;
  /** The peer's advertised P2P address. */
  readonly address: string;
  /** `inbound` (it dialled us) or `outbound`. */
  readonly direction: string;
  /** Milliseconds since the session was established (0 when unknown). */
  readonly ageMs?: number;
  /** Bytes received from this peer. */
  readonly bytesIn?: number;
  /** Bytes sent to this peer. */
  readonly bytesOut?: number;
  /** Standing of the peer (higher is better; 0 until the node scores peers). */
  readonly score?: number;
}

/**
 * The part of the node's status snapshot (`GossipNode.stats()`) that
 * {@link metricsFromStats} and the status page read. Declared here, not
 * imported from lib/node.ts, so that the transport layer does not depend on the node.
 */
export interface StatusSnapshot {
  /** Hex identity. */
  readonly identity: string;
  /** Connected API clients. */
  readonly apiClients: number;
  /** Connected peers. */
  readonly peers: readonly PeerStatus[];
  /** Known but unconnected peers. */
  readonly knownPeers: number;
  /** Items in the knowledge base. */
  readonly knowledgeBaseItems: number;
  /** Items announced by local modules. */
  readonly announced: number;
  /** Announcements dropped because the queue was full. */
  readonly announceDropped: number;
  /** NOTIFICATIONs queued to local modules. */
  readonly notificationsSent: number;
  /** NOTIFICATIONs dropped because a module's queue was full. */
  readonly notificationsDropped: number;
  /** Spreading counters. */
  readonly spreading: {
    readonly received: number;
    readonly duplicates: number;
    readonly itemsSent: number;
    readonly invalid: number;
    readonly unanswered: number;
    readonly unsubscribed: number;
    readonly pulled: number;
  };
  /** Items awaiting a validation verdict. */
  readonly pendingValidations: number;
  /** Failed peer handshakes. */
  readonly handshakeFailures: number;
  /** Inbound peer connections refused. */
  readonly peersRefused: number;
  /** Peers banned. */
  readonly peersBanned: number;
  /** Peer descriptors ignored. */
  readonly offersIgnored: number;
  /** Frames dropped because a peer's send queue was full. */
  readonly peerFramesDropped: number;
  /** Items from peers dropped because too many awaited validation. */
  readonly validationOverflow: number;
  /** Bytes received from peers (when the node counts them). */
  readonly bytesIn?: number;
  /** Bytes sent to peers (when the node counts them). */
  readonly bytesOut?: number;
  /** A metrics snapshot, when the node provides one itself. */
  readonly metrics?: NodeMetrics;
}

function byReason<R extends string>(
  reasons: readonly R[],
  values: Partial<Record<R, number>>,
): Record<R, number> {
  const out = {} as Record<R, number>;
  for (const reason of reasons) out[reason] = values[reason] ?? 0;
  return out;
}

/**
 * Builds {@link NodeMetrics} from today's `GossipNode.stats()`. Where the node
 * keeps nothing yet the value is 0: handshake failures are all reported as
 * `other`, and the hop-count histogram is empty.
 */
export function metricsFromStats(stats: StatusSnapshot): NodeMetrics {
  if (stats.metrics) return stats.metrics;
  let inbound = 0;
  let outbound = 0;
  let peerBytesIn = 0;
  let peerBytesOut = 0;
  for (const peer of stats.peers) {
    if (peer.direction === "inbound") inbound++;
    else outbound++;
    peerBytesIn += peer.bytesIn ?? 0;
    peerBytesOut += peer.bytesOut ?? 0;
  }
  const s = stats.spreading;
  return {
    identity: stats.identity,
    peers: { inbound, outbound },
    knownPeers: stats.knownPeers,
    apiClients: stats.apiClients,
    itemsStored: stats.knowledgeBaseItems,
    itemsAnnounced: stats.announced,
    itemsReceived: s.received,
    itemsDuplicate: s.duplicates,
    itemsPulled: s.pulled,
    itemsSent: s.itemsSent,
    notificationsSent: stats.notificationsSent,
    validationsPending: stats.pendingValidations,
    validationsTimedOut: s.unanswered,
    drops: byReason(DROP_REASONS, {
      announce_queue_full: stats.announceDropped,
      notification_queue_full: stats.notificationsDropped,
      validation_overflow: stats.validationOverflow,
      validation_timeout: s.unanswered,
      invalid: s.invalid,
      unsubscribed: s.unsubscribed,
      peer_send_queue_full: stats.peerFramesDropped,
    }),
    peersBanned: stats.peersBanned,
    connectionsRefused: stats.peersRefused,
    offersIgnored: stats.offersIgnored,
    handshakeFailures: byReason(HANDSHAKE_FAILURE_REASONS, { other: stats.handshakeFailures }),
    bytesIn: stats.bytesIn ?? peerBytesIn,
    bytesOut: stats.bytesOut ?? peerBytesOut,
    hopCounts: [],
  };
}

/**
 * A prom-client histogram whose buckets are set from counts kept elsewhere
 * (prom-client itself only offers `observe()`). The registry reads a metric
 * through `getForPromString()` when it exists and `get()` otherwise; both
 * return the snapshot.
 */
class SnapshotHistogram extends Histogram<string> {
  private counts: readonly number[] = [];

  /** Takes `counts[value]` = number of observations of `value`. */
  setCounts(counts: readonly number[]): void {
    this.counts = counts;
  }

  /** The histogram in prom-client's value format. */
  override get(): ReturnType<Histogram<string>["get"]> {
    const name = HOPS_NAME;
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] =
      [];
    let count = 0;
    let sum = 0;
    let next = 0;
    for (const le of HOP_BUCKETS) {
      for (; next <= le && next < this.counts.length; next++) {
        count += this.counts[next] ?? 0;
        sum += next * (this.counts[next] ?? 0);
      }
      values.push({ value: count, labels: { le }, metricName: `${name}_bucket` });
    }
    for (; next < this.counts.length; next++) {
      count += this.counts[next] ?? 0;
      sum += next * (this.counts[next] ?? 0);
    }
    values.push({ value: count, labels: { le: "+Inf" }, metricName: `${name}_bucket` });
    values.push({ value: sum, labels: {}, metricName: `${name}_sum` });
    values.push({ value: count, labels: {}, metricName: `${name}_count` });
    return Promise.resolve({
      name,
      help: HOPS_HELP,
      type: HISTOGRAM_TYPE,
      aggregator: "sum",
      collect: () => {},
      values,
    });
  }

  /** What the registry formats (prom-client calls this when present). */
  getForPromString(): ReturnType<Histogram<string>["get"]> {
    return this.get();
  }
}

/**
 * prom-client's typings declare a metric's `type` as a numeric enum; at run
 * time it is the word written after `# TYPE`, which the registry prints.
 */
const HISTOGRAM_TYPE = "histogram" as unknown as MetricType;
const HOPS_NAME = "gossip_item_hops";
const HOPS_HELP = "Hops travelled by items received from peers (1 = straight from the origin).";

/** One counter or gauge of the exposition and where its value comes from. */
interface Scalar {
  readonly metric: Counter<string> | Gauge<string>;
  readonly value: (m: NodeMetrics) => number;
}

/**
 * Renders {@link NodeMetrics} in the Prometheus text format. Each status
 * endpoint has its own renderer (its own prom-client registry), so many nodes
 * can run in one process.
 */
export class MetricsRenderer {
  private readonly registry = new Registry();
  private readonly scalars: Scalar[] = [];
  private readonly peers: Gauge<"direction">;
  private readonly drops: Counter<"reason">;
  private readonly handshakeFailures: Counter<"reason">;
  private readonly info: Gauge<"identity" | "version">;
  private readonly hops: SnapshotHistogram;
  private readonly memory: Gauge<string>;

  /** Creates the metrics; `version` is reported by `gossip_node_info`. */
  constructor(private readonly version: string) {
    const registers = [this.registry];
    this.info = new Gauge({
      name: "gossip_node_info",
      help: "Always 1; the labels name the node's identity and version.",
      labelNames: ["identity", "version"],
      registers,
    });
    this.peers = new Gauge({
      name: "gossip_peers",
      help: "Connected peers by direction (outbound: this node dialled).",
      labelNames: ["direction"],
      registers,
    });
    const gauge = (name: string, help: string, value: Scalar["value"]) =>
      this.scalars.push({ metric: new Gauge({ name, help, registers }), value });
    const counter = (name: string, help: string, value: Scalar["value"]) =>
      this.scalars.push({ metric: new Counter({ name, help, registers }), value });
    gauge("gossip_known_peers", "Known but unconnected peers (spares).", (m) => m.knownPeers);
    gauge("gossip_api_clients", "Connected API clients (local modules).", (m) => m.apiClients);
    gauge("gossip_items_stored", "Items in the knowledge base.", (m) => m.itemsStored);
    counter(
      "gossip_items_announced_total",
      "Items announced by local modules.",
      (m) => m.itemsAnnounced,
    );
    counter(
      "gossip_items_received_total",
      "Items received from peers for the first time.",
      (m) => m.itemsReceived,
    );
    counter(
      "gossip_items_duplicate_total",
      "Copies of already known items received from peers.",
      (m) => m.itemsDuplicate,
    );
    counter(
      "gossip_items_pulled_total",
      "Items obtained by asking a peer for them (IWANT).",
      (m) => m.itemsPulled,
    );
    counter(
      "gossip_items_sent_total",
      "Item messages sent to peers (pushes and answers to IWANT).",
      (m) => m.itemsSent,
    );
    counter(
      "gossip_notifications_sent_total",
      "NOTIFICATIONs queued to local modules.",
      (m) => m.notificationsSent,
    );
    gauge(
      "gossip_validations_pending",
      "Items awaiting the local modules' VALIDATION.",
      (m) => m.validationsPending,
    );
    counter(
      "gossip_validations_timed_out_total",
      "Items without a valid answer within validation_timeout_ms (not forwarded).",
      (m) => m.validationsTimedOut,
    );
    counter("gossip_peers_banned_total", "Peers banned.", (m) => m.peersBanned);
    counter(
      "gossip_peer_connections_refused_total",
      "Inbound peer connections refused (ban, rate or address-range limit).",
      (m) => m.connectionsRefused,
    );
    counter(
      "gossip_peer_offers_ignored_total",
      "Peer descriptors ignored (unsolicited or over the per-round limit).",
      (m) => m.offersIgnored,
    );
    counter(
      "gossip_peer_received_bytes_total",
      "Bytes received from peers.",
      (m) => m.bytesIn,
    );
    counter("gossip_peer_sent_bytes_total", "Bytes sent to peers.", (m) => m.bytesOut);
    this.drops = new Counter({
      name: "gossip_items_dropped_total",
      help: "Items dropped or not forwarded, by reason (peer_send_queue_full counts frames).",
      labelNames: ["reason"],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: "gossip_handshake_failures_total",
      help: "Failed peer handshakes, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.hops = new SnapshotHistogram({
      name: HOPS_NAME,
      help: HOPS_HELP,
      buckets: [...HOP_BUCKETS],
      registers,
    });
    this.memory = new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory of the whole process in bytes.",
      registers,
    });
  }

  /** The Content-Type of {@link render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Renders `metrics` (and the process's resident memory) as exposition text. */
  async render(metrics: NodeMetrics): Promise<string> {
    this.info.reset();
    this.info.set({ identity: metrics.identity, version: this.version }, 1);
    this.peers.set({ direction: "inbound" }, metrics.peers.inbound);
    this.peers.set({ direction: "outbound" }, metrics.peers.outbound);
    for (const { metric, value } of this.scalars) {
      if (metric instanceof Gauge) {
        metric.set(value(metrics));
      } else {
        metric.reset();
        metric.inc(value(metrics));
      }
    }
    this.drops.reset();
    for (const reason of DROP_REASONS) this.drops.inc({ reason }, metrics.drops[reason] ?? 0);
    this.handshakeFailures.reset();
    for (const reason of HANDSHAKE_FAILURE_REASONS) {
      this.handshakeFailures.inc({ reason }, metrics.handshakeFailures[reason] ?? 0);
    }
    this.hops.setCounts(metrics.hopCounts);
    this.memory.set(Deno.memoryUsage().rss);
    return await this.registry.metrics();
  }
}
