/**
 * One authenticated, encrypted connection to a peer.
 *
 * Handshake (docs/PROTOCOL.md): both sides send a plaintext HELLO at once
 * (version, X25519 ephemeral key, nonce, identity proof-of-work, listening
 * address, RSA public key, and a session credential: an Ed25519 key the RSA
 * key signed). From the two HELLOs each side derives the session keys. The
 * initiator then sends an encrypted AUTH: an Ed25519 signature of the
 * transcript hash and its role, by its credential key, plus the solution of
 * the puzzle the responder's HELLO demanded (only while the responder is
 * under a handshake flood). The responder checks the puzzle, the signature and
 * (once per credential, cached) the credential's RSA signature, and only then
 * signs and sends its own AUTH, unless the connection has closed meanwhile. A
 * session is established when the peer's AUTH verifies; the peer's identity
 * is SHA-256 of its RSA key. Any deviation, or a handshake slower than the
 * timeout, closes the connection; a peer that sends no byte within
 * `firstByteTimeoutMs` is dropped sooner.
 *
 * After the handshake, messages are queued as plaintext and sealed only when
 * the connection writes, everything queued in one turn as one frame: a full
 * queue refuses new messages ({@link PeerSession.send} returns false) and
 * never drops a sealed frame, whose counter would break the stream.
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import type { SocketAddress } from "../address.ts";
import {
  decodePeerMessage,
  encodePeerMessage,
  framePeerPayload,
  goodbyeReasonName,
  HelloFlags,
  type HelloMessage,
  joinRecords,
  MAX_SEALED_PLAINTEXT_BYTES,
  PEER_FRAME_FORMAT,
  PEER_PROTOCOL_VERSION,
  type PeerMessage,
  PeerMessageType,
  RECORD_HEADER_BYTES,
  splitRecords,
} from "../codec/peer_messages.ts";
import { ProtocolError, TimeoutError } from "../errors.ts";
import { type HostKey, identityHex } from "../hostkey.ts";
import type { Logger } from "../log.ts";
import { isFreshEpoch, type ProofOfWork, verifyProofOfWork } from "../protocol/proof_of_work.ts";
import type { Direction } from "../protocol/membership.ts";
import type { BufferBudget } from "./buffer_budget.ts";
import {
  credentialExpiryProblem,
  type CredentialIssuer,
  credentialIssuerFor,
  credentialPublicKey,
  type SessionCredential,
  signWithCredential,
  verifyCredential,
  verifyWithCredential,
} from "./credential.ts";
import { FramedConnection } from "./framed_connection.ts";
import {
  authPayload,
  deriveSessionCiphers,
  type EphemeralKey,
  type FrameOpener,
  type FrameSealer,
  generateEphemeralKey,
  solvePuzzle,
  transcriptHash,
  verifyPuzzle,
} from "./peer_crypto.ts";

/** Settings shared by all sessions of a node. */
export interface PeerSessionOptions {
  /** This node's host key. */
  readonly hostKey: HostKey;
  /** This node's current proof-of-work (renewed daily by the node). */
  readonly proofOfWork: () => ProofOfWork;
  /** Proof-of-work bits required of peers. */
  readonly powDifficulty: number;
  /** Address this node advertises for incoming peer connections. */
  readonly listenAddress: SocketAddress;
  /** Time allowed for the whole handshake. */
  readonly handshakeTimeoutMs: number;
  /** A session receiving nothing for this long is closed. */
  readonly idleTimeoutMs: number;
  /** Send queue limit per session in bytes (plaintext queued plus bytes not yet written). */
  readonly maxQueuedBytes: number;
  /** Smallest RSA modulus accepted from peers. */
  readonly minPeerKeyBits: number;
  /** Logger. */
  readonly log: Logger;
  /**
   * A connection whose first byte does not arrive within this time is closed
   * (default {@link DEFAULT_FIRST_BYTE_TIMEOUT_MS}, at most `handshakeTimeoutMs`).
   */
  readonly firstByteTimeoutMs?: number;
  /** Budget of partial-frame memory shared with other connections (default: process-wide). */
  readonly budget?: BufferBudget;
  /** Source of this node's session credential (default: one per host key). */
  readonly credentials?: CredentialIssuer;
  /** Inbound handshake rate, deciding the puzzle (default: one per host key). */
  readonly load?: HandshakeLoad;
  /**
   * Asked about an inbound peer as soon as its HELLO names its identity, before
   * any key agreement or signature check: false ends the handshake at once (a
   * banned identity, or one handshaking too often).
   */
  readonly admitIdentity?: (identityHex: string, ip: string) => boolean;
  /**
   * Whether this node's HELLO sets `marks` (it reads proven marks after the
   * descriptors of PEERS and PUSH; default true). False only to act as a
   * node without them (tests of compatibility).
   */
  readonly readsMarks?: boolean;
}

