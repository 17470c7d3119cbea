/**
 * The node core: every decision of a gossip node, without I/O.
 *
 * Events come in as method calls (a peer connection opened, a session
 * established or closed, a peer message, an API client's message, a dial that
 * failed); time and timers come from an injected {@link Scheduler}, randomness
 * from an injected {@link RandomSource}. Decisions go out through the
 * {@link CoreActions} port (send to a peer, close it, dial, send a
 * NOTIFICATION, save the peers file). The I/O shell (`lib/node.ts`) binds the
 * port to sockets and the platform timers; tests and the simulator bind it to
 * an in-memory network and a virtual clock, and run thousands of cores in one
 * process.
 *
 * Collaborators, each owning one concern:
 * - {@link LocalDelivery}: API clients, subscriptions, the announce queue, the
 *   validation queue and verdicts;
 * - {@link PeerGuard}: admission, budgets, scores, bans;
 * - {@link ConnectionManager}: sessions, duplicates, referral, dialling,
 *   peer exchange, joining;
 * - {@link Router}: dispatch of peer messages, IHAVE/IWANT batching;
 * - {@link Spreading} over the {@link ItemStore}: pushes, pulls, anti-entropy.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import type { ApiMessage } from "../codec/api_messages.ts";
import { GoodbyeReason, type PeerMessage, PeerMessageType } from "../codec/peer_messages.ts";
import { type Logger, silentLogger } from "../log.ts";
import { type GossipItem, itemIdHex } from "../protocol/item.ts";
import { ItemStore, type PeerKey } from "../protocol/item_store.ts";
import type { Direction, SavedPeer } from "../protocol/membership.ts";
import { defaultRandom, type RandomSource } from "../protocol/random.ts";
import { RoundTrips } from "../protocol/round_trips.ts";
import type { Scheduler, TimerHandle } from "../protocol/scheduler.ts";
import { Spreading, type SpreadingStats } from "../protocol/spreading.ts";
import type { Verdict } from "../protocol/validation_tracker.ts";
import {
  ConnectionManager,
  type ConnectionStats,
  type DialPurpose,
  type SessionDecision,
  type SessionInfo,
  type SessionKind,
} from "./connection_manager.ts";
import { type ClientId, LocalDelivery, type LocalDeliveryStats } from "./local_delivery.ts";
import {
  type GuardStats,
  type Offence,
  OFFENCE_DESCRIPTION,
  PeerGuard,
  type PersistedBan,
  type SecurityOptions,
} from "./peer_guard.ts";
import { Router } from "./router.ts";
import { type CoreTuning, DEFAULT_CORE_TUNING, DEFAULT_SECURITY_OPTIONS } from "./tuning.ts";

export type { ClientId } from "./local_delivery.ts";
export type {
  DialPurpose,
  SessionDecision,
  SessionInfo,
  SessionKind,
} from "./connection_manager.ts";

/** Identifies an unauthenticated inbound connection (unique per node). */
export type ConnectionId = number;

/** Decisions of the core, carried out by the shell. */
export interface CoreActions {
  /** Queues `message` on the accepted session of `peer`. */
  sendToPeer(peer: PeerKey, message: PeerMessage): void;
  /**
   * Closes the accepted session of `peer`, sending GOODBYE `goodbye` first. The
   * core has already forgotten the session: its close is not reported back.
   */
  closePeer(peer: PeerKey, reason: string, goodbye: number): void;
  /** Bytes queued on the session of `peer` and not yet written (backpressure). */
  peerBacklog(peer: PeerKey): number;
  /**
   * Connects to `address` and runs the outbound handshake; reports back with
   * {@link NodeCore.sessionOpened} (`dialed: addressKey`) or
   * {@link NodeCore.dialFailed}. `purpose` sets HELLO's flags: `deliver`
   * asks a full responder to hear this node out in a delivery session before
   * it refers it, `feel` to hear a feeler on trial beyond its slots.
   */
  dial(address: SocketAddress, addressKey: string, purpose: DialPurpose): void;
  /**
   * Runs a probe handshake at `address` (HELLO flag probe: no session) and
   * reports who answered with {@link NodeCore.probeFinished}.
   */
  probe(address: SocketAddress, addressKey: string): void;
  /** Closes an unauthenticated inbound connection (evicted to make room). */
  closeConnection(conn: ConnectionId, reason: string): void;
  /** Sends a NOTIFICATION to an API client; false when it was dropped (queue full). */
  notifyClient(client: ClientId, messageId: number, item: GossipItem): boolean;
  /** Closes an API client that broke the API protocol. */
  closeClient(client: ClientId, reason: string): void;
  /** Saves the state worth keeping across restarts (peers file). */
  persist(state: PersistentState): void;
}

