/**
 * Renders {@link NodeMetrics} in the Prometheus text exposition format.
 *
 * Rendering uses prom-client (npm, works under Deno, including `deno bundle`
 * and without `--allow-env`): its registry, counters, gauges and text format.
 * prom-client is built for instrumenting call sites (`inc()`, `observe()`),
 * while the node hands over a snapshot of counters it keeps itself, so each
 * scrape sets every metric from the snapshot. For the hop-count histogram
 * prom-client has no public way to set bucket counts (only `observe()` one
 * value at a time), so `SnapshotHistogram` overrides the two methods that
 * produce its values; tests/metrics_test.ts parses the output and would catch
 * a prom-client change that breaks this (the version is pinned in deno.json).
 *
 * The status server imports this module on the first scrape: prom-client
 * costs about 30 ms of start-up and 4.5 MB of memory that a node nobody
 * scrapes need not pay.
 *
 * Names follow Prometheus conventions: a `gossip_` prefix, `_total` on
 * counters, base units (`_bytes`), labels for directions and reasons.
 *
 * @module
 */

import { Counter, Gauge, Histogram, type MetricType, Registry } from "prom-client";
import {
  DROP_REASONS,
  HANDSHAKE_FAILURE_REASONS,
  HOP_BUCKETS,
  type NodeMetrics,
  PEER_MESSAGE_TYPES,
} from "./metrics.ts";

/**
 * prom-client's typings declare a metric's `type` as a numeric enum; at run
 * time it is the word written after `# TYPE`, which the registry prints.
 */
const HISTOGRAM_TYPE = "histogram" as unknown as MetricType;
const HOPS_NAME = "gossip_item_hops";
const HOPS_HELP = "Hops travelled by items received from peers (1 = straight from the origin).";

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
  private readonly messages: Counter<"type">;
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
      "gossip_extra_path_dials_total",
      "Dials beyond degree for local items announced while no peer had brought an item first.",
      (m) => m.extraPathDials,
    );
    counter(
      "gossip_silence_alarms_total",
      "Times no item came for several usual gaps, so a peer was replaced (silent black holes).",
      (m) => m.silenceAlarms,
    );
    counter(
      "gossip_feelers_total",
      "Feelers dialled while items had stopped: short sessions beyond degree to test a known peer.",
      (m) => m.feelers,
    );
    counter(
      "gossip_feelers_kept_total",
      "Feelers that brought an item first and kept their session (an outbound peer made room).",
      (m) => m.feelersKept,
    );
    counter(
      "gossip_feelers_heard_total",
      "Other nodes' feelers heard on trial beside full inbound slots (HELLO flag feel), evicting nobody.",
      (m) => m.feelersHeard,
    );
    counter(
      "gossip_peer_sessions_evicted_total",
      "Inbound peer sessions ended to make room for a newcomer (inbound slots full).",
      (m) => m.sessionsEvicted,
    );
    counter(
      "gossip_peer_newcomers_referred_total",
      "Newcomers referred to other peers: inbound slots full and every session protected.",
      (m) => m.newcomersReferred,
    );
    counter(
      "gossip_peer_delivery_sessions_total",
      "Newcomers heard out for a local item beyond full inbound slots (HELLO flag deliver).",
      (m) => m.deliverySessions,
    );
    counter(
      "gossip_peer_delivery_sessions_granted_total",
      "Delivery sessions full peers granted this node's extra paths (DELIVERY received).",
      (m) => m.deliverySessionsGranted,
    );
    counter(
      "gossip_peer_received_bytes_total",
      "Bytes received from peers.",
      (m) => m.bytesIn,
    );
    counter("gossip_peer_sent_bytes_total", "Bytes sent to peers.", (m) => m.bytesOut);
    counter(
      "gossip_peer_reads_total",
      "Socket reads from peers that returned bytes (each a wake-up of the process).",
      (m) => m.peerReads,
    );
    counter("gossip_peer_writes_total", "Socket writes to peers.", (m) => m.peerWrites);
    this.messages = new Counter({
      name: "gossip_peer_messages_received_total",
      help: "Peer messages handled after the handshake, by type.",
      labelNames: ["type"],
      registers,
    });
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
    this.messages.reset();
    for (const type of PEER_MESSAGE_TYPES) {
      this.messages.inc({ type }, metrics.messagesReceived[type] ?? 0);
    }
    this.handshakeFailures.reset();
    for (const reason of HANDSHAKE_FAILURE_REASONS) {
      this.handshakeFailures.inc({ reason }, metrics.handshakeFailures[reason] ?? 0);
    }
    this.hops.setCounts(metrics.hopCounts);
    this.memory.set(Deno.memoryUsage().rss);
    return await this.registry.metrics();
  }
}
