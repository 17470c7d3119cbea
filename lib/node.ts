/**
 * The gossip node: the I/O shell around a {@link NodeCore}.
 *
 * It binds the API, P2P and status ports, runs handshakes, carries the core's
 * actions out on sockets (send, close, dial, NOTIFICATION, peers file) and
 * feeds the core the events the sockets produce, with the platform clock. All
 * decisions live in the core. A node is a library object: `start()` binds,
 * `close()` releases everything, and many nodes run in one process.
 *
 * @module
 */

import { formatSocketAddress, type SocketAddress } from "./address.ts";
import { encodeApiMessage } from "./codec/api_messages.ts";
import { HelloFlags, type PeerMessage, PeerMessageType } from "./codec/peer_messages.ts";
import { type GossipOptions, gossipOptions } from "./config.ts";
import {
  type CoreActions,
  type CoreStats,
  type DialPurpose,
  NodeCore,
  type PersistentState,
} from "./core/node_core.ts";
import type { SecurityOptions } from "./core/peer_guard.ts";
import type { CoreTuning } from "./core/tuning.ts";
import { ListenError } from "./errors.ts";
import { type HostKey, identityHex, shortId } from "./hostkey.ts";
import { type Logger, silentLogger } from "./log.ts";
import {
  type PeersFileContents,
  readPeersFile,
  type SavedProof,
  writePeersFile,
} from "./peers_file.ts";
import { ProofKeeper } from "./proof_keeper.ts";
import { type ProofOfWork, verifyProofOfWork } from "./protocol/proof_of_work.ts";
import type { RandomSource } from "./protocol/random.ts";
import { realScheduler } from "./protocol/scheduler.ts";
import { ApiServer } from "./transport/api_server.ts";
import { PeerConnector } from "./transport/peer_connector.ts";
import type { PeerSession } from "./transport/peer_session.ts";
import { metricsFromStats, type NodeMetrics, type PeerStatus } from "./transport/metrics.ts";
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
  /** A solved proof-of-work for `hostKey`; used when it is for the current day. */
  readonly proofOfWork?: ProofOfWork;
  /** Randomness of peer choices (seeded in tests). */
  readonly random?: RandomSource;
  /** Limits against hostile peers. */
  readonly security?: Partial<SecurityOptions>;
  /** Internal limits and timings of the core. */
  readonly tuning?: Partial<CoreTuning>;
  /** Send queue limit per API client in bytes (default 8 MiB). */
  readonly maxApiQueueBytes?: number;
  /** Send queue limit of all API clients together in bytes (default 64 MiB). */
  readonly maxApiTotalQueueBytes?: number;
  /** Send queue limit per peer in bytes (default 4 MiB). */
  readonly maxPeerQueueBytes?: number;
  /** A started API message must be complete within this time (default 10 s). */
  readonly apiPartialMessageTimeoutMs?: number;
  /** A new API client must send its first message within this time (default 30 s). */
  readonly apiFirstMessageTimeoutMs?: number;
  /** Wall clock in ms since the Unix epoch, for proof-of-work days (tests move it). */
  readonly wallClock?: () => number;
}

/** Counters and state of a node, for tests, benchmarks and the status endpoint. */
export interface NodeStats extends CoreStats {
  /** Hex identity. */
  readonly identity: string;
  /** Bound API address. */
  readonly apiAddress: string;
  /** Bound P2P address. */
  readonly p2pAddress: string;
  /** The day (epoch) of this node's identity proof-of-work. */
  readonly powEpoch: number;
  /** Connected peers. */
  readonly peers: readonly PeerStatus[];
  /** Failed handshakes, all reasons. */
  readonly handshakeFailureCount: number;
  /** Inbound connections and sessions refused, all reasons. */
  readonly peersRefused: number;
  /** Peer messages dropped because a peer's send queue was full. */
  readonly peerMessagesDropped: number;
  /** Bytes received from peers (current and past sessions). */
  readonly bytesIn: number;
  /** Bytes sent to peers (current and past sessions). */
  readonly bytesOut: number;
  /**
   * Socket reads from peers that returned bytes (current and past sessions):
   * each is a wake-up of the process for peer input, however many frames it held.
   */
  readonly peerReads: number;
  /** Socket writes to peers (current and past sessions). */
  readonly peerWrites: number;
  /** Size of every table kept per peer, connection, identity, address and item. */
  readonly structures: Record<string, number>;
  /** The process's memory (the V8 heap and what lies outside it). */
  readonly memory: Deno.MemoryUsage;
}

