/**
 * Tools for adversarial black-box tests: a raw TCP client that speaks only
 * the u32 framing, forged handshakes, a peer that completes a real handshake
 * and then misbehaves, a tampering man-in-the-middle proxy, and memory
 * measurement. Everything is bounded in count and time and closes what it opens.
 *
 * @module
 */

import { Inbox } from "./inbox.ts";
import { readFrames } from "./read_frames.ts";
import v8 from "node:v8";
import vm from "node:vm";
import { createHash } from "node:crypto";
import net from "node:net";
import type { SocketAddress } from "../../lib/address.ts";
import {
  decodePeerMessage,
  encodePeerMessage,
  framePeerPayload,
  type HelloMessage,
  PEER_PROTOCOL_VERSION,
  type PeerMessage,
  PeerMessageType,
} from "../../lib/codec/peer_messages.ts";
import type { HostKey } from "../../lib/hostkey.ts";
import {
  credentialIssuerFor,
  type SessionCredential,
  signWithCredential,
} from "../../lib/transport/credential.ts";
import {
  authPayload,
  deriveSessionCiphers,
  generateEphemeralKey,
  type SessionCiphers,
  solvePuzzle,
  transcriptHash,
} from "../../lib/transport/peer_crypto.ts";
import { silentLogger } from "../../lib/log.ts";
import { powEpoch, solveProofOfWork, verifyProofOfWork } from "../../lib/protocol/proof_of_work.ts";
import { PeerSession } from "../../lib/transport/peer_session.ts";
import { TEST_KEY_BITS, testHostKey, waitUntil } from "./nodes.ts";

// ---- memory -----------------------------------------------------------------

let gcFunction: (() => void) | undefined | null = null;

/** A full garbage collection when the runtime lets us trigger one; false otherwise. */
export function collectGarbage(): boolean {
  if (gcFunction === null) {
    gcFunction = undefined;
    try {
      const direct = (globalThis as { gc?: () => void }).gc;
      if (typeof direct === "function") {
        gcFunction = direct;
      } else {
        v8.setFlagsFromString("--expose-gc");
        const viaVm = vm.runInNewContext("gc");
        if (typeof viaVm === "function") gcFunction = viaVm as () => void;
      }
    } catch {
      gcFunction = undefined;
    }
  }
  if (!gcFunction) return false;
  // Twice: weak references and finalizers freed by the first pass.
  gcFunction();
  gcFunction();
  return true;
}

/** Process memory in MiB, after a GC when possible. */
export interface MemorySnapshot {
  rssMiB: number;
  heapUsedMiB: number;
  /** Memory of ArrayBuffers and other objects outside the V8 heap (item payloads live here). */
  externalMiB: number;
  gc: boolean;
}

/** Takes a {@link MemorySnapshot} of this process (the nodes under test run in it). */
export function memorySnapshot(): MemorySnapshot {
  const gc = collectGarbage();
  const usage = Deno.memoryUsage();
  const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
  return {
    rssMiB: mib(usage.rss),
    heapUsedMiB: mib(usage.heapUsed),
    externalMiB: mib(usage.external),
    gc,
  };
}

// ---- bytes and ports ----------------------------------------------------------

/** `count` bytes from a seeded generator returning floats in [0, 1). */
export function seededBytes(count: number, random: () => number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** `count` distinct loopback ports that nothing listened on a moment ago. */
export function unusedPorts(count: number): number[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      listeners.push(Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" }));
    }
    return listeners.map((l) => (l.addr as Deno.NetAddr).port);
  } finally {
    for (const listener of listeners) listener.close();
  }
}

/** A `u32 length | payload` frame around arbitrary bytes. */
export function rawFrame(payload: Uint8Array, length = payload.length): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, length);
  out.set(payload, 4);
  return out;
}

// ---- raw P2P client -------------------------------------------------------------

/**
 * A TCP client that parses only the peer protocol's `u32 length` framing, for
 * sending garbage and forged handshakes and observing when the node hangs up.
 */
export class RawPeerClient {
  private readonly frames = new Inbox<Uint8Array>();
  private readonly readLoop: Promise<void>;

