/**
 * Unit and property tests of lib/protocol/item.ts: content-bound item IDs,
 * new items, the TTL rule and the hex form of IDs. The expected IDs are
 * computed here independently, with Web Crypto over bytes laid out by hand.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { computeItemId, itemIdHex, mayForward, newItem, randomU64 } from "../lib/protocol/item.ts";

const U64_MAX = (1n << 64n) - 1n;

/** `SHA-256("gossip-item-v2" || nonce u64 BE || ttl u8 || type u16 BE || data)`, first 8 bytes. */
async function referenceId(
  nonce: bigint,
  ttl: number,
  dataType: number,
  data: Uint8Array,
): Promise<bigint> {
  const label = [..."gossip-item-v2"].map((c) => c.charCodeAt(0));
  const nonceBytes: number[] = [];
  for (let shift = 56n; shift >= 0n; shift -= 8n) nonceBytes.push(Number((nonce >> shift) & 0xffn));
  const input = new Uint8Array([
    ...label,
    ...nonceBytes,
    ttl,
    dataType >> 8,
    dataType & 0xff,
    ...data,
  ]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  let id = 0n;
  for (const byte of digest.subarray(0, 8)) id = (id << 8n) | BigInt(byte);
  return id;
}

const fields = fc.record({
  nonce: fc.bigInt({ min: 0n, max: U64_MAX }),
  ttl: fc.integer({ min: 0, max: 255 }),
  dataType: fc.integer({ min: 0, max: 0xffff }),
  data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
});

Deno.test("computeItemId is the first 8 bytes of the labelled SHA-256, big-endian", async () => {
  const cases: [bigint, number, number, Uint8Array][] = [
    [0n, 0, 0, new Uint8Array([0])],
    [1n, 1, 1, new Uint8Array([1, 2, 3])],
    [U64_MAX, 255, 0xffff, new Uint8Array(65527).fill(0xab)],
    [0x0123456789abcdefn, 7, 0x1234, new TextEncoder().encode("hello")],
  ];
  for (const [nonce, ttl, dataType, data] of cases) {
    const id = computeItemId(nonce, ttl, dataType, data);
    assert.equal(id, await referenceId(nonce, ttl, dataType, data), `nonce ${nonce}`);
    assert.ok(id >= 0n && id <= U64_MAX);
  }
});

Deno.test("computeItemId matches the reference for random fields", async () => {
  await fc.assert(
    fc.asyncProperty(fields, async ({ nonce, ttl, dataType, data }) => {
      assert.equal(
        computeItemId(nonce, ttl, dataType, data),
        await referenceId(nonce, ttl, dataType, data),
      );
    }),
    { numRuns: 200 },
  );
});

Deno.test("the label separates item IDs from a plain hash of the same fields", async () => {
  const data = new Uint8Array([9, 9, 9]);
  const unlabelled = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 5, 3, 0, 7, ...data]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", unlabelled));
  const plain = new DataView(digest.buffer).getBigUint64(0);
  assert.notEqual(computeItemId(5n, 3, 7, data), plain);
});

