/**
 * The gossip node: wires the API server, the peer transport and the protocol
 * state machines together. A node is a library object: `start()` binds its
 * ports, `close()` releases everything, and many nodes can run in one process.
 *
 * @module
 */

import {
  formatSocketAddress,
  isLoopbackHostname,
  parseSocketAddress,
  type SocketAddress,
} from "./address.ts";
import {
  type AnnounceMessage,
  encodeApiMessage,
  type NotifyMessage,
  type ValidationMessage,
} from "./codec/api_messages.ts";
import {
  GoodbyeReason,
  MAX_DESCRIPTORS,
  MAX_ITEM_IDS,
  type PeerDescriptor,
  type PeerMessage,
  PeerMessageType,
} from "./codec/peer_messages.ts";
import type { GossipOptions } from "./config.ts";
import { DecodeError, ProtocolError } from "./errors.ts";
import { type HostKey, identityHex, shortId } from "./hostkey.ts";
import { type Logger, silentLogger } from "./log.ts";
import { type GossipItem, itemIdHex, randomItemId } from "./protocol/item.ts";
import { KnowledgeBase } from "./protocol/knowledge_base.ts";
import { type KnownPeer, Membership } from "./protocol/membership.ts";
import {
  powEpoch,
  type ProofOfWork,
  solveProofOfWork,
  solveProofOfWorkInSlices,
} from "./protocol/proof_of_work.ts";
import { defaultRandom, type RandomSource } from "./protocol/random.ts";
import {
  addressRange,
  BanList,
  KeyedRateLimiter,
  StrikeCounter,
  TokenBucket,
} from "./protocol/rate_limit.ts";
import {
  DEFAULT_SPREADING_OPTIONS,
  type PeerKey,
  Spreading,
  type SpreadingOptions,
  type SpreadingStats,
} from "./protocol/spreading.ts";
import { Subscriptions } from "./protocol/subscriptions.ts";
import { ValidationTracker, type Verdict } from "./protocol/validation_tracker.ts";
import { type ApiClient, ApiServer } from "./transport/api_server.ts";
import { TcpListener } from "./transport/listener.ts";
import { PeerSession, type PeerSessionOptions } from "./transport/peer_session.ts";
import { StatusServer } from "./transport/status_server.ts";

/** Options of a {@link GossipNode}. */
export interface GossipNodeOptions {
  /** This node's host key (its identity). */
  readonly hostKey: HostKey;
  /** The `[gossip]` settings. */
  readonly config: GossipOptions;
  /** Logger; silent by default. */
  readonly log?: Logger;
  /** Smallest RSA modulus accepted from peers (default 2048; tests use 1024). */
  readonly minPeerKeyBits?: number;
  /**
   * A proof-of-work already solved for `hostKey` at `config.powDifficulty`; used
   * when it is for the current epoch, otherwise one is solved at start.
   */
  readonly proofOfWork?: ProofOfWork;
  /** Overrides of the spreading engine's tuning. */
  readonly spreading?: Partial<Omit<SpreadingOptions, "degree">>;
  /** Randomness of peer choices (seeded in tests). */
  readonly random?: RandomSource;
  /** Send queue limit per API client in bytes (default 8 MiB). */
  readonly maxApiQueueBytes?: number;
  /** Send queue limit per peer in bytes (default 4 MiB). */
  readonly maxPeerQueueBytes?: number;
  /** Local announcements waiting to be processed before new ones are dropped. */
  readonly maxAnnounceQueue?: number;
  /**
   * Payload bytes of peers' items awaiting local validation (default 32 MiB);
   * items beyond it are dropped, so slow validators cannot make memory grow.
   */
  readonly maxPendingValidationBytes?: number;
  /** Defences against hostile peers; see {@link SecurityOptions}. */
  readonly security?: Partial<SecurityOptions>;
  /** Wall clock in ms since the Unix epoch, for proof-of-work days (tests move it). */
  readonly wallClock?: () => number;
}

/** Limits against hostile peers (docs/SECURITY.md). */
export interface SecurityOptions {
  /** New inbound peer connections per second from one IP address. */
  readonly connectionsPerIpPerSecond: number;
  /** Burst of new inbound connections from one IP address. */
  readonly connectionBurstPerIp: number;
  /** Inbound peers (connected or in handshake) from one /24 or /48 address range. */
  readonly maxInboundPerRange: number;
  /** Frames per second one peer may send on average. */
  readonly framesPerSecond: number;
  /** Burst of frames one peer may send. */
  readonly frameBurst: number;
  /** Invalid items from one peer within `strikeWindowMs` that get it banned. */
  readonly invalidItemsBeforeBan: number;
  /** Window of the invalid-item count. */
  readonly strikeWindowMs: number;
  /** How long a ban lasts. */
  readonly banDurationMs: number;
  /** New descriptors accepted per membership round from all peers together. */
  readonly maxLearnPerRound: number;
  /** Whether per-IP and per-range limits also apply to loopback peers. */
  readonly limitLoopback: boolean;
}

