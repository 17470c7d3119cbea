/**
 * The handshake attacker's side of the peer protocol: given the victim's
 * HELLO, the bytes of a HELLO and a valid AUTH of one reused identity.
 *
 * @module
 */

import {
  decodePeerMessage,
  encodePeerMessage,
  framePeerPayload,
  type HelloMessage,
  joinRecords,
  PEER_PROTOCOL_VERSION,
  PeerMessageType,
} from "../../lib/codec/peer_messages.ts";
import type { HostKey } from "../../lib/hostkey.ts";
import { powEpoch, solveProofOfWork } from "../../lib/protocol/proof_of_work.ts";
import { issueCredential, signWithCredential } from "../../lib/transport/credential.ts";
import {
  authPayload,
  deriveSessionCiphers,
  generateEphemeralKey,
  solvePuzzle,
  transcriptHash,
} from "../../lib/transport/peer_crypto.ts";

/** Returns the attacker's HELLO and AUTH frames for the victim's HELLO payload. */
export type HandshakeForger = (victimHello: Uint8Array) => Promise<Uint8Array>;

/**
 * Prepares a forger for `key` (its proof-of-work and credential made once).
 * The ephemeral key is reused too: the cheapest attacker whose AUTH still
 * verifies. It solves the puzzle the victim demands, if any.
 */
export async function forgeHandshake(key: HostKey, difficulty: number): Promise<HandshakeForger> {
  const epoch = powEpoch();
  const powNonce = solveProofOfWork(key.identity, epoch, difficulty);
  const credential = await issueCredential(key);
  const ephemeral = generateEphemeralKey();
  const hello = encodePeerMessage({
    type: PeerMessageType.Hello,
    version: PEER_PROTOCOL_VERSION,
    puzzleBits: 0,
    flags: 0,
    ephemeralKey: ephemeral.publicKey,
    nonce: crypto.getRandomValues(new Uint8Array(32)),
    powEpoch: epoch,
    powNonce,
    listenAddress: { hostname: "127.0.0.1", port: 9 },
    publicKey: key.publicKeyDer,
    credential,
  }).slice();
  const helloFrame = framePeerPayload(hello);
  return async (victimHello) => {
    const theirs = decodePeerMessage(victimHello) as HelloMessage;
    const transcript = transcriptHash(hello, victimHello);
    const ciphers = deriveSessionCiphers(ephemeral, theirs.ephemeralKey, transcript, "initiator");
    const signature = signWithCredential(credential, authPayload("initiator", transcript));
    const puzzleSolution = solvePuzzle(transcript, theirs.puzzleBits);
    const auth = await ciphers.send.sealFrame(
      joinRecords([encodePeerMessage({ type: PeerMessageType.Auth, puzzleSolution, signature })]),
    );
    const out = new Uint8Array(helloFrame.length + auth.length);
    out.set(helloFrame);
    out.set(auth, helloFrame.length);
    return out;
  };
}
