/**
 * Identity proof-of-work against cheap Sybil identities.
 *
 * A peer presents a 64-bit nonce such that
 * `SHA-256("gossip-pow-v1" || identity || nonce u64)` starts with `difficulty`
 * zero bits. The work is bound to the identity (a new identity means new
 * work) and checked with one hash; it is computed once per host key.
 *
 * @module
 */

import { createHash } from "node:crypto";

const PREFIX = new TextEncoder().encode("gossip-pow-v1");

/** Number of leading zero bits of `bytes`. */
export function leadingZeroBits(bytes: Uint8Array): number {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

function powHash(identity: Uint8Array, nonce: bigint, scratch: DataView): Uint8Array {
  scratch.setBigUint64(0, nonce);
  return createHash("sha256").update(PREFIX).update(identity)
    .update(new Uint8Array(scratch.buffer)).digest();
}

/** True when `nonce` proves `difficulty` bits of work for `identity`. */
export function verifyProofOfWork(
  identity: Uint8Array,
  nonce: bigint,
  difficulty: number,
): boolean {
  if (difficulty <= 0) return true;
  return leadingZeroBits(powHash(identity, nonce, new DataView(new ArrayBuffer(8)))) >= difficulty;
}

/**
 * Finds a nonce for `identity` at `difficulty` (expected 2^difficulty hashes).
 * Throws RangeError when `maxAttempts` are exhausted.
 */
export function solveProofOfWork(
  identity: Uint8Array,
  difficulty: number,
  maxAttempts = 2 ** 40,
): bigint {
  if (difficulty <= 0) return 0n;
  // Hash the fixed prefix once and copy its state per attempt.
  const base = createHash("sha256").update(PREFIX).update(identity);
  const scratch = new DataView(new ArrayBuffer(8));
  const nonceBytes = new Uint8Array(scratch.buffer);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    scratch.setBigUint64(0, BigInt(attempt));
    if (leadingZeroBits(base.copy().update(nonceBytes).digest()) >= difficulty) {
      return BigInt(attempt);
    }
  }
  throw new RangeError(`no proof-of-work found in ${maxAttempts} attempts`);
}