/** Defaults of {@link SecurityOptions}. */
export const DEFAULT_SECURITY_OPTIONS: SecurityOptions = {
  connectionsPerIpPerSecond: 5,
  connectionBurstPerIp: 20,
  maxInboundPerRange: 8,
  framesPerSecond: 5_000,
  frameBurst: 20_000,
  invalidItemsBeforeBan: 10,
  strikeWindowMs: 60_000,
  banDurationMs: 10 * 60_000,
  maxLearnPerRound: 32,
  limitLoopback: false,
};

/** Counters and state of a node, for tests, benchmarks and the status command. */
export interface NodeStats {
  /** Hex identity. */
  readonly identity: string;
  /** Bound API address. */
  readonly apiAddress: string;
  /** Bound P2P address. */
  readonly p2pAddress: string;
  /** Connected API clients. */
  readonly apiClients: number;
  /** Connected peers with direction and address. */
  readonly peers: { identity: string; address: string; direction: string }[];
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
  readonly spreading: SpreadingStats;
  /** Items awaiting a validation verdict. */
  readonly pendingValidations: number;
  /** Peer handshakes that failed. */
  readonly handshakeFailures: number;
  /** Inbound peer connections refused (ban, rate or range limit). */
  readonly peersRefused: number;
  /** Peers banned (flooding or invalid items). */
  readonly peersBanned: number;
  /** Peer descriptors ignored (unsolicited, or over the per-round limit). */
  readonly offersIgnored: number;
  /** Frames dropped because a peer's send queue was full. */
  readonly peerFramesDropped: number;
  /** Items from peers dropped because too many awaited validation. */
  readonly validationOverflow: number;
  /** The day (epoch) of this node's current identity proof-of-work. */
  readonly powEpoch: number;
  /** Memory of the whole process (`Deno.memoryUsage()`: rss, heapTotal, heapUsed, external). */
  readonly memory: Deno.MemoryUsage;
}

const EXCHANGE_SIZE = 16;
const PEERS_SAVE_INTERVAL_MS = 30_000;
/** A started API message must be complete within this time (slowloris guard). */
const API_PARTIAL_MESSAGE_TIMEOUT_MS = 10_000;
/** A new API client must send its first message within this time (half-open guard). */
const API_FIRST_MESSAGE_TIMEOUT_MS = 30_000;

/** One gossip peer. */
export class GossipNode {
  /** This node's hex identity. */
  readonly identityHex: string;
  private readonly log: Logger;
  private readonly config: GossipOptions;
  private readonly apiServer: ApiServer;
  private readonly p2pListener: TcpListener;
  private statusServer: StatusServer | undefined;
  private readonly subscriptions = new Subscriptions<ApiClient>();
  private readonly knowledgeBase: KnowledgeBase;
  private readonly validation: ValidationTracker<bigint>;
  private readonly spreading: Spreading;
  /** Set by start(): the views need the bound address. */
  private membership!: Membership;
  /** Set by start(): sessions need the proof-of-work and the bound address. */
  private sessionOptions!: PeerSessionOptions;
  private readonly sessions = new Map<PeerKey, PeerSession>();
  private readonly handshakes = new Set<Promise<unknown>>();
  private readonly handshakeConns = new Set<Deno.TcpConn>();
  private readonly pendingHave = new Map<PeerKey, bigint[]>();
  private readonly pendingWant = new Map<PeerKey, bigint[]>();
  private flushScheduled = false;
  private announceQueue: { client: ApiClient; message: AnnounceMessage }[] = [];
  private announceScheduled = false;
  private maintenanceTimer: ReturnType<typeof setInterval> | undefined;
  private lastPing = 0;
  private lastSave = 0;
  /** This node's proof-of-work, renewed when the epoch changes. */
  private proof: ProofOfWork = { epoch: 0, nonce: 0n };
  private renewal: Promise<void> | undefined;
  private readonly renewalAbort = new AbortController();
  private saving: Promise<void> = Promise.resolve();
  private started = false;
  private closing = false;
  private advertised: SocketAddress | undefined;
  private readonly random: RandomSource;
  private readonly counters = {
    announced: 0,
    announceDropped: 0,
    notificationsSent: 0,
    notificationsDropped: 0,
    handshakeFailures: 0,
    peersRefused: 0,
    peersBanned: 0,
    offersIgnored: 0,
    validationOverflow: 0,
  };
  /** Payload size of each item from a peer that awaits validation. */
  private readonly pendingSizes = new Map<bigint, number>();
  private pendingBytes = 0;
  private readonly security: SecurityOptions;
  private readonly bans = new BanList();
  private readonly connectionLimiter: KeyedRateLimiter;
  private readonly invalidStrikes: StrikeCounter;
  private readonly frameBuckets = new Map<PeerSession, TokenBucket>();
  private readonly pullsOutstanding = new Set<PeerKey>();
  private readonly pushedThisRound = new Set<PeerKey>();
  private learnedThisRound = 0;