/** What survives a restart: verified peers and bans in force. */
export interface PersistentState {
  /** Peers this node verified (and whether it tried them). */
  readonly peers: readonly SavedPeer[];
  /** Bans still in force (wall-clock end times). */
  readonly bans: readonly PersistedBan[];
}

/** The settings from the `[gossip]` section that the core uses. */
export interface CoreConfig {
  /** `degree`. */
  readonly degree: number;
  /** `cache_size`. */
  readonly cacheSize: number;
  /** `validation_timeout_ms`. */
  readonly validationTimeoutMs: number;
  /** `max_peer_connections`. */
  readonly maxPeerConnections: number;
  /** `passive_view_size`. */
  readonly passiveViewSize: number;
  /** `membership_interval_ms`. */
  readonly membershipIntervalMs: number;
  /** `peer_idle_timeout_ms` (pings go out at a third of it). */
  readonly peerIdleTimeoutMs: number;
  /** `bootstrapper`, possibly several. */
  readonly bootstrappers: readonly SocketAddress[];
  /** Whether to persist state (`peers_file` is set). */
  readonly persist: boolean;
}

/** Options of a {@link NodeCore}. */
export interface NodeCoreOptions {
  /** This node's hex identity. */
  readonly selfIdentity: PeerKey;
  /** The P2P address this node advertises. */
  readonly selfAddress: SocketAddress;
  /** Settings from the config file. */
  readonly config: CoreConfig;
  /** Limits against hostile peers (defaults: {@link DEFAULT_SECURITY_OPTIONS}). */
  readonly security?: Partial<SecurityOptions>;
  /** Internal limits and timings (defaults: {@link DEFAULT_CORE_TUNING}). */
  readonly tuning?: Partial<CoreTuning>;
  /** Clock and timers. */
  readonly scheduler: Scheduler;
  /** Randomness of peer choices. */
  readonly random?: RandomSource;
  /** Wall clock (ms since the Unix epoch), for persisted bans. */
  readonly wallClock?: () => number;
  /** Logger; silent by default. */
  readonly log?: Logger;
}

/** Counters of a node core. */
export interface CoreStats {
  /** Connected peers by direction. */
  readonly peerCounts: { readonly inbound: number; readonly outbound: number };
  /** Known but unconnected peers (spares; configured bootstrappers not counted). */
  readonly knownPeers: number;
  /** Validated items in the store (what `cache_size` bounds). */
  readonly itemsStored: number;
  /** Payload bytes of validated items in the store. */
  readonly storeBytes: number;
  /** Items from peers in the store awaiting their verdict. */
  readonly itemsValidating: number;
  /** Items awaiting a verdict (notified). */
  readonly pendingValidations: number;
  /** Items waiting for a validation slot. */
  readonly queuedValidations: number;
  /** Validations decided by the timeout. */
  readonly validationsTimedOut: number;
  /** Connected API clients. */
  readonly apiClients: number;
  /** Local delivery counters. */
  readonly local: LocalDeliveryStats;
  /** Spreading counters. */
  readonly spreading: SpreadingStats;
  /** Guard counters. */
  readonly guard: GuardStats;
  /** Connection counters. */
  readonly connections: ConnectionStats;
  /** Peer messages handled after the handshake, by type name. */
  readonly messagesReceived: Record<string, number>;
  /** Failed handshakes by reason. */
  readonly handshakeFailures: Record<string, number>;
  /** Items dropped, by reason. */
  readonly drops: Record<string, number>;
}