  private constructor(readonly conn: Deno.TcpConn, readonly openedAt: number) {
    this.readLoop = this.read();
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawPeerClient> {
    const openedAt = performance.now();
    return new RawPeerClient(await Deno.connect({ hostname: "127.0.0.1", port }), openedAt);
  }

  /** True once the node closed (or reset) the connection. */
  get closedByPeer(): boolean {
    return this.frames.isEnded;
  }

  /** `performance.now()` when the node closed the connection. */
  get endedAt(): number {
    return this.frames.endedAt;
  }

  /** Milliseconds from connecting until the node closed the connection. */
  get lifetimeMs(): number {
    return this.endedAt - this.openedAt;
  }

  /** Writes bytes; false when the node already closed the connection. */
  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
      return true;
    } catch {
      return false;
    }
  }

  /** The next complete frame's payload; throws after `timeoutMs` or when closed first. */
  nextFrame(timeoutMs = 5000): Promise<Uint8Array> {
    return this.frames.next(timeoutMs, "frame");
  }

  /** Resolves true once the node closed the connection, false after `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<boolean> {
    return this.frames.waitEnded(timeoutMs);
  }

  /** Closes the connection and waits for the read loop. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.readLoop;
  }

  private async read(): Promise<void> {
    await readFrames(
      this.conn,
      (buffered) =>
        buffered.length < 4
          ? undefined
          : 4 + new DataView(buffered.buffer, buffered.byteOffset).getUint32(0),
      (frame) => this.frames.push(frame.subarray(4)),
    );
    this.frames.end();
  }
}

/**
 * A HELLO payload with any fields overridden (for forged handshakes). The
 * default credential is junk: random key bytes and signature, valid expiry.
 */
export function helloPayload(
  fields: Partial<Omit<HelloMessage, "type">> & {
    publicKey: Uint8Array;
  },
): Uint8Array {
  return encodePeerMessage({
    type: PeerMessageType.Hello,
    version: PEER_PROTOCOL_VERSION,
    puzzleBits: 0,
    flags: 0,
    ephemeralKey: crypto.getRandomValues(new Uint8Array(32)),
    nonce: crypto.getRandomValues(new Uint8Array(32)),
    powEpoch: powEpoch(),
    powNonce: 0n,
    listenAddress: { hostname: "127.0.0.1", port: 9 },
    credential: {
      key: crypto.getRandomValues(new Uint8Array(32)),
      expiry: Math.floor(Date.now() / 1000) + 86_400,
      signature: crypto.getRandomValues(new Uint8Array(128)),
    },
    ...fields,
  }).slice();
}

/** The current session credential of `key` (shared with nodes and sessions using it). */
export function credentialOf(key: HostKey): Promise<SessionCredential> {
  return credentialIssuerFor(key).current();
}

/** One sealed frame whose plaintext is the single record `| length u32 | message |`. */
export async function sealedFrame(
  ciphers: SessionCiphers,
  message: PeerMessage,
): Promise<Uint8Array> {
  const encoded = encodePeerMessage(message);
  const record = new Uint8Array(4 + encoded.length);
  new DataView(record.buffer).setUint32(0, encoded.length);
  record.set(encoded, 4);
  return await ciphers.send.sealFrame(record);
}

/** How {@link handshakeByHand} forges its side of the handshake. */
export interface ForgedHandshake {
  /** Host key whose SPKI (identity) HELLO presents. */
  readonly presented: HostKey;
  /** Proof-of-work nonce for `presented` in the current epoch. */
  readonly powNonce: bigint;
  /** Credential HELLO carries (default: `presented`'s own). */
  readonly credential?: SessionCredential;
  /** Credential whose key signs AUTH (default: `credential`). */
  readonly authSigner?: SessionCredential;
  /** Role label AUTH signs (default: initiator, the honest one). */
  readonly role?: "initiator" | "responder";
  /** Solve the puzzle the node's HELLO demands (default true). */
  readonly solvePuzzle?: boolean;
}

/**
 * Runs the initiator's side of the handshake by hand on `client` (a raw
 * connection): sends HELLO, reads the node's, sends AUTH as `forged` says.
 * Returns the session ciphers for sending sealed frames afterwards.
 */
