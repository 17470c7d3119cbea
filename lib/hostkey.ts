/**
 * The peer's RSA host key and peer signatures.
 *
 * Keys are read with `node:crypto` (which understands both PKCS#1
 * `BEGIN RSA PRIVATE KEY` and PKCS#8 `BEGIN PRIVATE KEY` PEM) and used through
 * Web Crypto as RSA-PSS with SHA-256 and a 32-byte salt. A peer's identity is
 * the SHA-256 of its SubjectPublicKeyInfo DER encoding.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { displayPath, MAX_HOSTKEY_BYTES, readBoundedTextFile } from "./bounded_file.ts";
import { ConfigError, FileReadError } from "./errors.ts";

/** This peer's private key, public key and identity. */
export interface HostKey {
  /** RSA-PSS / SHA-256 private key, usable for `sign` only, not extractable. */
  readonly privateKey: CryptoKey;
  /** The public key as SubjectPublicKeyInfo DER. */
  readonly publicKeyDer: Uint8Array;
  /** SHA-256 of {@linkcode HostKey.publicKeyDer}, 32 bytes. */
  readonly identity: Uint8Array;
  /** RSA modulus size in bits. */
  readonly modulusBits: number;
}

/** Options for reading a host key. */
export interface HostKeyOptions {
  /** Smallest accepted modulus in bits; default {@linkcode DEFAULT_MIN_BITS}. */
  readonly minBits?: number;
  /** Largest accepted modulus in bits; default {@linkcode DEFAULT_MAX_BITS}. */
  readonly maxBits?: number;
}

/** Options for verifying a peer's signature. */
export interface VerifyOptions {
  /** Smallest accepted modulus in bits; default {@linkcode DEFAULT_MIN_BITS}. */
  readonly minBits?: number;
  /** Largest accepted modulus in bits; default {@linkcode DEFAULT_MAX_BITS}. */
  readonly maxBits?: number;
}

/** Default smallest RSA modulus accepted for host keys and peer keys. */
export const DEFAULT_MIN_BITS = 2048;

/**
 * Default largest RSA modulus accepted for host keys and peer keys (the spec
 * uses 4096). Deno's RSA implementation (both Web Crypto and `node:crypto`,
 * checked on Deno 2.9.6) refuses to import a public key above 4096 bits
 * ("SPKI cryptographic key data malformed", "modulus too large"), so a peer
 * with a 6144- or 8192-bit key could sign but no gossip node could verify it.
 * Keygen and the daemon's start refuse such keys for the same reason. It also
 * bounds the work a malicious peer can make us do per signature check.
 */
export const DEFAULT_MAX_BITS = 4096;

/** Why keys above {@linkcode DEFAULT_MAX_BITS} are refused, for messages. */
export const MAX_BITS_REASON =
  "gossip nodes run on Deno, whose RSA implementation cannot verify signatures of larger keys";

/** Salt length used for RSA-PSS signatures (the SHA-256 output size). */
export const PSS_SALT_LENGTH = 32;

const PSS_IMPORT: RsaHashedImportParams = { name: "RSA-PSS", hash: "SHA-256" };
const PSS_SIGN: RsaPssParams = { name: "RSA-PSS", saltLength: PSS_SALT_LENGTH };

/** Returns a view whose buffer is a plain ArrayBuffer, as Web Crypto's types require. */
function bytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer
    ? data as Uint8Array<ArrayBuffer>
    : new Uint8Array(data);
}

