/**
 * Identity proof-of-work against cheap Sybil identities.
 *
 * A peer presents an epoch and a 64-bit nonce such that
 * `SHA-256("gossip-pow-v2" || identity || epoch u32 || nonce u64)` starts with
 * `difficulty` zero bits. The epoch is the current day (Unix time divided by
 * {@link POW_EPOCH_SECONDS}); a proof is accepted for the epoch before and after
 * the verifier's own, so clocks may disagree by up to a day. The work is thus
 * bound to the identity (a new identity means new work) and to time (keeping an
 * identity costs the work again every day); checking it takes one hash.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";

const PREFIX = new TextEncoder().encode("gossip-pow-v2");

/** Length of a proof-of-work epoch: one day. */
export const POW_EPOCH_SECONDS = 86_400;

/** A solved proof: the epoch it is for and the nonce. */
export interface ProofOfWork {
  /** Days since the Unix epoch when the proof was made. */
  readonly epoch: number;
  /** The nonce that makes the hash start with enough zero bits. */
  readonly nonce: bigint;
}

/** The proof-of-work epoch at `nowMs` (milliseconds since the Unix epoch). */
export function powEpoch(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000 / POW_EPOCH_SECONDS);
}

/** True when `epoch` is within one epoch of the one at `nowMs`. */
export function isFreshEpoch(epoch: number, nowMs: number = Date.now()): boolean {
  return Math.abs(epoch - powEpoch(nowMs)) <= 1;
}

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

/**
 * The hash input `prefix || identity || epoch || nonce`, built once per solve;
 * each attempt rewrites only the nonce. Hashing in JavaScript (`@noble/hashes`)
 * instead of through `node:crypto` keeps the ~65,000 attempts of a solve from
 * creating a native hash object each: those left 30+ MiB of the process's
 * memory behind (docs/PERFORMANCE.md), and this is also faster.
 */
class Attempts {
  private readonly message: Uint8Array;
  private readonly view: DataView;
  private readonly nonceOffset: number;

  constructor(identity: Uint8Array, epoch: number) {
    this.message = new Uint8Array(PREFIX.length + identity.length + 12);
    this.message.set(PREFIX);
    this.message.set(identity, PREFIX.length);
    this.view = new DataView(this.message.buffer);
    this.view.setUint32(PREFIX.length + identity.length, epoch);
    this.nonceOffset = PREFIX.length + identity.length + 4;
  }

  /** Leading zero bits of the hash with `nonce`. */
  bits(nonce: bigint): number {
    this.view.setBigUint64(this.nonceOffset, nonce);
    return leadingZeroBits(sha256(this.message));
  }
}

/**
 * True when `nonce` proves `difficulty` bits of work for `identity` in `epoch`.
 * Whether the epoch is current is checked separately ({@link isFreshEpoch}).
 */
export function verifyProofOfWork(
  identity: Uint8Array,
  epoch: number,
  nonce: bigint,
  difficulty: number,
): boolean {
  if (difficulty <= 0) return true;
  return new Attempts(identity, epoch).bits(nonce) >= difficulty;
}

/**
 * Finds a nonce for `identity` in `epoch` at `difficulty` (expected 2^difficulty
 * hashes, about 2.5 us each). Throws RangeError when `maxAttempts` are exhausted.
 */
export function solveProofOfWork(
  identity: Uint8Array,
  epoch: number,
  difficulty: number,
  maxAttempts = 2 ** 40,
): bigint {
  if (difficulty <= 0) return 0n;
  const attempts = new Attempts(identity, epoch);
  for (let nonce = 0; nonce < maxAttempts; nonce++) {
    if (attempts.bits(BigInt(nonce)) >= difficulty) return BigInt(nonce);
  }
  throw new RangeError(`no proof-of-work found in ${maxAttempts} attempts`);
}

/**
 * Like {@link solveProofOfWork}, but yields to the event loop every
 * `sliceAttempts` attempts so that a running node keeps serving while it renews
 * its proof. Rejects with the signal's reason when `signal` aborts.
 */
export async function solveProofOfWorkInSlices(
  identity: Uint8Array,
  epoch: number,
  difficulty: number,
  options: { sliceAttempts?: number; signal?: AbortSignal; maxAttempts?: number } = {},
): Promise<bigint> {
  const { sliceAttempts = 4096, signal, maxAttempts = 2 ** 40 } = options;
  if (difficulty <= 0) return 0n;
  const attempts = new Attempts(identity, epoch);
  for (let nonce = 0; nonce < maxAttempts;) {
    signal?.throwIfAborted();
    const end = Math.min(maxAttempts, nonce + sliceAttempts);
    for (; nonce < end; nonce++) {
      if (attempts.bits(BigInt(nonce)) >= difficulty) return BigInt(nonce);
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  throw new RangeError(`no proof-of-work found in ${maxAttempts} attempts`);
}