/** Per-peer facts for the status endpoint. */
export interface CorePeerInfo {
  /** Hex identity. */
  readonly identity: PeerKey;
  /** Advertised address. */
  readonly address: SocketAddress;
  /** Who opened the session. */
  readonly direction: Direction;
  /** How long the session has been up, in ms. */
  readonly ageMs: number;
  /** The peer's score. */
  readonly score: number;
  /** Smallest round trip measured to the peer (PING/PONG), in ms; absent before the first PONG. */
  readonly rttMs?: number;
  /** What the session is for: only `member` sessions are lasting peers. */
  readonly kind: SessionKind;
}

/** The decisions of one gossip node. */
export class NodeCore {
  private readonly scheduler: Scheduler;
  private readonly log: Logger;
  private readonly tuning: CoreTuning;
  private readonly store: ItemStore;
  private readonly guard: PeerGuard;
  private readonly connections: ConnectionManager;
  private readonly spreading: Spreading;
  private readonly local: LocalDelivery;
  private readonly router: Router;
  private readonly roundTrips = new RoundTrips();
  private readonly handshakeFailures: Record<string, number> = {};
  private readonly wallClock: () => number;
  private readonly random: RandomSource;
  private timer: TimerHandle | undefined;
  private lastPing = 0;
  private lastPersist = 0;
  /** Whether a connected peer was proven at the last save (see {@link maintain}). */
  private savedWithProvenPeer = false;
  private stopped = false;

