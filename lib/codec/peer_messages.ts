/**
 * Byte-exact codec of the peer-to-peer protocol (see docs/PROTOCOL.md).
 *
 * A frame on the wire is `| length u32 | payload |` where `length` counts the
 * payload. Before the handshake completes the payload is a plaintext message;
 * afterwards it is AES-256-GCM ciphertext of messages (see
 * `lib/transport/peer_crypto.ts`). A message is `| type u16 | body |`. Types
 * are 1000 and up, outside the 500-689 range reserved for VoidPhone API
 * messages. All integers are big-endian. Pure functions, no I/O.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import { DecodeError } from "../errors.ts";
import { ByteReader, ByteWriter } from "./byte_io.ts";
import type { FrameFormat } from "./frame_decoder.ts";

/** Protocol version carried in HELLO (2: Ed25519 session credentials and handshake puzzles). */
export const PEER_PROTOCOL_VERSION = 2;

/** Hard limit of a peer frame (length field plus payload). */
export const PEER_MAX_FRAME_BYTES = 96 * 1024;

/** Framing of the peer stream: `length u32` counting the payload only. */
export const PEER_FRAME_FORMAT: FrameFormat = {
  lengthBytes: 4,
  lengthIncludesHeader: false,
  minFrameBytes: 4 + 2,
  maxFrameBytes: PEER_MAX_FRAME_BYTES,
};

/** Numeric peer message types. */
export const PeerMessageType = {
  Hello: 1000,
  Auth: 1001,
  Ping: 1002,
  Pong: 1003,
  PullRequest: 1010,
  Peers: 1011,
  Push: 1012,
  Goodbye: 1013,
  Delivery: 1014,
  Item: 1020,
  IHave: 1021,
  IWant: 1022,
} as const;

/** Name of each peer message type ("IHave" for 1021), for counters and logs. */
export const PEER_MESSAGE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PeerMessageType).map(([name, type]) => [type, name]),
);

/** Length of a peer identity (SHA-256 of the SPKI DER). */
export const IDENTITY_BYTES = 32;
/** Length of an X25519 public key. */
export const EPHEMERAL_KEY_BYTES = 32;
/** Length of the HELLO's random nonce. */
export const HELLO_NONCE_BYTES = 32;
/** Most descriptors in one PEERS or PUSH message. */
export const MAX_DESCRIPTORS = 64;
/** Most item IDs in one IHAVE or IWANT message. */
export const MAX_ITEM_IDS = 1024;
/** Largest item payload (the API's limit). */
export const MAX_ITEM_DATA_BYTES = 65535 - 8;
/** Largest SPKI DER accepted in HELLO (RSA 8192 fits). */
export const MAX_PUBLIC_KEY_BYTES = 2048;
/** Largest RSA signature accepted for a credential in HELLO (RSA 8192). */
export const MAX_SIGNATURE_BYTES = 1024;
/** Length of an Ed25519 public key (the session credential's key). */
export const CREDENTIAL_KEY_BYTES = 32;
/** Length of an Ed25519 signature (AUTH). */
export const AUTH_SIGNATURE_BYTES = 64;
/** Most puzzle bits a HELLO may demand (2^16 hashes, well under a second). */
export const MAX_PUZZLE_BITS = 16;

/** Bits of HELLO's flags byte. */
export const HelloFlags = {
  /**
   * The initiator only verifies that the responder's identity listens at this
   * address: the handshake completes, then the initiator closes with GOODBYE
   * probe; neither side treats it as a session.
   */
  Probe: 1,
  /**
   * The initiator has a local item and no peer that proved it relays: a
   * responder whose inbound slots are full and all protected hears it out in
   * a short delivery session instead of referring it at once.
   */
  Deliver: 2,
  /**
   * The sender reads the proven marks that may follow the descriptors of
   * PEERS and PUSH ({@link DescriptorsMessage.marked}); set by both sides.
   * A node sends marks only to a peer whose HELLO set this bit, so nodes
   * without it (which reject bytes after the descriptors) never see them.
   */
  Marks: 4,
  /**
   * The initiator is a feeler: its items stopped, and it tests whether the
   * responder has them. A responder whose inbound slots are full hears it on
   * trial beyond them instead of evicting a session for it; it takes a slot
   * only if the initiator keeps it past the trial.
   */
  Feel: 8,
} as const;

