/**
 * One authenticated, encrypted connection to a peer.
 *
 * Handshake (docs/PROTOCOL.md): both sides send a plaintext HELLO at once
 * (version, X25519 ephemeral key, nonce, identity proof-of-work, listening
 * address, RSA public key). From the two HELLOs each side derives the session
 * keys. The initiator then sends an encrypted AUTH: an RSA-PSS signature of
 * the transcript hash and its role; the responder sends its own AUTH only
 * after the initiator's verified, so it never signs for an unproven stranger. A session is established when the peer's AUTH verifies
 * against the key in its HELLO; the peer's identity is SHA-256 of that key.
 * Any deviation, or a handshake slower than the timeout, closes the
 * connection.
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
import { type HostKey, identityHex, signWithHostKey, verifyPeerSignature } from "../hostkey.ts";
import type { Logger } from "../log.ts";
import { isFreshEpoch, type ProofOfWork, verifyProofOfWork } from "../protocol/proof_of_work.ts";
import type { Direction } from "../protocol/membership.ts";
import { FramedConnection } from "./framed_connection.ts";
import {
  authPayload,
  deriveSessionCiphers,
  type EphemeralKey,
  type FrameOpener,
  type FrameSealer,
  generateEphemeralKey,
  transcriptHash,
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
  /** Send queue limit per session in bytes. */
  readonly maxQueuedBytes: number;
  /** Smallest RSA modulus accepted from peers. */
  readonly minPeerKeyBits: number;
  /** Logger. */
  readonly log: Logger;
}