export async function handshakeByHand(
  client: RawPeerClient,
  forged: ForgedHandshake,
): Promise<SessionCiphers> {
  const credential = forged.credential ?? await credentialOf(forged.presented);
  const ephemeral = generateEphemeralKey();
  const hello = helloPayload({
    publicKey: forged.presented.publicKeyDer,
    ephemeralKey: ephemeral.publicKey,
    powNonce: forged.powNonce,
    listenAddress: { hostname: "127.0.0.1", port: unusedPorts(1)[0] },
    credential,
  });
  await client.write(framePeerPayload(hello));
  const nodeHelloPayload = await client.nextFrame(2000);
  const nodeHello = decodePeerMessage(nodeHelloPayload) as HelloMessage;
  const transcript = transcriptHash(hello, nodeHelloPayload);
  const ciphers = deriveSessionCiphers(ephemeral, nodeHello.ephemeralKey, transcript, "initiator");
  const signature = signWithCredential(
    forged.authSigner ?? credential,
    authPayload(forged.role ?? "initiator", transcript),
  );
  const puzzleSolution = forged.solvePuzzle === false
    ? 0n
    : solvePuzzle(transcript, nodeHello.puzzleBits);
  await client.write(
    await sealedFrame(ciphers, { type: PeerMessageType.Auth, puzzleSolution, signature }),
  );
  return ciphers;
}

/** The smallest nonce that does NOT satisfy `difficulty` for `identity` in the current epoch. */
export function failingPowNonce(identity: Uint8Array, difficulty: number): bigint {
  const epoch = powEpoch();
  for (let nonce = 0n; nonce < 1000n; nonce++) {
    if (!verifyProofOfWork(identity, epoch, nonce, difficulty)) return nonce;
  }
  throw new Error("every nonce passes; difficulty too low for this test");
}

// ---- a peer with a real handshake ----------------------------------------------------

/** Settings of an {@link AdversaryPeer}. */
export interface AdversaryOptions {
  /** Its host key (a real identity). */
  readonly hostKey: HostKey;
  /** Proof-of-work difficulty: solved for its own identity, required of the victim. */
  readonly powDifficulty: number;
  /** Precomputed proof-of-work nonce for the current epoch (solved when absent). */
  readonly powNonce?: bigint;
  /** Advertised listening port; nothing should listen there. */
  readonly listenPort: number;
  /** Advertised listening host (default 127.0.0.1). */
  readonly listenHost?: string;
  /** Handshake timeout (default 3000 ms). */
  readonly handshakeTimeoutMs?: number;
  /** HELLO's flags byte (default 0; 2 asks a full victim for a delivery session). */
  readonly helloFlags?: number;
  /**
   * Whether its HELLO says it reads proven marks (default true, as every node
   * of this version; false acts as a node without them).
   */
  readonly readsMarks?: boolean;
}

/**
 * The session settings of an adversary peer, with its proof-of-work of today
 * (solved here when `options` has none: call it before connecting, since the
 * victim's handshake clock starts at accept).
 */
function sessionOptions(options: AdversaryOptions) {
  const epoch = powEpoch();
  const nonce = options.powNonce ??
    solveProofOfWork(options.hostKey.identity, epoch, options.powDifficulty);
  return {
    hostKey: options.hostKey,
    proofOfWork: () => ({ epoch, nonce }),
    powDifficulty: options.powDifficulty,
    listenAddress: { hostname: options.listenHost ?? "127.0.0.1", port: options.listenPort },
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 3000,
    idleTimeoutMs: 120_000,
    maxQueuedBytes: 256 * 1024 * 1024,
    minPeerKeyBits: TEST_KEY_BITS,
    log: silentLogger,
    readsMarks: options.readsMarks,
  };
}

/**
 * A peer that completes a genuine handshake (it has a real host key and solved
 * proof-of-work) and then sends whatever well-formed messages the test wants.
 */
export class AdversaryPeer {
  /** Messages received from the victim. */
  readonly received: PeerMessage[] = [];
  /** Why the session ended, once it has. */
  closeReason: string | undefined;
  private readonly closed: Promise<string>;
  private listener: ((message: PeerMessage) => void) | undefined;

  private constructor(readonly session: PeerSession) {
    let resolveClosed!: (reason: string) => void;
    this.closed = new Promise((resolve) => resolveClosed = resolve);
    session.attach({
      onMessage: (_s, message) => {
        if (this.received.length < 100_000) this.received.push(message);
        this.listener?.(message);
      },
      onClose: (_s, reason) => {
        this.closeReason = reason;
        resolveClosed(reason);
      },
    });
  }