/** Why a peer says goodbye. */
export const GoodbyeReason = {
  Shutdown: 1,
  Full: 2,
  Duplicate: 3,
  ProtocolViolation: 4,
  Banned: 5,
  Probe: 6,
} as const;

const GOODBYE_REASON_NAMES: Record<number, string> = {
  [GoodbyeReason.Shutdown]: "shutting down",
  [GoodbyeReason.Full]: "peer limit reached",
  [GoodbyeReason.Duplicate]: "duplicate connection",
  [GoodbyeReason.ProtocolViolation]: "protocol violation",
  [GoodbyeReason.Banned]: "banned",
  [GoodbyeReason.Probe]: "address probe done",
};

/** A {@link GoodbyeReason} code in words for logs, e.g. `peer limit reached`; unknown codes as `reason 9`. */
export function goodbyeReasonName(code: number): string {
  return GOODBYE_REASON_NAMES[code] ?? `reason ${code}`;
}

/** A known peer: its identity and where it listens. */
export interface PeerDescriptor {
  /** SHA-256 of the peer's SPKI DER. */
  readonly identity: Uint8Array;
  /** The peer's P2P listening address. */
  readonly address: SocketAddress;
  /**
   * The sender marks it proven: it brought the sender items first. Encoded
   * only in a {@link DescriptorsMessage.marked} message.
   */
  readonly proven?: boolean;
}

/**
 * The sender's session credential: an Ed25519 key its RSA host key signed,
 * valid until `expiry`. AUTH is signed with this key, so a handshake costs
 * the sender no RSA signature.
 */
export interface SessionCredentialFields {
  /** Ed25519 public key, raw 32 bytes. */
  readonly key: Uint8Array;
  /** Unix time in seconds after which the credential is invalid. */
  readonly expiry: number;
  /** RSA-PSS signature by the host key over the credential (see `credentialPayload`). */
  readonly signature: Uint8Array;
}

/** First handshake message, sent by both sides in plaintext. */
export interface HelloMessage {
  readonly type: typeof PeerMessageType.Hello;
  /** Protocol version ({@link PEER_PROTOCOL_VERSION}). */
  readonly version: number;
  /** Leading zero bits the sender demands of the puzzle solution in the peer's AUTH (0: none). */
  readonly puzzleBits: number;
  /** {@link HelloFlags} bits; unknown bits are ignored. */
  readonly flags: number;
  /** X25519 public key of this connection. */
  readonly ephemeralKey: Uint8Array;
  /** Fresh random bytes binding the signatures to this connection. */
  readonly nonce: Uint8Array;
  /** Day (Unix time / 86400) the sender's proof-of-work is for. */
  readonly powEpoch: number;
  /** Proof-of-work nonce for the sender's identity and `powEpoch`. */
  readonly powNonce: bigint;
  /** Where the sender accepts peer connections. */
  readonly listenAddress: SocketAddress;
  /** Sender's RSA public key, SubjectPublicKeyInfo DER. */
  readonly publicKey: Uint8Array;
  /** Sender's session credential. */
  readonly credential: SessionCredentialFields;
}

/** Second handshake message (encrypted): puzzle solution and signature over the transcript. */
export interface AuthMessage {
  readonly type: typeof PeerMessageType.Auth;
  /** Solution of the puzzle the peer's HELLO demanded (any value when it demanded none). */
  readonly puzzleSolution: bigint;
  /** Ed25519 signature by the sender's credential key, 64 bytes. */
  readonly signature: Uint8Array;
}

/** Liveness probe and answer. */
export interface PingMessage {
  readonly type: typeof PeerMessageType.Ping | typeof PeerMessageType.Pong;
  /** Echoed value. */
  readonly nonce: bigint;
}

