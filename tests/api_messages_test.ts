import assert from "node:assert/strict";
import {
  API_MAX_DATA_BYTES,
  type ApiMessage,
  decodeApiMessage,
  encodeApiMessage,
} from "../lib/codec/api_messages.ts";
import { DecodeError } from "../lib/errors.ts";

// Expected bytes are built here by hand, independently of the codec under test.

/** `size u16 | type u16 | body`, with `size` = 4 + body length unless overridden. */
function frame(type: number, body: readonly number[] | Uint8Array, size?: number): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, size ?? out.length);
  view.setUint16(2, type);
  out.set(body, 4);
  return out;
}

function u16(value: number): number[] {
  return [value >> 8, value & 0xff];
}

function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function assertDecodeError(input: Uint8Array, pattern: RegExp, label: string): void {
  assert.throws(() => decodeApiMessage(input), (error: unknown) => {
    assert.ok(error instanceof DecodeError, `${label}: expected DecodeError, got ${error}`);
    assert.match(error.message, pattern, label);
    return true;
  }, label);
}

Deno.test("decodes ANNOUNCE with every field", () => {
  const input = new Uint8Array([0, 11, 0x01, 0xf4, 5, 0, 0x12, 0x34, 1, 2, 3]);
  assert.deepEqual(decodeApiMessage(input), {
    kind: "announce",
    ttl: 5,
    reserved: 0,
    dataType: 0x1234,
    data: new Uint8Array([1, 2, 3]),
  });
});

Deno.test("decodes ANNOUNCE with maximal ttl, reserved and data type", () => {
  const input = frame(500, [0xff, 0xff, 0xff, 0xff, 0x42]);
  assert.deepEqual(decodeApiMessage(input), {
    kind: "announce",
    ttl: 255,
    reserved: 255,
    dataType: 0xffff,
    data: new Uint8Array([0x42]),
  });
});

Deno.test("decodes ANNOUNCE with ttl 0 (unlimited) and data type 0", () => {
  const message = decodeApiMessage(frame(500, [0, 7, 0, 0, 9, 9]));
  assert.equal(message.kind, "announce");
  if (message.kind !== "announce") return;
  assert.equal(message.ttl, 0);
  assert.equal(message.reserved, 7);
  assert.equal(message.dataType, 0);
  assert.deepEqual(message.data, new Uint8Array([9, 9]));
});

Deno.test("decodes NOTIFY with reserved field and maximal data type", () => {
  const input = new Uint8Array([0, 8, 0x01, 0xf5, 0xab, 0xcd, 0xff, 0xff]);
  assert.deepEqual(decodeApiMessage(input), {
    kind: "notify",
    reserved: 0xabcd,
    dataType: 0xffff,
  });
  assert.deepEqual(decodeApiMessage(frame(501, [0, 0, 0x02, 0x9a])), {
    kind: "notify",
    reserved: 0,
    dataType: 666,
  });
});

Deno.test("decodes NOTIFICATION with every field", () => {
  const input = new Uint8Array([0, 10, 0x01, 0xf6, 0xff, 0xff, 0x00, 0x01, 0xde, 0xad]);
  assert.deepEqual(decodeApiMessage(input), {
    kind: "notification",
    messageId: 0xffff,
    dataType: 1,
    data: new Uint8Array([0xde, 0xad]),
  });
  assert.deepEqual(decodeApiMessage(frame(502, [0, 0, 0xff, 0xff, 7])), {
    kind: "notification",
    messageId: 0,
    dataType: 0xffff,
    data: new Uint8Array([7]),
  });
});

Deno.test("decodes VALIDATION: V bit is the LSB, the other 15 bits are reserved", () => {
  const cases: [number, boolean, number][] = [
    [0x0000, false, 0],
    [0x0001, true, 0],
    [0x0002, false, 1],
    [0x0003, true, 1],
    [0x8000, false, 0x4000],
    [0x8001, true, 0x4000],
    [0xfffe, false, 0x7fff],
    [0xffff, true, 0x7fff],
  ];
  for (const [flags, valid, reserved] of cases) {
    const input = new Uint8Array([0, 8, 0x01, 0xf7, 0x12, 0x34, ...u16(flags)]);
    assert.deepEqual(
      decodeApiMessage(input),
      { kind: "validation", messageId: 0x1234, valid, reserved },
      `flags 0x${flags.toString(16)}`,
    );
  }
  assert.deepEqual(decodeApiMessage(frame(503, [0xff, 0xff, 0, 1])), {
    kind: "validation",
    messageId: 0xffff,
    valid: true,
    reserved: 0,
  });
});