/** Settings {@link GossipNode.reconfigure} can change while the node runs. */
export type ReconfigurableOptions = Pick<
  GossipOptions,
  "validationTimeoutMs" | "maxApiConnections" | "maxPeerConnections"
>;

const DEFAULT_API_PARTIAL_MESSAGE_TIMEOUT_MS = 10_000;
const DEFAULT_API_FIRST_MESSAGE_TIMEOUT_MS = 30_000;
/** HELLO's flags for each reason the core dials. */
const HELLO_FLAGS: Readonly<Record<DialPurpose, number>> = {
  member: 0,
  deliver: HelloFlags.Deliver,
  feel: HelloFlags.Feel,
};

/** One gossip peer. */
export class GossipNode {
  /** This node's hex identity. */
  readonly identityHex: string;
  private readonly log: Logger;
  private readonly config: GossipOptions;
  private readonly apiServer: ApiServer;
  private readonly connector: PeerConnector;
  private statusServer: StatusServer | undefined;
  /** Set by start(): the core needs the bound address. */
  private core: NodeCore | undefined;
  private proof: ProofKeeper | undefined;
  private readonly sessions = new Map<string, PeerSession>();
  /** Limits {@link reconfigure} changes while running. */
  private readonly limits: { -readonly [K in keyof ReconfigurableOptions]: number };
  private closedBytes = { in: 0, out: 0, dropped: 0, reads: 0, writes: 0 };
  private saving: Promise<void> = Promise.resolve();
  private started = false;
  private closing = false;