  /** Creates a node; nothing is bound until {@link start}. */
  constructor(private readonly options: GossipNodeOptions) {
    this.config = options.config;
    this.log = options.log ?? silentLogger;
    this.random = options.random ?? defaultRandom;
    this.identityHex = identityHex(options.hostKey.identity);
    this.security = { ...DEFAULT_SECURITY_OPTIONS, ...options.security };
    this.connectionLimiter = new KeyedRateLimiter(
      this.security.connectionsPerIpPerSecond,
      this.security.connectionBurstPerIp,
    );
    this.invalidStrikes = new StrikeCounter(
      this.security.invalidItemsBeforeBan,
      this.security.strikeWindowMs,
    );
    this.knowledgeBase = new KnowledgeBase(this.config.cacheSize);
    this.validation = new ValidationTracker<bigint>({
      timeoutMs: this.config.validationTimeoutMs,
      onDecision: (id, outcome) => this.onVerdict(id, outcome.verdict),
    });
    this.spreading = new Spreading(
      {
        ...DEFAULT_SPREADING_OPTIONS,
        ...options.spreading,
        degree: this.config.degree,
        random: this.random,
      },
      {
        peers: () => [...this.sessions.keys()],
        sendItem: (peer, item) => this.sendItem(peer, item),
        sendHave: (peer, id) => this.queueIds(this.pendingHave, peer, id),
        sendWant: (peer, id) => this.queueIds(this.pendingWant, peer, id),
        deliver: (item, from) => this.deliverRemote(item, from),
        rejected: (peer) => this.onInvalidItem(peer),
      },
    );
    const apiLog = this.log.child("api");
    this.apiServer = new ApiServer({
      address: this.config.apiAddress,
      maxConnections: this.config.maxApiConnections,
      maxQueuedBytes: options.maxApiQueueBytes ?? 8 * 1024 * 1024,
      partialFrameTimeoutMs: API_PARTIAL_MESSAGE_TIMEOUT_MS,
      firstMessageTimeoutMs: API_FIRST_MESSAGE_TIMEOUT_MS,
      maxOutstandingNotifications: 16384,
      log: apiLog,
      handler: {
        onAnnounce: (client, message) => this.onAnnounce(client, message),
        onNotify: (client, message) => this.onNotify(client, message),
        onValidation: (client, message) => this.onValidation(client, message),
        onClientClosed: (client) => this.onClientClosed(client),
      },
    });
    this.p2pListener = new TcpListener({
      address: this.config.p2pAddress,
      maxConnections: this.config.maxPeerConnections * 2,
      log: this.log.child("p2p"),
      openConnections: () => this.sessions.size + this.handshakeConns.size,
      onConnection: (conn) => this.acceptPeer(conn),
    });
  }

  /** Milliseconds since the Unix epoch. */
  private wallClock(): number {
    return this.options.wallClock?.() ?? Date.now();
  }

  /** Short identity for logs. */
  get shortId(): string {
    return shortId(this.options.hostKey.identity);
  }

  /** The bound API address (after start). */
  get apiAddress(): SocketAddress {
    const { hostname, port } = this.apiServer.addr;
    return { hostname, port };
  }

  /** The bound P2P address (after start). */
  get p2pAddress(): SocketAddress {
    const { hostname, port } = this.p2pListener.addr;
    return { hostname, port };
  }

  /** The bound status endpoint address, if one is configured (after start). */
  get statusAddress(): SocketAddress | undefined {
    if (!this.statusServer) return undefined;
    const { hostname, port } = this.statusServer.addr;
    return { hostname, port };
  }

  /** Hex identities of connected peers. */
  get peerIdentities(): string[] {
    return [...this.sessions.keys()];
  }

