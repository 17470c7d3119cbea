/**
 * Session keys, frame encryption and the handshake puzzle of peer connections.
 *
 * Each side sends an X25519 ephemeral key in its HELLO. The shared secret goes
 * through HKDF-SHA256 with the transcript hash (both HELLOs) as salt, giving
 * one AES-256-GCM key per direction. Each frame is sealed with a 96-bit nonce
 * made of a per-direction 64-bit counter, so nonces never repeat under a key
 * and a replayed, reordered, dropped or modified frame fails authentication.
 *
 * AES-GCM runs two ways, chosen per frame by size (scripts/bench/micro/
 * frame_crypto_bench.ts): frames up to {@link ASYNC_AEAD_MIN_BYTES} through a
 * one-shot `node:crypto` cipher, synchronously (cheapest below a few KiB in
 * Deno: no thread hop, 10 us for 40 bytes against 35 us); larger frames
 * through Web Crypto with a key imported once per session (3-4 times less CPU
 * from 16 KiB on, but asynchronous: each operation hops to a worker thread and
 * back, which costs latency when many processes share few cores). Both
 * produce the same bytes, so the choice is local.
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
  type Hash,
  hkdfSync,
  type KeyObject,
} from "node:crypto";
import { DecodeError } from "../errors.ts";

/** AES-GCM tag length. */
export const TAG_BYTES = 16;

/** Frames with more plaintext (or ciphertext) bytes than this are sealed and opened by Web Crypto. */
export const ASYNC_AEAD_MIN_BYTES = 16 * 1024;

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
  const hash = createHash("sha256").update("gossip-p2p-v2 transcript");
  for (const part of [initiatorHello, responderHello]) {
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, part.length);
    hash.update(length).update(part);
  }
  return new Uint8Array(hash.digest());
}

/** The bytes each side signs in AUTH: label, its role, and the transcript hash. */
export function authPayload(role: "initiator" | "responder", transcript: Uint8Array): Uint8Array {
  const label = new TextEncoder().encode(`gossip-p2p-v2 auth ${role}`);
  const out = new Uint8Array(label.length + transcript.length);
  out.set(label);
  out.set(transcript, label.length);
  return out;
}

// ---- handshake puzzle ----------------------------------------------------------

const PUZZLE_LABEL = new TextEncoder().encode("gossip-puzzle-v2");

function puzzleBase(transcript: Uint8Array): Hash {
  return createHash("sha256").update(PUZZLE_LABEL).update(transcript);
}

function zeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte !== 0) return bits + Math.clz32(byte) - 24;
    bits += 8;
  }
  return bits;
}

/**
 * True when `SHA-256("gossip-puzzle-v2" || transcript || solution u64)` starts
 * with `bits` zero bits (always true for 0 bits). One hash.
 */
export function verifyPuzzle(transcript: Uint8Array, bits: number, solution: bigint): boolean {
  if (bits <= 0) return true;
  const nonce = new Uint8Array(8);
  new DataView(nonce.buffer).setBigUint64(0, solution);
  return zeroBits(puzzleBase(transcript).update(nonce).digest()) >= bits;
}

/** Finds a puzzle solution for `transcript` (2^bits hashes expected); 0n when `bits` is 0. */
export function solvePuzzle(transcript: Uint8Array, bits: number): bigint {
  if (bits <= 0) return 0n;
  const base = puzzleBase(transcript);
  const nonce = new Uint8Array(8);
  const view = new DataView(nonce.buffer);
  for (let solution = 0n;; solution++) {
    view.setBigUint64(0, solution);
    if (zeroBits(base.copy().update(nonce).digest()) >= bits) return solution;
  }
}

// ---- session keys and frames --------------------------------------------------------

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
  const i2r = key("gossip-p2p-v2 initiator->responder");
  const r2i = key("gossip-p2p-v2 responder->initiator");
  return role === "initiator"
    ? { send: new FrameSealer(i2r), receive: new FrameOpener(r2i) }
    : { send: new FrameSealer(r2i), receive: new FrameOpener(i2r) };
}

function nonceFor(counter: bigint): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter);
  return nonce;
}