/** Asks for up to `max` peer descriptors. */
export interface PullRequestMessage {
  readonly type: typeof PeerMessageType.PullRequest;
  /** Most descriptors wanted. */
  readonly max: number;
}

/** Descriptors, as a pull answer (PEERS) or an unsolicited offer (PUSH). */
export interface DescriptorsMessage {
  readonly type: typeof PeerMessageType.Peers | typeof PeerMessageType.Push;
  /** The descriptors. */
  readonly peers: readonly PeerDescriptor[];
  /**
   * The descriptors are followed by their proven marks: one bit per
   * descriptor, descriptor i in bit i % 8 of byte i / 8, unused bits 0
   * ({@link PeerDescriptor.proven}). Sent only to peers whose HELLO set
   * {@link HelloFlags.Marks}.
   */
  readonly marked?: boolean;
}

/** The sender is closing the connection. */
export interface GoodbyeMessage {
  readonly type: typeof PeerMessageType.Goodbye;
  /** A {@link GoodbyeReason} value. */
  readonly reason: number;
}

/**
 * The responder took this connection, whose initiator set HELLO's `deliver`
 * flag, as a delivery session: it reads only ITEMs (and PING), offers and
 * answers nothing, and ends it soon with a referral and GOODBYE full. Sent
 * once, as the responder's first message; no body.
 */
export interface DeliveryMessage {
  readonly type: typeof PeerMessageType.Delivery;
}

/** A gossiped item. */
export interface ItemMessage {
  readonly type: typeof PeerMessageType.Item;
  /** Content-bound 64-bit item ID (see `lib/protocol/item.ts`). */
  readonly id: bigint;
  /** The origin's random nonce, part of the ID's input. */
  readonly nonce: bigint;
  /** TTL the item was announced with (hops it may travel); 0 = unlimited. */
  readonly ttl: number;
  /** Hops travelled including this one (1 from the origin), saturating at 255. */
  readonly hops: number;
  /** Application data type. */
  readonly dataType: number;
  /** Payload. */
  readonly data: Uint8Array;
}

/** Item IDs the sender has (IHAVE) or wants (IWANT). */
export interface ItemIdsMessage {
  readonly type: typeof PeerMessageType.IHave | typeof PeerMessageType.IWant;
  /** The IDs. */
  readonly ids: readonly bigint[];
}

/** Any peer message. */
export type PeerMessage =
  | HelloMessage
  | AuthMessage
  | PingMessage
  | PullRequestMessage
  | DescriptorsMessage
  | GoodbyeMessage
  | DeliveryMessage
  | ItemMessage
  | ItemIdsMessage;

const HOST_CHARS = /^[A-Za-z0-9.:-]+$/;

/** The proven marks of `peers`: bit i % 8 of byte i / 8 set when peer i is proven. */
function provenMarks(peers: readonly PeerDescriptor[]): Uint8Array {
  const marks = new Uint8Array(Math.ceil(peers.length / 8));
  peers.forEach((peer, i) => {
    if (peer.proven) marks[i >> 3] |= 1 << (i & 7);
  });
  return marks;
}

function writeAddress(writer: ByteWriter, address: SocketAddress): void {
  const host = new TextEncoder().encode(address.hostname);
  if (host.length === 0 || host.length > 253 || !HOST_CHARS.test(address.hostname)) {
    throw new RangeError(`unencodable host "${address.hostname}"`);
  }
  if (address.port === 0) throw new RangeError("port 0 in address");
  checkInt(address.port, 0xffff, "port");
  writer.u8(host.length).bytes(host).u16(address.port);
}

function readAddress(reader: ByteReader): SocketAddress {
  const length = reader.u8("address length");
  if (length === 0) throw new DecodeError("empty host in address");
  const hostname = String.fromCharCode(...reader.bytesOf(length, "address host"));
  if (!HOST_CHARS.test(hostname)) throw new DecodeError("invalid characters in address host");
  const port = reader.u16("address port");
  if (port === 0) throw new DecodeError("port 0 in address");
  return { hostname, port };
}