Deno.test("changing any one field changes the ID (content binding)", () => {
  fc.assert(
    fc.property(
      fields,
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      ({ nonce, ttl, dataType, data }, position, flip) => {
        const id = computeItemId(nonce, ttl, dataType, data);
        assert.notEqual(computeItemId(nonce ^ 1n, ttl, dataType, data), id, "nonce");
        assert.notEqual(computeItemId(nonce, (ttl + 1) % 256, dataType, data), id, "ttl");
        assert.notEqual(computeItemId(nonce, ttl, dataType ^ 0x8000, data), id, "type");
        const changed = data.slice();
        changed[position % data.length] ^= flip;
        assert.notEqual(computeItemId(nonce, ttl, dataType, changed), id, "data byte");
        const longer = new Uint8Array([...data, 0]);
        assert.notEqual(computeItemId(nonce, ttl, dataType, longer), id, "appended byte");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("fields are hashed at fixed width: no ambiguity between TTL, type and data", () => {
  // Moving a byte between the type and the data must not give the same input.
  assert.notEqual(
    computeItemId(0n, 0, 0x0001, new Uint8Array([2])),
    computeItemId(0n, 0, 0x0102, new Uint8Array([0])),
  );
  assert.notEqual(
    computeItemId(0n, 1, 0, new Uint8Array([1])),
    computeItemId(0n, 0, 1, new Uint8Array([1])),
  );
});

Deno.test("computeItemId hashes only the bytes of a data view, not its whole buffer", () => {
  const buffer = new Uint8Array([0xff, 1, 2, 3, 0xee]);
  const view = buffer.subarray(1, 4);
  assert.equal(computeItemId(4n, 2, 9, view), computeItemId(4n, 2, 9, new Uint8Array([1, 2, 3])));
});

Deno.test("computeItemId hashes out-of-range numbers as their wire encoding (modulo width)", () => {
  // The codec never produces these; the ID is defined over the encoded fields.
  const data = new Uint8Array([1]);
  assert.equal(computeItemId(1n << 64n, 0, 0, data), computeItemId(0n, 0, 0, data));
  assert.equal(computeItemId(-1n, 0, 0, data), computeItemId(U64_MAX, 0, 0, data));
  assert.equal(computeItemId(0n, 256, 0, data), computeItemId(0n, 0, 0, data));
  assert.equal(computeItemId(0n, 0, 0x10000, data), computeItemId(0n, 0, 0, data));
});

Deno.test("newItem binds the ID to a fresh nonce, or to the one given", () => {
  const data = new Uint8Array([1, 2, 3]);
  const given = newItem(3, 42, data, 77n);
  assert.deepEqual(
    { nonce: given.nonce, ttl: given.ttl, dataType: given.dataType, data: given.data },
    { nonce: 77n, ttl: 3, dataType: 42, data },
  );
  assert.equal(given.id, computeItemId(77n, 3, 42, data));
  assert.equal(newItem(3, 42, data, 77n).id, given.id, "deterministic for a given nonce");

  const ids = new Set<bigint>();
  const nonces = new Set<bigint>();
  for (let i = 0; i < 200; i++) {
    const item = newItem(0, 1, data);
    assert.equal(item.id, computeItemId(item.nonce, 0, 1, data));
    ids.add(item.id);
    nonces.add(item.nonce);
  }
  assert.equal(nonces.size, 200, "fresh nonces");
  assert.equal(ids.size, 200, "so the same content announced twice gets two IDs");
});

Deno.test("randomU64 covers the 64-bit range", () => {
  let high = false;
  let low = false;
  for (let i = 0; i < 200; i++) {
    const value = randomU64();
    assert.equal(typeof value, "bigint");
    assert.ok(value >= 0n && value <= U64_MAX);
    if (value >= 1n << 63n) high = true;
    else low = true;
  }
  assert.ok(high && low, "both halves of the range occur");
});

Deno.test("mayForward: TTL n reaches at most n hops, TTL 0 is unlimited", () => {
  const table: [ttl: number, hops: number, forward: boolean][] = [
    [0, 0, true],
    [0, 1, true],
    [0, 255, true],
    [1, 0, true], // the origin pushes a TTL 1 item to its neighbours
    [1, 1, false], // the neighbours do not pass it on
    [2, 1, true],
    [2, 2, false],
    [2, 3, false],
    [255, 254, true],
    [255, 255, false],
  ];
  for (const [ttl, hops, forward] of table) {
    assert.equal(mayForward(ttl, hops), forward, `ttl ${ttl} hops ${hops}`);
  }
});

Deno.test("mayForward is monotone: fewer hops never forward less", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (ttl, hops) => {
      assert.equal(mayForward(ttl, hops), ttl === 0 || hops < ttl);
      if (mayForward(ttl, hops) && hops > 0) assert.ok(mayForward(ttl, hops - 1));
    }),
  );
});

Deno.test("itemIdHex gives 16 lower-case digits that parse back to the ID", () => {
  assert.equal(itemIdHex(0n), "0000000000000000");
  assert.equal(itemIdHex(0xabcn), "0000000000000abc");
  assert.equal(itemIdHex(U64_MAX), "ffffffffffffffff");
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (id) => {
      const hex = itemIdHex(id);
      assert.match(hex, /^[0-9a-f]{16}$/);
      assert.equal(BigInt(`0x${hex}`), id);
    }),
  );
});
