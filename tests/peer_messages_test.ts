import assert from "node:assert/strict";
import {
  decodePeerMessage,
  encodePeerMessage,
  framePeerPayload,
  GoodbyeReason,
  HelloFlags,
  type HelloMessage,
  joinRecords,
  MAX_DESCRIPTORS,
  MAX_ITEM_DATA_BYTES,
  MAX_ITEM_IDS,
  MAX_PUBLIC_KEY_BYTES,
  MAX_PUZZLE_BITS,
  MAX_SIGNATURE_BYTES,
  PEER_PROTOCOL_VERSION,
  type PeerDescriptor,
  type PeerMessage,
  PeerMessageType,
  splitRecords,
} from "../lib/codec/peer_messages.ts";
import { DecodeError } from "../lib/errors.ts";

// Expected bytes are built here by hand, independently of the codec under test.

function filled(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

function u16(value: number): number[] {
  return [value >> 8, value & 0xff];
}

function u64(value: bigint): number[] {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return [...out];
}

function ascii(text: string): number[] {
  return [...text].map((char) => char.charCodeAt(0));
}

/** `len u8 | host | port u16`. */
function address(host: string | number[], port: number): number[] {
  const bytes = typeof host === "string" ? ascii(host) : host;
  return [bytes.length, ...bytes, ...u16(port)];
}

function payload(type: number, ...parts: (number[] | Uint8Array)[]): Uint8Array {
  const body = parts.flatMap((part) => [...part]);
  return new Uint8Array([...u16(type), ...body]);
}

function assertDecodeError(input: Uint8Array, label: string, pattern?: RegExp): void {
  assert.throws(() => decodePeerMessage(input), (error: unknown) => {
    assert.ok(error instanceof DecodeError, `${label}: expected DecodeError, got ${error}`);
    if (pattern) assert.match(error.message, pattern, label);
    return true;
  }, label);
}

function assertRangeError(message: PeerMessage, label: string): void {
  assert.throws(() => encodePeerMessage(message), RangeError, label);
}

function descriptor(index: number, host = `peer${index}.example`): PeerDescriptor {
  return { identity: filled(32, index), address: { hostname: host, port: 6000 + index } };
}

const EPHEMERAL = filled(32, 1);
const NONCE = filled(32, 2);
const PUBLIC_KEY = filled(550, 3);
const CREDENTIAL_KEY = filled(32, 5);
const CREDENTIAL_SIGNATURE = filled(512, 6);
const AUTH_SIGNATURE = filled(64, 4);

const HELLO: HelloMessage = {
  type: PeerMessageType.Hello,
  version: PEER_PROTOCOL_VERSION,
  puzzleBits: 10,
  flags: 0,
  ephemeralKey: EPHEMERAL,
  nonce: NONCE,
  powEpoch: 20_417,
  powNonce: 0x0123456789abcdefn,
  listenAddress: { hostname: "peer-1.example", port: 6001 },
  publicKey: PUBLIC_KEY,
  credential: { key: CREDENTIAL_KEY, expiry: 0x6a000001, signature: CREDENTIAL_SIGNATURE },
};

/** The credential part of a HELLO: key, expiry, signature length and signature. */
const CREDENTIAL_BYTES = [
  ...CREDENTIAL_KEY,
  0x6a,
  0x00,
  0x00,
  0x01,
  ...u16(512),
  ...CREDENTIAL_SIGNATURE,
];

const HELLO_BYTES = payload(
  1000,
  [2, 10, 0, 0], // version 2, puzzle bits 10, flags 0, reserved
  EPHEMERAL,
  NONCE,
  [0x00, 0x00, 0x4f, 0xc1], // pow epoch 20417
  [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
  address("peer-1.example", 6001),
  u16(550),
  PUBLIC_KEY,
  CREDENTIAL_BYTES,
);

function hello(overrides: Partial<HelloMessage>): HelloMessage {
  return { ...HELLO, ...overrides };
}

/** HELLO bytes with a different address and public key. */
function helloBytes(
  addressBytes: number[],
  keyLength: number,
  key: number[] | Uint8Array,
): Uint8Array {
  return payload(
    1000,
    [2, 0, 0, 0],
    EPHEMERAL,
    NONCE,
    [0, 0, 0, 1],
    u64(7n),
    addressBytes,
    u16(keyLength),
    key,
    CREDENTIAL_BYTES,
  );
}

const ALL_MESSAGES: PeerMessage[] = [
  HELLO,
  hello({
    puzzleBits: 0,
    powEpoch: 0xffffffff,
    powNonce: 0xffffffffffffffffn,
    listenAddress: { hostname: "::1", port: 65535 },
    publicKey: new Uint8Array([1]),
    credential: { key: CREDENTIAL_KEY, expiry: 0xffffffff, signature: new Uint8Array([7]) },
  }),
  { type: PeerMessageType.Auth, puzzleSolution: 0xffffffffffffffffn, signature: AUTH_SIGNATURE },
  { type: PeerMessageType.Ping, nonce: 0n },
  { type: PeerMessageType.Ping, nonce: 0xffffffffffffffffn },
  { type: PeerMessageType.Pong, nonce: 42n },
  { type: PeerMessageType.PullRequest, max: 0 },
  { type: PeerMessageType.PullRequest, max: MAX_DESCRIPTORS },
  { type: PeerMessageType.Peers, peers: [] },
  { type: PeerMessageType.Peers, peers: [descriptor(1), descriptor(2, "10.0.0.1")] },
  { type: PeerMessageType.Push, peers: [descriptor(3, "2001:db8::1")] },
  {
    type: PeerMessageType.Peers,
    marked: true,
    peers: [descriptor(4), { ...descriptor(5, "10.0.0.5"), proven: true }],
  },
  { type: PeerMessageType.Goodbye, reason: GoodbyeReason.Shutdown },
  { type: PeerMessageType.Goodbye, reason: 255 },
  { type: PeerMessageType.Delivery },
  {
    type: PeerMessageType.Item,
    id: 0xfedcba9876543210n,
    nonce: 0xffffffffffffffffn,
    ttl: 255,
    hops: 255,
    dataType: 0xffff,
    data: filled(100, 5),
  },
  {
    type: PeerMessageType.Item,
    id: 0n,
    nonce: 0n,
    ttl: 0,
    hops: 0,
    dataType: 0,
    data: new Uint8Array([0]),
  },
  { type: PeerMessageType.IHave, ids: [1n, 2n, 0xffffffffffffffffn] },
  { type: PeerMessageType.IWant, ids: [0n] },
];

Deno.test("every message type round-trips through encode and decode", () => {
  const seen = new Set<number>();
  for (const message of ALL_MESSAGES) {
    seen.add(message.type);
    assert.deepEqual(decodePeerMessage(encodePeerMessage(message)), message, `${message.type}`);
  }
  assert.deepEqual([...seen].sort(), Object.values(PeerMessageType).sort());
});

Deno.test("HELLO encodes to and decodes from the hand-written bytes", () => {
  assert.deepEqual(encodePeerMessage(HELLO), HELLO_BYTES);
  assert.deepEqual(decodePeerMessage(HELLO_BYTES), HELLO);
});

Deno.test("HELLO carries its flags byte and ignores its reserved byte when decoding", () => {
  const bytes = HELLO_BYTES.slice();
  bytes[4] = 0xff; // flags
  bytes[5] = 0x34; // reserved
  assert.deepEqual(decodePeerMessage(bytes), { ...HELLO, flags: 0xff });
  const probe = encodePeerMessage({ ...HELLO, flags: HelloFlags.Probe });
  assert.equal(probe[4], 1, "the probe flag is bit 0 of the byte after the puzzle bits");
  assert.equal(decodePeerMessage(probe).type, PeerMessageType.Hello);
  assertRangeError({ ...HELLO, flags: 256 }, "flags 256");
});

Deno.test("ITEM encodes to and decodes from the hand-written bytes", () => {
  const message: PeerMessage = {
    type: PeerMessageType.Item,
    id: 0x0102030405060708n,
    nonce: 0x1112131415161718n,
    ttl: 7,
    hops: 3,
    dataType: 0xbeef,
    data: new Uint8Array([0xaa, 0xbb]),
  };
  const bytes = new Uint8Array([
    ...[0x03, 0xfc],
    ...[1, 2, 3, 4, 5, 6, 7, 8],
    ...[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18],
    ...[7, 3, 0xbe, 0xef, 0xaa, 0xbb],
  ]);
  assert.deepEqual(encodePeerMessage(message), bytes);
  assert.deepEqual(decodePeerMessage(bytes), message);
  // The byte after the TTL is the hop count.
  const farther = bytes.slice();
  farther[19] = 0x99;
  assert.deepEqual(decodePeerMessage(farther), { ...message, hops: 0x99 });
});

Deno.test("IHAVE and IWANT encode to and decode from the hand-written bytes", () => {
  const bytes = new Uint8Array([
    ...[0x03, 0xfd, 0, 2],
    ...[0, 0, 0, 0, 0, 0, 0, 1],
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  ]);
  const message: PeerMessage = { type: PeerMessageType.IHave, ids: [1n, 0xffffffffffffffffn] };
  assert.deepEqual(encodePeerMessage(message), bytes);
  assert.deepEqual(decodePeerMessage(bytes), message);

  const want = new Uint8Array([0x03, 0xfe, 0, 1, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80]);
  const wantMessage: PeerMessage = { type: PeerMessageType.IWant, ids: [0x1020304050607080n] };
  assert.deepEqual(encodePeerMessage(wantMessage), want);
  assert.deepEqual(decodePeerMessage(want), wantMessage);
});

Deno.test("PULL_REQUEST encodes to and decodes from the hand-written bytes", () => {
  const message: PeerMessage = { type: PeerMessageType.PullRequest, max: 64 };
  const bytes = new Uint8Array([0x03, 0xf2, 0x00, 0x40]);
  assert.deepEqual(encodePeerMessage(message), bytes);
  assert.deepEqual(decodePeerMessage(bytes), message);
});

Deno.test("the remaining types encode to the hand-written bytes", () => {
  const cases: [PeerMessage, Uint8Array][] = [
    [
      { type: PeerMessageType.Auth, puzzleSolution: 0x0102n, signature: AUTH_SIGNATURE },
      payload(1001, u64(0x0102n), AUTH_SIGNATURE),
    ],
    [
      { type: PeerMessageType.Ping, nonce: 0x1122334455667788n },
      new Uint8Array([0x03, 0xea, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
    ],
    [
      { type: PeerMessageType.Pong, nonce: 1n },
      new Uint8Array([0x03, 0xeb, 0, 0, 0, 0, 0, 0, 0, 1]),
    ],
    [
      { type: PeerMessageType.Goodbye, reason: GoodbyeReason.Banned },
      new Uint8Array([0x03, 0xf5, 5]),
    ],
    [{ type: PeerMessageType.Delivery }, new Uint8Array([0x03, 0xf6])],
    [
      { type: PeerMessageType.Peers, peers: [descriptor(1, "a.b")] },
      payload(1011, [0, 1], filled(32, 1), address("a.b", 6001)),
    ],
    [
      { type: PeerMessageType.Push, peers: [] },
      new Uint8Array([0x03, 0xf4, 0, 0]),
    ],
  ];
  for (const [message, bytes] of cases) {
    assert.deepEqual(encodePeerMessage(message), bytes, `${message.type}`);
    assert.deepEqual(decodePeerMessage(bytes), message, `${message.type}`);
  }
});

Deno.test("framePeerPayload prepends a 4-byte length of the payload only", () => {
  assert.deepEqual(
    framePeerPayload(new Uint8Array([0x03, 0xf2, 0, 8])),
    new Uint8Array([0, 0, 0, 4, 0x03, 0xf2, 0, 8]),
  );
  const big = filled(70000, 6);
  const framed = framePeerPayload(big);
  assert.deepEqual([...framed.subarray(0, 4)], [0, 1, 0x11, 0x70]);
  assert.deepEqual(framed.subarray(4), big);
});

Deno.test("descriptor count: 64 is accepted, 65 is rejected", () => {
  const peers = Array.from({ length: MAX_DESCRIPTORS }, (_, i) => descriptor(i));
  const message: PeerMessage = { type: PeerMessageType.Push, peers };
  assert.equal(MAX_DESCRIPTORS, 64);
  assert.deepEqual(decodePeerMessage(encodePeerMessage(message)), message);
  assertRangeError({ type: PeerMessageType.Push, peers: [...peers, descriptor(64)] }, "encode 65");

  const body = Array.from({ length: 65 }, (_, i) => [...filled(32, i), ...address("h", 1)]);
  assertDecodeError(payload(1011, [0, 65], ...body), "decode 65", /descriptors exceed/);
  assertDecodeError(payload(1012, [0xff, 0xff]), "decode 65535", /descriptors exceed/);
  // A count that promises more descriptors than are present.
  assertDecodeError(payload(1011, [0, 2], filled(32, 1), address("h", 1)), "short list");
});

Deno.test("proven marks: hand-written bytes, sent only when marked, and every malformed case", () => {
  const two = [descriptor(1, "a.b"), { ...descriptor(2, "c.d"), proven: true }];
  const body = [
    ...filled(32, 1),
    ...address("a.b", 6001),
    ...filled(32, 2),
    ...address("c.d", 6002),
  ];
  // Descriptor 1 (the second) proven: bit 1 of the one marks byte.
  const marked = payload(1011, [0, 2], body, [0b10]);
  assert.deepEqual(
    encodePeerMessage({ type: PeerMessageType.Peers, peers: two, marked: true }),
    marked,
  );
  assert.deepEqual(decodePeerMessage(marked), {
    type: PeerMessageType.Peers,
    marked: true,
    peers: [descriptor(1, "a.b"), { ...descriptor(2, "c.d"), proven: true }],
  });
  // Unmarked: the marks are not sent, whatever the descriptors say.
  const unmarked = payload(1011, [0, 2], body);
  assert.deepEqual(encodePeerMessage({ type: PeerMessageType.Peers, peers: two }), unmarked);
  assert.deepEqual(decodePeerMessage(unmarked), {
    type: PeerMessageType.Peers,
    peers: [descriptor(1, "a.b"), descriptor(2, "c.d")],
  });
  // Nine descriptors take two bytes; descriptor 8 is bit 0 of the second.
  const nine = Array.from(
    { length: 9 },
    (_, i) => ({ ...descriptor(i), proven: i === 0 || i === 8 }),
  );
  const push: PeerMessage = { type: PeerMessageType.Push, peers: nine, marked: true };
  const encoded = encodePeerMessage(push);
  assert.deepEqual([...encoded.subarray(encoded.length - 2)], [0b1, 0b1]);
  const decoded = decodePeerMessage(encoded);
  assert.ok(decoded.type === PeerMessageType.Push && decoded.marked);
  assert.deepEqual(decoded.peers.map((p) => p.proven === true), nine.map((p) => p.proven));
  // Malformed: a mark beyond the last descriptor, too many or too few mark
  // bytes, marks after no descriptor at all.
  assertDecodeError(payload(1011, [0, 2], body, [0b100]), "mark of a third", /beyond the last/);
  assertDecodeError(payload(1011, [0, 2], body, [0b10, 0]), "two mark bytes", /trailing/);
  const nineBody = nine.map((p) => [...p.identity, ...address(p.address.hostname, p.address.port)]);
  assertDecodeError(payload(1012, [0, 9], ...nineBody, [1]), "one byte for nine", /truncated/);
  assertDecodeError(payload(1012, [0, 9], ...nineBody, [1, 2]), "mark of a tenth", /beyond/);
  assertDecodeError(payload(1012, [0, 0], [0]), "marks of nothing", /trailing/);
});

Deno.test("descriptor identities must be 32 bytes", () => {
  for (const length of [0, 31, 33]) {
    assertRangeError({
      type: PeerMessageType.Peers,
      peers: [{ identity: new Uint8Array(length), address: { hostname: "h", port: 1 } }],
    }, `identity ${length}`);
  }
});

Deno.test("id count: 0 and 1025 are rejected, 1 and 1024 accepted", () => {
  assert.equal(MAX_ITEM_IDS, 1024);
  for (const count of [1, 1024]) {
    const ids = Array.from({ length: count }, (_, i) => BigInt(i) * 0x100000001n);
    const message: PeerMessage = { type: PeerMessageType.IWant, ids };
    const encoded = encodePeerMessage(message);
    assert.equal(encoded.length, 4 + 8 * count);
    assert.deepEqual(decodePeerMessage(encoded), message);
  }
  for (const count of [0, 1025]) {
    const ids = Array.from({ length: count }, (_, i) => BigInt(i));
    assertRangeError({ type: PeerMessageType.IHave, ids }, `encode ${count}`);
    assertRangeError({ type: PeerMessageType.IWant, ids }, `encode ${count}`);
    const body = ids.flatMap((id) => u64(id));
    assertDecodeError(payload(1021, u16(count), body), `decode ${count}`, /id count/);
    assertDecodeError(payload(1022, u16(count), body), `decode ${count}`, /id count/);
  }
  assertDecodeError(payload(1021, [0, 3], u64(1n), u64(2n)), "count above ids present");
});

Deno.test("item data: empty and too large are rejected, the maximum is accepted", () => {
  assert.equal(MAX_ITEM_DATA_BYTES, 65527);
  const max: PeerMessage = {
    type: PeerMessageType.Item,
    id: 5n,
    nonce: 6n,
    ttl: 1,
    hops: 1,
    dataType: 2,
    data: filled(MAX_ITEM_DATA_BYTES, 7),
  };
  assert.deepEqual(decodePeerMessage(encodePeerMessage(max)), max);
  const item = (data: Uint8Array): PeerMessage => ({
    type: PeerMessageType.Item,
    id: 5n,
    nonce: 6n,
    ttl: 1,
    hops: 1,
    dataType: 2,
    data,
  });
  assertRangeError(item(new Uint8Array(0)), "encode empty");
  assertRangeError(item(new Uint8Array(MAX_ITEM_DATA_BYTES + 1)), "encode too large");
  const header = [...u64(5n), ...u64(6n), 1, 0, 0, 2];
  assertDecodeError(payload(1020, header), "decode empty", /without data/);
  assertDecodeError(
    payload(1020, header, new Uint8Array(MAX_ITEM_DATA_BYTES + 1)),
    "decode too large",
    /too large/,
  );
});

Deno.test("item fields out of range are rejected when encoding", () => {
  const base = {
    type: PeerMessageType.Item,
    id: 1n,
    nonce: 2n,
    ttl: 1,
    hops: 1,
    dataType: 1,
    data: filled(3, 1),
  };
  assertRangeError({ ...base, hops: 256 }, "hops 256");
  assertRangeError({ ...base, ttl: 256 }, "ttl 256");
  assertRangeError({ ...base, ttl: -1 }, "ttl -1");
  assertRangeError({ ...base, dataType: 0x10000 }, "dataType 65536");
  assertRangeError({ ...base, dataType: 0.5 }, "dataType 0.5");
  assertRangeError({ ...base, id: -1n }, "id -1");
  assertRangeError({ ...base, id: 1n << 64n }, "id 2^64");
  assertRangeError({ ...base, nonce: -1n }, "nonce -1");
  assertRangeError({ ...base, nonce: 1n << 64n }, "nonce 2^64");
});

Deno.test("public key length: 0 and too large are rejected, 1 and the maximum accepted", () => {
  assert.equal(MAX_PUBLIC_KEY_BYTES, 2048);
  for (const length of [1, MAX_PUBLIC_KEY_BYTES]) {
    const message = hello({ publicKey: filled(length, 8) });
    assert.deepEqual(decodePeerMessage(encodePeerMessage(message)), message, `key ${length}`);
  }
  assertRangeError(hello({ publicKey: new Uint8Array(0) }), "encode empty key");
  assertRangeError(hello({ publicKey: new Uint8Array(MAX_PUBLIC_KEY_BYTES + 1) }), "encode big");
  const addr = address("h", 1);
  assertDecodeError(helloBytes(addr, 0, new Uint8Array(0)), "decode empty key", /public key/);
  assertDecodeError(
    helloBytes(addr, MAX_PUBLIC_KEY_BYTES + 1, new Uint8Array(MAX_PUBLIC_KEY_BYTES + 1)),
    "decode big key",
    /public key/,
  );
  assertDecodeError(helloBytes(addr, 0xffff, new Uint8Array(10)), "decode huge key length");
  // Sanity check of the helper: a consistent key decodes.
  assert.equal(decodePeerMessage(helloBytes(addr, 3, new Uint8Array([1, 2, 3]))).type, 1000);
});

Deno.test("HELLO fixed-size fields and version are checked when encoding", () => {
  assertRangeError(hello({ ephemeralKey: new Uint8Array(31) }), "ephemeral 31");
  assertRangeError(hello({ ephemeralKey: new Uint8Array(33) }), "ephemeral 33");
  assertRangeError(hello({ nonce: new Uint8Array(0) }), "nonce 0");
  assertRangeError(hello({ nonce: new Uint8Array(33) }), "nonce 33");
  assertRangeError(hello({ version: 256 }), "version 256");
  assertRangeError(hello({ version: -1 }), "version -1");
  assertRangeError(hello({ puzzleBits: MAX_PUZZLE_BITS + 1 }), "puzzle bits 17");
  assertRangeError(
    hello({ credential: { ...HELLO.credential, key: new Uint8Array(31) } }),
    "credential key 31",
  );
  assertRangeError(
    hello({ credential: { ...HELLO.credential, expiry: 2 ** 32 } }),
    "credential expiry 2^32",
  );
  assertRangeError(hello({ powNonce: -1n }), "powNonce -1");
  assertRangeError(hello({ powNonce: 1n << 64n }), "powNonce 2^64");
  assertRangeError(hello({ powEpoch: -1 }), "powEpoch -1");
  assertRangeError(hello({ powEpoch: 2 ** 32 }), "powEpoch 2^32");
});

Deno.test("credential signature length: 0 and too large are rejected, 1 and the maximum accepted", () => {
  assert.equal(MAX_SIGNATURE_BYTES, 1024);
  for (const length of [1, MAX_SIGNATURE_BYTES]) {
    const message = hello({ credential: { ...HELLO.credential, signature: filled(length, 9) } });
    assert.deepEqual(decodePeerMessage(encodePeerMessage(message)), message, `sig ${length}`);
  }
  for (const length of [0, MAX_SIGNATURE_BYTES + 1]) {
    const message = hello({ credential: { ...HELLO.credential, signature: filled(length, 9) } });
    assertRangeError(message, `encode ${length}`);
    const bytes = helloBytes(address("h", 1), 3, [1, 2, 3]);
    // Rewrite the credential signature length (the last field) and its bytes.
    const head = bytes.subarray(0, bytes.length - CREDENTIAL_BYTES.length + 36);
    const forged = new Uint8Array([...head, ...u16(length), ...new Uint8Array(length)]);
    assertDecodeError(forged, `decode ${length}`, /credential signature length/);
  }
});

Deno.test("AUTH carries a u64 puzzle solution and exactly 64 signature bytes", () => {
  for (const length of [0, 63, 65, 512]) {
    assertRangeError(
      { type: PeerMessageType.Auth, puzzleSolution: 0n, signature: new Uint8Array(length) },
      `encode ${length}`,
    );
  }
  assertRangeError(
    { type: PeerMessageType.Auth, puzzleSolution: -1n, signature: AUTH_SIGNATURE },
    "solution -1",
  );
  assertDecodeError(payload(1001, u64(1n), filled(63, 1)), "decode 63", /signature/);
  assertDecodeError(payload(1001, u64(1n), filled(65, 1)), "decode 65", /trailing/);
  assertDecodeError(payload(1001, [0, 1]), "decode truncated solution", /puzzle solution/);
});

Deno.test("HELLO of another version is refused before its layout is read", () => {
  for (const version of [0, 1, 3, 255]) {
    const bytes = HELLO_BYTES.slice();
    bytes[2] = version;
    assertDecodeError(
      bytes,
      `version ${version}`,
      new RegExp(`unsupported protocol version ${version}`),
    );
    // Even when the rest would not parse as version 2.
    assertDecodeError(
      new Uint8Array([0x03, 0xe8, version, 0]),
      `short ${version}`,
      /unsupported protocol version/,
    );
  }
});

Deno.test("HELLO demanding a puzzle of more than 16 bits is refused", () => {
  const bytes = HELLO_BYTES.slice();
  bytes[3] = MAX_PUZZLE_BITS + 1;
  assertDecodeError(bytes, "17 bits", /puzzle of 17 bits/);
  bytes[3] = MAX_PUZZLE_BITS;
  assert.equal((decodePeerMessage(bytes) as HelloMessage).puzzleBits, MAX_PUZZLE_BITS);
});

Deno.test("hosts: bad characters and lengths are rejected on both sides", () => {
  for (const hostname of ["", "bad host", "a_b", "héllo", "a/b", "[::1]", "x".repeat(254)]) {
    assertRangeError(hello({ listenAddress: { hostname, port: 1 } }), `encode "${hostname}"`);
    assertRangeError({
      type: PeerMessageType.Peers,
      peers: [{ identity: filled(32, 0), address: { hostname, port: 1 } }],
    }, `encode descriptor "${hostname}"`);
  }
  const longest = "a".repeat(253);
  const ok = hello({ listenAddress: { hostname: longest, port: 1 } });
  assert.deepEqual(decodePeerMessage(encodePeerMessage(ok)), ok);

  const badHosts: number[][] = [
    ascii("bad host"),
    ascii("a_b"),
    [0x68, 0x00],
    [0xc3, 0xa9],
    [0xff],
    ascii("a/b"),
  ];
  for (const host of badHosts) {
    assertDecodeError(
      helloBytes(address(host, 6001), 1, [1]),
      `decode host ${host}`,
      /invalid characters/,
    );
    assertDecodeError(
      payload(1011, [0, 1], filled(32, 1), address(host, 6001)),
      `decode descriptor host ${host}`,
      /invalid characters/,
    );
  }
  assertDecodeError(helloBytes([0, ...u16(6001)], 1, new Uint8Array([1])), "empty", /empty host/);
});

Deno.test("port 0 is rejected on both sides, 1 and 65535 accepted", () => {
  for (const port of [1, 65535]) {
    const message = hello({ listenAddress: { hostname: "h", port } });
    assert.deepEqual(decodePeerMessage(encodePeerMessage(message)), message, `port ${port}`);
  }
  assertRangeError(hello({ listenAddress: { hostname: "h", port: 0 } }), "encode port 0");
  assertRangeError(hello({ listenAddress: { hostname: "h", port: 65536 } }), "encode 65536");
  assertRangeError({
    type: PeerMessageType.Push,
    peers: [{ identity: filled(32, 0), address: { hostname: "h", port: 0 } }],
  }, "encode descriptor port 0");
  assertDecodeError(helloBytes(address("h", 0), 1, new Uint8Array([1])), "decode 0", /port 0/);
  assertDecodeError(
    payload(1012, [0, 1], filled(32, 1), address("h", 0)),
    "decode descriptor port 0",
    /port 0/,
  );
});

Deno.test("PULL_REQUEST max and GOODBYE reason are range-checked", () => {
  assertRangeError({ type: PeerMessageType.PullRequest, max: 65 }, "encode max 65");
  assertRangeError({ type: PeerMessageType.PullRequest, max: -1 }, "encode max -1");
  assertDecodeError(new Uint8Array([0x03, 0xf2, 0, 65]), "decode max 65", /pull max/);
  assertDecodeError(new Uint8Array([0x03, 0xf2, 0xff, 0xff]), "decode max 65535", /pull max/);
  assertRangeError({ type: PeerMessageType.Goodbye, reason: 256 }, "reason 256");
  assertRangeError({ type: PeerMessageType.Ping, nonce: -1n }, "ping nonce -1");
  assertRangeError({ type: PeerMessageType.Pong, nonce: 1n << 64n }, "pong nonce 2^64");
  assertRangeError({ type: PeerMessageType.IHave, ids: [1n, -1n] }, "id -1");
});

Deno.test("truncating a valid HELLO at every byte offset throws DecodeError", () => {
  assert.equal(
    HELLO_BYTES.length,
    2 + 4 + 32 + 32 + 4 + 8 + 1 + 14 + 2 + 2 + 550 + 32 + 4 + 2 + 512,
  );
  for (let length = 0; length < HELLO_BYTES.length; length++) {
    assertDecodeError(HELLO_BYTES.subarray(0, length), `truncated to ${length}`);
  }
});

Deno.test("truncating every other fixed-layout message throws DecodeError", () => {
  for (const message of ALL_MESSAGES) {
    if (message.type === PeerMessageType.Item) continue;
    const bytes = encodePeerMessage(message);
    // Without its proven marks a marked message is a valid unmarked one.
    const unmarkedLength = "marked" in message && message.marked
      ? bytes.length - Math.ceil(message.peers.length / 8)
      : -1;
    for (let length = 0; length < bytes.length; length++) {
      if (length === unmarkedLength) continue;
      assertDecodeError(bytes.subarray(0, length), `${message.type} truncated to ${length}`);
    }
  }
  // ITEM: every truncation inside its fixed header, or down to no data, fails.
  const item = encodePeerMessage({
    type: PeerMessageType.Item,
    id: 1n,
    nonce: 2n,
    ttl: 1,
    hops: 1,
    dataType: 1,
    data: new Uint8Array([1, 2]),
  });
  for (let length = 0; length <= 22; length++) {
    assertDecodeError(item.subarray(0, length), `ITEM truncated to ${length}`);
  }
});

Deno.test("trailing bytes after a complete message throw DecodeError", () => {
  for (const message of ALL_MESSAGES) {
    if (message.type === PeerMessageType.Item) continue; // its data runs to the end
    const bytes = encodePeerMessage(message);
    // One byte after up to 8 descriptors is their proven marks (tested below).
    const marks = "peers" in message && !message.marked && message.peers.length > 0 &&
      message.peers.length <= 8;
    for (const extra of marks ? [[1, 2, 3]] : [[0], [1, 2, 3]]) {
      const longer = new Uint8Array([...bytes, ...extra]);
      assertDecodeError(longer, `${message.type} + ${extra.length}`, /trailing/);
    }
  }
});

Deno.test("unknown message types throw DecodeError", () => {
  for (const type of [0, 1, 500, 503, 999, 1004, 1009, 1015, 1019, 1023, 0xffff]) {
    assertDecodeError(payload(type, []), `type ${type}`, /unknown peer message type/);
    assertDecodeError(payload(type, filled(20, 1)), `type ${type} with body`, /unknown/);
  }
  assertDecodeError(new Uint8Array([0x03]), "one byte", /truncated/);
});

Deno.test("sealed-frame records: hand-written bytes, round trip and every malformed case", () => {
  const ping = new Uint8Array([0x03, 0xea, 0, 0, 0, 0, 0, 0, 0, 7]);
  const pull = new Uint8Array([0x03, 0xf2, 0, 16]);
  const bytes = new Uint8Array([0, 0, 0, 10, ...ping, 0, 0, 0, 4, ...pull]);
  assert.deepEqual(joinRecords([ping, pull]), bytes);
  assert.deepEqual(splitRecords(bytes), [ping, pull]);
  assert.deepEqual(decodePeerMessage(splitRecords(bytes)[1]), {
    type: PeerMessageType.PullRequest,
    max: 16,
  });
  const malformed: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["truncated length", new Uint8Array([0, 0, 0])],
    ["record shorter than a type", new Uint8Array([0, 0, 0, 1, 9])],
    ["length past the end", new Uint8Array([0, 0, 0, 5, 1, 2, 3])],
    ["trailing partial record", new Uint8Array([...bytes, 0, 0])],
  ];
  for (const [name, input] of malformed) {
    assert.throws(() => splitRecords(input), DecodeError, name);
  }
});