Deno.test("decodes a message that lies at an offset inside a larger buffer", () => {
  const backing = new Uint8Array(32).fill(0xee);
  const message = frame(500, [3, 0, 0, 9, 0x61, 0x62]);
  backing.set(message, 13);
  const view = backing.subarray(13, 13 + message.length);
  assert.deepEqual(decodeApiMessage(view), {
    kind: "announce",
    ttl: 3,
    reserved: 0,
    dataType: 9,
    data: new Uint8Array([0x61, 0x62]),
  });
  const notify = frame(501, [0, 1, 0, 2]);
  backing.set(notify, 5);
  assert.deepEqual(decodeApiMessage(backing.subarray(5, 13)), {
    kind: "notify",
    reserved: 1,
    dataType: 2,
  });
});

Deno.test("decodes the largest possible message (size 65535)", () => {
  const data = bytes(API_MAX_DATA_BYTES);
  assert.equal(data.length, 65527);
  const input = frame(500, [1, 0, 0x30, 0x39, ...data]);
  assert.equal(input.length, 65535);
  assert.deepEqual([input[0], input[1]], [0xff, 0xff]);
  const message = decodeApiMessage(input);
  assert.equal(message.kind, "announce");
  if (message.kind !== "announce") return;
  assert.equal(message.dataType, 12345);
  assert.equal(message.data.length, 65527);
  assert.deepEqual(message.data, data);

  const notification = decodeApiMessage(frame(502, [0, 5, 0, 6, ...data]));
  assert.equal(notification.kind, "notification");
  if (notification.kind !== "notification") return;
  assert.deepEqual(notification.data, data);
});

Deno.test("encodes every message type to the hand-written bytes", () => {
  const cases: [ApiMessage, Uint8Array][] = [
    [
      { kind: "announce", ttl: 5, reserved: 0, dataType: 0x1234, data: new Uint8Array([1, 2, 3]) },
      new Uint8Array([0, 11, 0x01, 0xf4, 5, 0, 0x12, 0x34, 1, 2, 3]),
    ],
    [
      { kind: "announce", ttl: 255, reserved: 255, dataType: 0xffff, data: new Uint8Array([0]) },
      new Uint8Array([0, 9, 0x01, 0xf4, 0xff, 0xff, 0xff, 0xff, 0]),
    ],
    [
      { kind: "notify", reserved: 0xabcd, dataType: 0xffff },
      new Uint8Array([0, 8, 0x01, 0xf5, 0xab, 0xcd, 0xff, 0xff]),
    ],
    [
      { kind: "notification", messageId: 0xffff, dataType: 1, data: new Uint8Array([0xde, 0xad]) },
      new Uint8Array([0, 10, 0x01, 0xf6, 0xff, 0xff, 0x00, 0x01, 0xde, 0xad]),
    ],
    [
      { kind: "validation", messageId: 0x1234, valid: true, reserved: 0 },
      new Uint8Array([0, 8, 0x01, 0xf7, 0x12, 0x34, 0, 1]),
    ],
    [
      { kind: "validation", messageId: 0xffff, valid: false, reserved: 0 },
      new Uint8Array([0, 8, 0x01, 0xf7, 0xff, 0xff, 0, 0]),
    ],
    [
      { kind: "validation", messageId: 1, valid: false, reserved: 0x7fff },
      new Uint8Array([0, 8, 0x01, 0xf7, 0, 1, 0xff, 0xfe]),
    ],
    [
      { kind: "validation", messageId: 2, valid: true, reserved: 0x4000 },
      new Uint8Array([0, 8, 0x01, 0xf7, 0, 2, 0x80, 0x01]),
    ],
  ];
  for (const [message, expected] of cases) {
    assert.deepEqual(encodeApiMessage(message), expected, JSON.stringify(message.kind));
  }
});

