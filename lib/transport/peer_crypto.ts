/**
 * Session keys and frame encryption of peer connections.
 *
 * Each side sends an X25519 ephemeral key in its HELLO. The shared secret goes
 * through HKDF-SHA256 with the transcript hash (both HELLOs) as salt, giving
 * one AES-256-GCM key per direction. Each frame is sealed with a 96-bit nonce
 * made of a per-direction 64-bit counter, so nonces never repeat under a key
 * and a replayed, reordered, dropped or modified frame fails authentication.
 *
 * @module
 */

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from "node:crypto";
import { DecodeError } from "../errors.ts";

/** AES-GCM tag length. */
export const TAG_BYTES = 16;

// DER prefix of an X25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const X25519_SPKI_PREFIX = Uint8Array.from([
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x03,
  0x21,
  0x00,
]);

/** An ephemeral X25519 key pair for one handshake. */
export interface EphemeralKey {
  /** Raw 32-byte public key, sent in HELLO. */
  readonly publicKey: Uint8Array;
  /** Private half, used once. */
  readonly privateKey: KeyObject;
}

/** Creates a fresh ephemeral key pair. */
export function generateEphemeralKey(): EphemeralKey {
  const pair = generateKeyPairSync("x25519");
  const der = pair.publicKey.export({ format: "der", type: "spki" });
  return {
    publicKey: new Uint8Array(der.subarray(X25519_SPKI_PREFIX.length)),
    privateKey: pair.privateKey,
  };
}

/** SHA-256 over the labelled concatenation of both HELLO payloads. */
export function transcriptHash(initiatorHello: Uint8Array, responderHello: Uint8Array): Uint8Array {
  const hash = createHash("sha256").update("gossip-p2p-v1 transcript");
  for (const part of [initiatorHello, responderHello]) {
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, part.length);
    hash.update(length).update(part);
  }
  return new Uint8Array(hash.digest());
}

/** The bytes each side signs: label, its role, and the transcript hash. */
export function authPayload(role: "initiator" | "responder", transcript: Uint8Array): Uint8Array {
  const label = new TextEncoder().encode(`gossip-p2p-v1 auth ${role}`);
  const out = new Uint8Array(label.length + transcript.length);
  out.set(label);
  out.set(transcript, label.length);
  return out;
}

/** The two directional ciphers of an established session. */
export interface SessionCiphers {
  /** Seals frames this side sends. */
  readonly send: FrameSealer;
  /** Opens frames this side receives. */
  readonly receive: FrameOpener;
}

/**
 * Derives the session ciphers. Throws {@link DecodeError} when the peer's
 * ephemeral key is not a usable X25519 key (e.g. a low-order point).
 */
export function deriveSessionCiphers(
  own: EphemeralKey,
  peerPublicKey: Uint8Array,
  transcript: Uint8Array,
  role: "initiator" | "responder",
): SessionCiphers {
  let shared: Uint8Array;
  try {
    const spki = new Uint8Array(X25519_SPKI_PREFIX.length + peerPublicKey.length);
    spki.set(X25519_SPKI_PREFIX);
    spki.set(peerPublicKey, X25519_SPKI_PREFIX.length);
    const publicKey = createPublicKey({
      key: spki as unknown as Buffer,
      format: "der",
      type: "spki",
    });
    shared = new Uint8Array(diffieHellman({ privateKey: own.privateKey, publicKey }));
  } catch (error) {
    throw new DecodeError(`unusable ephemeral key: ${String(error)}`);
  }
  if (shared.every((byte) => byte === 0)) throw new DecodeError("low-order ephemeral key");
  const key = (info: string) => new Uint8Array(hkdfSync("sha256", shared, transcript, info, 32));
  const i2r = key("gossip-p2p-v1 initiator->responder");
  const r2i = key("gossip-p2p-v1 responder->initiator");
  return role === "initiator"
    ? { send: new FrameSealer(i2r), receive: new FrameOpener(r2i) }
    : { send: new FrameSealer(r2i), receive: new FrameOpener(i2r) };
}

function nonceFor(counter: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter);
  return nonce;
}

/** Encrypts outgoing frames with a counter nonce. */
export class FrameSealer {
  private counter = 0n;

  /** Uses the 32-byte `key`. */
  constructor(private readonly key: Uint8Array) {}

  /** Returns `ciphertext || tag` of `plaintext` under the next nonce. */
  seal(plaintext: Uint8Array): Uint8Array {
    const cipher = createCipheriv("aes-256-gcm", this.key, nonceFor(this.counter++));
    const body = cipher.update(plaintext);
    cipher.final();
    const out = new Uint8Array(body.length + TAG_BYTES);
    out.set(body);
    out.set(cipher.getAuthTag(), body.length);
    return out;
  }
}

/** Decrypts incoming frames, expecting consecutive counter nonces. */
export class FrameOpener {
  private counter = 0n;

  /** Uses the 32-byte `key`. */
  constructor(private readonly key: Uint8Array) {}

  /** Returns the plaintext; throws {@link DecodeError} if authentication fails. */
  open(sealed: Uint8Array): Uint8Array {
    if (sealed.length < TAG_BYTES) throw new DecodeError("sealed frame shorter than its tag");
    const decipher = createDecipheriv("aes-256-gcm", this.key, nonceFor(this.counter));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      decipher.final();
    } catch {
      throw new DecodeError("frame failed authentication (tampered, replayed or reordered)");
    }
    this.counter++;
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }
}