  /** Binds both ports, starts maintenance and joins the network. */
  async start(): Promise<void> {
    if (this.started) throw new Error("node already started");
    this.started = true;
    const epoch = powEpoch(this.wallClock());
    const given = this.options.proofOfWork;
    this.proof = given?.epoch === epoch ? given : {
      epoch,
      nonce: solveProofOfWork(this.options.hostKey.identity, epoch, this.config.powDifficulty),
    };
    this.apiServer.listen();
    try {
      this.p2pListener.listen();
    } catch (error) {
      await this.apiServer.close();
      throw error;
    }
    if (this.config.statusAddress) {
      this.statusServer = new StatusServer(
        this.config.statusAddress,
        () => this.stats(),
        this.log.child("status"),
      );
      try {
        this.statusServer.listen();
      } catch (error) {
        await Promise.all([this.apiServer.close(), this.p2pListener.close()]);
        throw error;
      }
    }
    this.advertised = this.p2pAddress;
    if (this.config.p2pAddress.hostname !== this.advertised.hostname) {
      this.advertised = { hostname: this.config.p2pAddress.hostname, port: this.advertised.port };
    }
    this.sessionOptions = {
      hostKey: this.options.hostKey,
      proofOfWork: () => this.proof,
      powDifficulty: this.config.powDifficulty,
      listenAddress: this.advertised,
      handshakeTimeoutMs: this.config.handshakeTimeoutMs,
      idleTimeoutMs: this.config.peerIdleTimeoutMs,
      maxQueuedBytes: this.options.maxPeerQueueBytes ?? 4 * 1024 * 1024,
      minPeerKeyBits: this.options.minPeerKeyBits ?? 2048,
      log: this.log.child("p2p"),
    };
    this.membership = new Membership({
      selfIdentity: this.identityHex,
      selfAddress: this.advertised,
      degree: this.config.degree,
      passiveSize: this.config.passiveViewSize,
      maxLearnPerMessage: 8,
      backoffBaseMs: Math.min(500, this.config.membershipIntervalMs),
      backoffMaxMs: 30_000,
      bootstrapper: this.config.bootstrapper,
      random: this.random,
    });
    await this.restorePeers();
    this.log.info("node started", {
      identity: this.shortId,
      api: formatSocketAddress(this.apiAddress),
      p2p: formatSocketAddress(this.p2pAddress),
    });
    this.maintenanceTimer = setInterval(() => this.maintain(), this.config.membershipIntervalMs);
    this.dialMore();
  }

  /** Closes every connection and listener; resolves when all are released. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.maintenanceTimer);
    this.renewalAbort.abort();
    await this.renewal;
    this.validation.clear();
    this.spreading.close();
    if (!this.started) return;
    await this.saving;
    await this.savePeers();
    await Promise.all([this.p2pListener.close(), this.statusServer?.close()]);
    for (const conn of this.handshakeConns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.allSettled([
      ...[...this.sessions.values()].map((s) => s.close("shutdown", GoodbyeReason.Shutdown)),
      this.apiServer.close(),
    ]);
    // Dials and handshakes still in flight settle once their sockets are closed.
    for (let round = 0; round < 100 && this.handshakes.size > 0; round++) {
      await Promise.allSettled([...this.handshakes]);
    }
    this.log.info("node stopped", { identity: this.shortId });
  }

  /** Counters and views. */
  stats(): NodeStats {
    return {
      identity: this.identityHex,
      apiAddress: formatSocketAddress(this.apiAddress),
      p2pAddress: formatSocketAddress(this.p2pAddress),
      apiClients: this.apiServer.clientCount,
      peers: [...this.sessions.values()].map((s) => ({
        identity: s.identityHex,
        address: formatSocketAddress(s.listenAddress),
        direction: s.direction,
      })),
      knownPeers: this.membership?.passivePeers.length ?? 0,
      knowledgeBaseItems: this.knowledgeBase.size,
      ...this.counters,
      spreading: { ...this.spreading.stats },
      pendingValidations: this.validation.size,
      powEpoch: this.proof.epoch,
      peerFramesDropped: [...this.sessions.values()].reduce((n, s) => n + s.droppedFrames, 0),
      memory: Deno.memoryUsage(),
    };
  }

  // ---- API side -------------------------------------------------------------

  /** Queues a local ANNOUNCE; dropped (and counted) when the queue is full. */
  private onAnnounce(client: ApiClient, message: AnnounceMessage): void {
    if (this.announceQueue.length >= (this.options.maxAnnounceQueue ?? 10_000)) {
      this.counters.announceDropped++;
      if (this.counters.announceDropped % 1000 === 1) {
        this.log.warn("announce queue full, dropping", { dropped: this.counters.announceDropped });
      }
      return;
    }
    this.announceQueue.push({ client, message });
    if (!this.announceScheduled) {
      this.announceScheduled = true;
      queueMicrotask(() => this.drainAnnouncements());
    }
  }

  /** Turns queued announcements into items: store, notify, spread. */
  private drainAnnouncements(): void {
    this.announceScheduled = false;
    const queue = this.announceQueue;
    this.announceQueue = [];
    for (const { client, message } of queue) {
      if (this.closing) return;
      const item: GossipItem = {
        id: randomItemId(),
        ttl: message.ttl,
        dataType: message.dataType,
        data: message.data,
      };
      this.counters.announced++;
      this.knowledgeBase.add(item);
      this.log.debug("local announce", {
        item: itemIdHex(item.id),
        type: item.dataType,
        bytes: item.data.length,
        ttl: item.ttl,
      });
      // Local modules are trusted with their own items: spread at once; other
      // local subscribers are notified and their answers are only recorded.
      const notified = this.notify(item, client);
      this.validation.begin(item.id, notified);
      this.spreading.originate(item);
    }
  }