/** Receives an established session's messages. */
export interface PeerSessionHandler {
  /** A decrypted, decoded message; throwing closes the session. */
  onMessage(session: PeerSession, message: PeerMessage): void;
  /** The session ended. */
  onClose(session: PeerSession, reason: string): void;
}

/** Default of {@link PeerSessionOptions.firstByteTimeoutMs}. */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 2000;

/**
 * Counts inbound handshakes per second and decides the puzzle each new one
 * must solve: none up to `thresholdPerSecond`, `bits` leading zero bits above
 * (about 2^bits hashes for the initiator, one for this node).
 */
export class HandshakeLoad {
  private windowStart = 0;
  private count = 0;
  private previous = 0;
  /** Handshakes that were asked for a puzzle. */
  puzzlesDemanded = 0;
  /** AUTH signatures (Ed25519) this node's sessions made. */
  authSignatures = 0;

  /** Creates the meter; `clock` is in ms (tests move it). */
  constructor(
    readonly thresholdPerSecond = 50,
    readonly bits = 8,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Inbound handshakes per second, smoothed over the last two seconds. */
  get rate(): number {
    this.roll();
    const fraction = (this.clock() - this.windowStart) / 1000;
    return this.previous * (1 - fraction) + this.count;
  }

  /** Counts one inbound handshake and returns the puzzle bits to demand of it. */
  admit(): number {
    this.roll();
    this.count++;
    if (this.rate <= this.thresholdPerSecond) return 0;
    this.puzzlesDemanded++;
    return this.bits;
  }

  private roll(): void {
    const now = this.clock();
    const elapsed = now - this.windowStart;
    if (elapsed < 1000) return;
    this.previous = elapsed < 2000 ? this.count : 0;
    this.count = 0;
    this.windowStart = now - (elapsed % 1000);
  }
}

const loads = new WeakMap<HostKey, HandshakeLoad>();

/** The handshake meter shared by all sessions of `hostKey` (one per node). */
export function handshakeLoadFor(hostKey: HostKey): HandshakeLoad {
  let load = loads.get(hostKey);
  if (!load) {
    load = new HandshakeLoad();
    loads.set(hostKey, load);
  }
  return load;
}

type State = "hello" | "auth" | "open";

/** Most messages buffered between AUTH and the handler being attached. */
const MAX_EARLY_MESSAGES = 256;

/** An established peer session. Create with {@link PeerSession.establish}. */
export class PeerSession {
  /** The peer's identity (SHA-256 of its SPKI DER). */
  identity: Uint8Array = new Uint8Array(0);
  /** Hex of {@link identity}. */
  identityHex = "";
  /** The peer's advertised listening address. */
  listenAddress: SocketAddress = { hostname: "", port: 0 };
  /** The reason of the peer's GOODBYE, if it said goodbye. */
  goodbyeReason: number | undefined;
  /**
   * A verification probe: the initiator only proves who listens at the
   * address and closes; not a session to register (see `HelloFlags.Probe`).
   */
  isProbe: boolean;
  /**
   * The initiator set HELLO's `deliver` flag: it has a local item and no peer
   * that proved it relays (see `HelloFlags.Deliver`). For an outbound
   * session, this node did.
   */
  wantsDelivery: boolean;
  /**
   * The initiator set HELLO's `feel` flag: it is a feeler, testing whether
   * this node has items its node lacks (see `HelloFlags.Feel`). For an
   * outbound session, this node did.
   */
  isFeeler: boolean;
  /**
   * The peer's HELLO set `marks` (see `HelloFlags.Marks`): PEERS and PUSH
   * sent to it keep their proven marks; to a peer without it they go
   * unmarked, as it would reject the extra bytes.
   */
  readsMarks = false;
  /** Messages refused by {@link send} because the send queue was full. */
  refusedMessages = 0;