/** The key imported into Web Crypto once, on the first large frame. */
class WebKey {
  private key: Promise<CryptoKey> | undefined;
  constructor(private readonly raw: Uint8Array<ArrayBuffer>) {}
  get(): Promise<CryptoKey> {
    this.key ??= crypto.subtle.importKey("raw", this.raw, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
    return this.key;
  }
}

/** A view whose buffer is a plain ArrayBuffer, as Web Crypto's types require. */
function plain(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
}

/** Encrypts outgoing frames with a counter nonce. */
export class FrameSealer {
  private counter = 0n;
  private readonly key: Uint8Array<ArrayBuffer>;
  private readonly webKey: WebKey;

  /** Uses the 32-byte `key`. */
  constructor(key: Uint8Array) {
    this.key = new Uint8Array(key);
    this.webKey = new WebKey(this.key);
  }

  /** Frames sealed so far (the next frame's counter). */
  get sealed(): bigint {
    return this.counter;
  }

  /**
   * Returns the whole frame `| length u32 | ciphertext | tag |` of `plaintext`
   * under the next nonce; a promise for plaintexts above {@link ASYNC_AEAD_MIN_BYTES}
   * (then `plaintext` must not change until it settles). Frames must be
   * written in the order they were sealed.
   */
  sealFrame(plaintext: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const nonce = nonceFor(this.counter++);
    if (plaintext.length > ASYNC_AEAD_MIN_BYTES) return this.sealAsync(plaintext, nonce);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    const body = cipher.update(plaintext);
    cipher.final();
    const out = new Uint8Array(4 + body.length + TAG_BYTES);
    new DataView(out.buffer).setUint32(0, body.length + TAG_BYTES);
    out.set(body, 4);
    out.set(cipher.getAuthTag(), 4 + body.length);
    return out;
  }

  /** `ciphertext || tag` of `plaintext` (without the length field). */
  async seal(plaintext: Uint8Array): Promise<Uint8Array> {
    const frame = await this.sealFrame(plaintext);
    return frame.subarray(4);
  }

  private async sealAsync(plaintext: Uint8Array, iv: Uint8Array<ArrayBuffer>) {
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      await this.webKey.get(),
      plain(plaintext),
    );
    const out = new Uint8Array(4 + sealed.byteLength);
    new DataView(out.buffer).setUint32(0, sealed.byteLength);
    out.set(new Uint8Array(sealed), 4);
    return out;
  }
}

/** Decrypts incoming frames, expecting consecutive counter nonces. */
export class FrameOpener {
  private counter = 0n;
  private readonly key: Uint8Array<ArrayBuffer>;
  private readonly webKey: WebKey;

  /** Uses the 32-byte `key`. */
  constructor(key: Uint8Array) {
    this.key = new Uint8Array(key);
    this.webKey = new WebKey(this.key);
  }

  /**
   * Returns the plaintext of `sealed` (`ciphertext || tag`); a promise for
   * frames above {@link ASYNC_AEAD_MIN_BYTES}. Throws (or rejects with)
   * {@link DecodeError} when authentication fails; the opener must then be
   * discarded. `sealed` is read before this returns, so it may be reused.
   */
  open(sealed: Uint8Array): Uint8Array | Promise<Uint8Array> {
    if (sealed.length < TAG_BYTES) throw new DecodeError("sealed frame shorter than its tag");
    const nonce = nonceFor(this.counter++);
    if (sealed.length - TAG_BYTES > ASYNC_AEAD_MIN_BYTES) return this.openAsync(sealed, nonce);
    const decipher = createDecipheriv("aes-256-gcm", this.key, nonce);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      decipher.final();
    } catch {
      throw failed();
    }
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }

  private async openAsync(sealed: Uint8Array, iv: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
    // A copy: the key may still be importing, and the caller may reuse `sealed` meanwhile.
    const copy = sealed.slice();
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt({ name: "AES-GCM", iv }, await this.webKey.get(), copy),
      );
    } catch {
      throw failed();
    }
  }
}

function failed(): DecodeError {
  return new DecodeError("frame failed authentication (tampered, replayed or reordered)");
}
