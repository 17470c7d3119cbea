import assert from "node:assert/strict";
import { API_FRAME_FORMAT } from "../lib/codec/api_messages.ts";
import { FrameDecoder, type FrameFormat } from "../lib/codec/frame_decoder.ts";
import { PEER_FRAME_FORMAT, PEER_MAX_FRAME_BYTES } from "../lib/codec/peer_messages.ts";
import { DecodeError, FrameTooLargeError } from "../lib/errors.ts";
import { concat, peerFrame } from "./support/bytes.ts";

// Frames are built by hand here, independently of the code under test.

/** API frame: `size u16` counting the whole frame, then `type u16`, then `body`. */
function apiFrame(type: number, body: readonly number[] | Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, out.length);
  view.setUint16(2, type);
  out.set(body, 4);
  return out;
}

function filled(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

/** Copies frames so later buffer reuse cannot change what the test compares. */
function pushAll(decoder: FrameDecoder, chunks: readonly Uint8Array[]): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (const chunk of chunks) {
    for (const frame of decoder.push(chunk)) frames.push(frame.slice());
  }
  return frames;
}

const API_FRAMES = [
  apiFrame(501, [0, 0, 0x01, 0x02]),
  apiFrame(500, [3, 0, 0, 7, 0xaa, 0xbb, 0xcc]),
  apiFrame(503, [0x12, 0x34, 0, 1]),
  apiFrame(502, [0xff, 0xff, 0, 9, 1]),
  apiFrame(0, []),
];

const PEER_FRAMES = [
  peerFrame([0x03, 0xea, 1, 2, 3, 4, 5, 6, 7, 8]),
  peerFrame([0x03, 0xf2]),
  peerFrame(filled(300, 3)),
  peerFrame([0x03, 0xf5, 1]),
];

const FORMATS: [string, FrameFormat, Uint8Array[]][] = [
  ["api", API_FRAME_FORMAT, API_FRAMES],
  ["peer", PEER_FRAME_FORMAT, PEER_FRAMES],
];

function assertDecodeErrorOnly(fn: () => unknown, label: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof DecodeError, `${label}: expected DecodeError, got ${error}`);
    assert.ok(!(error instanceof FrameTooLargeError), `${label}: unexpected FrameTooLargeError`);
    return true;
  }, label);
}

function assertTooLarge(fn: () => unknown, label: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FrameTooLargeError, `${label}: expected FrameTooLargeError`);
    assert.ok(error instanceof DecodeError, `${label}: FrameTooLargeError is a DecodeError`);
    return true;
  }, label);
}

Deno.test("the formats describe the API and peer framing", () => {
  assert.deepEqual(API_FRAME_FORMAT, {
    lengthBytes: 2,
    lengthIncludesHeader: true,
    minFrameBytes: 4,
    maxFrameBytes: 65535,
  });
  assert.deepEqual(PEER_FRAME_FORMAT, {
    lengthBytes: 4,
    lengthIncludesHeader: false,
    minFrameBytes: 6,
    maxFrameBytes: PEER_MAX_FRAME_BYTES,
  });
});