  /** Subscribes an API client to a data type. */
  private onNotify(client: ApiClient, message: NotifyMessage): void {
    this.subscriptions.add(client, message.dataType);
    this.log.debug("subscribe", { client: client.id, type: message.dataType });
  }

  /** Applies a module's VALIDATION; an unknown message ID is ill-formed. */
  private onValidation(client: ApiClient, message: ValidationMessage): void {
    const itemId = client.notificationIds.resolve(message.messageId);
    if (itemId === undefined) {
      throw new DecodeError(`VALIDATION for unknown message ID ${message.messageId}`);
    }
    this.validation.answer(itemId, client.id, message.valid);
  }

  /** Drops a closed client's subscriptions and pending answers. */
  private onClientClosed(client: ApiClient): void {
    this.subscriptions.remove(client);
    this.validation.removeSubscriber(client.id);
  }

  /** Sends NOTIFICATIONs to subscribers of the item's type; returns who got one. */
  private notify(item: GossipItem, except?: ApiClient): number[] {
    const notified: number[] = [];
    for (const client of this.subscriptions.subscribers(item.dataType)) {
      if (client === except) continue;
      const messageId = client.notificationIds.allocate(item.id);
      const sent = client.send(encodeApiMessage({
        kind: "notification",
        messageId,
        dataType: item.dataType,
        data: item.data,
      }));
      if (sent) {
        this.counters.notificationsSent++;
        notified.push(client.id);
      } else {
        client.notificationIds.resolve(messageId);
        this.counters.notificationsDropped++;
        if (this.counters.notificationsDropped % 1000 === 1) {
          this.log.warn("subscriber too slow, dropping notifications", {
            client: client.id,
            dropped: this.counters.notificationsDropped,
          });
        }
      }
    }
    return notified;
  }

  /** Hands an item from a peer to local subscribers; false when nobody subscribed. */
  private deliverRemote(item: GossipItem, from: PeerKey): boolean {
    if (!this.subscriptions.has(item.dataType)) {
      this.log.debug("item of unsubscribed type dropped", {
        item: itemIdHex(item.id),
        type: item.dataType,
        from: from.slice(0, 8),
      });
      return false;
    }
    const limit = this.options.maxPendingValidationBytes ?? 32 * 1024 * 1024;
    if (this.pendingBytes + item.data.length > limit) {
      this.counters.validationOverflow++;
      if (this.counters.validationOverflow % 1000 === 1) {
        this.log.warn("too many items awaiting validation, dropping", {
          dropped: this.counters.validationOverflow,
        });
      }
      return false;
    }
    this.knowledgeBase.add(item);
    this.pendingSizes.set(item.id, item.data.length);
    this.pendingBytes += item.data.length;
    this.validation.begin(item.id, this.notify(item));
    return true;
  }

  /** Passes a validation verdict to the spreading engine. */
  private onVerdict(id: bigint, verdict: Verdict): void {
    const size = this.pendingSizes.get(id);
    if (size !== undefined) {
      this.pendingSizes.delete(id);
      this.pendingBytes -= size;
    }
    if (this.closing) return;
    if (verdict !== "valid") {
      this.log.debug("item not propagated", { item: itemIdHex(id), verdict });
    }
    this.spreading.validated(id, verdict);
  }

  // ---- P2P side -------------------------------------------------------------

  /** Admits an inbound peer connection to the handshake, or refuses it. */
  private acceptPeer(conn: Deno.TcpConn): void {
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    const refusal = this.inboundRefusal(ip);
    if (refusal) {
      this.counters.peersRefused++;
      if (this.counters.peersRefused % 100 === 1) {
        this.log.warn("refusing peer connection", {
          ip,
          reason: refusal,
          refused: this.counters.peersRefused,
        });
      }
      conn.close();
      return;
    }
    this.trackHandshake(conn, PeerSession.establish(conn, "inbound", this.sessionOptions));
  }

  /** Why an inbound connection from `ip` must be refused, or undefined to accept it. */
  private inboundRefusal(ip: string): string | undefined {
    const now = performance.now();
    if (this.bans.isBanned(ip, now)) return "banned address";
    if (isLoopbackHostname(ip) && !this.security.limitLoopback) return undefined;
    if (!this.connectionLimiter.take(ip, now)) return "connection rate";
    const range = addressRange(ip);
    let inRange = 0;
    for (const conn of this.handshakeConns) {
      if (addressRange((conn.remoteAddr as Deno.NetAddr).hostname) === range) inRange++;
    }
    for (const session of this.sessions.values()) {
      if (session.direction === "inbound" && addressRange(session.remoteIp) === range) inRange++;
    }
    return inRange >= this.security.maxInboundPerRange
      ? "too many peers from one range"
      : undefined;
  }