  private readonly connection: FramedConnection;
  private readonly ephemeral: EphemeralKey;
  private readonly ownHello: Uint8Array;
  private state: State = "hello";
  private sealer: FrameSealer | undefined;
  private opener: FrameOpener | undefined;
  private transcript: Uint8Array | undefined;
  private peerHello: HelloMessage | undefined;
  private peerAuthReceived = false;
  private closedAfterPeerAuth = false;
  private peerAuthenticated = false;
  private ownAuthSent = false;
  private handler: PeerSessionHandler | undefined;
  private early: PeerMessage[] = [];
  private outbox: Uint8Array[] = [];
  private outboxHead = 0;
  private outboxBytes = 0;
  private closeReason: string | undefined;
  private readonly settled: {
    resolve: (session: PeerSession) => void;
    reject: (error: Error) => void;
    promise: Promise<PeerSession>;
  };
  private readonly readDone: Promise<void>;
  /** The RSA check of the peer's credential while it runs (settles, never rejects). */
  private verifying: Promise<void> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private signTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    conn: Deno.TcpConn,
    readonly direction: Direction,
    private readonly options: PeerSessionOptions,
    private readonly credential: SessionCredential,
    private readonly load: HandshakeLoad,
    private readonly puzzleBits: number,
    flags: number,
  ) {
    this.isProbe = (flags & HelloFlags.Probe) !== 0;
    this.wantsDelivery = (flags & HelloFlags.Deliver) !== 0;
    this.isFeeler = (flags & HelloFlags.Feel) !== 0;
    let resolve!: (session: PeerSession) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<PeerSession>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    this.settled = { resolve, reject, promise };
    this.connection = new FramedConnection(conn, {
      format: PEER_FRAME_FORMAT,
      maxQueuedBytes: options.maxQueuedBytes,
      partialFrameTimeoutMs: options.handshakeTimeoutMs,
      firstByteTimeoutMs: Math.min(
        options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS,
        options.handshakeTimeoutMs,
      ),
      idleTimeoutMs: options.idleTimeoutMs,
      budget: options.budget,
      borrowFrames: true,
      log: options.log,
      onFrame: (frame) => this.onFrame(frame.subarray(4)),
      onClose: (reason) => this.onConnectionClosed(reason),
    });
    const outboxBytes = () => this.outboxBytes;
    this.connection.setSource({
      get pendingBytes() {
        return outboxBytes();
      },
      next: () => this.nextFrame(),
    });
    this.ephemeral = generateEphemeralKey();
    const proof = options.proofOfWork();
    this.ownHello = encodePeerMessage({
      type: PeerMessageType.Hello,
      version: PEER_PROTOCOL_VERSION,
      puzzleBits,
      flags: options.readsMarks === false ? flags : flags | HelloFlags.Marks,
      ephemeralKey: this.ephemeral.publicKey,
      nonce: new Uint8Array(randomBytes(32)),
      powEpoch: proof.epoch,
      powNonce: proof.nonce,
      listenAddress: options.listenAddress,
      publicKey: options.hostKey.publicKeyDer,
      credential,
    });
    this.readDone = this.connection.start();
  }

  /**
   * Runs the handshake on a fresh connection. Resolves with the session once
   * both sides are authenticated; rejects (and closes the connection) on any
   * protocol error or after the handshake timeout.
   */
  static async establish(
    conn: Deno.TcpConn,
    direction: Direction,
    options: PeerSessionOptions,
    flags = 0,
  ): Promise<PeerSession> {
    let credential: SessionCredential;
    try {
      // Resolves at once except for the node's very first handshake (one RSA signature).
      credential = await (options.credentials ?? credentialIssuerFor(options.hostKey)).current();
    } catch (error) {
      conn.close();
      throw error;
    }
    const load = options.load ?? handshakeLoadFor(options.hostKey);
    const puzzleBits = direction === "inbound" ? load.admit() : 0;
    const session = new PeerSession(
      conn,
      direction,
      options,
      credential,
      load,
      puzzleBits,
      direction === "outbound" ? flags : 0,
    );
    session.handshakeTimer = setTimeout(
      () => session.fail(new TimeoutError("handshake timed out")),
      options.handshakeTimeoutMs,
    );
    session.connection.send(framePeerPayload(session.ownHello));
    return session.settled.promise;
  }

  /** Remote socket address, for logs. */
  get remote(): string {
    return this.connection.remote;
  }

  /** Remote IP address. */
  get remoteIp(): string {
    return (this.connection.conn.remoteAddr as Deno.NetAddr).hostname;
  }