  /**
   * Connects to `port` and runs the handshake. Resolves with the peer, or with
   * the error when the victim ends the connection during the handshake.
   */
  static async connect(
    port: number,
    options: AdversaryOptions,
  ): Promise<{ peer?: AdversaryPeer; error?: Error }> {
    const settings = sessionOptions(options); // before connecting: it may solve the proof
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const flags = options.helloFlags ?? 0;
      return {
        peer: new AdversaryPeer(await PeerSession.establish(conn, "outbound", settings, flags)),
      };
    } catch (error) {
      return { error: error instanceof Error ? error : new Error(String(error)) };
    }
  }

  /**
   * Accepts the next connection on `listener` (a victim dialling the
   * adversary's advertised address) and runs the handshake as its responder.
   */
  static async accept(
    listener: Deno.TcpListener,
    options: AdversaryOptions,
  ): Promise<AdversaryPeer> {
    const settings = sessionOptions(options);
    const conn = await listener.accept();
    return new AdversaryPeer(await PeerSession.establish(conn, "inbound", settings));
  }

  /** Calls `listener` with every message the victim sends from now on, as it arrives. */
  onMessage(listener: (message: PeerMessage) => void): void {
    this.listener = listener;
  }

  /** Encrypts and queues a message (false when dropped or closed). */
  send(message: PeerMessage): boolean {
    return this.session.send(message);
  }

  /**
   * Sends a PING and waits for its PONG: the victim reads a session's messages
   * in order, so once this resolves every message sent before it was handled.
   */
  async roundTrip(nonce: bigint, timeoutMs = 3000): Promise<void> {
    const answered = () =>
      this.received.some((m) => m.type === PeerMessageType.Pong && m.nonce === nonce);
    this.send({ type: PeerMessageType.Ping, nonce });
    await waitUntil(() => answered() || this.isClosed, timeoutMs, `PONG ${nonce}`);
    if (!answered()) throw new Error(`session closed before PONG ${nonce}: ${this.closeReason}`);
  }

  /** True once the session has ended. */
  get isClosed(): boolean {
    return this.session.isClosed;
  }

  /** Bytes still waiting to be written. */
  get pendingBytes(): number {
    return this.session.pendingBytes;
  }

  /** Resolves with the close reason, or undefined when still open after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<string | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      this.closed,
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), timeoutMs)),
    ]);
    clearTimeout(timer);
    return result;
  }

  /** Closes the session (no GOODBYE). */
  async close(): Promise<void> {
    await this.session.close("adversary done");
  }
}

/**
 * A hostile peer with a fresh test key and difficulty-4 proof-of-work,
 * connected to the node listening on 127.0.0.1:`port` with HELLO flags
 * `helloFlags`; fails the test when the handshake fails.
 */
export async function connectAdversary(port: number, helloFlags = 0): Promise<AdversaryPeer> {
  const hostKey = await testHostKey();
  const connected = await AdversaryPeer.connect(port, {
    hostKey,
    powDifficulty: 4,
    powNonce: solveProofOfWork(hostKey.identity, powEpoch(), 4),
    listenPort: unusedPorts(1)[0],
    helloFlags,
  });
  if (!connected.peer) throw new Error(`adversary handshake: ${connected.error}`);
  return connected.peer;
}

// ---- man in the middle ------------------------------------------------------------

/** Direction of a frame through the proxy: from the dialling node A, or from the target B. */
export type ProxyDirection = "a2b" | "b2a";

/** What the proxy does with one frame: the frames to forward instead (none drops it). */
export type FrameAction = (frame: {
  /** Index of the proxied connection, from 0. */
  connection: number;
  direction: ProxyDirection;
  /** Index of the frame in its direction on this connection, from 0 (0 = HELLO, 1 = AUTH). */
  index: number;
  /** The whole frame, length field included. */
  bytes: Uint8Array;
}) => Uint8Array[];

/** Forwards every frame unchanged. */
export const passThrough: FrameAction = ({ bytes }) => [bytes];

/** A copy of `frame` with one payload byte inverted (the length field is left intact). */
export function flipPayloadByte(frame: Uint8Array): Uint8Array {
  const copy = frame.slice();
  const offset = 4 + Math.floor((copy.length - 4) / 2);
  copy[offset] ^= 0xff;
  return copy;
}

