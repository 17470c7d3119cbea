/**
 * Node metrics for operators: the {@link NodeMetrics} snapshot the node
 * provides (`GET /metrics` on `status_address` renders it with
 * lib/transport/metrics_renderer.ts), and {@link metricsFromStats}, which
 * fills it from today's `GossipNode.stats()`.
 *
 * @module
 */

/** Why an item (or a message to a peer) was dropped or not forwarded. */
export const DROP_REASONS = [
  "announce_queue_full",
  "notification_queue_full",
  "validation_overflow",
  "validation_timeout",
  "invalid",
  "id_mismatch",
  "unsubscribed",
  "peer_send_queue_full",
] as const;

/** One of {@link DROP_REASONS}. */
export type DropReason = typeof DROP_REASONS[number];

/**
 * Peer message types handled after the handshake, as `messagesReceived`
 * names them (the `type` label of `gossip_peer_messages_received_total`).
 */
export const PEER_MESSAGE_TYPES = [
  "Item",
  "IHave",
  "IWant",
  "Ping",
  "Pong",
  "PullRequest",
  "Peers",
  "Push",
  "Delivery",
] as const;

/** One of {@link PEER_MESSAGE_TYPES}. */
export type PeerMessageTypeName = typeof PEER_MESSAGE_TYPES[number];

/** Why a peer handshake failed. */
export const HANDSHAKE_FAILURE_REASONS = [
  "timeout",
  "connection_closed",
  "bad_signature",
  "credential_rate",
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
  /** Dials beyond `degree` for local items announced while no peer was proven. */
  readonly extraPathDials: number;
  /** Alarms raised because no item came for several usual gaps (a peer was replaced). */
  readonly silenceAlarms: number;
  /** Feelers dialled while items had stopped (a short session beyond degree). */
  readonly feelers: number;
  /** Feelers that brought an item first and kept their session. */
  readonly feelersKept: number;
  /** Other nodes' feelers heard on trial beside full inbound slots (HELLO flag `feel`), evicting nobody. */
  readonly feelersHeard: number;
  /** Inbound sessions ended to make room for a newcomer. */
  readonly sessionsEvicted: number;
  /** Newcomers refused with a referral because every inbound session was protected. */
  readonly newcomersReferred: number;
  /** Newcomers heard out for a local item beyond the full inbound slots (HELLO flag `deliver`). */
  readonly deliverySessions: number;
  /** Delivery sessions this node's extra paths were granted by full peers (DELIVERY received). */
  readonly deliverySessionsGranted: number;
  /** Failed peer handshakes, by reason. */
  readonly handshakeFailures: Readonly<Record<HandshakeFailureReason, number>>;
  /** Bytes received from peers. */
  readonly bytesIn: number;
  /** Bytes sent to peers. */
  readonly bytesOut: number;
  /** Socket reads from peers that returned bytes (each a wake-up for peer input). */
  readonly peerReads: number;
  /** Socket writes to peers. */
  readonly peerWrites: number;
  /** Peer messages handled after the handshake, by type ({@link PEER_MESSAGE_TYPES}). */
  readonly messagesReceived: Readonly<Record<PeerMessageTypeName, number>>;
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
  /** Milliseconds since the session was established. */
  readonly ageMs: number;
  /** Bytes received from this peer. */
  readonly bytesIn: number;
  /** Bytes sent to this peer. */
  readonly bytesOut: number;
  /** The peer's score: raised by useful work, lowered by offences, decaying to 0. */
  readonly score: number;
  /** Smallest round trip measured to the peer in ms (absent until its first PONG). */
  readonly rttMs?: number;
}