  /** True once closed. */
  get isClosed(): boolean {
    return this.connection.isClosed;
  }

  /**
   * Bytes waiting to be sent: queued messages (as plaintext records) and
   * sealed bytes not yet written. The node can hold back new work while this
   * is high (backpressure); {@link send} refuses beyond `maxQueuedBytes`.
   */
  get pendingBytes(): number {
    return this.connection.pendingBytes;
  }

  /** Messages refused because the send queue was full (see {@link refusedMessages}). */
  get droppedFrames(): number {
    return this.refusedMessages + this.connection.droppedFrames;
  }

  /** Bytes received on the connection, handshake included. */
  get bytesReceived(): number {
    return this.connection.bytesReceived;
  }

  /** Bytes written to the connection, handshake included. */
  get bytesSent(): number {
    return this.connection.bytesSent;
  }

  /** Socket reads that returned bytes, handshake included. */
  get reads(): number {
    return this.connection.reads;
  }

  /** Socket writes, handshake included. */
  get writes(): number {
    return this.connection.writes;
  }

  /** Attaches the handler and delivers messages that arrived before it. */
  attach(handler: PeerSessionHandler): void {
    this.handler = handler;
    const early = this.early;
    this.early = [];
    // Delivered even if the peer has closed since: a referral arrives just before GOODBYE.
    for (const message of early) this.dispatch(message);
    if (this.connection.isClosed && this.closeReason !== undefined) {
      handler.onClose(this, this.closeReason);
    }
  }

  /**
   * Queues `message`; false when the session is not open or when the send
   * queue would exceed `maxQueuedBytes` (the message is refused, counted in
   * {@link refusedMessages}, and the stream stays intact). Messages queued in
   * the same turn of the event loop are sealed together into one frame when
   * the connection writes (one AES-GCM operation and one write for a burst).
   */
  send(message: PeerMessage): boolean {
    if (this.state !== "open" || this.connection.isClosed) return false;
    const readable = "marked" in message && message.marked && !this.readsMarks
      ? { ...message, marked: false }
      : message;
    return this.enqueue(encodePeerMessage(readable), false);
  }

  /**
   * Closes the session, first sending GOODBYE with `goodbyeReason` when given.
   * Resolves when the connection has ended.
   */
  async close(reason: string, goodbyeReason?: number): Promise<void> {
    if (goodbyeReason !== undefined && this.state === "open" && !this.connection.isClosed) {
      this.enqueue(
        encodePeerMessage({ type: PeerMessageType.Goodbye, reason: goodbyeReason }),
        true,
      );
      await this.connection.close(reason, true, 500);
    } else {
      await this.connection.close(reason);
    }
    await this.readDone;
  }

  /** Resolves when the connection has ended. */
  get done(): Promise<void> {
    return this.readDone;
  }

  /** Adds an encoded message to the outbox; `force` ignores the limit (AUTH, GOODBYE). */
  private enqueue(encoded: Uint8Array, force: boolean): boolean {
    const size = RECORD_HEADER_BYTES + encoded.length;
    if (!force && this.connection.pendingBytes + size > this.options.maxQueuedBytes) {
      this.refusedMessages++;
      return false;
    }
    this.outbox.push(encoded);
    this.outboxBytes += size;
    this.connection.requestWrite();
    return true;
  }

  /** Seals the next frame's worth of queued messages (called by the connection when it writes). */
  private nextFrame(): Uint8Array | Promise<Uint8Array> | undefined {
    const outbox = this.outbox;
    if (!this.sealer || this.outboxHead >= outbox.length) return undefined;
    let end = this.outboxHead;
    let bytes = 0;
    while (end < outbox.length) {
      const size = RECORD_HEADER_BYTES + outbox[end].length;
      if (end > this.outboxHead && bytes + size > MAX_SEALED_PLAINTEXT_BYTES) break;
      bytes += size;
      end++;
    }
    const plaintext = joinRecords(outbox.slice(this.outboxHead, end));
    this.outboxBytes -= bytes;
    if (end === outbox.length) {
      this.outbox = [];
      this.outboxHead = 0;
    } else {
      this.outboxHead = end;
      if (end > 1024 && end * 2 > outbox.length) {
        this.outbox = outbox.slice(end);
        this.outboxHead = 0;
      }
    }
    return this.sealer.sealFrame(plaintext);
  }