/** Copies a Node Buffer into a standalone Uint8Array. */
function fromBuffer(buffer: Buffer): Uint8Array<ArrayBuffer> {
  return new Uint8Array(buffer);
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Parses a PEM RSA private key (PKCS#1 or PKCS#8) into a {@linkcode HostKey}.
 *
 * @param pem the PEM text.
 * @param key the configuration key the PEM came from, named in errors.
 * @param options `minBits` lowers or raises the 2048-bit minimum.
 * @throws {ConfigError} naming `key` for encrypted, public, non-RSA, too
 * small or unparsable keys.
 */
export async function parseHostKeyPem(
  pem: string,
  key = "hostkey",
  options: HostKeyOptions = {},
): Promise<HostKey> {
  const minBits = options.minBits ?? DEFAULT_MIN_BITS;
  const maxBits = options.maxBits ?? DEFAULT_MAX_BITS;
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
  if (label === undefined) {
    throw new ConfigError(
      key,
      "is not a PEM private key (no `-----BEGIN ...-----` line); expected an RSA private key " +
        "in PEM, e.g. from `gossip keygen <path>`",
    );
  }
  if (label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,ENCRYPTED/.test(pem)) {
    throw new ConfigError(
      key,
      "is encrypted with a passphrase, which the daemon cannot ask for; decrypt it with " +
        "`openssl pkey -in <key> -out <plain-key>` and protect the file with mode 0600",
    );
  }
  if (label.includes("PUBLIC KEY") || label === "CERTIFICATE") {
    throw new ConfigError(
      key,
      `contains a ${label.toLowerCase()}, not a private key; point it at the RSA private key`,
    );
  }
  if (label !== "RSA PRIVATE KEY" && label !== "PRIVATE KEY") {
    throw new ConfigError(
      key,
      `has an unsupported "${label}" PEM block; expected an RSA private key ` +
        "(BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)",
    );
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: pem, format: "pem" });
  } catch (error) {
    throw new ConfigError(
      key,
      `cannot parse the PEM private key (${reasonOf(error)}); expected an unencrypted RSA key`,
    );
  }
  if (keyObject.asymmetricKeyType !== "rsa") {
    throw new ConfigError(
      key,
      `is a ${keyObject.asymmetricKeyType ?? "unknown"} key; gossip needs a plain RSA key ` +
        "(create one with `gossip keygen <path>`)",
    );
  }
  let privateKey: CryptoKey;
  let publicKeyDer: Uint8Array<ArrayBuffer>;
  try {
    const pkcs8 = fromBuffer(keyObject.export({ type: "pkcs8", format: "der" }));
    publicKeyDer = fromBuffer(
      createPublicKey(keyObject).export({ type: "spki", format: "der" }),
    );
    privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, PSS_IMPORT, false, ["sign"]);
  } catch (error) {
    throw new ConfigError(key, `cannot use the RSA key (${reasonOf(error)})`);
  }
  const modulusBits = (privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;
  if (modulusBits < minBits) {
    throw new ConfigError(
      key,
      `is a ${modulusBits}-bit RSA key; at least ${minBits} bits are required ` +
        "(the spec uses 4096; create one with `gossip keygen <path>`)",
    );
  }
  if (modulusBits > maxBits) {
    throw new ConfigError(
      key,
      `is a ${modulusBits}-bit RSA key; at most ${maxBits} bits are supported because ` +
        `${MAX_BITS_REASON} (create a 4096-bit key with \`gossip keygen <path>\`)`,
    );
  }
  const identity = new Uint8Array(await crypto.subtle.digest("SHA-256", publicKeyDer));
  return { privateKey, publicKeyDer, identity, modulusBits };
}

/**
 * Reads the PEM host key at `path` (a regular file of at most
 * {@linkcode MAX_HOSTKEY_BYTES}) and parses it with {@linkcode parseHostKeyPem}.
 *
 * @throws {FileReadError} `hostkey` when the file is missing (the message points
 * to `gossip keygen`), not a regular file, too large or unreadable.
 * @throws {ConfigError} `hostkey` when the key is unusable.
 */
export async function loadHostKey(path: string, options: HostKeyOptions = {}): Promise<HostKey> {
  let pem: string;
  try {
    pem = await readBoundedTextFile(path, MAX_HOSTKEY_BYTES, "hostkey");
  } catch (error) {
    if (error instanceof FileReadError && error.problem === "missing") {
      throw new FileReadError(
        "hostkey",
        path,
        "missing",
        `${displayPath(path)}: no such file; create the key with ` +
          `\`gossip keygen ${displayPath(path)}\` (or check the path for a typo)`,
      );
    }
    throw error;
  }
  return await parseHostKeyPem(pem, "hostkey", options);
}

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * Generates a new RSA private key and returns it as PKCS#8 PEM.
 *
 * @param bits modulus size, a multiple of 8 from 1024 to {@linkcode DEFAULT_MAX_BITS}
 * (default 4096, as the spec uses). Below {@linkcode DEFAULT_MIN_BITS} only tests
 * can use the key (nodes accept it with a lowered `minPeerKeyBits`).
 * @throws {ConfigError} `bits` when the size is out of range.
 */
export async function generateHostKeyPem(bits = 4096): Promise<string> {
  if (!Number.isInteger(bits) || bits < 1024 || bits > DEFAULT_MAX_BITS || bits % 8 !== 0) {
    throw new ConfigError(
      "bits",
      `${bits} is invalid; expected a multiple of 8 from 1024 to ${DEFAULT_MAX_BITS}`,
    );
  }
  const { privateKey } = await generateKeyPairAsync("rsa", {
    modulusLength: bits,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return privateKey;
}

/**
 * Checks that nothing exists at `path` (not even a dangling symbolic link), so
 * that a key can be generated there; call it before the slow generation.
 *
 * @param key the config key or command named in errors.
 * @throws {ConfigError} `key` when something exists at `path` or it cannot be checked.
 */
export async function assertHostKeyPathFree(path: string, key = "hostkey"): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new ConfigError(key, `cannot check ${displayPath(path)}: ${reasonOf(error)}`);
  }
  throw new ConfigError(key, `${displayPath(path)} ${existingKind(info)}`);
}