for (const [name, format, frames] of FORMATS) {
  Deno.test(`${name}: a whole frame in one chunk is returned as is`, () => {
    for (const frame of frames) {
      const decoder = new FrameDecoder(format);
      const out = decoder.push(frame);
      assert.equal(out.length, 1);
      assert.deepEqual(out[0], frame);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  Deno.test(`${name}: coalesced frames in one chunk are all returned in order`, () => {
    const decoder = new FrameDecoder(format);
    assert.deepEqual(pushAll(decoder, [concat(frames)]), frames);
    assert.equal(decoder.bufferedBytes, 0);
  });

  Deno.test(`${name}: a trailing partial frame stays buffered until completed`, () => {
    const decoder = new FrameDecoder(format);
    const partial = frames[2].subarray(0, frames[2].length - 1);
    const out = pushAll(decoder, [concat([frames[0], frames[1], partial])]);
    assert.deepEqual(out, [frames[0], frames[1]]);
    assert.equal(decoder.bufferedBytes, partial.length);
    assert.deepEqual(pushAll(decoder, [frames[2].subarray(frames[2].length - 1)]), [frames[2]]);
    assert.equal(decoder.bufferedBytes, 0);
  });

  Deno.test(`${name}: byte-by-byte feeding completes each frame on its last byte`, () => {
    const decoder = new FrameDecoder(format);
    const stream = concat(frames);
    const ends = new Set<number>();
    let end = 0;
    for (const frame of frames) ends.add(end += frame.length);
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) {
      const got = decoder.push(stream.subarray(i, i + 1));
      assert.equal(got.length, ends.has(i + 1) ? 1 : 0, `after byte ${i + 1}`);
      for (const frame of got) out.push(frame.slice());
    }
    assert.deepEqual(out, frames);
    assert.equal(decoder.bufferedBytes, 0);
  });

  Deno.test(`${name}: every split into two or three chunks yields identical frames`, () => {
    const stream = concat(frames);
    for (let i = 0; i <= stream.length; i++) {
      const two = pushAll(new FrameDecoder(format), [stream.subarray(0, i), stream.subarray(i)]);
      assert.deepEqual(two, frames, `split at ${i}`);
    }
    // Three chunks: only over the short frames, to keep the quadratic loop small.
    const short = concat(frames.filter((frame) => frame.length < 40));
    const expected = frames.filter((frame) => frame.length < 40);
    for (let i = 0; i <= short.length; i++) {
      for (let j = i; j <= short.length; j++) {
        const three = pushAll(new FrameDecoder(format), [
          short.subarray(0, i),
          short.subarray(i, j),
          short.subarray(j),
        ]);
        assert.deepEqual(three, expected, `split at ${i} and ${j}`);
      }
    }
  });

  Deno.test(`${name}: empty chunks change nothing`, () => {
    const decoder = new FrameDecoder(format);
    assert.deepEqual(decoder.push(new Uint8Array(0)), []);
    assert.equal(decoder.bufferedBytes, 0);
    const stream = concat(frames);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += 3) {
      chunks.push(new Uint8Array(0), stream.subarray(i, i + 3), new Uint8Array(0));
    }
    assert.deepEqual(pushAll(decoder, chunks), frames);
    assert.equal(decoder.bufferedBytes, 0);
    assert.deepEqual(decoder.push(new Uint8Array(0)), []);
  });
}

Deno.test("api: the smallest frame (size 4) and the largest (size 65535) are accepted", () => {
  const smallest = new Uint8Array([0, 4, 0x01, 0xf5]);
  const largest = apiFrame(500, filled(65531, 5));
  assert.equal(largest.length, 65535);
  const decoder = new FrameDecoder(API_FRAME_FORMAT);
  assert.deepEqual(pushAll(decoder, [concat([smallest, largest, smallest])]), [
    smallest,
    largest,
    smallest,
  ]);
});

Deno.test("api: a size field below 4 throws DecodeError", () => {
  for (const size of [0, 1, 2, 3]) {
    const decoder = new FrameDecoder(API_FRAME_FORMAT);
    assertDecodeErrorOnly(() => decoder.push(new Uint8Array([0, size])), `size ${size}`);
  }
  // When the bad frame follows good ones in the same chunk, the good ones are
  // returned first, the error is kept and thrown by the next call.
  const decoder = new FrameDecoder(API_FRAME_FORMAT);
  const frames = decoder.push(concat([API_FRAMES[0], API_FRAMES[1], new Uint8Array([0, 3, 0, 0])]));
  assert.deepEqual(frames, [API_FRAMES[0], API_FRAMES[1]]);
  assert.ok(decoder.failure instanceof DecodeError, "the error is kept");
  assertDecodeErrorOnly(() => decoder.push(new Uint8Array([0, 4, 0, 1])), "the next call");
});

Deno.test("peer: good frames before an oversized length are returned, then the error", () => {
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, PEER_MAX_FRAME_BYTES); // + 4 > the limit
  const frames = decoder.push(concat([PEER_FRAMES[0], header]));
  assert.deepEqual(frames, [PEER_FRAMES[0]]);
  assert.ok(decoder.failure instanceof FrameTooLargeError);
  assertTooLarge(() => decoder.push(new Uint8Array([1])), "the next call");
});

