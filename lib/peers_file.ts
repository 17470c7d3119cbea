/**
 * The peers file (`peers_file`): peers this node verified and bans in force,
 * saved every 30 s and at shutdown and read at start, so that a restarted node
 * rejoins through peers it knows and keeps its bans.
 *
 * The file is JSON, written atomically (temporary file, then rename):
 * `{"version": 2, "peers": [{"identity", "address", "tried"?, "anchor"?,
 * "proven"?}], "bans": [...], "proof"?: {"identity", "epoch", "nonce"}}`, where
 * `"tried": true` marks a peer this node chose to dial (absent: a peer
 * verified only by a probe after it dialled in; see `Membership`),
 * `"anchor": true` one of its outbound peers when saved (dialled first, once,
 * at the next start, so that an attacker that filled its view does not choose
 * its first peers; once one of its peers had proven itself, only its proven
 * outbound peers), `"proven": true` a peer that had brought it items first
 * (ranked with proven peers at the next start, until a dial reaches it: the
 * guard's scores are not saved), and `proof` is the node's own identity
 * proof-of-work of the day (nonce as a decimal string), so that a node
 * restarted the same day does not solve it again. A missing file is normal
 * (first start); an unreadable, oversized or damaged one is logged and
 * ignored: the node starts without it.
 *
 * @module
 */

import { formatSocketAddress, parseSocketAddress } from "./address.ts";
import { MAX_PEERS_FILE_BYTES, readBoundedTextFile } from "./bounded_file.ts";
import { FileReadError } from "./errors.ts";
import type { PersistentState } from "./core/node_core.ts";
import type { Logger } from "./log.ts";

/** A node's own proof-of-work as the peers file keeps it. */
export interface SavedProof {
  /** Hex identity the proof was solved for. */
  readonly identity: string;
  /** Its day (days since the Unix epoch). */
  readonly epoch: number;
  /** Its nonce. */
  readonly nonce: bigint;
}

/** What the peers file holds: the core's state and the node's proof-of-work. */
export interface PeersFileContents extends PersistentState {
  /** The node's proof-of-work of the day, when it had solved one. */
  readonly proof?: SavedProof;
}

/** A hex identity as written: 64 lower-case hex digits. */
const IDENTITY_HEX = /^[0-9a-f]{64}$/;

/** Most peers written. */
const MAX_SAVED_PEERS = 1000;

/** Reads the peers file at `path`; undefined when missing or unusable (logged). */
export async function readPeersFile(
  path: string,
  log: Logger,
): Promise<PeersFileContents | undefined> {
  let text: string;
  try {
    text = await readBoundedTextFile(path, MAX_PEERS_FILE_BYTES, "peers_file");
  } catch (error) {
    if (!(error instanceof FileReadError && error.problem === "missing")) {
      log.warn("cannot read peers file; starting without it", { path, error: String(error) });
    }
    return undefined;
  }
  try {
    return parsePeersFile(text);
  } catch (error) {
    log.warn("ignoring damaged peers file", { path, error: String(error) });
    return undefined;
  }
}

/** Parses the peers file's JSON, keeping only well-formed entries. */
export function parsePeersFile(text: string): PeersFileContents {
  const parsed = JSON.parse(text) as {
    peers?: {
      identity?: unknown;
      address?: unknown;
      tried?: unknown;
      anchor?: unknown;
      proven?: unknown;
    }[];
    bans?: { key?: unknown; until?: unknown }[];
    proof?: { identity?: unknown; epoch?: unknown; nonce?: unknown };
  };
  const peers = (Array.isArray(parsed.peers) ? parsed.peers : []).flatMap((entry) =>
    typeof entry?.identity === "string" && IDENTITY_HEX.test(entry.identity) &&
      typeof entry.address === "string"
      ? [{
        identity: entry.identity,
        address: parseSocketAddress(entry.address, "peers_file"),
        tried: entry.tried === true,
        ...(entry.anchor === true ? { anchor: true } : {}),
        ...(entry.proven === true ? { proven: true } : {}),
      }]
      : []
  );
  const bans = (Array.isArray(parsed.bans) ? parsed.bans : []).flatMap((entry) =>
    typeof entry?.key === "string" && entry.key.length <= 64 && typeof entry.until === "number"
      ? [{ key: entry.key, until: entry.until }]
      : []
  );
  const proof = parseProof(parsed.proof);
  return proof ? { peers, bans, proof } : { peers, bans };
}

/** A well-formed saved proof, or undefined (whether it verifies is the node's check). */
function parseProof(
  entry: { identity?: unknown; epoch?: unknown; nonce?: unknown } | undefined,
): SavedProof | undefined {
  if (
    typeof entry?.identity !== "string" || !IDENTITY_HEX.test(entry.identity) ||
    typeof entry.epoch !== "number" || !Number.isSafeInteger(entry.epoch) || entry.epoch < 0 ||
    typeof entry.nonce !== "string" || !/^[0-9]{1,20}$/.test(entry.nonce)
  ) return undefined;
  const nonce = BigInt(entry.nonce);
  if (nonce >= 2n ** 64n) return undefined;
  return { identity: entry.identity, epoch: entry.epoch, nonce };
}

/** Writes `state` to `path` atomically; failures are logged, not thrown. */
export async function writePeersFile(
  path: string,
  state: PeersFileContents,
  log: Logger,
): Promise<void> {
  if (state.peers.length === 0 && state.bans.length === 0 && !state.proof) return;
  const body = {
    version: 2,
    peers: state.peers.slice(0, MAX_SAVED_PEERS).map((peer) => ({
      identity: peer.identity,
      address: formatSocketAddress(peer.address),
      ...(peer.tried ? { tried: true } : {}),
      ...(peer.anchor ? { anchor: true } : {}),
      ...(peer.proven ? { proven: true } : {}),
    })),
    bans: state.bans,
    ...(state.proof
      ? {
        proof: {
          identity: state.proof.identity,
          epoch: state.proof.epoch,
          nonce: state.proof.nonce.toString(),
        },
      }
      : {}),
  };
  const temp = `${path}.tmp`;
  try {
    await Deno.writeTextFile(temp, JSON.stringify(body, null, 1) + "\n");
    await Deno.rename(temp, path);
  } catch (error) {
    log.warn("cannot write peers file", { path, error: String(error) });
  }
}