/** Says what is in the way at `path`, for messages. */
function existingKind(info: Deno.FileInfo): string {
  if (info.isSymlink) {
    return "is a symbolic link (to a missing file, or a link loop); refusing to write a key " +
      "through it (remove the link or point hostkey at the real file)";
  }
  return "already exists; refusing to overwrite a key (delete it first or choose another path)";
}

/**
 * Writes `pem` to a new file at `path` with mode 0600, creating missing parent
 * directories (mode 0700). Never overwrites an existing file or follows a link.
 *
 * @param key the config key or command named in errors.
 * @throws {ConfigError} `key` when something exists at `path` or it cannot be written.
 */
export async function writeHostKeyFile(path: string, pem: string, key = "hostkey"): Promise<void> {
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ConfigError(key, `cannot write ${displayPath(path)}: ${reasonOf(error)}`);
  }
  try {
    await Deno.writeTextFile(path, pem, { createNew: true, mode: 0o600 });
  } catch (error) {
    // Something in the way (a file, or a link: some permission checks resolve the path
    // first and report a link loop instead of "exists").
    const info = await Deno.lstat(path).catch(() => undefined);
    if (info?.isSymlink || error instanceof Deno.errors.AlreadyExists) {
      throw new ConfigError(
        key,
        `${displayPath(path)} ${
          info ? existingKind(info) : "already exists; refusing to overwrite a key"
        }`,
      );
    }
    throw new ConfigError(key, `cannot write ${displayPath(path)}: ${reasonOf(error)}`);
  }
}

/** Signs `data` with the host key (RSA-PSS, SHA-256, 32-byte salt). */
export async function signWithHostKey(key: HostKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign(PSS_SIGN, key.privateKey, bytes(data)));
}

/** A cached peer key: the imported key, or `null` when the SPKI was unusable. */
type CachedKey = { readonly key: CryptoKey; readonly bits: number } | null;

/** Maximum number of peer keys kept imported. */
const KEY_CACHE_LIMIT = 1024;
const keyCache = new Map<string, CachedKey>();

async function importPeerKey(spkiDer: Uint8Array<ArrayBuffer>): Promise<CachedKey> {
  const id = identityHex(new Uint8Array(await crypto.subtle.digest("SHA-256", spkiDer)));
  const cached = keyCache.get(id);
  if (cached !== undefined) {
    // Refresh recency: Map iteration order is insertion order.
    keyCache.delete(id);
    keyCache.set(id, cached);
    return cached;
  }
  let entry: CachedKey;
  try {
    const key = await crypto.subtle.importKey("spki", spkiDer, PSS_IMPORT, false, ["verify"]);
    entry = { key, bits: (key.algorithm as RsaHashedKeyAlgorithm).modulusLength };
  } catch {
    entry = null;
  }
  keyCache.set(id, entry);
  if (keyCache.size > KEY_CACHE_LIMIT) {
    const oldest = keyCache.keys().next().value;
    if (oldest !== undefined) keyCache.delete(oldest);
  }
  return entry;
}

/**
 * Checks a peer's RSA-PSS/SHA-256 signature of `data` against the peer's
 * public key given as SPKI DER. Imported keys are cached (bounded).
 *
 * @returns true only for a valid signature by an RSA key within
 * `minBits`..`maxBits`; false (never throws) for bad or unsupported keys and bad signatures.
 */
export async function verifyPeerSignature(
  spkiDer: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  options: VerifyOptions = {},
): Promise<boolean> {
  try {
    const entry = await importPeerKey(bytes(spkiDer));
    if (entry === null) return false;
    if (entry.bits < (options.minBits ?? DEFAULT_MIN_BITS)) return false;
    if (entry.bits > (options.maxBits ?? DEFAULT_MAX_BITS)) return false;
    if (signature.length !== Math.ceil(entry.bits / 8)) return false;
    return await crypto.subtle.verify(PSS_SIGN, entry.key, bytes(signature), bytes(data));
  } catch {
    return false;
  }
}

/** Lower-case hex of an identity (or any bytes). */
export function identityHex(identity: Uint8Array): string {
  let hex = "";
  for (const byte of identity) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The first 8 hex characters of an identity, for log lines. */
export function shortId(identity: Uint8Array): string {
  return identityHex(identity.subarray(0, 4));
}
