/**
 * Frame reassembly: a 16 KiB read holding fourteen 1.1 KiB frames, frames
 * split across reads, a 64 KiB frame in 16 KiB reads, and a frame header
 * dribbled one byte per read.
 *
 * @module
 */

import { FrameDecoder } from "../../../lib/codec/frame_decoder.ts";
import { PEER_FRAME_FORMAT } from "../../../lib/codec/peer_messages.ts";

function frame(payloadBytes: number): Uint8Array {
  const out = new Uint8Array(4 + payloadBytes);
  new DataView(out.buffer).setUint32(0, payloadBytes);
  out.fill(7, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const read = concat(Array.from({ length: 14 }, () => frame(1122)));
Deno.bench("14 frames of 1.1 KiB in one read", { group: "decoder" }, () => {
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  if (decoder.push(read).length !== 14) throw new Error("lost frames");
});

const stream = concat(Array.from({ length: 28 }, () => frame(1122)));
const reads = [stream.subarray(0, 7000), stream.subarray(7000, 20000), stream.subarray(20000)];
Deno.bench("28 frames of 1.1 KiB in three reads (frames split)", { group: "decoder" }, () => {
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  let frames = 0;
  for (const chunk of reads) frames += decoder.push(chunk).length;
  if (frames !== 28) throw new Error("lost frames");
});

const big = frame(65_532);
const bigReads = [0, 1, 2, 3].map((i) => big.subarray(i * 16_384, (i + 1) * 16_384));
Deno.bench("one 64 KiB frame in 16 KiB reads", { group: "decoder" }, () => {
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  let frames = 0;
  for (const chunk of bigReads) frames += decoder.push(chunk).length;
  if (frames !== 1) throw new Error("lost the frame");
});

const dribbled = frame(1000).subarray(0, 1004);
const bytes = Array.from(dribbled, (byte) => new Uint8Array([byte]));
Deno.bench("a 1 KiB frame dribbled one byte per read", { group: "decoder" }, () => {
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  let frames = 0;
  for (const chunk of bytes) frames += decoder.push(chunk).length;
  if (frames !== 1) throw new Error("lost the frame");
});