/** What the proxy saw of one connection. */
export interface ProxiedConnection {
  readonly index: number;
  /** Frames received from A and from B. */
  readonly frames: { a2b: number; b2a: number };
  /** Payload lengths of the frames, per direction, in order. */
  readonly lengths: { a2b: number[]; b2a: number[] };
  /** The side that ended the connection first ("a" = dialler, "b" = target). */
  firstCloser?: "a" | "b";
  /** True once both sides are closed. */
  ended: boolean;
}

const PROXY_MAX_FRAME = 1024 * 1024;

/**
 * A TCP man in the middle: listens on 127.0.0.1:0, connects each accepted
 * connection to `target`, and forwards frames both ways through an
 * {@link FrameAction}. It parses only the `u32 length` framing. When either
 * side ends, it records which one and closes the other.
 */
export class MitmProxy {
  readonly connections: ProxiedConnection[] = [];
  private readonly listener: Deno.TcpListener;
  private readonly acceptLoop: Promise<void>;
  private readonly pumps = new Set<Promise<void>>();
  private readonly sockets = new Set<Deno.TcpConn>();
  private closing = false;

  /** Starts listening at once; `target` and `action` may be changed later. */
  constructor(public target: SocketAddress, public action: FrameAction = passThrough) {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
    this.acceptLoop = this.accept();
  }

  /** The proxy's own address (give it to A as bootstrapper). */
  get address(): SocketAddress {
    return { hostname: "127.0.0.1", port: (this.listener.addr as Deno.NetAddr).port };
  }

  /** Stops accepting, closes every proxied connection and waits for the pumps. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      this.listener.close();
    } catch {
      // already closed
    }
    await this.acceptLoop;
    for (const socket of this.sockets) closeQuietly(socket);
    for (let round = 0; round < 10 && this.pumps.size > 0; round++) {
      await Promise.allSettled([...this.pumps]);
    }
  }

  private async accept(): Promise<void> {
    for (;;) {
      let a: Deno.TcpConn;
      try {
        a = await this.listener.accept();
      } catch {
        return;
      }
      if (this.closing) {
        closeQuietly(a);
        return;
      }
      this.track(this.relay(a));
    }
  }

  private track(pump: Promise<void>): void {
    this.pumps.add(pump);
    pump.finally(() => this.pumps.delete(pump));
  }

  private async relay(a: Deno.TcpConn): Promise<void> {
    this.sockets.add(a);
    let b: Deno.TcpConn;
    try {
      b = await Deno.connect({ ...this.target, transport: "tcp" });
    } catch {
      this.sockets.delete(a);
      closeQuietly(a);
      return;
    }
    this.sockets.add(b);
    if (this.closing) closeQuietly(b);
    const record: ProxiedConnection = {
      index: this.connections.length,
      frames: { a2b: 0, b2a: 0 },
      lengths: { a2b: [], b2a: [] },
      ended: false,
    };
    this.connections.push(record);
    let shut = false;
    const end = (side: "a" | "b") => {
      if (!shut && !this.closing) record.firstCloser ??= side;
      shut = true;
      closeQuietly(a);
      closeQuietly(b);
    };
    await Promise.all([
      this.pump(record, "a2b", a, b, end),
      this.pump(record, "b2a", b, a, end),
    ]);
    record.ended = true;
    this.sockets.delete(a);
    this.sockets.delete(b);
  }

  private async pump(
    record: ProxiedConnection,
    direction: ProxyDirection,
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    end: (side: "a" | "b") => void,
  ): Promise<void> {
    const source = direction === "a2b" ? "a" : "b";
    const sink = direction === "a2b" ? "b" : "a";
    const chunk = new Uint8Array(65536);
    let buffer = new Uint8Array(0);
    for (;;) {
      let n: number | null;
      try {
        n = await from.read(chunk);
      } catch {
        n = null;
      }
      if (n === null) {
        end(source);
        return;
      }
      const merged = new Uint8Array(buffer.length + n);
      merged.set(buffer);
      merged.set(chunk.subarray(0, n), buffer.length);
      buffer = merged;
      const out: Uint8Array[] = [];
      while (buffer.length >= 4) {
        const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(0);
        if (length > PROXY_MAX_FRAME) {
          // Not a frame stream: pass the bytes through untouched.
          out.push(buffer);
          buffer = new Uint8Array(0);
          break;
        }
        if (buffer.length < 4 + length) break;
        const frame = buffer.slice(0, 4 + length);
        buffer = buffer.slice(4 + length);
        const index = record.frames[direction]++;
        record.lengths[direction].push(length);
        out.push(...this.action({ connection: record.index, direction, index, bytes: frame }));
      }
      try {
        for (const frame of out) {
          let offset = 0;
          while (offset < frame.length) offset += await to.write(frame.subarray(offset));
        }
      } catch {
        end(sink);
        return;
      }
    }
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

// ---- descriptors and connection churn -----------------------------------------------

/** `count` fake peer descriptors: random identities at 127.0.0.1 on the given unused ports. */
export function fakeDescriptors(
  count: number,
  ports: readonly number[],
  random: () => number,
): { identity: Uint8Array; address: SocketAddress }[] {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push({
      identity: seededBytes(32, random),
      address: { hostname: "127.0.0.1", port: ports[Math.floor(random() * ports.length)] },
    });
  }
  return out;
}