/** Receives an established session's messages. */
export interface PeerSessionHandler {
  /** A decrypted, decoded message; throwing closes the session. */
  onMessage(session: PeerSession, message: PeerMessage): void;
  /** The session ended. */
  onClose(session: PeerSession, reason: string): void;
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
  /** Frames received after the handshake. */
  framesReceived = 0;
  /** The reason of the peer's GOODBYE, if it said goodbye. */
  goodbyeReason: number | undefined;
  /**
   * A verification probe: the initiator only proves who listens at the
   * address and closes; not a session to register (see `HelloFlags.Probe`).
   */
  isProbe: boolean;

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
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  private closeReason: string | undefined;
  private readonly settled: {
    resolve: (session: PeerSession) => void;
    reject: (error: Error) => void;
    promise: Promise<PeerSession>;
  };
  private readonly readDone: Promise<void>;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    conn: Deno.TcpConn,
    readonly direction: Direction,
    private readonly options: PeerSessionOptions,
    probe: boolean,
  ) {
    this.isProbe = probe;
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
      idleTimeoutMs: options.idleTimeoutMs,
      log: options.log,
      onFrame: (frame) => this.onFrame(frame.subarray(4)),
      onClose: (reason) => this.onConnectionClosed(reason),
    });
    this.ephemeral = generateEphemeralKey();
    this.ownHello = encodePeerMessage({
      type: PeerMessageType.Hello,
      version: PEER_PROTOCOL_VERSION,
      flags: probe ? HelloFlags.Probe : 0,
      ephemeralKey: this.ephemeral.publicKey,
      nonce: new Uint8Array(randomBytes(32)),
      powEpoch: options.proofOfWork().epoch,
      powNonce: options.proofOfWork().nonce,
      listenAddress: options.listenAddress,
      publicKey: options.hostKey.publicKeyDer,
    });
    this.readDone = this.connection.start();
  }

  /**
   * Runs the handshake on a fresh connection. Resolves with the session once
   * both sides are authenticated; rejects (and closes the connection) on any
   * protocol error or after the handshake timeout.
   */
  static establish(
    conn: Deno.TcpConn,
    direction: Direction,
    options: PeerSessionOptions,
    probe = false,
  ): Promise<PeerSession> {
    const session = new PeerSession(conn, direction, options, probe && direction === "outbound");
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

  /** Bytes waiting in the send queue. */
  get pendingBytes(): number {
    return this.connection.pendingBytes;
  }

  /** Frames dropped because the send queue was full. */
  get droppedFrames(): number {
    return this.connection.droppedFrames;
  }

  /** Bytes received on this connection, handshake included. */
  get bytesReceived(): number {
    return this.connection.bytesReceived;
  }

  /** Bytes sent on this connection, handshake included. */
  get bytesSent(): number {
    return this.connection.bytesSent;
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
   * Queues `message`; false when the session is not open. Messages sent in the
   * same turn of the event loop are sealed together into one frame (one
   * AES-GCM operation and one write for a burst of IHAVEs, items and pings).
   */
  send(message: PeerMessage): boolean {
    if (this.state !== "open" || this.connection.isClosed) return false;
    const encoded = encodePeerMessage(message);
    if (this.batchBytes + RECORD_HEADER_BYTES + encoded.length > MAX_SEALED_PLAINTEXT_BYTES) {
      this.flushBatch();
    }
    this.batch.push(encoded);
    this.batchBytes += RECORD_HEADER_BYTES + encoded.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushBatch());
    }
    return true;
  }

  /** Seals the queued messages into one frame. */
  private flushBatch(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (!this.connection.isClosed) this.sendSealed(batch);
  }

  /**
   * Closes the session, first sending GOODBYE with `goodbyeReason` when given.
   * Resolves when the connection has ended.
   */
  async close(reason: string, goodbyeReason?: number): Promise<void> {
    if (goodbyeReason !== undefined && this.sealer && !this.connection.isClosed) {
      this.flushBatch();
      this.sendSealed([
        encodePeerMessage({ type: PeerMessageType.Goodbye, reason: goodbyeReason }),
      ]);
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

  /** Seals `messages` as one frame and queues it. */
  private sendSealed(messages: Uint8Array[]): boolean {
    return this.connection.send(framePeerPayload(this.sealer!.seal(joinRecords(messages))));
  }

  private onFrame(payload: Uint8Array): void {
    switch (this.state) {
      case "hello":
        this.onHello(payload);
        return;
      case "auth":
      case "open":
        for (const record of splitRecords(this.opener!.open(payload))) {
          if (this.connection.isClosed) return;
          this.onMessage(decodePeerMessage(record));
        }
        return;
    }
  }

  /** Handles one decrypted message (only called once the session keys exist). */
  private onMessage(message: PeerMessage): void {
    if (this.state === "open") {
      this.framesReceived++;
      if (this.handler) this.dispatch(message);
      else this.queueEarly(message);
    } else if (this.peerAuthReceived) {
      // Messages after the peer's AUTH while its signature is being verified.
      this.queueEarly(message);
    } else if (message.type === PeerMessageType.Auth) {
      this.peerAuthReceived = true;
      this.verifyAuth(message.signature);
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

  private onHello(payload: Uint8Array): void {
    const message = decodePeerMessage(payload);
    if (message.type !== PeerMessageType.Hello) {
      throw new ProtocolError(`expected HELLO, got message type ${message.type}`);
    }
    if (message.version !== PEER_PROTOCOL_VERSION) {
      throw new ProtocolError(`unsupported protocol version ${message.version}`);
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
    if (this.direction === "inbound") this.isProbe = (message.flags & HelloFlags.Probe) !== 0;
    // Keep private copies: the frame buffer may be reused.
    this.peerHello = { ...message, publicKey: message.publicKey.slice() };
    this.identity = identity;
    this.identityHex = identityHex(identity);
    // A node listening on a wildcard address cannot name it; use where it connected from.
    const { hostname, port } = message.listenAddress;
    this.listenAddress = hostname === "0.0.0.0" || hostname === "::"
      ? { hostname: this.remoteIp, port }
      : message.listenAddress;
    const role = this.direction === "outbound" ? "initiator" : "responder";
    this.transcript = role === "initiator"
      ? transcriptHash(this.ownHello, payload)
      : transcriptHash(payload, this.ownHello);
    const ciphers = deriveSessionCiphers(
      this.ephemeral,
      message.ephemeralKey,
      this.transcript,
      role,
    );
    this.sealer = ciphers.send;
    this.opener = ciphers.receive;
    this.state = "auth";
    // The initiator proves itself first; the responder signs only after the
    // initiator's AUTH verified, so a stranger cannot make it sign for free.
    if (role === "initiator") this.sendAuth();
  }

  /** Signs the transcript and sends AUTH. */
  private sendAuth(): void {
    const role = this.direction === "outbound" ? "initiator" : "responder";
    signWithHostKey(this.options.hostKey, authPayload(role, this.transcript!)).then((signature) => {
      if (this.connection.isClosed) return;
      this.sendSealed([encodePeerMessage({ type: PeerMessageType.Auth, signature })]);
      this.ownAuthSent = true;
      this.maybeOpen();
    }, (error) => this.fail(error instanceof Error ? error : new Error(String(error))));
  }

  private verifyAuth(signature: Uint8Array): void {
    const peerRole = this.direction === "outbound" ? "responder" : "initiator";
    verifyPeerSignature(
      this.peerHello!.publicKey,
      authPayload(peerRole, this.transcript!),
      signature.slice(),
      { minBits: this.options.minPeerKeyBits },
    ).then((ok) => {
      if (!ok) {
        this.fail(new ProtocolError("peer's AUTH signature does not verify"));
        return;
      }
      this.peerAuthenticated = true;
      if (!this.ownAuthSent && this.direction === "inbound") this.sendAuth();
      else this.maybeOpen();
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
    if (!this.connection.isClosed) {
      this.options.log.info("peer handshake failed", {
        remote: this.remote,
        reason: error.message,
      });
    }
    // Settle only once the socket's operations have ended, so that closing a
    // node after a failed handshake leaves nothing running.
    this.connection.close(error.message).finally(() => this.settled.reject(error));
  }

  private onConnectionClosed(reason: string): void {
    clearTimeout(this.handshakeTimer);
    this.closeReason = reason;
    if (this.state === "auth" && this.peerAuthReceived && this.ownAuthSent) {
      // The peer's AUTH is being verified: let that decide (open or fail).
      this.closedAfterPeerAuth = true;
      return;
    }
    if (this.state !== "open") {
      this.settled.reject(new ProtocolError(`connection closed during handshake: ${reason}`));
      return;
    }
    this.handler?.onClose(this, reason);
  }
}
