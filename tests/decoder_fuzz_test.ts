import assert from "node:assert/strict";
import fc from "fast-check";
import { API_FRAME_FORMAT, decodeApiMessage, encodeApiMessage } from "../lib/codec/api_messages.ts";
import { FrameDecoder, type FrameFormat } from "../lib/codec/frame_decoder.ts";
import {
  decodePeerMessage,
  encodePeerMessage,
  PEER_FRAME_FORMAT,
  PeerMessageType,
  splitRecords,
} from "../lib/codec/peer_messages.ts";
import { DecodeError } from "../lib/errors.ts";
import { apiMessage, peerMessage, record, u16, u8 } from "./support/arbitraries.ts";
import { concat, peerFrame } from "./support/bytes.ts";

const RUNS = 2000;

/** Runs `fn`; a DecodeError counts as rejection, any other exception fails the property. */
function decodesOrRejects<T>(fn: () => T): T | DecodeError {
  try {
    return fn();
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw new Error(`expected only DecodeError, got ${error}`, { cause: error });
  }
}

/** A frame built by hand: API `size u16` counts everything, peer `length u32` the payload. */
function apiFrame(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, out.length);
  view.setUint16(2, type);
  out.set(body, 4);
  return out;
}

/** Splits `bytes` at the given cut points (any values; they are reduced modulo the length). */
function chunk(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** A mutation of a byte array: flip, overwrite, truncate, extend, or delete a range. */
type Mutation =
  | { readonly op: "flip"; readonly at: number; readonly mask: number }
  | { readonly op: "set"; readonly at: number; readonly value: number }
  | { readonly op: "truncate"; readonly at: number }
  | { readonly op: "append"; readonly extra: Uint8Array }
  | { readonly op: "delete"; readonly at: number; readonly count: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  record({
    op: fc.constant("flip" as const),
    at: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  record({ op: fc.constant("set" as const), at: fc.nat(), value: u8 }),
  record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  record({
    op: fc.constant("append" as const),
    extra: fc.uint8Array({ minLength: 1, maxLength: 20, size: "max" }),
  }),
  record({
    op: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
  }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (const m of mutations) {
    if (out.length === 0 && m.op !== "append") continue;
    switch (m.op) {
      case "flip":
        out[m.at % out.length] ^= m.mask;
        break;
      case "set":
        out[m.at % out.length] = m.value;
        break;
      case "truncate":
        out = out.slice(0, m.at % out.length);
        break;
      case "append":
        out = concat([out, m.extra]);
        break;
      case "delete": {
        const at = m.at % out.length;
        out = concat([out.subarray(0, at), out.subarray(at + m.count)]);
        break;
      }
    }
  }
  return out;
}

// ---- API decoder ----

Deno.test("decodeApiMessage: random bytes only ever throw DecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64, size: "max" }), (bytes) => {
      decodesOrRejects(() => decodeApiMessage(bytes));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodeApiMessage: well-framed random bodies either re-encode exactly or are rejected", () => {
  const type = fc.oneof(fc.integer({ min: 498, max: 505 }), u16);
  fc.assert(
    fc.property(type, fc.uint8Array({ maxLength: 40, size: "max" }), (messageType, body) => {
      const input = apiFrame(messageType, body);
      const result = decodesOrRejects(() => decodeApiMessage(input));
      if (result instanceof DecodeError) {
        // Rejected input must be one of the ill-formed cases of the spec.
        const fixed = messageType === 501 || messageType === 503;
        const withData = messageType === 500 || messageType === 502;
        assert.ok(
          !(fixed && input.length === 8) && !(withData && input.length > 8),
          `well-formed input rejected: ${result.message}`,
        );
      } else {
        // Every field, reserved ones included, is carried: re-encoding is byte-exact.
        assert.deepEqual(encodeApiMessage(result), input);
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodeApiMessage: mutated valid messages only ever throw DecodeError", () => {
  fc.assert(
    fc.property(
      apiMessage,
      fc.array(mutation, { minLength: 1, maxLength: 4, size: "max" }),
      (message, ms) => {
        const mutated = mutate(encodeApiMessage(message), ms);
        const result = decodesOrRejects(() => decodeApiMessage(mutated));
        if (!(result instanceof DecodeError)) assert.deepEqual(encodeApiMessage(result), mutated);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("API messages round-trip through encode and decode", () => {
  fc.assert(
    fc.property(apiMessage, (message) => {
      const encoded = encodeApiMessage(message);
      assert.equal(new DataView(encoded.buffer).getUint16(0), encoded.length);
      assert.deepEqual(decodeApiMessage(encoded), message);
    }),
    { numRuns: RUNS },
  );
});

// ---- Peer decoder ----

const PEER_TYPES = Object.values(PeerMessageType);

Deno.test("decodePeerMessage: random bytes only ever throw DecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 128, size: "max" }), (bytes) => {
      decodesOrRejects(() => decodePeerMessage(bytes));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("splitRecords then decodePeerMessage: random plaintexts only ever throw DecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 128, size: "max" }), (bytes) => {
      decodesOrRejects(() => splitRecords(bytes).map(decodePeerMessage));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodePeerMessage: known types with random bodies only ever throw DecodeError", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...PEER_TYPES),
      fc.uint8Array({ maxLength: 200, size: "max" }),
      (type, body) => {
        const input = concat([new Uint8Array([type >> 8, type & 0xff]), body]);
        const result = decodesOrRejects(() => decodePeerMessage(input));
        if (!(result instanceof DecodeError)) {
          assert.equal(result.type, type);
          // What decodes must encode (hosts of 254/255 bytes excepted) and decode to itself.
          let reencoded: Uint8Array;
          try {
            reencoded = encodePeerMessage(result);
          } catch (error) {
            assert.ok(error instanceof RangeError, `unexpected ${error}`);
            return;
          }
          assert.deepEqual(decodePeerMessage(reencoded), result);
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("decodePeerMessage: mutated valid messages only ever throw DecodeError", () => {
  fc.assert(
    fc.property(
      peerMessage,
      fc.array(mutation, { minLength: 1, maxLength: 4, size: "max" }),
      (message, ms) => {
        const mutated = mutate(encodePeerMessage(message), ms);
        decodesOrRejects(() => decodePeerMessage(mutated));
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("peer messages round-trip through encode and decode", () => {
  fc.assert(
    fc.property(peerMessage, (message) => {
      assert.deepEqual(decodePeerMessage(encodePeerMessage(message)), message);
    }),
    { numRuns: RUNS },
  );
});

// ---- Frame decoder ----

const FORMATS: [string, FrameFormat][] = [["api", API_FRAME_FORMAT], ["peer", PEER_FRAME_FORMAT]];

for (const [name, format] of FORMATS) {
  Deno.test(`FrameDecoder(${name}): random chunks only ever throw DecodeError`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40, size: "max" }), { maxLength: 10, size: "max" }),
        (chunks) => {
          const decoder = new FrameDecoder(format);
          let total = 0;
          let framed = 0;
          for (const piece of chunks) {
            total += piece.length;
            const result = decodesOrRejects(() => decoder.push(piece));
            if (result instanceof DecodeError) return; // the decoder must now be discarded
            for (const frame of result) {
              assert.ok(
                frame.length >= format.minFrameBytes && frame.length <= format.maxFrameBytes,
              );
              framed += frame.length;
            }
            // An error after complete frames of the same chunk is kept for the
            // next call (the frames come first): the decoder must be discarded.
            if (decoder.failure) {
              assert.ok(decoder.failure instanceof DecodeError, String(decoder.failure));
              return;
            }
            assert.equal(framed + decoder.bufferedBytes, total);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
}

Deno.test("FrameDecoder(api): any chunking of a stream of valid messages reproduces them", () => {
  fc.assert(
    fc.property(
      fc.array(apiMessage, { minLength: 1, maxLength: 8, size: "max" }),
      fc.array(fc.nat(), { maxLength: 12, size: "max" }),
      (messages, cuts) => {
        const frames = messages.map(encodeApiMessage);
        const decoder = new FrameDecoder(API_FRAME_FORMAT);
        const out = chunk(concat(frames), cuts).flatMap((piece) => decoder.push(piece));
        assert.deepEqual(out, frames);
        assert.equal(decoder.bufferedBytes, 0);
        assert.deepEqual(out.map(decodeApiMessage), messages);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("FrameDecoder(peer): any chunking of a stream of valid messages reproduces them", () => {
  fc.assert(
    fc.property(
      fc.array(peerMessage, { minLength: 1, maxLength: 6, size: "max" }),
      fc.array(fc.nat(), { maxLength: 12, size: "max" }),
      (messages, cuts) => {
        const payloads = messages.map(encodePeerMessage);
        const decoder = new FrameDecoder(PEER_FRAME_FORMAT);
        const out = chunk(concat(payloads.map(peerFrame)), cuts)
          .flatMap((piece) => decoder.push(piece));
        assert.deepEqual(out.map((frame) => frame.subarray(4)), payloads);
        assert.equal(decoder.bufferedBytes, 0);
        assert.deepEqual(out.map((frame) => decodePeerMessage(frame.subarray(4))), messages);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("FrameDecoder: mutated streams of valid frames only ever throw DecodeError", () => {
  fc.assert(
    fc.property(
      fc.array(apiMessage, { minLength: 1, maxLength: 5, size: "max" }),
      fc.array(mutation, { minLength: 1, maxLength: 4, size: "max" }),
      fc.array(fc.nat(), { maxLength: 6, size: "max" }),
      (messages, ms, cuts) => {
        const stream = mutate(concat(messages.map(encodeApiMessage)), ms);
        const decoder = new FrameDecoder(API_FRAME_FORMAT);
        for (const piece of chunk(stream, cuts)) {
          const result = decodesOrRejects(() => decoder.push(piece));
          if (result instanceof DecodeError) return;
          for (const frame of result) decodesOrRejects(() => decodeApiMessage(frame));
        }
      },
    ),
    { numRuns: RUNS },
  );
});