  /** Bans a misbehaving peer (identity, and its address unless loopback) and drops it. */
  private banPeer(session: PeerSession, reason: string): void {
    const now = performance.now();
    // Already banned: its session is closing; do not count, log or say GOODBYE again.
    if (this.bans.isBanned(session.identityHex, now)) return;
    this.counters.peersBanned++;
    this.bans.ban(session.identityHex, now, this.security.banDurationMs);
    const ip = session.remoteIp;
    if (!isLoopbackHostname(ip) || this.security.limitLoopback) {
      this.bans.ban(ip, now, this.security.banDurationMs);
    }
    this.log.warn("banning peer", { peer: session.identityHex.slice(0, 8), ip, reason });
    void session.close(`banned: ${reason}`, GoodbyeReason.Banned);
  }

  /** Counts an invalid item against its sender; bans repeat offenders. */
  private onInvalidItem(peer: PeerKey): void {
    if (!this.invalidStrikes.strike(peer, performance.now())) return;
    this.invalidStrikes.clear(peer);
    const session = this.sessions.get(peer);
    if (session) this.banPeer(session, "repeated invalid items");
    else this.bans.ban(peer, performance.now(), this.security.banDurationMs);
  }

  /** Runs an inbound handshake, tracked so that close() can wait for it. */
  private trackHandshake(conn: Deno.TcpConn, handshake: Promise<PeerSession>): void {
    this.handshakeConns.add(conn);
    const tracked = handshake.then(
      (session) => this.onEstablished(session),
      (error) => {
        this.counters.handshakeFailures++;
        this.log.debug("handshake failed", { error: String(error?.message ?? error) });
      },
    ).finally(() => {
      this.handshakeConns.delete(conn);
      this.handshakes.delete(tracked);
    });
    this.handshakes.add(tracked);
  }

  /** Dials known peers until `degree` outbound connections exist or are pending. */
  private dialMore(): void {
    if (this.closing) return;
    for (const peer of this.membership.nextDials(performance.now())) this.dial(peer);
  }