function checkInt(value: number, max: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
  }
}

function checkU64(value: bigint, name: string): bigint {
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`${name} must fit in 64 unsigned bits, got ${value}`);
  }
  return value;
}

function checkLength(bytes: Uint8Array, exact: number, name: string): void {
  if (bytes.length !== exact) throw new RangeError(`${name} must be ${exact} bytes`);
}

/** Encodes a message as `| type u16 | body |` (without the frame length). */
export function encodePeerMessage(message: PeerMessage): Uint8Array {
  const writer = new ByteWriter(
    message.type === PeerMessageType.Item ? 24 + message.data.length : 64,
  );
  writer.u16(message.type);
  switch (message.type) {
    case PeerMessageType.Hello:
      checkLength(message.ephemeralKey, EPHEMERAL_KEY_BYTES, "ephemeralKey");
      checkLength(message.nonce, HELLO_NONCE_BYTES, "nonce");
      if (message.publicKey.length === 0 || message.publicKey.length > MAX_PUBLIC_KEY_BYTES) {
        throw new RangeError("publicKey size out of range");
      }
      checkInt(message.version, 0xff, "version");
      checkInt(message.puzzleBits, MAX_PUZZLE_BITS, "puzzleBits");
      checkInt(message.powEpoch, 0xffffffff, "powEpoch");
      checkLength(message.credential.key, CREDENTIAL_KEY_BYTES, "credential key");
      checkInt(message.credential.expiry, 0xffffffff, "credential expiry");
      if (
        message.credential.signature.length === 0 ||
        message.credential.signature.length > MAX_SIGNATURE_BYTES
      ) {
        throw new RangeError("credential signature size out of range");
      }
      checkInt(message.flags, 0xff, "flags");
      writer.u8(message.version).u8(message.puzzleBits).u8(message.flags).u8(0)
        .bytes(message.ephemeralKey)
        .bytes(message.nonce).u32(message.powEpoch).u64(checkU64(message.powNonce, "powNonce"));
      writeAddress(writer, message.listenAddress);
      writer.u16(message.publicKey.length).bytes(message.publicKey);
      writer.bytes(message.credential.key).u32(message.credential.expiry)
        .u16(message.credential.signature.length).bytes(message.credential.signature);
      break;
    case PeerMessageType.Auth:
      checkLength(message.signature, AUTH_SIGNATURE_BYTES, "signature");
      writer.u64(checkU64(message.puzzleSolution, "puzzleSolution")).bytes(message.signature);
      break;
    case PeerMessageType.Ping:
    case PeerMessageType.Pong:
      writer.u64(checkU64(message.nonce, "nonce"));
      break;
    case PeerMessageType.PullRequest:
      checkInt(message.max, MAX_DESCRIPTORS, "max");
      writer.u16(message.max);
      break;
    case PeerMessageType.Peers:
    case PeerMessageType.Push:
      if (message.peers.length > MAX_DESCRIPTORS) throw new RangeError("too many descriptors");
      writer.u16(message.peers.length);
      for (const peer of message.peers) {
        checkLength(peer.identity, IDENTITY_BYTES, "identity");
        writer.bytes(peer.identity);
        writeAddress(writer, peer.address);
      }
      if (message.marked) writer.bytes(provenMarks(message.peers));
      break;
    case PeerMessageType.Goodbye:
      checkInt(message.reason, 0xff, "reason");
      writer.u8(message.reason);
      break;
    case PeerMessageType.Delivery:
      break;
    case PeerMessageType.Item:
      checkInt(message.ttl, 0xff, "ttl");
      checkInt(message.dataType, 0xffff, "dataType");
      if (message.data.length === 0 || message.data.length > MAX_ITEM_DATA_BYTES) {
        throw new RangeError(`item data must be 1..${MAX_ITEM_DATA_BYTES} bytes`);
      }
      checkU64(message.id, "id");
      checkInt(message.hops, 0xff, "hops");
      checkU64(message.nonce, "nonce");
      writer.u64(message.id).u64(message.nonce).u8(message.ttl).u8(message.hops)
        .u16(message.dataType).bytes(message.data);
      break;
    case PeerMessageType.IHave:
    case PeerMessageType.IWant:
      if (message.ids.length === 0 || message.ids.length > MAX_ITEM_IDS) {
        throw new RangeError(`1..${MAX_ITEM_IDS} ids per message`);
      }
      writer.u16(message.ids.length);
      for (const id of message.ids) writer.u64(checkU64(id, "id"));
      break;
  }
  return writer.finish();
}