  private onFrame(payload: Uint8Array): void | Promise<void> {
    if (this.state === "hello") {
      this.onHello(payload);
      return;
    }
    const plaintext = this.opener!.open(payload);
    if (plaintext instanceof Promise) return plaintext.then((opened) => this.onPlaintext(opened));
    this.onPlaintext(plaintext);
  }

  private onPlaintext(plaintext: Uint8Array): void {
    for (const record of splitRecords(plaintext)) {
      if (this.connection.isClosed) return;
      this.onMessage(decodePeerMessage(record));
    }
  }

  /** Handles one decrypted message (only called once the session keys exist). */
  private onMessage(message: PeerMessage): void {
    if (this.state === "open") {
      if (this.handler) this.dispatch(message);
      else this.queueEarly(message);
    } else if (this.peerAuthReceived) {
      // Messages after the peer's AUTH while its credential is being verified.
      this.queueEarly(message);
    } else if (message.type === PeerMessageType.Auth) {
      this.peerAuthReceived = true;
      this.verifyAuth(message.puzzleSolution, message.signature);
    } else {
      throw new ProtocolError(`expected AUTH, got message type ${message.type}`);
    }
  }

  private queueEarly(message: PeerMessage): void {
    if (this.early.length >= MAX_EARLY_MESSAGES) {
      throw new ProtocolError("too many messages before the session was ready");
    }
    this.early.push(message);
  }

  private dispatch(message: PeerMessage): void {
    if (message.type === PeerMessageType.Goodbye) {
      this.goodbyeReason = message.reason;
      void this.connection.close(`peer said goodbye: ${goodbyeReasonName(message.reason)}`);
      return;
    }
    this.handler!.onMessage(this, message);
  }

  private get role(): "initiator" | "responder" {
    return this.direction === "outbound" ? "initiator" : "responder";
  }

  private onHello(payload: Uint8Array): void {
    const message = decodePeerMessage(payload);
    if (message.type !== PeerMessageType.Hello) {
      throw new ProtocolError(`expected HELLO, got message type ${message.type}`);
    }
    const identity = new Uint8Array(createHash("sha256").update(message.publicKey).digest());
    if (identityHex(identity) === identityHex(this.options.hostKey.identity)) {
      throw new ProtocolError("connection to self");
    }
    if (this.options.powDifficulty > 0 && !isFreshEpoch(message.powEpoch)) {
      throw new ProtocolError(`proof-of-work epoch ${message.powEpoch} is not current`);
    }
    if (
      !verifyProofOfWork(identity, message.powEpoch, message.powNonce, this.options.powDifficulty)
    ) {
      throw new ProtocolError(
        `identity proof-of-work below ${this.options.powDifficulty} bits`,
      );
    }
    if (
      this.direction === "inbound" && this.options.admitIdentity &&
      !this.options.admitIdentity(identityHex(identity), this.remoteIp)
    ) {
      throw new ProtocolError("identity refused (banned or handshaking too often)");
    }
    const expiryProblem = credentialExpiryProblem(message.credential.expiry, Date.now() / 1000);
    if (expiryProblem) throw new ProtocolError(`peer's session credential is ${expiryProblem}`);
    if (this.direction === "inbound") {
      this.isProbe = (message.flags & HelloFlags.Probe) !== 0;
      this.wantsDelivery = (message.flags & HelloFlags.Deliver) !== 0;
      this.isFeeler = (message.flags & HelloFlags.Feel) !== 0;
    }
    this.readsMarks = (message.flags & HelloFlags.Marks) !== 0;
    // Keep private copies: the frame is a view of the connection's read buffer.
    this.peerHello = {
      ...message,
      publicKey: message.publicKey.slice(),
      credential: {
        key: message.credential.key.slice(),
        expiry: message.credential.expiry,
        signature: message.credential.signature.slice(),
      },
    };
    this.identity = identity;
    this.identityHex = identityHex(identity);
    // A node listening on a wildcard address cannot name it; use where it connected from.
    const { hostname, port } = message.listenAddress;
    this.listenAddress = hostname === "0.0.0.0" || hostname === "::"
      ? { hostname: this.remoteIp, port }
      : message.listenAddress;
    this.transcript = this.role === "initiator"
      ? transcriptHash(this.ownHello, payload)
      : transcriptHash(payload, this.ownHello);
    const ciphers = deriveSessionCiphers(
      this.ephemeral,
      message.ephemeralKey,
      this.transcript,
      this.role,
    );
    this.sealer = ciphers.send;
    this.opener = ciphers.receive;
    this.state = "auth";
    // The initiator proves itself first; the responder signs only after the
    // initiator's AUTH verified, so a stranger cannot make it sign for free.
    if (this.role === "initiator") this.sendAuth();
  }