  /** Connects to a known peer and runs the outbound handshake. */
  private dial(peer: KnownPeer): void {
    const attempt = (async () => {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({
          hostname: peer.address.hostname,
          port: peer.address.port,
          transport: "tcp",
        });
      } catch (error) {
        this.membership.dialFinished(peer.addressKey, false, performance.now());
        this.log.debug("dial failed", { peer: peer.addressKey, error: String(error) });
        return;
      }
      if (this.closing) {
        conn.close();
        return;
      }
      conn.setNoDelay(true);
      this.handshakeConns.add(conn);
      let ok = false;
      let identity: string | undefined;
      try {
        const session = await PeerSession.establish(conn, "outbound", this.sessionOptions);
        identity = session.identityHex;
        ok = this.onEstablished(session);
      } catch (error) {
        this.counters.handshakeFailures++;
        this.log.debug("outbound handshake failed", {
          peer: peer.addressKey,
          error: error instanceof Error ? error.message : String(error),
        });
      } finally {
        this.handshakeConns.delete(conn);
        this.membership.dialFinished(peer.addressKey, ok, performance.now(), identity);
      }
    })();
    this.handshakes.add(attempt);
    attempt.finally(() => this.handshakes.delete(attempt));
  }

  /** Registers an authenticated session; returns false when it was refused. */
  private onEstablished(session: PeerSession): boolean {
    if (this.closing) {
      void session.close("shutting down", GoodbyeReason.Shutdown);
      return false;
    }
    const key = session.identityHex;
    if (this.bans.isBanned(key, performance.now())) {
      this.counters.peersRefused++;
      void session.close("banned identity", GoodbyeReason.Banned);
      return false;
    }
    const existing = this.sessions.get(key);
    if (existing) {
      // Simultaneous dials: keep the connection opened by the smaller identity.
      const initiator = session.direction === "outbound" ? this.identityHex : key;
      const preferred = this.identityHex < key ? this.identityHex : key;
      if (initiator !== preferred) {
        void session.close("duplicate connection", GoodbyeReason.Duplicate);
        return false;
      }
      this.sessions.delete(key);
      this.membership.disconnected(key, performance.now());
      void existing.close("replaced by preferred duplicate", GoodbyeReason.Duplicate);
    }
    if (session.direction === "inbound") {
      let inbound = 0;
      for (const s of this.sessions.values()) if (s.direction === "inbound") inbound++;
      // Inbound peers beyond twice the degree are referred elsewhere, so that the
      // nodes everyone bootstrapped through do not become hubs.
      const limit = Math.min(this.config.maxPeerConnections, 2 * this.config.degree);
      if (inbound >= limit) {
        // Full: refer the newcomer to other peers, then say goodbye.
        session.attach({ onMessage: () => {}, onClose: () => {} });
        session.send({
          type: PeerMessageType.Peers,
          peers: this.descriptors(this.membership.sample(EXCHANGE_SIZE, key)),
        });
        void session.close("peer limit reached", GoodbyeReason.Full);
        return false;
      }
    }
    this.sessions.set(key, session);
    this.frameBuckets.set(
      session,
      new TokenBucket(this.security.framesPerSecond, this.security.frameBurst, performance.now()),
    );
    this.membership.connected({
      identity: key,
      address: session.listenAddress,
      direction: session.direction,
    });
    this.log.info("peer connected", {
      peer: key.slice(0, 8),
      address: formatSocketAddress(session.listenAddress),
      direction: session.direction,
      peers: this.sessions.size,
    });
    // Pull before attaching: a referral may already be waiting among the early messages.
    if (session.direction === "outbound") this.pull(session);
    session.attach({
      onMessage: (s, message) => this.onPeerMessage(s, message),
      onClose: (s, reason) => this.onPeerClosed(s, reason),
    });
    return true;
  }

  /** Forgets a closed session and dials a replacement. */
  private onPeerClosed(session: PeerSession, reason: string): void {
    const key = session.identityHex;
    this.frameBuckets.delete(session);
    if (this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    this.pullsOutstanding.delete(key);
    this.pendingHave.delete(key);
    this.pendingWant.delete(key);
    if (this.closing) return;
    this.membership.disconnected(key, performance.now());
    if (session.goodbyeReason === GoodbyeReason.Full) {
      // It referred us elsewhere: do not come back soon.
      this.membership.dialFinished(
        formatSocketAddress(session.listenAddress),
        false,
        performance.now(),
      );
    }
    this.log.info("peer disconnected", {
      peer: key.slice(0, 8),
      reason,
      peers: this.sessions.size,
    });
    this.dialMore();
  }

  /** Asks a peer for peer descriptors and remembers that an answer is due. */
  private pull(session: PeerSession): void {
    this.pullsOutstanding.add(session.identityHex);
    session.send({ type: PeerMessageType.PullRequest, max: EXCHANGE_SIZE });
  }

  /** Dispatches an authenticated peer message. */
  private onPeerMessage(session: PeerSession, message: PeerMessage): void {
    const key = session.identityHex;
    const now = performance.now();
    // A banned peer's session is being closed: ignore whatever it still sends.
    if (this.bans.isBanned(key, now)) return;
    if (!this.frameBuckets.get(session)?.take(now)) {
      this.banPeer(session, "frame flood");
      return;
    }
    switch (message.type) {
      case PeerMessageType.Ping:
        session.send({ type: PeerMessageType.Pong, nonce: message.nonce });
        return;
      case PeerMessageType.Pong:
        return;
      case PeerMessageType.PullRequest:
        session.send({
          type: PeerMessageType.Peers,
          peers: this.descriptors(this.membership.sample(message.max, key)),
        });
        return;
      case PeerMessageType.Peers:
      case PeerMessageType.Push: {
        // Brahms-style limits: PEERS only in answer to our pull, one PUSH per peer
        // per round, and a bounded number of new descriptors per round overall.
        const solicited = message.type === PeerMessageType.Peers
          ? this.pullsOutstanding.delete(key)
          : !this.pushedThisRound.has(key);
        if (!solicited || this.learnedThisRound >= this.security.maxLearnPerRound) {
          this.counters.offersIgnored++;
          return;
        }
        if (message.type === PeerMessageType.Push) this.pushedThisRound.add(key);
        this.learnedThisRound += this.membership.learn(
          message.peers.map((p) => ({ identity: identityHex(p.identity), address: p.address })),
          performance.now(),
        );
        this.dialMore();
        return;
      }
      case PeerMessageType.Item:
        this.spreading.receiveItem(key, {
          id: message.id,
          ttl: message.ttl,
          hops: message.hops,
          dataType: message.dataType,
          data: message.data,
        });
        return;
      case PeerMessageType.IHave:
        this.spreading.receiveHave(key, message.ids);
        return;
      case PeerMessageType.IWant:
        this.spreading.receiveWant(key, message.ids);
        return;
      default:
        throw new ProtocolError(`unexpected message type ${message.type} after handshake`);
    }
  }

  /** Converts known peers to wire descriptors. */
  private descriptors(
    peers: { identity: string; address: SocketAddress }[],
  ): PeerDescriptor[] {
    return peers.slice(0, MAX_DESCRIPTORS).map((p) => ({
      identity: hexToBytes(p.identity),
      address: p.address,
    }));
  }

  /** Pushes an item to a connected peer. */
  private sendItem(peer: PeerKey, item: GossipItem): void {
    this.sessions.get(peer)?.send({
      type: PeerMessageType.Item,
      id: item.id,
      ttl: item.ttl,
      hops: item.hops ?? 1,
      dataType: item.dataType,
      data: item.data,
    });
  }

  /** Queues an item ID for a batched IHAVE or IWANT to `peer`. */
  private queueIds(queue: Map<PeerKey, bigint[]>, peer: PeerKey, id: bigint): void {
    let ids = queue.get(peer);
    if (!ids) queue.set(peer, ids = []);
    ids.push(id);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushIds());
    }
  }

  /** Sends the batched IHAVE and IWANT messages. */
  private flushIds(): void {
    this.flushScheduled = false;
    for (
      const [queue, type] of [
        [this.pendingWant, PeerMessageType.IWant],
        [this.pendingHave, PeerMessageType.IHave],
      ] as const
    ) {
      for (const [peer, ids] of queue) {
        const session = this.sessions.get(peer);
        for (let i = 0; session && i < ids.length; i += MAX_ITEM_IDS) {
          session.send({ type, ids: ids.slice(i, i + MAX_ITEM_IDS) });
        }
      }
      queue.clear();
    }
  }

  /** Loads the peers file, if configured; a missing or damaged file is not fatal. */
  private async restorePeers(): Promise<void> {
    const path = this.config.peersFile;
    if (!path) return;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        this.log.warn("cannot read peers file", { path, error: String(error) });
      }
      return;
    }
    try {
      const parsed = JSON.parse(text) as { peers?: { identity?: unknown; address?: unknown }[] };
      const peers = (parsed.peers ?? []).flatMap((entry) =>
        typeof entry.identity === "string" && /^[0-9a-f]{64}$/.test(entry.identity) &&
          typeof entry.address === "string"
          ? [{
            identity: entry.identity,
            address: parseSocketAddress(entry.address, "peers_file"),
          }]
          : []
      );
      const added = this.membership.restore(peers, performance.now());
      this.log.info("restored peers", { path, peers: added });
    } catch (error) {
      this.log.warn("ignoring damaged peers file", { path, error: String(error) });
    }
  }

  /** Writes the known peers to the peers file atomically (temp file + rename). */
  private async savePeers(): Promise<void> {
    const path = this.config.peersFile;
    if (!path || !this.membership) return;
    const peers = this.membership.knownPeers().slice(0, 1000).map((peer) => ({
      identity: peer.identity,
      address: formatSocketAddress(peer.address),
    }));
    if (peers.length === 0) return;
    const temp = `${path}.tmp`;
    try {
      await Deno.writeTextFile(temp, JSON.stringify({ version: 1, peers }, null, 1) + "\n");
      await Deno.rename(temp, path);
    } catch (error) {
      this.log.warn("cannot write peers file", { path, error: String(error) });
    }
  }

  /** Solves the next day's proof-of-work in slices, without stalling the node. */
  private renewProofOfWork(): void {
    const epoch = powEpoch(this.wallClock());
    if (this.renewal || this.proof.epoch === epoch || this.config.powDifficulty <= 0) return;
    this.renewal = solveProofOfWorkInSlices(
      this.options.hostKey.identity,
      epoch,
      this.config.powDifficulty,
      { signal: this.renewalAbort.signal },
    ).then((nonce) => {
      this.proof = { epoch, nonce };
      this.log.info("renewed proof-of-work", { epoch });
    }, (error) => {
      if (!this.closing) this.log.warn("proof-of-work renewal failed", { error: String(error) });
    }).finally(() => this.renewal = undefined);
  }

  /** Periodic work: sweep, reconnect, peer exchange, keepalive, peers file, proof renewal. */
  private maintain(): void {
    if (this.closing) return;
    this.renewProofOfWork();
    const now = performance.now();
    if (this.config.peersFile && now - this.lastSave >= PEERS_SAVE_INTERVAL_MS) {
      this.lastSave = now;
      this.saving = this.saving.then(() => this.savePeers());
    }
    this.spreading.sweep();
    this.pushedThisRound.clear();
    this.learnedThisRound = 0;
    this.dialMore();
    const partner = this.membership.exchangePartner();
    if (partner) {
      const session = this.sessions.get(partner.identity);
      if (session) this.pull(session);
      const offer = this.membership.sample(EXCHANGE_SIZE / 2, partner.identity);
      offer.push({ identity: this.identityHex, address: this.advertised! });
      session?.send({ type: PeerMessageType.Push, peers: this.descriptors(offer) });
    }
    if (now - this.lastPing >= this.config.peerIdleTimeoutMs / 3) {
      this.lastPing = now;
      for (const session of this.sessions.values()) {
        session.send({ type: PeerMessageType.Ping, nonce: BigInt(Math.floor(now)) });
      }
    }
  }
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
