/**
 * Session credentials: an Ed25519 key that the RSA host key signs once, which
 * then signs every handshake.
 *
 * An RSA-4096 signature costs about 11 ms and an Ed25519 one about 0.02 ms
 * (`node:crypto` in Deno, measured in docs/PERFORMANCE.md). A node therefore
 * signs its credential `"gossip-cred-v2" || Ed25519 public key || expiry u32`
 * with its host key at start and again each day, and its AUTH messages are
 * Ed25519 signatures: a stranger can no longer make it spend an RSA signature
 * per connection. A verified credential is cached (bounded), so one identity
 * costs a verifier one RSA verification, not one per handshake.
 *
 * @module
 */

import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import type { SessionCredentialFields } from "../codec/peer_messages.ts";
import { type HostKey, identityHex, signWithHostKey, verifyPeerSignature } from "../hostkey.ts";
import { KeyedRateLimiter } from "../protocol/rate_limit.ts";

/** How long a credential is valid after it is made. */
export const CREDENTIAL_LIFETIME_SECONDS = 2 * 86_400;
/** A credential is replaced once less than this much of its life is left. */
export const CREDENTIAL_RENEW_SECONDS = 86_400;
/** Clock difference tolerated when checking a peer's credential expiry. */
export const CREDENTIAL_SKEW_SECONDS = 600;

const CREDENTIAL_LABEL = new TextEncoder().encode("gossip-cred-v2");
// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
]);

/** This node's credential: the fields sent in HELLO and the private key that signs AUTH. */
export interface SessionCredential extends SessionCredentialFields {
  /** The Ed25519 private key. */
  readonly privateKey: KeyObject;
}

/** The bytes the host key signs: `"gossip-cred-v2" || key (32) || expiry u32`. */
export function credentialPayload(key: Uint8Array, expiry: number): Uint8Array {
  const out = new Uint8Array(CREDENTIAL_LABEL.length + key.length + 4);
  out.set(CREDENTIAL_LABEL);
  out.set(key, CREDENTIAL_LABEL.length);
  new DataView(out.buffer).setUint32(CREDENTIAL_LABEL.length + key.length, expiry);
  return out;
}

/** Signs `data` with a credential's Ed25519 key (64 bytes). */
export function signWithCredential(credential: SessionCredential, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, credential.privateKey));
}

/** Makes a fresh credential for `hostKey`, valid for {@link CREDENTIAL_LIFETIME_SECONDS}. */
export async function issueCredential(
  hostKey: HostKey,
  nowSeconds: number = Date.now() / 1000,
): Promise<SessionCredential> {
  const pair = generateKeyPairSync("ed25519");
  const key = new Uint8Array(
    pair.publicKey.export({ format: "der", type: "spki" }).subarray(ED25519_SPKI_PREFIX.length),
  );
  const expiry = Math.floor(nowSeconds) + CREDENTIAL_LIFETIME_SECONDS;
  const signature = await signWithHostKey(hostKey, credentialPayload(key, expiry));
  return { key, expiry, signature, privateKey: pair.privateKey };
}

/**
 * Keeps a node's current credential, renewing it (one RSA signature) when less
 * than {@link CREDENTIAL_RENEW_SECONDS} of its life is left.
 */
export class CredentialIssuer {
  /** RSA signatures made (one per credential). */
  signatures = 0;
  private credential: SessionCredential | undefined;
  private pending: Promise<SessionCredential> | undefined;

