import assert from "node:assert/strict";
import { forwardTtl, type GossipItem, itemIdHex, randomItemId } from "../lib/protocol/item.ts";
import { KnowledgeBase } from "../lib/protocol/knowledge_base.ts";

function item(id: bigint, fill = Number(id & 0xffn)): GossipItem {
  return { id, ttl: 3, dataType: 42, data: new Uint8Array([fill, fill]) };
}

function ids(base: KnowledgeBase): bigint[] {
  return [...base.values()].map((entry) => entry.id);
}

Deno.test("capacity must be a positive integer", () => {
  for (const capacity of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => new KnowledgeBase(capacity), RangeError, `capacity ${capacity}`);
  }
  assert.equal(new KnowledgeBase(1).capacity, 1);
  assert.equal(new KnowledgeBase(50).capacity, 50);
});

Deno.test("add, get, has and size", () => {
  const base = new KnowledgeBase(10);
  assert.equal(base.size, 0);
  assert.ok(!base.has(1n));
  assert.equal(base.get(1n), undefined);
  const first = item(1n);
  base.add(first);
  base.add(item(0xffffffffffffffffn));
  assert.equal(base.size, 2);
  assert.ok(base.has(1n));
  assert.equal(base.get(1n), first);
  assert.ok(base.has(0xffffffffffffffffn));
  assert.ok(!base.has(2n));
  assert.equal(base.evicted, 0);
});

Deno.test("the oldest items are evicted first when the store is full", () => {
  const base = new KnowledgeBase(3);
  for (const id of [10n, 20n, 30n]) base.add(item(id));
  assert.deepEqual(ids(base), [10n, 20n, 30n]);
  assert.equal(base.evicted, 0);
  base.add(item(40n));
  assert.deepEqual(ids(base), [20n, 30n, 40n]);
  assert.ok(!base.has(10n));
  assert.equal(base.get(10n), undefined);
  assert.equal(base.evicted, 1);
  base.add(item(50n));
  assert.deepEqual(ids(base), [30n, 40n, 50n]);
  assert.equal(base.size, 3);
  assert.equal(base.evicted, 2);
});

Deno.test("size never exceeds the capacity", () => {
  const base = new KnowledgeBase(50);
  for (let i = 0n; i < 1000n; i++) {
    base.add(item(i));
    assert.ok(base.size <= 50);
  }
  assert.equal(base.size, 50);
  assert.equal(base.evicted, 950);
  assert.deepEqual(ids(base), Array.from({ length: 50 }, (_, i) => BigInt(950 + i)));
});

Deno.test("capacity 1 keeps only the newest item", () => {
  const base = new KnowledgeBase(1);
  base.add(item(1n));
  base.add(item(2n));
  assert.deepEqual(ids(base), [2n]);
  assert.equal(base.evicted, 1);
});

Deno.test("adding a known ID is a no-op: no replacement, no refresh, no eviction", () => {
  const base = new KnowledgeBase(2);
  const original = item(1n, 0xaa);
  base.add(original);
  base.add(item(2n));
  base.add(item(1n, 0xbb));
  assert.equal(base.get(1n), original, "the first copy is kept");
  assert.equal(base.size, 2);
  assert.equal(base.evicted, 0);
  base.add(item(3n));
  assert.deepEqual(ids(base), [2n, 3n], "re-adding did not make item 1 younger");
});

Deno.test("an evicted ID can be stored again as the newest", () => {
  const base = new KnowledgeBase(2);
  base.add(item(1n));
  base.add(item(2n));
  base.add(item(3n));
  base.add(item(1n));
  assert.deepEqual(ids(base), [3n, 1n]);
  assert.equal(base.evicted, 2);
});

Deno.test("forwardTtl: 0 stays unlimited, 1 stops, k forwards k - 1", () => {
  assert.equal(forwardTtl(0), 0);
  assert.equal(forwardTtl(1), undefined);
  assert.equal(forwardTtl(2), 1);
  assert.equal(forwardTtl(255), 254);
});

Deno.test("itemIdHex prints 16 lower-case hex digits", () => {
  assert.equal(itemIdHex(0n), "0000000000000000");
  assert.equal(itemIdHex(0xabcn), "0000000000000abc");
  assert.equal(itemIdHex(0xffffffffffffffffn), "ffffffffffffffff");
});

Deno.test("randomItemId returns distinct 64-bit values", () => {
  const seen = new Set<bigint>();
  for (let i = 0; i < 100; i++) {
    const id = randomItemId();
    assert.ok(id >= 0n && id <= 0xffffffffffffffffn);
    seen.add(id);
  }
  assert.equal(seen.size, 100);
});