  /** Creates a core; nothing happens until {@link start}. */
  constructor(private readonly options: NodeCoreOptions, private readonly actions: CoreActions) {
    const { config, scheduler } = options;
    this.scheduler = scheduler;
    this.log = options.log ?? silentLogger;
    this.wallClock = options.wallClock ?? Date.now;
    this.tuning = { ...DEFAULT_CORE_TUNING, ...options.tuning };
    const random = this.random = options.random ?? defaultRandom;
    const security = { ...DEFAULT_SECURITY_OPTIONS, ...options.security };
    const now = scheduler.now();
    this.store = new ItemStore({ ...this.tuning.store, maxItems: config.cacheSize });
    this.guard = new PeerGuard(security);
    this.connections = new ConnectionManager(
      {
        selfIdentity: options.selfIdentity,
        selfAddress: options.selfAddress,
        degree: config.degree,
        maxPeerConnections: config.maxPeerConnections,
        passiveViewSize: config.passiveViewSize,
        membershipIntervalMs: config.membershipIntervalMs,
        bootstrappers: config.bootstrappers,
        maxLearnPerRound: security.maxLearnPerRound,
        establishedAfterMs: this.tuning.establishedAfterMs,
        joinWarningMs: this.tuning.joinWarningMs,
        rotationIntervalMs: this.tuning.outboundRotationMs,
        evictionGraceMs: this.tuning.evictionGraceMs,
        relayMemoryMs: this.tuning.relayMemoryMs,
        deliverySessionMs: this.tuning.deliverySessionMs,
        deliveryProofMs: this.tuning.deliveryProofMs,
        feelerTrialMs: this.tuning.feelerTrialMs,
        reinforceIntervalMs: this.tuning.reinforceIntervalMs,
        silenceWatch: this.tuning.silenceWatch,
        random,
      },
      {
        send: (peer, message) => this.sendToPeer(peer, message),
        close: (peer, reason, goodbye) => this.actions.closePeer(peer, reason, goodbye),
        dial: (address, key, purpose) => this.actions.dial(address, key, purpose),
        probe: (address, key) => this.actions.probe(address, key),
        forgotten: (peer) => {
          this.guard.sessionClosed(peer);
          this.spreading.peerLeft(peer);
          this.router.forget(peer);
          this.roundTrips.forget(peer);
        },
        // A delivery session only brings items: nothing is offered to it. On
        // an extra path, this node's own items go first, as ITEMs (once the
        // shell has registered the session: deferred), since the peer may
        // have granted a delivery session, which asks for nothing. A new
        // session's round trip is first measured by a keepalive PING (one
        // PING per new session cost a simulated cold boot 0.8 points of its
        // first minute and 10 % more background messages).
        accepted: (peer) => {
          if (this.connections.session(peer)?.delivery) return;
          if (!this.connections.isExtraPath(peer)) {
            this.spreading.offer(peer);
            return;
          }
          this.scheduler.defer(() => {
            if (!this.connections.isConnected(peer)) return;
            this.spreading.pushOwn(peer);
            this.spreading.offer(peer);
          });
        },
        score: (peer) => this.guard.score(peer, this.scheduler.now()),
        isTrusted: (peer) => this.guard.isTrusted(peer, this.scheduler.now()),
      },
      this.log.child("peers"),
      scheduler,
      now,
    );
    this.spreading = new Spreading(
      { ...this.tuning.spreading, degree: config.degree, random },
      this.store,
      scheduler,
      {
        peers: () => this.connections.relayPeers,
        roundTripMs: (peer) => this.roundTrips.rttMs(peer),
        mayPull: (peer) => {
          const session = this.connections.session(peer);
          return session !== undefined && !session.delivery;
        },
        isTrusted: (peer) => this.guard.isTrusted(peer, this.scheduler.now()),
        score: (peer) => this.guard.score(peer, this.scheduler.now()),
        sendItem: (peer, item, hops) => this.sendItem(peer, item, hops),
        sendHave: (peer, id) => this.router.queueHave(peer, id),
        sendWant: (peer, id) => this.router.queueWant(peer, id),
        deliver: (item, from) => {
          const outcome = this.local.deliver(item, from);
          if (this.log.enabled("debug")) {
            this.log.debug("item received", {
              item: itemIdHex(item.id),
              from: from.slice(0, 8),
              type: item.dataType,
              bytes: item.data.length,
              outcome,
            });
          }
          return outcome;
        },
        isSubscribed: (dataType) => this.local.isSubscribed(dataType),
        mayServe: (peer, bytes) =>
          this.actions.peerBacklog(peer) < this.tuning.maxPeerBacklogBytes &&
          this.guard.takeServe(peer, bytes, this.scheduler.now()),
        penalize: (peer, offence) => this.penalize(peer, offence),
        credit: (peer) => {
          const now = this.scheduler.now();
          this.guard.credit(peer, now);
          this.connections.noteRelay(peer, now, true);
        },
        relayed: (peer) => this.connections.noteRelay(peer, this.scheduler.now()),
      },
    );
    this.local = new LocalDelivery(
      {
        validationTimeoutMs: config.validationTimeoutMs,
        maxAnnounceQueue: this.tuning.maxAnnounceQueue,
        maxOutstandingNotifications: this.tuning.maxOutstandingNotifications,
        muteAfterTimeouts: this.tuning.muteAfterTimeouts,
        validationQueue: this.tuning.validationQueue,
      },
      scheduler,
      {
        sendNotification: (client, messageId, item) => {
          const sent = this.actions.notifyClient(client, messageId, item);
          if (this.log.enabled("debug")) {
            this.log.debug(sent ? "item delivered" : "item not delivered: module too slow", {
              item: itemIdHex(item.id),
              client,
              messageId,
            });
          }
          return sent;
        },
        closeClient: (client, reason) => this.actions.closeClient(client, reason),
        originate: (item) => {
          if (!this.spreading.originate(item)) return false;
          this.connections.reinforce(this.scheduler.now());
          return true;
        },
        verdict: (id, verdict) => this.verdict(id, verdict),
        dropped: (id) => this.spreading.dropped(id),
        overShare: (peer) => this.penalize(peer, "validation-over-share"),
      },
      this.log.child("api"),
    );
    this.router = new Router(this.guard, this.connections, this.spreading, scheduler, {
      send: (peer, message) => this.sendToPeer(peer, message),
      penalize: (peer, offence) => this.penalize(peer, offence),
      ban: (peer, reason) => this.ban(peer, reason),
      violation: (peer, reason) => this.violation(peer, reason),
      pong: (peer, nonce) => this.roundTrips.pong(peer, nonce, this.scheduler.now()),
    }, this.log.child("items"));
  }

  // ---- lifecycle ----------------------------------------------------------------

  /** Restores saved state, starts the maintenance timer and dials. */
  start(restored?: PersistentState): void {
    const now = this.scheduler.now();
    this.lastPing = now;
    this.lastPersist = now;
    if (restored) {
      const peers = this.connections.restore(restored.peers, now);
      const bans = this.guard.importBans(restored.bans, now, this.wallClock());
      this.log.info("restored state", { peers, bans });
    }
    this.schedule();
    this.connections.dialMore(now);
  }