/**
 * Decodes `| type u16 | body |`. Throws {@link DecodeError} for unknown types,
 * truncated or oversized fields, counts out of range and trailing bytes.
 * Returned byte fields are views into `payload`.
 */
export function decodePeerMessage(payload: Uint8Array): PeerMessage {
  const reader = new ByteReader(payload);
  const type = reader.u16("message type");
  switch (type) {
    case PeerMessageType.Hello: {
      const version = reader.u8("version");
      // Checked first: another version's HELLO may have another layout.
      if (version !== PEER_PROTOCOL_VERSION) {
        throw new DecodeError(`unsupported protocol version ${version}`);
      }
      const puzzleBits = reader.u8("puzzle bits");
      const flags = reader.u8("flags");
      reader.u8("reserved");
      const ephemeralKey = reader.bytesOf(EPHEMERAL_KEY_BYTES, "ephemeral key");
      const nonce = reader.bytesOf(HELLO_NONCE_BYTES, "nonce");
      const powEpoch = reader.u32("pow epoch");
      const powNonce = reader.u64("pow nonce");
      const listenAddress = readAddress(reader);
      const keyLength = reader.u16("public key length");
      if (keyLength === 0 || keyLength > MAX_PUBLIC_KEY_BYTES) {
        throw new DecodeError(`public key length ${keyLength} out of range`);
      }
      const publicKey = reader.bytesOf(keyLength, "public key");
      const credentialKey = reader.bytesOf(CREDENTIAL_KEY_BYTES, "credential key");
      const expiry = reader.u32("credential expiry");
      const signatureLength = reader.u16("credential signature length");
      if (signatureLength === 0 || signatureLength > MAX_SIGNATURE_BYTES) {
        throw new DecodeError(`credential signature length ${signatureLength} out of range`);
      }
      const signature = reader.bytesOf(signatureLength, "credential signature");
      reader.end("HELLO");
      if (puzzleBits > MAX_PUZZLE_BITS) {
        throw new DecodeError(`puzzle of ${puzzleBits} bits exceeds ${MAX_PUZZLE_BITS}`);
      }
      return {
        type,
        version,
        puzzleBits,
        flags,
        ephemeralKey,
        nonce,
        powEpoch,
        powNonce,
        listenAddress,
        publicKey,
        credential: { key: credentialKey, expiry, signature },
      };
    }
    case PeerMessageType.Auth: {
      const puzzleSolution = reader.u64("puzzle solution");
      const signature = reader.bytesOf(AUTH_SIGNATURE_BYTES, "signature");
      reader.end("AUTH");
      return { type, puzzleSolution, signature };
    }
    case PeerMessageType.Ping:
    case PeerMessageType.Pong: {
      const nonce = reader.u64("nonce");
      reader.end("PING");
      return { type, nonce };
    }
    case PeerMessageType.PullRequest: {
      const max = reader.u16("max");
      if (max > MAX_DESCRIPTORS) throw new DecodeError(`pull max ${max} above ${MAX_DESCRIPTORS}`);
      reader.end("PULL_REQUEST");
      return { type, max };
    }
    case PeerMessageType.Peers:
    case PeerMessageType.Push: {
      const count = reader.u16("descriptor count");
      if (count > MAX_DESCRIPTORS) {
        throw new DecodeError(`${count} descriptors exceed the limit of ${MAX_DESCRIPTORS}`);
      }
      const peers: PeerDescriptor[] = [];
      for (let i = 0; i < count; i++) {
        const identity = reader.bytesOf(IDENTITY_BYTES, "identity");
        peers.push({ identity, address: readAddress(reader) });
      }
      // Proven marks follow when the sender knows this node reads them.
      const markBytes = Math.ceil(count / 8);
      if (reader.remaining === 0 || markBytes === 0) {
        reader.end("descriptors");
        return { type, peers };
      }
      const marks = reader.bytesOf(markBytes, "proven marks");
      reader.end("proven marks");
      if (count % 8 !== 0 && marks[markBytes - 1] >> (count % 8) !== 0) {
        throw new DecodeError("proven mark set beyond the last descriptor");
      }
      return {
        type,
        marked: true,
        peers: peers.map((peer, i) =>
          (marks[i >> 3] >> (i & 7)) & 1 ? { ...peer, proven: true } : peer
        ),
      };
    }
    case PeerMessageType.Goodbye: {
      const reason = reader.u8("reason");
      reader.end("GOODBYE");
      return { type, reason };
    }
    case PeerMessageType.Delivery:
      reader.end("DELIVERY");
      return { type };
    case PeerMessageType.Item: {
      const id = reader.u64("item id");
      const nonce = reader.u64("item nonce");
      const ttl = reader.u8("ttl");
      const hops = reader.u8("hops");
      const dataType = reader.u16("data type");
      const data = reader.rest();
      if (data.length === 0) throw new DecodeError("item without data");
      if (data.length > MAX_ITEM_DATA_BYTES) throw new DecodeError("item data too large");
      return { type, id, nonce, ttl, hops, dataType, data };
    }
    case PeerMessageType.IHave:
    case PeerMessageType.IWant: {
      const count = reader.u16("id count");
      if (count === 0 || count > MAX_ITEM_IDS) {
        throw new DecodeError(`id count ${count} outside 1..${MAX_ITEM_IDS}`);
      }
      const ids: bigint[] = [];
      for (let i = 0; i < count; i++) ids.push(reader.u64("item id"));
      reader.end("id list");
      return { type, ids };
    }
    default:
      throw new DecodeError(`unknown peer message type ${type}`);
  }
}