  /** Solves the peer's puzzle, signs the transcript with the credential and queues AUTH. */
  private sendAuth(): void {
    const transcript = this.transcript!;
    const puzzleSolution = solvePuzzle(transcript, this.peerHello!.puzzleBits);
    const signature = signWithCredential(this.credential, authPayload(this.role, transcript));
    this.load.authSignatures++;
    this.enqueue(
      encodePeerMessage({ type: PeerMessageType.Auth, puzzleSolution, signature }),
      true,
    );
    this.ownAuthSent = true;
    this.maybeOpen();
  }

  private verifyAuth(puzzleSolution: bigint, signature: Uint8Array): void {
    const transcript = this.transcript!;
    const peer = this.peerHello!;
    // Cheapest checks first: one hash, then one Ed25519 verification; the RSA
    // check of the credential is cached per credential.
    if (!verifyPuzzle(transcript, this.puzzleBits, puzzleSolution)) {
      throw new ProtocolError(`AUTH lacks the solution of the ${this.puzzleBits}-bit puzzle`);
    }
    const peerRole = this.role === "initiator" ? "responder" : "initiator";
    let credentialKey;
    try {
      credentialKey = credentialPublicKey(peer.credential.key);
    } catch {
      throw new ProtocolError("peer's credential key is not an Ed25519 key");
    }
    if (!verifyWithCredential(credentialKey, authPayload(peerRole, transcript), signature)) {
      throw new ProtocolError("peer's AUTH signature does not verify");
    }
    this.verifying = verifyCredential(
      peer.publicKey,
      peer.credential,
      this.options.minPeerKeyBits,
    ).then((check) => {
      if (check === "too-many-new") {
        this.fail(
          new ProtocolError("too many new credentials of this identity: try again in a minute"),
        );
        return;
      }
      if (check === "invalid") {
        this.fail(new ProtocolError("peer's credential does not verify against its host key"));
        return;
      }
      this.peerAuthenticated = true;
      if (!this.ownAuthSent && this.direction === "inbound") {
        // Gone while the credential was checked: nothing to sign, and no timer
        // left running after the session settles.
        if (this.connection.isClosed) return;
        // Never sign for a connection that is already gone: sign in a later
        // task, after the read that would see a peer's hang-up right behind its AUTH.
        this.signTimer = setTimeout(() => {
          this.signTimer = undefined;
          if (!this.connection.isClosed) this.sendAuth();
        }, 0);
      } else {
        this.maybeOpen();
      }
    }, (error) => this.fail(error instanceof Error ? error : new Error(String(error))));
  }

  private maybeOpen(): void {
    if (!this.peerAuthenticated || !this.ownAuthSent || this.state === "open") return;
    // A peer may close right after its AUTH (a full node's referral and GOODBYE):
    // the session still opens, so that the messages it sent are delivered.
    if (this.connection.isClosed && !this.closedAfterPeerAuth) return;
    this.state = "open";
    clearTimeout(this.handshakeTimer);
    this.settled.resolve(this);
  }

  private fail(error: Error): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.signTimer);
    if (!this.connection.isClosed) {
      this.options.log.info("peer handshake failed", {
        remote: this.remote,
        reason: error.message,
      });
    }
    // Settle only once the socket's operations (and a credential check) have
    // ended, so that closing a node after a failed handshake leaves nothing running.
    this.connection.close(error.message).then(() => this.verifying)
      .finally(() => this.settled.reject(error));
  }

  private onConnectionClosed(reason: string): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.signTimer);
    this.closeReason = reason;
    this.outbox = [];
    this.outboxHead = 0;
    this.outboxBytes = 0;
    if (this.state === "auth" && this.peerAuthReceived && this.ownAuthSent) {
      // The peer's AUTH is being verified: let that decide (open or fail).
      this.closedAfterPeerAuth = true;
      return;
    }
    if (this.state !== "open") {
      const error = new ProtocolError(`connection closed during handshake: ${reason}`);
      if (this.verifying) this.verifying.finally(() => this.settled.reject(error));
      else this.settled.reject(error);
      return;
    }
    this.handler?.onClose(this, reason);
  }
}