Deno.test("api: the size field is read only once both of its bytes arrived", () => {
  const decoder = new FrameDecoder(API_FRAME_FORMAT);
  assert.deepEqual(decoder.push(new Uint8Array([0])), []);
  assert.equal(decoder.bufferedBytes, 1);
  assertDecodeErrorOnly(() => decoder.push(new Uint8Array([2])), "size 2 completed");
});

Deno.test("peer: the smallest frame (length 2) and the largest are accepted", () => {
  const smallest = peerFrame([0x03, 0xf2]);
  const largest = peerFrame(filled(PEER_MAX_FRAME_BYTES - 4, 9));
  assert.equal(largest.length, PEER_MAX_FRAME_BYTES);
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  assert.deepEqual(pushAll(decoder, [smallest, largest.subarray(0, 1000)]), [smallest]);
  assert.deepEqual(pushAll(decoder, [largest.subarray(1000), smallest]), [largest, smallest]);
});

Deno.test("peer: a length below 2 (frame below 6 bytes) throws DecodeError", () => {
  for (const length of [0, 1]) {
    const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
    assertDecodeErrorOnly(() => decoder.push(new Uint8Array([0, 0, 0, length])), `len ${length}`);
  }
});

Deno.test("peer: a length above the limit throws FrameTooLargeError from the header alone", () => {
  const lengths = [PEER_MAX_FRAME_BYTES - 3, PEER_MAX_FRAME_BYTES, 0x01000000, 0xffffffff];
  for (const length of lengths) {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, length);
    const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
    assertTooLarge(() => decoder.push(header), `length ${length}`);
  }
  // Header split over several chunks: nothing happens until the fourth byte.
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  assert.deepEqual(decoder.push(new Uint8Array([0xff])), []);
  assert.deepEqual(decoder.push(new Uint8Array([0xff, 0xff])), []);
  assertTooLarge(() => decoder.push(new Uint8Array([0xff])), "split header");
});

Deno.test("peer: the exact limit passes and one byte more fails", () => {
  const atLimit = new Uint8Array(4);
  new DataView(atLimit.buffer).setUint32(0, PEER_MAX_FRAME_BYTES - 4);
  const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
  assert.deepEqual(decoder.push(atLimit), []);
  assert.equal(decoder.bufferedBytes, 4);

  const overLimit = new Uint8Array(4);
  new DataView(overLimit.buffer).setUint32(0, PEER_MAX_FRAME_BYTES - 3);
  assertTooLarge(() => new FrameDecoder(PEER_FRAME_FORMAT).push(overLimit), "limit + 1");
});

Deno.test("a 2-byte format with a small limit throws FrameTooLargeError from the header alone", () => {
  const format: FrameFormat = {
    lengthBytes: 2,
    lengthIncludesHeader: true,
    minFrameBytes: 4,
    maxFrameBytes: 100,
  };
  const ok = new FrameDecoder(format);
  assert.deepEqual(ok.push(new Uint8Array([0, 100])), []);
  const decoder = new FrameDecoder(format);
  assert.deepEqual(decoder.push(new Uint8Array([0])), []);
  assertTooLarge(() => decoder.push(new Uint8Array([101])), "size 101");
  assertTooLarge(() => new FrameDecoder(format).push(new Uint8Array([0xff, 0xff])), "0xffff");
});

Deno.test("frames assembled from several chunks are independent of later input", () => {
  const decoder = new FrameDecoder(API_FRAME_FORMAT);
  const first = new Uint8Array([0, 6, 0, 0]);
  assert.deepEqual(decoder.push(first), []);
  const second = new Uint8Array([7, 8, 0, 5, 1, 2]);
  const frames = decoder.push(second);
  assert.equal(frames.length, 1);
  const frame = frames[0];
  assert.deepEqual(frame, new Uint8Array([0, 6, 0, 0, 7, 8]));
  first.fill(0xee);
  second.fill(0xee);
  assert.deepEqual(frame, new Uint8Array([0, 6, 0, 0, 7, 8]));
  assert.equal(decoder.bufferedBytes, 4);
});