  /** Issues for `hostKey`; `clock` gives Unix time in ms (tests move it). */
  constructor(
    private readonly hostKey: HostKey,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The current credential; resolves at once unless none is valid yet. */
  current(): Promise<SessionCredential> {
    const now = this.clock() / 1000;
    const credential = this.credential;
    if (credential && credential.expiry - now > CREDENTIAL_RENEW_SECONDS) {
      return Promise.resolve(credential);
    }
    this.pending ??= issueCredential(this.hostKey, now).then((fresh) => {
      this.signatures++;
      this.credential = fresh;
      return fresh;
    }).finally(() => this.pending = undefined);
    // A credential that is still valid serves while its successor is being signed.
    return credential && credential.expiry > now ? Promise.resolve(credential) : this.pending;
  }
}

const issuers = new WeakMap<HostKey, CredentialIssuer>();

/** The issuer shared by all sessions of `hostKey` (one per node). */
export function credentialIssuerFor(hostKey: HostKey): CredentialIssuer {
  let issuer = issuers.get(hostKey);
  if (!issuer) {
    issuer = new CredentialIssuer(hostKey);
    issuers.set(hostKey, issuer);
  }
  return issuer;
}

/** The Ed25519 public key of a credential, for verifying AUTH. */
export function credentialPublicKey(key: Uint8Array): KeyObject {
  const spki = new Uint8Array(ED25519_SPKI_PREFIX.length + key.length);
  spki.set(ED25519_SPKI_PREFIX);
  spki.set(key, ED25519_SPKI_PREFIX.length);
  return createPublicKey({ key: spki as unknown as Buffer, format: "der", type: "spki" });
}

/** True when `signature` is the credential key's Ed25519 signature of `data`. */
export function verifyWithCredential(
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** Checks of a peer credential's expiry against the verifier's clock. */
export function credentialExpiryProblem(expiry: number, nowSeconds: number): string | undefined {
  if (expiry + CREDENTIAL_SKEW_SECONDS < nowSeconds) return "expired";
  if (expiry > nowSeconds + CREDENTIAL_LIFETIME_SECONDS + CREDENTIAL_SKEW_SECONDS) {
    return "valid for longer than allowed";
  }
  return undefined;
}

/** Most verified credentials remembered. */
const CACHE_LIMIT = 1024;
/**
 * Credential hash (with the key-size bounds) → verified, or the check in
 * progress (so concurrent handshakes of one identity share one RSA check).
 * Insertion order = recency.
 */
const verified = new Map<string, boolean | Promise<boolean>>();

/** Verifications of credentials by RSA (cache misses), for tests and measurements. */
export const credentialStats = { rsaVerifications: 0, cacheHits: 0, refusedByRate: 0 };

/**
 * New (uncached) credentials an identity may have verified at once. An honest
 * node makes one at start and one a day, so a few restarts in a row fit; an
 * attacker reusing one identity with fresh junk credentials would otherwise
 * buy an RSA verification (up to RSA-4096) for an Ed25519 signature.
 */
export const NEW_CREDENTIAL_BURST = 4;
/**
 * New credentials per identity per second beyond the burst: one a minute. A
 * fixed window of 4 per 10 minutes locked out honest nodes that restarted
 * often (a churn soak restarts each node every ~95 s): their handshakes failed
 * for the rest of the window, and their peers' dials to them failed too.
 */
export const NEW_CREDENTIAL_RATE_PER_SECOND = 1 / 60;
const newCredentials = new KeyedRateLimiter(
  NEW_CREDENTIAL_RATE_PER_SECOND,
  NEW_CREDENTIAL_BURST,
  CACHE_LIMIT * 4,
);

function allowNewCredential(spki: Uint8Array, now: number): boolean {
  const identity = identityHex(new Uint8Array(createHash("sha256").update(spki).digest()));
  return newCredentials.take(identity, now);
}

/** The outcome of {@link verifyCredential}. */
export type CredentialCheck = "valid" | "invalid" | "too-many-new";

/**
 * True when the host key `spki` signed `credential` (RSA-PSS, the key between
 * `minBits` and 8192 bits). Results are cached by the hash of the key and the
 * credential, so a credential is checked by RSA once while it stays in the
 * cache; an identity gets {@link NEW_CREDENTIAL_BURST} uncached checks at once
 * and then {@link NEW_CREDENTIAL_RATE_PER_SECOND} a second (beyond that:
 * "too-many-new", no RSA work).
 * Expiry is not checked here ({@link credentialExpiryProblem}). `now` (ms, a
 * monotonic clock) paces the new credentials.
 */
export async function verifyCredential(
  spki: Uint8Array,
  credential: SessionCredentialFields,
  minBits: number,
  now: number = performance.now(),
): Promise<CredentialCheck> {
  const id = identityHex(
    new Uint8Array(
      createHash("sha256").update(spki).update(credential.key).update(credential.signature)
        .update(`${credential.expiry}/${minBits}`).digest(),
    ),
  );
  const cached = verified.get(id);
  if (cached !== undefined) {
    credentialStats.cacheHits++;
    verified.delete(id);
    verified.set(id, cached);
    return (await cached) ? "valid" : "invalid";
  }
  if (!allowNewCredential(spki, now)) {
    credentialStats.refusedByRate++;
    return "too-many-new";
  }
  credentialStats.rsaVerifications++;
  const check = verifyPeerSignature(
    spki,
    credentialPayload(credential.key, credential.expiry),
    credential.signature,
    { minBits },
  );
  verified.set(id, check);
  const ok = await check;
  if (verified.get(id) === check) verified.set(id, ok);
  if (verified.size > CACHE_LIMIT) {
    const oldest = verified.keys().next().value;
    if (oldest !== undefined) verified.delete(oldest);
  }
  return ok ? "valid" : "invalid";
}