/**
 * Opens `total` connections to 127.0.0.1:`port` in batches of `batch`. Each
 * batch is opened at once, then `afterOpen` runs (e.g. waits until the node
 * accepted them), then every connection is closed without a byte sent, then
 * `afterClose` runs (e.g. waits until the node released them).
 */
export async function churnConnections(
  port: number,
  total: number,
  batch: number,
  hooks: {
    afterOpen?: (opened: number) => Promise<void>;
    afterClose?: (closed: number) => Promise<void>;
  } = {},
): Promise<void> {
  let done = 0;
  while (done < total) {
    const size = Math.min(batch, total - done);
    const settled = await Promise.allSettled(
      Array.from({ length: size }, () => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    const conns = settled.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    const failed = settled.find((r) => r.status === "rejected");
    try {
      if (failed) throw (failed as PromiseRejectedResult).reason;
      await hooks.afterOpen?.(done + size);
    } finally {
      for (const conn of conns) closeQuietly(conn);
    }
    done += size;
    await hooks.afterClose?.(done);
  }
}

// ---- items --------------------------------------------------------------------

/**
 * An ITEM message whose ID is bound to its content as docs/PROTOCOL.md says:
 * the first 8 bytes of SHA-256("gossip-item-v2" || nonce u64 || TTL u8 ||
 * data type u16 || data), computed here independently of lib/.
 */
export function contentItem(
  fields: { dataType: number; data: Uint8Array; ttl?: number; hops?: number; nonce?: bigint },
): PeerMessage & { type: typeof PeerMessageType.Item } {
  const ttl = fields.ttl ?? 0;
  const nonce = fields.nonce ?? BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 53)));
  const header = new Uint8Array(11);
  const view = new DataView(header.buffer);
  view.setBigUint64(0, nonce);
  view.setUint8(8, ttl);
  view.setUint16(9, fields.dataType);
  const digest = createHash("sha256").update("gossip-item-v2").update(header)
    .update(fields.data).digest();
  return {
    type: PeerMessageType.Item,
    id: digest.readBigUInt64BE(0),
    nonce,
    ttl,
    hops: fields.hops ?? 1,
    dataType: fields.dataType,
    data: fields.data,
  };
}

// ---- connections from chosen source addresses ---------------------------------------

/** A TCP connection from a chosen loopback source address that never sends a byte. */
export interface SilentConnection {
  /** The source address it was bound to. */
  readonly localAddress: string;
  /** Resolves when the node closed (or reset) it; true if it was the node. */
  readonly closed: Promise<boolean>;
  /** Closes it from this side. */
  close(): Promise<void>;
}

/**
 * Opens a connection to 127.0.0.1:`port` from `localAddress` (any address of
 * 127.0.0.0/8 on Linux), so that per-address limits see distinct addresses.
 */
export function silentConnection(port: number, localAddress: string): Promise<SilentConnection> {
  return new Promise((resolve, reject) => {
    let closedByUs = false;
    let settle!: (byNode: boolean) => void;
    const closed = new Promise<boolean>((done) => settle = done);
    const socket = net.createConnection({ host: "127.0.0.1", port, localAddress }, () => {
      resolve({
        localAddress,
        closed,
        close: async () => {
          closedByUs = true;
          socket.destroy();
          await closed;
        },
      });
    });
    socket.on("error", (error) => {
      if (!socket.connecting) return;
      reject(error);
    });
    socket.on("close", () => settle(!closedByUs));
    socket.on("data", () => {});
  });
}