  /** Creates a node; nothing is bound until {@link start}. */
  constructor(private readonly options: GossipNodeOptions) {
    this.config = options.config;
    this.limits = {
      validationTimeoutMs: this.config.validationTimeoutMs,
      maxApiConnections: this.config.maxApiConnections,
      maxPeerConnections: this.config.maxPeerConnections,
    };
    this.log = options.log ?? silentLogger;
    this.identityHex = identityHex(options.hostKey.identity);
    this.apiServer = new ApiServer({
      address: this.config.apiAddress,
      maxConnections: this.config.maxApiConnections,
      maxQueuedBytes: options.maxApiQueueBytes ?? 8 * 1024 * 1024,
      maxTotalQueuedBytes: options.maxApiTotalQueueBytes ?? 64 * 1024 * 1024,
      partialFrameTimeoutMs: options.apiPartialMessageTimeoutMs ??
        DEFAULT_API_PARTIAL_MESSAGE_TIMEOUT_MS,
      firstMessageTimeoutMs: options.apiFirstMessageTimeoutMs ??
        DEFAULT_API_FIRST_MESSAGE_TIMEOUT_MS,
      log: this.log.child("api"),
      handler: {
        onClientOpened: (client) => this.core?.clientOpened(client),
        onMessage: (client, message) => this.core?.clientMessage(client, message),
        onClientClosed: (client) => this.core?.clientClosed(client),
      },
    });
    this.connector = new PeerConnector({
      address: this.config.p2pAddress,
      maxConnections: () => this.limits.maxPeerConnections * 2,
      openSessions: () => this.sessions.size,
      log: this.log.child("p2p"),
      handler: {
        admit: (id, ip) => !this.closing && this.requireCore().connectionOpened(id, ip),
        identify: (id, identity, ip) => this.core?.mayAuthenticate(id, identity, ip) ?? false,
        ended: (id) => this.core?.connectionEnded(id),
        session: (session, dialed) => this.onSession(session, dialed),
        handshakeFailed: (reason, message) => {
          this.core?.handshakeFailed(reason);
          this.log.debug("handshake failed", { reason, error: message });
        },
      },
    });
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
    const { hostname, port } = this.connector.addr;
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

  /** Binds the ports, starts the core and joins the network. */
  async start(): Promise<void> {
    if (this.started) throw new Error("node already started");
    this.started = true;
    const wallClock = () => this.options.wallClock?.() ?? Date.now();
    const restored = this.config.peersFile
      ? await readPeersFile(this.config.peersFile, this.log)
      : undefined;
    const proof = this.proof = new ProofKeeper(
      this.options.hostKey.identity,
      this.config.powDifficulty,
      wallClock,
      this.log,
      this.options.proofOfWork ?? this.savedProof(restored?.proof),
    );
    try {
      this.apiServer.listen();
    } catch (error) {
      throw ListenError.from("api_address", formatSocketAddress(this.config.apiAddress), error);
    }
    try {
      try {
        this.connector.listen();
      } catch (error) {
        throw ListenError.from("p2p_address", formatSocketAddress(this.config.p2pAddress), error);
      }
      if (this.config.statusAddress) {
        this.statusServer = new StatusServer(
          this.config.statusAddress,
          () => this.stats(),
          this.log.child("status"),
          () => this.metrics(),
        );
        this.statusServer.listen();
      }
    } catch (error) {
      await Promise.all([this.apiServer.close(), this.connector.close()]);
      throw error;
    }
    // A wildcard or port-0 p2p_address is advertised with the bound port.
    const advertised = { hostname: this.config.p2pAddress.hostname, port: this.p2pAddress.port };
    this.connector.configure({
      hostKey: this.options.hostKey,
      proofOfWork: () => proof.current,
      powDifficulty: this.config.powDifficulty,
      listenAddress: advertised,
      handshakeTimeoutMs: this.config.handshakeTimeoutMs,
      idleTimeoutMs: this.config.peerIdleTimeoutMs,
      maxQueuedBytes: this.options.maxPeerQueueBytes ?? 4 * 1024 * 1024,
      minPeerKeyBits: this.options.minPeerKeyBits ?? 2048,
      log: this.log.child("p2p"),
    });
    this.core = new NodeCore({
      selfIdentity: this.identityHex,
      selfAddress: advertised,
      config: {
        ...this.config,
        persist: this.config.peersFile !== undefined,
      },
      security: this.options.security,
      tuning: this.options.tuning,
      scheduler: realScheduler,
      random: this.options.random,
      wallClock,
      log: this.log,
    }, this.actions());
    this.core.start(restored);
    proof.start(this.config.membershipIntervalMs);
    this.log.info("node started", {
      identity: this.shortId,
      api: formatSocketAddress(this.apiAddress),
      p2p: formatSocketAddress(this.p2pAddress),
    });
  }

  /** Says goodbye to every peer, closes every socket; resolves when all are released. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.proof?.stop();
    if (!this.started) return;
    const state = this.core?.persistentState();
    this.core?.stop();
    await this.saving;
    if (state && this.config.peersFile) {
      await writePeersFile(this.config.peersFile, this.withProof(state), this.log);
    }
    await Promise.all([
      this.statusServer?.close(),
      this.apiServer.close(),
      ...[...this.sessions.values()].map((s) => s.close("shutdown")),
    ]);
    await this.connector.close();
    this.log.info("node stopped", { identity: this.shortId });
  }

  /**
   * Applies settings that can change while running (validated like the config
   * file's); the rest needs a restart.
   *
   * @throws {ConfigError} naming the key of an invalid value.
   */
  reconfigure(changes: Partial<ReconfigurableOptions>): void {
    const checked = gossipOptions({ ...this.config, ...this.limits, ...changes });
    this.limits.validationTimeoutMs = checked.validationTimeoutMs;
    this.limits.maxApiConnections = checked.maxApiConnections;
    this.limits.maxPeerConnections = checked.maxPeerConnections;
    this.apiServer.setMaxConnections(checked.maxApiConnections);
    this.core?.reconfigure({
      validationTimeoutMs: checked.validationTimeoutMs,
      maxPeerConnections: checked.maxPeerConnections,
    });
    this.log.info("limits changed", { ...this.limits });
  }

  /** Counters and views. */
  stats(): NodeStats {
    const core = this.requireCore();
    const scores = new Map(core.peers().map((peer) => [peer.identity, peer]));
    let bytesIn = this.closedBytes.in;
    let bytesOut = this.closedBytes.out;
    let dropped = this.closedBytes.dropped;
    let peerReads = this.closedBytes.reads;
    let peerWrites = this.closedBytes.writes;
    const peers: PeerStatus[] = [];
    for (const [identity, session] of this.sessions) {
      bytesIn += session.bytesReceived;
      bytesOut += session.bytesSent;
      dropped += session.droppedFrames;
      peerReads += session.reads;
      peerWrites += session.writes;
      const info = scores.get(identity);
      peers.push({
        identity,
        address: formatSocketAddress(session.listenAddress),
        direction: session.direction,
        ageMs: Math.round(info?.ageMs ?? 0),
        bytesIn: session.bytesReceived,
        bytesOut: session.bytesSent,
        score: info?.score ?? 0,
        ...(info?.rttMs === undefined ? {} : { rttMs: Math.round(info.rttMs * 10) / 10 }),
      });
    }
    const stats = core.stats();
    return {
      ...stats,
      identity: this.identityHex,
      apiAddress: formatSocketAddress(this.apiAddress),
      p2pAddress: formatSocketAddress(this.p2pAddress),
      powEpoch: this.proof?.current.epoch ?? 0,
      peers,
      handshakeFailureCount: sum(stats.handshakeFailures),
      peersRefused: sum(stats.guard.refused),
      peerMessagesDropped: dropped,
      bytesIn,
      bytesOut,
      peerReads,
      peerWrites,
      memory: Deno.memoryUsage(),
      structures: {
        ...core.structureSizes(),
        shellSessions: this.sessions.size,
        apiQueuedBytes: this.apiServer.queuedBytes,
        shellHandshakes: this.connector.handshaking,
        shellInFlight: this.connector.pending,
      },
    };
  }

  /** The metrics `GET /metrics` serves. */
  metrics(): NodeMetrics {
    return metricsFromStats(this.stats());
  }

  // ---- the core's actions ---------------------------------------------------------

  /** The core's actions, carried out on this node's sockets and files. */
  private actions(): CoreActions {
    return {
      sendToPeer: (peer, message) => this.sessions.get(peer)?.send(message),
      closePeer: (peer, reason, goodbye) => {
        const session = this.sessions.get(peer);
        if (!session) return;
        this.sessions.delete(peer);
        this.connector.track(session.close(reason, goodbye));
      },
      peerBacklog: (peer) => this.sessions.get(peer)?.pendingBytes ?? 0,
      dial: (address, key, purpose) =>
        this.connector.dial(address, key, () => this.core?.dialFailed(key), HELLO_FLAGS[purpose]),
      probe: (address, key) =>
        this.connector.probe(address, (identity) => this.core?.probeFinished(key, identity)),
      closeConnection: (conn) => this.connector.evict(conn),
      notifyClient: (client, messageId, item) =>
        this.apiServer.sendEncoded(client, 8 + item.data.length, () =>
          encodeApiMessage({
            kind: "notification",
            messageId,
            dataType: item.dataType,
            data: item.data,
          })),
      closeClient: (client, reason) => this.apiServer.closeClient(client, reason),
      persist: (state) => {
        const path = this.config.peersFile;
        if (path) {
          this.saving = this.saving.then(() =>
            writePeersFile(path, this.withProof(state), this.log)
          );
        }
      },
    };
  }

  /**
   * A proof-of-work from the peers file when it is this identity's and holds
   * at this node's difficulty (ProofKeeper then uses it if it is for today).
   */
  private savedProof(saved: SavedProof | undefined): ProofOfWork | undefined {
    if (saved === undefined || saved.identity !== this.identityHex) return undefined;
    const { identity } = this.options.hostKey;
    if (!verifyProofOfWork(identity, saved.epoch, saved.nonce, this.config.powDifficulty)) {
      this.log.info("ignoring the saved proof-of-work: it does not hold at pow_difficulty");
      return undefined;
    }
    return { epoch: saved.epoch, nonce: saved.nonce };
  }

  /** `state` with this node's current proof-of-work, for the peers file. */
  private withProof(state: PersistentState): PeersFileContents {
    const current = this.proof?.current;
    if (current === undefined || this.config.powDifficulty <= 0) return state;
    return { ...state, proof: { identity: this.identityHex, ...current } };
  }

  // ---- peer sessions ----------------------------------------------------------------

  /** Hands an authenticated session to the core; registers it, or refuses it. */
  private onSession(session: PeerSession, dialed?: string): void {
    const core = this.requireCore();
    const peer = session.identityHex;
    const decision = this.closing ? undefined : core.sessionOpened({
      peer,
      direction: session.direction,
      address: session.listenAddress,
      ip: session.remoteIp,
      dialed,
      deliver: session.wantsDelivery,
      feel: session.isFeeler,
    });
    if (!decision?.accept) {
      session.attach({ onMessage: () => {}, onClose: () => {} });
      if (decision?.referral) {
        session.send({ type: PeerMessageType.Peers, peers: decision.referral, marked: true });
      }
      void session.close(decision?.reason ?? "shutting down", decision?.goodbye);
      return;
    }
    this.sessions.set(peer, session);
    session.attach({
      onMessage: (_s, message: PeerMessage) => core.peerMessage(peer, message),
      onClose: (closed, reason) => {
        this.closedBytes.in += closed.bytesReceived;
        this.closedBytes.out += closed.bytesSent;
        this.closedBytes.dropped += closed.droppedFrames;
        this.closedBytes.reads += closed.reads;
        this.closedBytes.writes += closed.writes;
        if (this.sessions.get(peer) !== closed) return;
        this.sessions.delete(peer);
        core.sessionClosed(peer, closed.goodbyeReason, reason);
      },
    });
  }

  /** The core, which exists once the node has started. */
  private requireCore(): NodeCore {
    if (!this.core) throw new Error("node is not started");
    return this.core;
  }
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export type { PersistentState };
