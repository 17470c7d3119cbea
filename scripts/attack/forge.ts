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
import { type HostKey, signWithHostKey } from "../../lib/hostkey.ts";
import { powEpoch, solveProofOfWork } from "../../lib/protocol/proof_of_work.ts";
import {
  authPayload,
  deriveSessionCiphers,
  generateEphemeralKey,
  transcriptHash,
} from "../../lib/transport/peer_crypto.ts";

/** Returns the attacker's HELLO and AUTH frames for the victim's HELLO payload. */
export type HandshakeForger = (victimHello: Uint8Array) => Promise<Uint8Array>;

/**
 * Prepares a forger for `key` (its proof-of-work solved once). The ephemeral
 * key is reused too: the cheapest attacker that still gets AUTH verified.
 */
export async function forgeHandshake(key: HostKey, difficulty: number): Promise<HandshakeForger> {
  const epoch = powEpoch();
  const powNonce = solveProofOfWork(key.identity, epoch, difficulty);
  const ephemeral = generateEphemeralKey();
  const hello = encodePeerMessage({
    type: PeerMessageType.Hello,
    version: PEER_PROTOCOL_VERSION,
    ephemeralKey: ephemeral.publicKey,
    nonce: crypto.getRandomValues(new Uint8Array(32)),
    powEpoch: epoch,
    powNonce,
    listenAddress: { hostname: "127.0.0.1", port: 9 },
    publicKey: key.publicKeyDer,
  }).slice();
  const helloFrame = framePeerPayload(hello);
  await Promise.resolve();
  return async (victimHello) => {
    const theirs = decodePeerMessage(victimHello) as HelloMessage;
    const transcript = transcriptHash(hello, victimHello);
    const ciphers = deriveSessionCiphers(ephemeral, theirs.ephemeralKey, transcript, "initiator");
    const signature = await signWithHostKey(key, authPayload("initiator", transcript));
    const auth = framePeerPayload(
      ciphers.send.seal(
        joinRecords([encodePeerMessage({ type: PeerMessageType.Auth, signature })]),
      ),
    );
    const out = new Uint8Array(helloFrame.length + auth.length);
    out.set(helloFrame);
    out.set(auth, helloFrame.length);
    return out;
  };
}