/**
 * The part of the node's status snapshot (`GossipNode.stats()`, the JSON of
 * `GET /status`) that {@link metricsFromStats}, the status page and `gossip
 * status` read. Declared here, not imported from lib/node.ts, so that the
 * transport layer does not depend on the node.
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
  /** Validated items in the store (what `cache_size` bounds). */
  readonly itemsStored: number;
  /** Items awaiting a validation verdict. */
  readonly pendingValidations: number;
  /** Validations decided by the timeout. */
  readonly validationsTimedOut: number;
  /** Local delivery counters. */
  readonly local: {
    readonly announced: number;
    readonly announceDropped: number;
    readonly notificationsSent: number;
    readonly notificationsDropped: number;
  };
  /** Spreading counters. */
  readonly spreading: {
    readonly received: number;
    readonly duplicates: number;
    readonly itemsSent: number;
    readonly invalid: number;
    readonly unanswered: number;
    readonly unsubscribed: number;
    readonly overloaded: number;
    readonly mismatched: number;
    readonly pulled: number;
    /** Received items by hop count (index h: h hops; the last bucket: more). */
    readonly hops: readonly number[];
  };
  /** Failed handshakes by reason ({@link HANDSHAKE_FAILURE_REASONS}). */
  readonly handshakeFailures: Readonly<Record<string, number>>;
  /** Failed handshakes, all reasons. */
  readonly handshakeFailureCount: number;
  /** Inbound connections and sessions refused, all reasons. */
  readonly peersRefused: number;
  /** Guard counters. */
  readonly guard: { readonly banned: number };
  /** Connection counters. */
  readonly connections: {
    readonly offersIgnored: number;
    readonly reinforced: number;
    readonly silenceAlarms: number;
    readonly feelers: number;
    readonly feelersKept: number;
    readonly feelersHeard: number;
    readonly evicted: number;
    readonly referred: number;
    readonly deliveries: number;
    readonly deliveriesGranted: number;
  };
  /** Peer messages dropped because a peer's send queue was full. */
  readonly peerMessagesDropped: number;
  /** Bytes received from peers. */
  readonly bytesIn: number;
  /** Bytes sent to peers. */
  readonly bytesOut: number;
  /** Socket reads from peers that returned bytes. */
  readonly peerReads: number;
  /** Socket writes to peers. */
  readonly peerWrites: number;
  /** Peer messages handled after the handshake, by type name. */
  readonly messagesReceived: Readonly<Record<string, number>>;
}

function byReason<R extends string>(
  reasons: readonly R[],
  values: Partial<Record<string, number>>,
): Record<R, number> {
  const out = {} as Record<R, number>;
  for (const reason of reasons) out[reason] = values[reason] ?? 0;
  return out;
}

/** Builds {@link NodeMetrics} from a node's status snapshot. */
export function metricsFromStats(stats: StatusSnapshot): NodeMetrics {
  let inbound = 0;
  let outbound = 0;
  for (const peer of stats.peers) {
    if (peer.direction === "inbound") inbound++;
    else outbound++;
  }
  const s = stats.spreading;
  const failures = { ...stats.handshakeFailures };
  let other = 0;
  for (const [reason, count] of Object.entries(failures)) {
    if (!(HANDSHAKE_FAILURE_REASONS as readonly string[]).includes(reason)) other += count;
  }
  failures.other = (failures.other ?? 0) + other;
  return {
    identity: stats.identity,
    peers: { inbound, outbound },
    knownPeers: stats.knownPeers,
    apiClients: stats.apiClients,
    itemsStored: stats.itemsStored,
    itemsAnnounced: stats.local.announced,
    itemsReceived: s.received,
    itemsDuplicate: s.duplicates,
    itemsPulled: s.pulled,
    itemsSent: s.itemsSent,
    notificationsSent: stats.local.notificationsSent,
    validationsPending: stats.pendingValidations,
    validationsTimedOut: stats.validationsTimedOut,
    drops: byReason(DROP_REASONS, {
      announce_queue_full: stats.local.announceDropped,
      notification_queue_full: stats.local.notificationsDropped,
      validation_overflow: s.overloaded,
      validation_timeout: s.unanswered,
      invalid: s.invalid,
      id_mismatch: s.mismatched,
      unsubscribed: s.unsubscribed,
      peer_send_queue_full: stats.peerMessagesDropped,
    }),
    peersBanned: stats.guard.banned,
    connectionsRefused: stats.peersRefused,
    offersIgnored: stats.connections.offersIgnored,
    extraPathDials: stats.connections.reinforced,
    silenceAlarms: stats.connections.silenceAlarms,
    feelers: stats.connections.feelers,
    feelersKept: stats.connections.feelersKept,
    feelersHeard: stats.connections.feelersHeard,
    sessionsEvicted: stats.connections.evicted,
    newcomersReferred: stats.connections.referred,
    deliverySessions: stats.connections.deliveries,
    deliverySessionsGranted: stats.connections.deliveriesGranted,
    handshakeFailures: byReason(HANDSHAKE_FAILURE_REASONS, failures),
    bytesIn: stats.bytesIn,
    bytesOut: stats.bytesOut,
    peerReads: stats.peerReads,
    peerWrites: stats.peerWrites,
    messagesReceived: byReason(PEER_MESSAGE_TYPES, stats.messagesReceived),
    hopCounts: s.hops,
  };
}