/** Prepends the `length u32` frame header to `payload`. */
export function framePeerPayload(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(4 + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length);
  frame.set(payload, 4);
  return frame;
}

/** Bytes added per message in a sealed batch (its `length u32`). */
export const RECORD_HEADER_BYTES = 4;

/**
 * Largest plaintext of one sealed frame: the frame limit less the frame's
 * length field and the 16-byte AES-GCM tag.
 */
export const MAX_SEALED_PLAINTEXT_BYTES = PEER_MAX_FRAME_BYTES - 4 - 16;

/** Joins encoded messages as `| length u32 | message |` records, the plaintext of a sealed frame. */
export function joinRecords(messages: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const message of messages) total += RECORD_HEADER_BYTES + message.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const message of messages) {
    view.setUint32(offset, message.length);
    out.set(message, offset + RECORD_HEADER_BYTES);
    offset += RECORD_HEADER_BYTES + message.length;
  }
  return out;
}

/**
 * Splits a sealed frame's plaintext into its messages (views, no copy). Throws
 * {@link DecodeError} when it is empty, a record is shorter than a message
 * type, or a length runs past the end.
 */
export function splitRecords(plaintext: Uint8Array): Uint8Array[] {
  if (plaintext.length === 0) throw new DecodeError("empty sealed frame");
  const reader = new ByteReader(plaintext);
  const messages: Uint8Array[] = [];
  while (reader.remaining > 0) {
    const length = reader.u32("record length");
    if (length < 2) throw new DecodeError(`record of ${length} bytes is shorter than a type`);
    messages.push(reader.bytesOf(length, "record"));
  }
  return messages;
}
