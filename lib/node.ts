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
import { GoodbyeReason, type PeerMessage, PeerMessageType } from "./codec/peer_messages.ts";
import type { GossipOptions } from "./config.ts";
import {
  type CoreActions,
  type CoreStats,
  NodeCore,
  type PersistentState,
} from "./core/node_core.ts";
import type { SecurityOptions } from "./core/peer_guard.ts";
import type { CoreTuning } from "./core/tuning.ts";
import { type HostKey, identityHex, shortId } from "./hostkey.ts";
import { type Logger, silentLogger } from "./log.ts";
import { readPeersFile, writePeersFile } from "./peers_file.ts";
import {
  powEpoch,
  type ProofOfWork,
  solveProofOfWork,
  solveProofOfWorkInSlices,
} from "./protocol/proof_of_work.ts";
import type { RandomSource } from "./protocol/random.ts";
import { realScheduler } from "./protocol/scheduler.ts";
import { ApiServer } from "./transport/api_server.ts";
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
  /** Bytes received and sent on current and past peer sessions. */
  readonly bytes: { readonly in: number; readonly out: number };
  /** Size of every table kept per peer, connection, identity, address and item. */
  readonly structures: Record<string, number>;
}

/** One connected peer as the status endpoint shows it. */
export interface PeerStatus {
  /** Hex identity. */
  readonly identity: string;
  /** Advertised address. */
  readonly address: string;
  /** Who opened the session. */
  readonly direction: string;
  /** Session age in seconds. */
  readonly ageSeconds: number;
  /** Bytes received on the session. */
  readonly bytesIn: number;
  /** Bytes sent on the session. */
  readonly bytesOut: number;
  /** The peer's score. */
  readonly score: number;
}

const DEFAULT_API_PARTIAL_MESSAGE_TIMEOUT_MS = 10_000;
const DEFAULT_API_FIRST_MESSAGE_TIMEOUT_MS = 30_000;

/** One gossip peer. */
export class GossipNode {
  /** This node's hex identity. */
  readonly identityHex: string;
  private readonly log: Logger;
  private readonly config: GossipOptions;
  private readonly apiServer: ApiServer;
  private readonly p2pListener: TcpListener;
  private statusServer: StatusServer | undefined;
  /** Set by start(): the core needs the bound address. */
  private core: NodeCore | undefined;
  private sessionOptions: PeerSessionOptions | undefined;
  private readonly sessions = new Map<string, PeerSession>();
  private readonly handshakes = new Map<number, Deno.TcpConn>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private nextConnection = 1;
  private closedBytes = { in: 0, out: 0, dropped: 0 };
  private proof: ProofOfWork = { epoch: 0, nonce: 0n };
  private renewal: Promise<void> | undefined;
  private readonly renewalAbort = new AbortController();
  private powTimer: ReturnType<typeof setInterval> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private started = false;
  private closing = false;

