/**
 * Size on the wire of a peer message, computed from its fields without
 * encoding it (the simulator counts the bytes of millions of messages).
 *
 * The size is the encoded message (`encodePeerMessage`) plus the frame's
 * length field and the AES-GCM tag of the sealed frame. TCP/IP headers are
 * not counted.
 *
 * @module
 */

import { type PeerMessage, PeerMessageType } from "../codec/peer_messages.ts";

/** Frame length field (4) plus the AES-GCM tag (16) of a sealed frame. */
export const FRAME_OVERHEAD_BYTES = 4 + 16;

/** Bytes of `encodePeerMessage(message)` (type included), computed from the fields. */
export function encodedPeerMessageBytes(message: PeerMessage): number {
  switch (message.type) {
    case PeerMessageType.Hello:
      return 2 + 4 + 32 + 32 + 4 + 8 + addressBytes(message.listenAddress.hostname) + 2 +
        message.publicKey.length + 32 + 4 + 2 + message.credential.signature.length;
    case PeerMessageType.Auth:
      return 2 + 8 + message.signature.length;
    case PeerMessageType.Ping:
    case PeerMessageType.Pong:
      return 2 + 8;
    case PeerMessageType.PullRequest:
      return 2 + 2;
    case PeerMessageType.Peers:
    case PeerMessageType.Push: {
      let bytes = 2 + 2;
      for (const peer of message.peers) bytes += 32 + addressBytes(peer.address.hostname);
      // Proven marks: one bit per descriptor.
      return message.marked ? bytes + Math.ceil(message.peers.length / 8) : bytes;
    }
    case PeerMessageType.Goodbye:
      return 2 + 1;
    case PeerMessageType.Delivery:
      return 2;
    case PeerMessageType.Item:
      return 2 + 8 + 8 + 1 + 1 + 2 + message.data.length;
    case PeerMessageType.IHave:
    case PeerMessageType.IWant:
      return 2 + 2 + 8 * message.ids.length;
  }
}

/** Bytes a peer message occupies on a sealed session (frame and tag included). */
export function wireBytes(message: PeerMessage): number {
  return encodedPeerMessageBytes(message) + FRAME_OVERHEAD_BYTES;
}

/** Encoded size of an address: length byte, ASCII host, port. */
function addressBytes(hostname: string): number {
  return 1 + hostname.length + 2;
}