  /** Closes every session (GOODBYE shutdown) and stops every timer. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.connections.closeAll(this.scheduler.now());
    this.local.close();
    this.spreading.close();
  }

  /** The state to save across restarts. */
  persistentState(): PersistentState {
    const now = this.scheduler.now();
    return {
      peers: this.connections.knownPeers(),
      bans: this.guard.exportBans(now, this.wallClock()),
    };
  }

  /** Applies settings that can change at run time. */
  reconfigure(changes: {
    validationTimeoutMs?: number;
    maxPeerConnections?: number;
    security?: Partial<SecurityOptions>;
  }): void {
    if (changes.validationTimeoutMs !== undefined) {
      this.local.setValidationTimeout(changes.validationTimeoutMs);
    }
    if (changes.maxPeerConnections !== undefined) {
      this.connections.setMaxPeerConnections(changes.maxPeerConnections);
    }
    if (changes.security) this.guard.reconfigure(changes.security);
  }

  // ---- peer connections -----------------------------------------------------------

  /**
   * A new inbound connection from `ip`, before its handshake. Returns false
   * when it must be closed at once; may evict older unauthenticated
   * connections through {@link CoreActions.closeConnection}.
   */
  connectionOpened(conn: ConnectionId, ip: string): boolean {
    const admission = this.guard.admitConnection(conn, ip, this.scheduler.now());
    for (const victim of admission.evict) {
      this.actions.closeConnection(victim, "evicted to make room for a newer connection");
    }
    if (admission.refusal) {
      this.logRefusal(ip, admission.refusal);
      return false;
    }
    return true;
  }

  /** An admitted inbound connection finished its handshake, failed, or was closed. */
  connectionEnded(conn: ConnectionId): void {
    this.guard.preAuthEnded(conn);
  }

  /** A handshake failed; `reason` is a short category for the counters. */
  handshakeFailed(reason: string): void {
    this.handshakeFailures[reason] = (this.handshakeFailures[reason] ?? 0) + 1;
  }

  /**
   * True when the inbound handshake on connection `conn` from `peer` at `ip`
   * may go on: asked as soon as its HELLO names it, before any key agreement
   * or signature check. The connection now counts as handshaking, not silent.
   */
  mayAuthenticate(conn: ConnectionId, peer: PeerKey, ip: string): boolean {
    this.guard.preAuthProgressed(conn);
    return !this.stopped && this.guard.admitHandshake(peer, ip, this.scheduler.now());
  }

  /**
   * An authenticated session. With `accept`, the shell registers it under
   * `info.peer` and dispatches its messages; otherwise it sends the referral,
   * if any, and closes it with the GOODBYE reason.
   */
  sessionOpened(info: SessionInfo): SessionDecision {
    const now = this.scheduler.now();
    if (this.stopped) {
      return { accept: false, reason: "shutting down", goodbye: GoodbyeReason.Shutdown };
    }
    const refusal = this.guard.sessionRefusal(info.peer, now);
    const decision = this.connections.sessionOpened(info, now, refusal);
    if (decision.accept) {
      this.guard.sessionAdmitted(info.peer, info.ip, info.direction === "inbound", now);
    } else {
      this.log.debug("session refused", { peer: info.peer.slice(0, 8), reason: decision.reason });
    }
    return decision;
  }

  /**
   * An accepted session ended; `goodbye` is the reason the peer gave, if it
   * said one, `reason` the transport's words for the log.
   */
  sessionClosed(peer: PeerKey, goodbye?: number, reason?: string): void {
    if (this.stopped) return;
    this.connections.sessionClosed(peer, this.scheduler.now(), goodbye, reason);
  }

  /** A dial of `addressKey` failed before a session was accepted. */
  dialFailed(addressKey: string, identity?: PeerKey): void {
    if (this.stopped) return;
    this.connections.dialFailed(addressKey, this.scheduler.now(), identity);
  }

  /** A probe of `addressKey` ended; `identity` answered there (undefined: nobody did). */
  probeFinished(addressKey: string, identity?: PeerKey): void {
    if (this.stopped) return;
    const liar = this.connections.probeFinished(addressKey, this.scheduler.now(), identity);
    if (liar !== undefined) this.penalize(liar, "false-address-claim");
  }