  /** Creates a node; nothing is bound until {@link start}. */
  constructor(private readonly options: GossipNodeOptions) {
    this.config = options.config;
    this.log = options.log ?? silentLogger;
    this.identityHex = identityHex(options.hostKey.identity);
    this.apiServer = new ApiServer({
      address: this.config.apiAddress,
      maxConnections: this.config.maxApiConnections,
      maxQueuedBytes: options.maxApiQueueBytes ?? 8 * 1024 * 1024,
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
    this.p2pListener = new TcpListener({
      address: this.config.p2pAddress,
      maxConnections: () => this.config.maxPeerConnections * 2,
      log: this.log.child("p2p"),
      openConnections: () => this.sessions.size + this.handshakes.size,
      onConnection: (conn) => this.acceptPeer(conn),
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

  /** Binds the ports, starts the core and joins the network. */
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
      if (this.config.statusAddress) {
        this.statusServer = new StatusServer(
          this.config.statusAddress,
          () => this.stats(),
          this.log.child("status"),
        );
        this.statusServer.listen();
      }
    } catch (error) {
      await Promise.all([this.apiServer.close(), this.p2pListener.close()]);
      throw error;
    }
    // A wildcard or port-0 p2p_address is advertised with the bound port.
    const advertised = { hostname: this.config.p2pAddress.hostname, port: this.p2pAddress.port };
    this.sessionOptions = {
      hostKey: this.options.hostKey,
      proofOfWork: () => this.proof,
      powDifficulty: this.config.powDifficulty,
      listenAddress: advertised,
      handshakeTimeoutMs: this.config.handshakeTimeoutMs,
      idleTimeoutMs: this.config.peerIdleTimeoutMs,
      maxQueuedBytes: this.options.maxPeerQueueBytes ?? 4 * 1024 * 1024,
      minPeerKeyBits: this.options.minPeerKeyBits ?? 2048,
      log: this.log.child("p2p"),
    };
    this.core = new NodeCore({
      selfIdentity: this.identityHex,
      selfAddress: advertised,
      config: {
        ...this.config,
        bootstrappers: this.config.bootstrapper ? [this.config.bootstrapper] : [],
        persist: this.config.peersFile !== undefined,
      },
      security: this.options.security,
      tuning: this.options.tuning,
      scheduler: realScheduler,
      random: this.options.random,
      wallClock: () => this.wallClock(),
      log: this.log,
    }, this.actions());
    const restored = this.config.peersFile
      ? await readPeersFile(this.config.peersFile, this.log)
      : undefined;
    this.core.start(restored);
    this.powTimer = setInterval(() => this.renewProofOfWork(), this.config.membershipIntervalMs);
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
    clearInterval(this.powTimer);
    this.renewalAbort.abort();
    await this.renewal;
    if (!this.started) return;
    const state = this.core?.persistentState();
    this.core?.stop();
    await this.saving;
    if (state && this.config.peersFile) {
      await writePeersFile(this.config.peersFile, state, this.log);
    }
    await Promise.all([this.p2pListener.close(), this.statusServer?.close()]);
    for (const conn of this.handshakes.values()) closeQuietly(conn);
    await Promise.allSettled([
      ...[...this.sessions.values()].map((s) => s.close("shutdown")),
      this.apiServer.close(),
    ]);
    // Dials and handshakes still in flight settle once their sockets are closed.
    for (let round = 0; round < 100 && this.inFlight.size > 0; round++) {
      await Promise.allSettled([...this.inFlight]);
    }
    this.log.info("node stopped", { identity: this.shortId });
  }

  /** Applies settings that can change while running (the rest needs a restart). */
  reconfigure(changes: {
    validationTimeoutMs?: number;
    maxApiConnections?: number;
    security?: Partial<SecurityOptions>;
  }): void {
    if (changes.maxApiConnections !== undefined) {
      this.apiServer.setMaxConnections(changes.maxApiConnections);
    }
    this.core?.reconfigure(changes);
  }

  /** Counters and views. */
  stats(): NodeStats {
    const core = this.requireCore();
    const scores = new Map(core.peers().map((peer) => [peer.identity, peer]));
    let bytesIn = this.closedBytes.in;
    let bytesOut = this.closedBytes.out;
    let dropped = this.closedBytes.dropped;
    const peers: PeerStatus[] = [];
    for (const [identity, session] of this.sessions) {
      bytesIn += session.bytesIn;
      bytesOut += session.bytesOut;
      dropped += session.droppedFrames;
      const info = scores.get(identity);
      peers.push({
        identity,
        address: formatSocketAddress(session.listenAddress),
        direction: session.direction,
        ageSeconds: Math.round((info?.ageMs ?? 0) / 100) / 10,
        bytesIn: session.bytesIn,
        bytesOut: session.bytesOut,
        score: info?.score ?? 0,
      });
    }
    const stats = core.stats();
    return {
      ...stats,
      identity: this.identityHex,
      apiAddress: formatSocketAddress(this.apiAddress),
      p2pAddress: formatSocketAddress(this.p2pAddress),
      powEpoch: this.proof.epoch,
      peers,
      handshakeFailureCount: sum(stats.handshakeFailures),
      peersRefused: sum(stats.guard.refused),
      peerMessagesDropped: dropped,
      bytes: { in: bytesIn, out: bytesOut },
      structures: {
        ...core.structureSizes(),
        shellSessions: this.sessions.size,
        shellHandshakes: this.handshakes.size,
        shellInFlight: this.inFlight.size,
      },
    };
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
        this.track(session.close(reason, goodbye));
      },
      peerBacklog: (peer) => this.sessions.get(peer)?.pendingBytes ?? 0,
      dial: (address, key) => this.dial(address, key),
      probe: (address, key) => this.probe(address, key),
      closeConnection: (conn) => {
        const socket = this.handshakes.get(conn);
        if (socket) closeQuietly(socket);
      },
      notifyClient: (client, messageId, item) =>
        this.apiServer.send(
          client,
          encodeApiMessage({
            kind: "notification",
            messageId,
            dataType: item.dataType,
            data: item.data,
          }),
        ),
      closeClient: (client, reason) => this.apiServer.closeClient(client, reason),
      persist: (state) => {
        const path = this.config.peersFile;
        if (path) this.saving = this.saving.then(() => writePeersFile(path, state, this.log));
      },
    };
  }

  // ---- peer connections -----------------------------------------------------------

  /** Admits an inbound connection to the handshake, or closes it. */
  private acceptPeer(conn: Deno.TcpConn): void {
    const id = this.nextConnection++;
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    if (this.closing || !this.requireCore().connectionOpened(id, ip)) {
      closeQuietly(conn);
      return;
    }
    this.handshakes.set(id, conn);
    this.track(
      PeerSession.establish(conn, "inbound", this.sessionOptions!).then(
        (session) => this.onSession(session),
        (error) => this.handshakeFailed(error),
      ).finally(() => {
        this.handshakes.delete(id);
        this.core?.connectionEnded(id);
      }),
    );
  }

  /** Connects to a peer and runs the outbound handshake; reports the outcome to the core. */
  private dial(address: SocketAddress, key: string): void {
    this.track((async () => {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: address.hostname, port: address.port });
      } catch (error) {
        this.log.debug("dial failed", { peer: key, error: String(error) });
        if (!this.closing) this.core?.dialFailed(key);
        return;
      }
      if (this.closing) return closeQuietly(conn);
      conn.setNoDelay(true);
      const id = this.nextConnection++;
      this.handshakes.set(id, conn);
      try {
        const session = await PeerSession.establish(conn, "outbound", this.sessionOptions!);
        this.handshakes.delete(id);
        this.onSession(session, key);
      } catch (error) {
        this.handshakes.delete(id);
        this.handshakeFailed(error);
        if (!this.closing) this.core?.dialFailed(key);
      }
    })());
  }

  /** Proves who listens at `address` with a probe handshake; reports it to the core. */
  private probe(address: SocketAddress, key: string): void {
    this.track((async () => {
      let identity: string | undefined;
      try {
        const conn = await Deno.connect({ hostname: address.hostname, port: address.port });
        conn.setNoDelay(true);
        const id = this.nextConnection++;
        this.handshakes.set(id, conn);
        try {
          const session = await PeerSession.establish(conn, "outbound", this.sessionOptions!, true);
          identity = session.identityHex;
          session.attach({ onMessage: () => {}, onClose: () => {} });
          await session.close("probe done", GoodbyeReason.Probe);
        } finally {
          this.handshakes.delete(id);
        }
      } catch (error) {
        this.log.debug("probe failed", { peer: key, error: String(error) });
      }
      if (!this.closing) this.core?.probeFinished(key, identity);
    })());
  }

  /** Hands an authenticated session to the core; registers it, or refuses it. */
  private onSession(session: PeerSession, dialed?: string): void {
    const core = this.requireCore();
    const peer = session.identityHex;
    if (session.isProbe) {
      // The peer only checks that we listen here; it closes after the handshake.
      session.attach({ onMessage: () => {}, onClose: () => {} });
      const timer = setTimeout(
        () => session.close("probe answered"),
        this.config.handshakeTimeoutMs,
      );
      this.track(session.done.finally(() => clearTimeout(timer)));
      return;
    }
    const decision = this.closing ? undefined : core.sessionOpened({
      peer,
      direction: session.direction,
      address: session.listenAddress,
      ip: session.remoteIp,
      dialed,
    });
    if (!decision?.accept) {
      session.attach({ onMessage: () => {}, onClose: () => {} });
      if (decision?.referral) {
        session.send({ type: PeerMessageType.Peers, peers: decision.referral });
      }
      void session.close(decision?.reason ?? "shutting down", decision?.goodbye);
      return;
    }
    this.sessions.set(peer, session);
    session.attach({
      onMessage: (_s, message: PeerMessage) => core.peerMessage(peer, message),
      onClose: (closed) => {
        this.closedBytes.in += closed.bytesIn;
        this.closedBytes.out += closed.bytesOut;
        this.closedBytes.dropped += closed.droppedFrames;
        if (this.sessions.get(peer) !== closed) return;
        this.sessions.delete(peer);
        core.sessionClosed(peer, closed.goodbyeReason);
      },
    });
  }

  /** Counts a failed handshake by its reason. */
  private handshakeFailed(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.core?.handshakeFailed(handshakeFailureReason(message));
    this.log.debug("handshake failed", { error: message });
  }

  /** Remembers work in flight so that close() can wait for it. */
  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    work.finally(() => this.inFlight.delete(work));
  }

  // ---- proof-of-work ----------------------------------------------------------------

  /** Milliseconds since the Unix epoch (tests move it). */
  private wallClock(): number {
    return this.options.wallClock?.() ?? Date.now();
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

  /** The core, which exists once the node has started. */
  private requireCore(): NodeCore {
    if (!this.core) throw new Error("node is not started");
    return this.core;
  }
}

/** A short category of a handshake failure message, for counters. */
function handshakeFailureReason(message: string): string {
  if (/timed out/.test(message)) return "timeout";
  if (/proof-of-work/.test(message)) return "proof-of-work";
  if (/signature/.test(message)) return "signature";
  if (/version/.test(message)) return "version";
  if (/self/.test(message)) return "self";
  if (/closed/.test(message)) return "closed";
  return "malformed";
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

export type { PersistentState };
