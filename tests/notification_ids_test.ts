import assert from "node:assert/strict";
import { NotificationIds, randomU16 } from "../lib/protocol/notification_ids.ts";

Deno.test("capacity must be 1..32768", () => {
  for (const capacity of [0, -1, 32769, 65536]) {
    assert.throws(() => new NotificationIds(capacity), RangeError, `capacity ${capacity}`);
  }
  assert.equal(new NotificationIds(1).capacity, 1);
  assert.equal(new NotificationIds(32768).capacity, 32768);
  assert.equal(new NotificationIds().capacity, 4096);
});

Deno.test("allocated IDs are 16-bit and unique among outstanding ones", () => {
  const table = new NotificationIds<number>();
  const seen = new Map<number, number>();
  for (let key = 0; key < 4096; key++) {
    const id = table.allocate(key);
    assert.ok(Number.isInteger(id) && id >= 0 && id <= 0xffff, `id ${id}`);
    assert.ok(!seen.has(id), `id ${id} handed out twice`);
    seen.set(id, key);
  }
  assert.equal(table.size, 4096);
  for (const [id, key] of seen) assert.equal(table.resolve(id), key);
  assert.equal(table.size, 0);
});

Deno.test("resolve returns the key once, then undefined", () => {
  const table = new NotificationIds<string>(16, () => 1234);
  const id = table.allocate("item-a");
  assert.equal(id, 1234);
  assert.equal(table.size, 1);
  assert.equal(table.resolve(id), "item-a");
  assert.equal(table.size, 0);
  assert.equal(table.resolve(id), undefined);
  assert.equal(table.resolve(4321), undefined, "never allocated");
});

Deno.test("a constant random source still yields unique IDs by probing", () => {
  const table = new NotificationIds<string>(100, () => 42);
  const allocated = ["a", "b", "c", "d"].map((key) => table.allocate(key));
  assert.deepEqual(allocated, [42, 43, 44, 45]);
  assert.equal(table.resolve(43), "b");
  assert.equal(table.allocate("e"), 43, "a resolved ID is free again");
  assert.equal(table.resolve(42), "a");
  assert.equal(table.resolve(45), "d");
  assert.equal(table.resolve(43), "e");
});

Deno.test("probing wraps from 0xffff to 0", () => {
  const table = new NotificationIds<string>(10, () => 0xffff);
  assert.deepEqual([table.allocate("a"), table.allocate("b"), table.allocate("c")], [
    0xffff,
    0,
    1,
  ]);
  assert.equal(table.resolve(0), "b");
});

Deno.test("when more than capacity are outstanding the oldest is forgotten", () => {
  let next = 0;
  const table = new NotificationIds<string>(3, () => next++ * 1000);
  const idA = table.allocate("a");
  const idB = table.allocate("b");
  const idC = table.allocate("c");
  assert.equal(table.size, 3);
  const idD = table.allocate("d");
  assert.equal(table.size, 3);
  assert.equal(table.resolve(idA), undefined, "the oldest was evicted");
  assert.equal(table.resolve(idB), "b");
  assert.equal(table.resolve(idC), "c");
  assert.equal(table.resolve(idD), "d");
});

Deno.test("capacity eviction with a constant source keeps outstanding IDs unique", () => {
  const table = new NotificationIds<number>(1000, () => 7);
  const outstanding = new Map<number, number>();
  const order: number[] = [];
  for (let key = 0; key < 3000; key++) {
    if (order.length === 1000) outstanding.delete(order.shift() as number);
    const id = table.allocate(key);
    assert.ok(!outstanding.has(id), `id ${id} is already outstanding`);
    outstanding.set(id, key);
    order.push(id);
  }
  assert.equal(table.size, 1000);
  for (const [id, key] of outstanding) assert.equal(table.resolve(id), key);
  assert.equal(table.size, 0);
});

Deno.test("a full 32768-entry table still allocates unique IDs", () => {
  const table = new NotificationIds<number>(32768);
  const ids = new Set<number>();
  for (let key = 0; key < 32768; key++) ids.add(table.allocate(key));
  assert.equal(ids.size, 32768);
  assert.equal(table.size, 32768);
});

Deno.test("randomU16 returns 16-bit integers that vary", () => {
  const values = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const value = randomU16();
    assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffff);
    values.add(value);
  }
  assert.ok(values.size > 900, `only ${values.size} distinct values in 1000 draws`);
});