  /** A message from the accepted session of `peer`. */
  peerMessage(peer: PeerKey, message: PeerMessage): void {
    if (this.stopped) return;
    this.router.dispatch(peer, message);
  }

  // ---- API clients ----------------------------------------------------------------

  /** An API client connected. */
  clientOpened(client: ClientId): void {
    this.local.clientOpened(client);
  }

  /** An API client disconnected. */
  clientClosed(client: ClientId): void {
    this.local.clientClosed(client);
  }

  /** A decoded message from an API client. */
  clientMessage(client: ClientId, message: ApiMessage): void {
    if (this.stopped) return;
    switch (message.kind) {
      case "announce":
        this.local.announce(client, message);
        return;
      case "notify":
        this.local.subscribe(client, message.dataType);
        return;
      case "validation":
        this.local.validation(client, message.messageId, message.valid);
        return;
      case "notification":
        this.actions.closeClient(client, "clients must not send NOTIFICATION (502)");
        return;
    }
  }

  // ---- views --------------------------------------------------------------------

  /** Connected peers' identities. */
  get peerIdentities(): PeerKey[] {
    return this.connections.peers;
  }

  /** Connected peers with direction, address, age and score. */
  peers(): CorePeerInfo[] {
    const now = this.scheduler.now();
    return [...this.connections.entries()].map(([identity, session]) => ({
      identity,
      address: session.address,
      direction: session.direction,
      ageMs: now - session.since,
      score: Math.round(this.guard.score(identity, now) * 100) / 100,
      rttMs: this.roundTrips.rttMs(identity),
      kind: this.connections.sessionKind(identity) ?? "member",
    }));
  }

  /** What the session of `peer` is for (undefined without one; {@link SessionKind}). */
  sessionKind(peer: PeerKey): SessionKind | undefined {
    return this.connections.sessionKind(peer);
  }

  /** Counters. */
  stats(): CoreStats {
    const spreading = this.spreading.stats;
    const local = this.local.stats;
    let outbound = 0;
    for (const [, session] of this.connections.entries()) {
      if (session.direction === "outbound") outbound++;
    }
    return {
      peerCounts: { inbound: this.connections.size - outbound, outbound },
      knownPeers: this.connections.membership.passiveCount -
        this.connections.membership.bootstrapperCount,
      itemsStored: this.store.size,
      storeBytes: this.store.bytes,
      itemsValidating: this.store.validating,
      pendingValidations: this.local.pendingValidations,
      queuedValidations: this.local.queuedValidations,
      validationsTimedOut: this.local.validationsTimedOut,
      apiClients: this.local.clientCount,
      local: { ...local, verdicts: { ...local.verdicts } },
      spreading: { ...spreading, hops: [...spreading.hops] },
      guard: {
        ...this.guard.stats,
        refused: { ...this.guard.stats.refused },
        offences: { ...this.guard.stats.offences },
      },
      connections: { ...this.connections.stats },
      messagesReceived: { ...this.router.received },
      handshakeFailures: { ...this.handshakeFailures },
      drops: {
        announceQueueFull: local.announceDropped,
        subscriberTooSlow: local.notificationsDropped,
        unsubscribed: spreading.unsubscribed,
        validationOverloaded: spreading.overloaded,
        idMismatch: spreading.mismatched,
        invalid: spreading.invalid,
        unanswered: spreading.unanswered,
        offersIgnored: this.connections.stats.offersIgnored,
        storeEvicted: this.store.evicted,
      },
    };
  }

  /**
   * The size of every table the node keeps per peer, connection, identity,
   * address and item, so that growth with peers or items ever seen shows.
   */
  structureSizes(): Record<string, number> {
    return {
      storeItems: this.store.size,
      storeValidating: this.store.validating,
      storeTombstones: this.store.tombstoneCount,
      storeUnsubscribed: this.store.unsubscribedCount,
      missingItems: this.spreading.missing,
      missingAdvertisers: this.spreading.missingAdvertisers,
      pendingAdvertisements: this.spreading.pendingAdvertisements,
      roundTrips: this.roundTrips.size,
      ...this.connections.sizes,
      ...this.guard.sizes,
      ...this.local.sizes,
      ...this.router.sizes,
    };
  }