Deno.test("encodes the largest ANNOUNCE with size field 0xffff", () => {
  const data = bytes(API_MAX_DATA_BYTES, 7);
  const encoded = encodeApiMessage({ kind: "announce", ttl: 1, reserved: 0, dataType: 2, data });
  assert.deepEqual(encoded, frame(500, [1, 0, 0, 2, ...data]));
  assert.equal(new DataView(encoded.buffer).getUint16(0), 0xffff);
});

Deno.test("encode then decode returns the same message for every type", () => {
  const messages: ApiMessage[] = [
    { kind: "announce", ttl: 0, reserved: 0, dataType: 0, data: new Uint8Array([1]) },
    { kind: "announce", ttl: 255, reserved: 255, dataType: 0xffff, data: bytes(1000) },
    { kind: "notify", reserved: 0, dataType: 0 },
    { kind: "notify", reserved: 0xffff, dataType: 0xffff },
    { kind: "notification", messageId: 0, dataType: 0, data: new Uint8Array([0]) },
    { kind: "notification", messageId: 0xffff, dataType: 0xffff, data: bytes(API_MAX_DATA_BYTES) },
    { kind: "validation", messageId: 0, valid: false, reserved: 0 },
    { kind: "validation", messageId: 0xffff, valid: true, reserved: 0x7fff },
    { kind: "validation", messageId: 77, valid: true, reserved: 3 },
  ];
  for (const message of messages) {
    assert.deepEqual(decodeApiMessage(encodeApiMessage(message)), message, message.kind);
  }
});

Deno.test("decode then encode reproduces the input bytes, reserved bits included", () => {
  const inputs = [
    frame(500, [9, 0x5a, 1, 2, 3]),
    frame(501, [0x80, 0x01, 0xff, 0xfe]),
    frame(502, [0x12, 0x34, 0x56, 0x78, 0x9a]),
    frame(503, [0x00, 0x10, 0xa5, 0x5a]),
    frame(503, [0x00, 0x10, 0xa5, 0x5b]),
  ];
  for (const input of inputs) {
    assert.deepEqual(encodeApiMessage(decodeApiMessage(input)), input);
  }
});

Deno.test("encode rejects out-of-range fields with RangeError", () => {
  const data = new Uint8Array([1]);
  const bad: [string, ApiMessage][] = [
    ["ttl 256", { kind: "announce", ttl: 256, reserved: 0, dataType: 0, data }],
    ["ttl -1", { kind: "announce", ttl: -1, reserved: 0, dataType: 0, data }],
    ["ttl 1.5", { kind: "announce", ttl: 1.5, reserved: 0, dataType: 0, data }],
    ["ttl NaN", { kind: "announce", ttl: NaN, reserved: 0, dataType: 0, data }],
    ["announce reserved 256", { kind: "announce", ttl: 0, reserved: 256, dataType: 0, data }],
    ["announce dataType 65536", { kind: "announce", ttl: 0, reserved: 0, dataType: 0x10000, data }],
    ["announce empty data", {
      kind: "announce",
      ttl: 0,
      reserved: 0,
      dataType: 0,
      data: new Uint8Array(),
    }],
    ["announce data too large", {
      kind: "announce",
      ttl: 0,
      reserved: 0,
      dataType: 0,
      data: new Uint8Array(API_MAX_DATA_BYTES + 1),
    }],
    ["notify reserved 65536", { kind: "notify", reserved: 0x10000, dataType: 0 }],
    ["notify dataType -1", { kind: "notify", reserved: 0, dataType: -1 }],
    ["notification id 65536", { kind: "notification", messageId: 0x10000, dataType: 0, data }],
    ["notification dataType 65536", {
      kind: "notification",
      messageId: 0,
      dataType: 0x10000,
      data,
    }],
    ["notification empty data", {
      kind: "notification",
      messageId: 0,
      dataType: 0,
      data: new Uint8Array(),
    }],
    ["notification data too large", {
      kind: "notification",
      messageId: 0,
      dataType: 0,
      data: new Uint8Array(API_MAX_DATA_BYTES + 1),
    }],
    ["validation id -1", { kind: "validation", messageId: -1, valid: true, reserved: 0 }],
    ["validation id 65536", { kind: "validation", messageId: 0x10000, valid: true, reserved: 0 }],
    ["validation reserved 0x8000", {
      kind: "validation",
      messageId: 0,
      valid: true,
      reserved: 0x8000,
    }],
    ["validation reserved -1", { kind: "validation", messageId: 0, valid: false, reserved: -1 }],
  ];
  for (const [label, message] of bad) {
    assert.throws(() => encodeApiMessage(message), RangeError, label);
  }
});

