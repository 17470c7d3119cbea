/** Byte helpers for tests, written independently of lib/codec. */

import { Buffer } from "node:buffer";

/** Peer frame by hand: `length u32` counting only the payload, then the payload. */
export function peerFrame(payload: readonly number[] | Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** The parts one after another, as a plain Uint8Array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