  // ---- internals ------------------------------------------------------------------

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.scheduler.setTimeout(() => {
      this.maintain();
      this.schedule();
    }, this.options.config.membershipIntervalMs);
  }

  /** Periodic work: exchange and dials, keepalive, anti-entropy, sweep, persistence. */
  private maintain(): void {
    const now = this.scheduler.now();
    this.connections.round(now);
    const peers = this.connections.relayPeers;
    if (peers.length > 0) {
      // Anti-entropy digest: offer one random peer what it is not known to have.
      this.spreading.offer(peers[Math.floor(this.random() * peers.length)]);
    }
    if (now - this.lastPing >= this.options.config.peerIdleTimeoutMs / 3) {
      this.lastPing = now;
      for (const peer of peers) this.ping(peer);
    }
    this.spreading.sweep();
    // Saved every `persistIntervalMs`, and at once when a peer is proven for
    // the first time since the last save: until then every trusted outbound
    // peer is saved as an anchor, attackers among them, and a node that
    // crashed before the next save dialled those first after its restart
    // (docs/SIMULATION.md, "Round of the first proven peer").
    if (this.options.config.persist) this.persistIfDue(now);
  }

  /** Saves the persistent state when due (see {@link maintain}). */
  private persistIfDue(now: number): void {
    const intervalDue = now - this.lastPersist >= this.tuning.persistIntervalMs;
    // The scan for a proven peer only while the last save had none.
    if (!intervalDue && this.savedWithProvenPeer) return;
    const proven = this.connections.hasProvenPeer;
    if (!intervalDue && !proven) return;
    this.lastPersist = now;
    this.savedWithProvenPeer = proven;
    this.actions.persist(this.persistentState());
  }

  /** Sends `peer` a PING whose PONG measures the round trip. */
  private ping(peer: PeerKey): void {
    const nonce = this.roundTrips.ping(peer, this.scheduler.now());
    this.sendToPeer(peer, { type: PeerMessageType.Ping, nonce });
  }

  /**
   * Every message to a peer goes out here: the IHAVEs waiting for the lazy
   * round that concern the peer go along, in the same frame.
   */
  private sendToPeer(peer: PeerKey, message: PeerMessage): void {
    this.spreading.piggyback(peer);
    this.actions.sendToPeer(peer, message);
  }

  private sendItem(peer: PeerKey, item: GossipItem, hops: number): void {
    this.sendToPeer(peer, {
      type: PeerMessageType.Item,
      id: item.id,
      nonce: item.nonce,
      ttl: item.ttl,
      hops,
      dataType: item.dataType,
      data: item.data,
    });
    if (this.log.enabled("debug")) {
      this.log.debug("item forwarded", { item: itemIdHex(item.id), to: peer.slice(0, 8), hops });
    }
  }

  private verdict(id: bigint, verdict: Verdict): void {
    if (this.log.enabled("debug")) {
      this.log.debug("item validated", { item: itemIdHex(id), verdict });
    }
    this.spreading.validated(id, verdict);
  }

  private penalize(peer: PeerKey, offence: Offence): void {
    if (this.guard.penalize(peer, offence, this.scheduler.now())) {
      this.ban(peer, OFFENCE_DESCRIPTION[offence]);
    }
  }

  private ban(peer: PeerKey, reason: string): void {
    const now = this.scheduler.now();
    const ip = this.connections.session(peer)?.ip;
    if (!this.guard.ban(peer, ip, now)) return;
    this.log.warn("banning peer", { peer: peer.slice(0, 8), ip, reason });
    this.connections.drop(peer, now, `banned: ${reason}`, GoodbyeReason.Banned);
  }

  private violation(peer: PeerKey, reason: string): void {
    this.log.warn("closing peer", { peer: peer.slice(0, 8), reason });
    this.penalize(peer, "protocol-violation");
    this.connections.drop(
      peer,
      this.scheduler.now(),
      `protocol violation: ${reason}`,
      GoodbyeReason.ProtocolViolation,
    );
  }

  private logRefusal(ip: string, reason: string): void {
    const refused = Object.values(this.guard.stats.refused).reduce((a, b) => a + b, 0);
    if (refused % 100 === 1) this.log.warn("refusing peer connection", { ip, reason, refused });
  }
}