Deno.test("rejects messages shorter than the 4-byte header", () => {
  const inputs = [
    new Uint8Array([]),
    new Uint8Array([0]),
    new Uint8Array([0, 2]),
    new Uint8Array([0, 3, 0x01]),
  ];
  for (const input of inputs) {
    assertDecodeError(input, /shorter than the header/, `length ${input.length}`);
  }
});

Deno.test("rejects a size field below the header size", () => {
  for (const size of [0, 1, 2, 3]) {
    assertDecodeError(frame(501, [0, 0, 0, 1], size), /size field/, `size ${size}`);
    assertDecodeError(frame(500, [], size), /size field/, `bare header size ${size}`);
  }
});

Deno.test("rejects a size field that differs from the buffer length", () => {
  const cases: [number, number[], number][] = [
    [500, [1, 0, 0, 1, 0xaa, 0xbb], 11],
    [500, [1, 0, 0, 1, 0xaa, 0xbb], 9],
    [501, [0, 0, 0, 1], 9],
    [501, [0, 0, 0, 1], 7],
    [502, [0, 1, 0, 1, 0xaa], 0xffff],
    [503, [0, 1, 0, 1], 4],
    [503, [0, 1, 0, 1], 0x0800],
  ];
  for (const [type, body, size] of cases) {
    assertDecodeError(frame(type, body, size), /does not match/, `type ${type} size ${size}`);
  }
});

Deno.test("rejects NOTIFY and VALIDATION that are not exactly 8 bytes", () => {
  for (const type of [501, 503]) {
    for (const bodyLength of [0, 1, 2, 3, 5, 6, 60]) {
      assertDecodeError(
        frame(type, bytes(bodyLength)),
        /exactly 8 bytes/,
        `type ${type} size ${4 + bodyLength}`,
      );
    }
  }
  // The two cases named by the spec, written out in full.
  assertDecodeError(new Uint8Array([0, 7, 0x01, 0xf5, 0, 0, 1]), /NOTIFY/, "NOTIFY 7");
  assertDecodeError(new Uint8Array([0, 9, 0x01, 0xf5, 0, 0, 0, 1, 0]), /NOTIFY/, "NOTIFY 9");
  assertDecodeError(new Uint8Array([0, 7, 0x01, 0xf7, 0, 0, 1]), /VALIDATION/, "VALIDATION 7");
  assertDecodeError(
    new Uint8Array([0, 9, 0x01, 0xf7, 0, 0, 0, 1, 0]),
    /VALIDATION/,
    "VALIDATION 9",
  );
});

Deno.test("rejects ANNOUNCE and NOTIFICATION of 8 bytes or less", () => {
  for (const [type, name] of [[500, /ANNOUNCE/], [502, /NOTIFICATION/]] as const) {
    for (let bodyLength = 0; bodyLength <= 4; bodyLength++) {
      const input = frame(type, bytes(bodyLength));
      assertDecodeError(input, name, `type ${type} size ${input.length}`);
    }
  }
  assertDecodeError(new Uint8Array([0, 8, 0x01, 0xf4, 1, 0, 0, 1]), /must carry data/, "A8");
  assertDecodeError(new Uint8Array([0, 8, 0x01, 0xf6, 1, 0, 0, 1]), /must carry data/, "N8");
});

Deno.test("rejects unknown message types", () => {
  for (const type of [0, 1, 499, 504, 505, 520, 1000, 65535]) {
    assertDecodeError(frame(type, [0, 0, 0, 0]), /unknown message type/, `type ${type} size 8`);
    assertDecodeError(frame(type, bytes(8)), /unknown message type/, `type ${type} size 12`);
    assertDecodeError(frame(type, []), /unknown message type/, `type ${type} size 4`);
  }
});
