/**
 * fast-check arbitraries of well-formed API and peer messages, shared by the
 * decoder fuzz tests (round trips, mutations) and the node core fuzz test
 * (hostile but well-formed message sequences).
 */

import fc from "fast-check";
import type { ApiMessage } from "../../lib/codec/api_messages.ts";
import {
  MAX_PUZZLE_BITS,
  PEER_PROTOCOL_VERSION,
  type PeerDescriptor,
  type PeerMessage,
  PeerMessageType,
} from "../../lib/codec/peer_messages.ts";

/** `fc.record` with ordinary prototypes, so strict deep equality with decoded values holds. */
export function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
export const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
export const data = fc.uint8Array({ minLength: 1, maxLength: 300, size: "max" });
export const exactBytes = (length: number) =>
  fc.uint8Array({ minLength: length, maxLength: length, size: "max" });

export const apiMessage: fc.Arbitrary<ApiMessage> = fc.oneof(
  record({
    kind: fc.constant("announce" as const),
    ttl: u8,
    reserved: u8,
    dataType: u16,
    data,
  }),
  record({ kind: fc.constant("notify" as const), reserved: u16, dataType: u16 }),
  record({
    kind: fc.constant("notification" as const),
    messageId: u16,
    dataType: u16,
    data,
  }),
  record({
    kind: fc.constant("validation" as const),
    messageId: u16,
    valid: fc.boolean(),
    reserved: fc.integer({ min: 0, max: 0x7fff }),
  }),
);

const HOST_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-";
export const hostname = fc.string({
  unit: fc.constantFrom(...HOST_ALPHABET),
  minLength: 1,
  maxLength: 40,
  size: "max",
});
export const socketAddress = record({ hostname, port: fc.integer({ min: 1, max: 0xffff }) });
export const descriptor: fc.Arbitrary<PeerDescriptor> = record({
  identity: exactBytes(32),
  address: socketAddress,
});

export const peerMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
  record({
    type: fc.constant(PeerMessageType.Hello),
    version: fc.constant(PEER_PROTOCOL_VERSION),
    puzzleBits: fc.integer({ min: 0, max: MAX_PUZZLE_BITS }),
    flags: u8,
    ephemeralKey: exactBytes(32),
    nonce: exactBytes(32),
    powEpoch: u32,
    powNonce: u64,
    listenAddress: socketAddress,
    publicKey: fc.uint8Array({ minLength: 1, maxLength: 600, size: "max" }),
    credential: record({
      key: exactBytes(32),
      expiry: u32,
      signature: fc.uint8Array({ minLength: 1, maxLength: 600, size: "max" }),
    }),
  }),
  record({
    type: fc.constant(PeerMessageType.Auth),
    puzzleSolution: u64,
    signature: exactBytes(64),
  }),
  record({
    type: fc.constantFrom(PeerMessageType.Ping, PeerMessageType.Pong),
    nonce: u64,
  }),
  record({
    type: fc.constant(PeerMessageType.PullRequest),
    max: fc.integer({ min: 0, max: 64 }),
  }),
  record({
    type: fc.constantFrom(PeerMessageType.Peers, PeerMessageType.Push),
    peers: fc.array(descriptor, { maxLength: 8, size: "max" }),
  }),
  record({ type: fc.constant(PeerMessageType.Goodbye), reason: u8 }),
  record({ type: fc.constant(PeerMessageType.Delivery) }),
  record({
    type: fc.constant(PeerMessageType.Item),
    id: u64,
    nonce: u64,
    ttl: u8,
    hops: u8,
    dataType: u16,
    data,
  }),
  record({
    type: fc.constantFrom(PeerMessageType.IHave, PeerMessageType.IWant),
    ids: fc.array(u64, { minLength: 1, maxLength: 40, size: "max" }),
  }),
);

/** An "advance the clock by 0..`maxMs`" step of a state-machine property, with its weight. */
export function advanceStep(
  maxMs: number,
  weight = 1,
): fc.WeightedArbitrary<{ kind: "advance"; ms: number }> {
  return {
    weight,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: maxMs }),
    }),
  };
}
