import assert from "node:assert/strict";
import { Subscriptions } from "../lib/protocol/subscriptions.ts";

Deno.test("an empty table has no subscribers for any type", () => {
  const subscriptions = new Subscriptions<number>();
  assert.ok(!subscriptions.has(0));
  assert.equal(subscriptions.subscribers(0).size, 0);
});

Deno.test("add subscribes a connection to a data type", () => {
  const subscriptions = new Subscriptions<string>();
  subscriptions.add("conn-1", 0xffff);
  assert.ok(subscriptions.has(0xffff));
  assert.ok(!subscriptions.has(0xfffe));
  assert.deepEqual([...subscriptions.subscribers(0xffff)], ["conn-1"]);
});

Deno.test("repeating add is harmless", () => {
  const subscriptions = new Subscriptions<string>();
  subscriptions.add("conn-1", 7);
  subscriptions.add("conn-1", 7);
  assert.equal(subscriptions.subscribers(7).size, 1);
  subscriptions.remove("conn-1");
  assert.ok(!subscriptions.has(7), "one remove undoes repeated adds");
});

Deno.test("several subscribers per type and several types per subscriber", () => {
  const subscriptions = new Subscriptions<string>();
  subscriptions.add("a", 1);
  subscriptions.add("b", 1);
  subscriptions.add("a", 2);
  subscriptions.add("c", 0);
  assert.deepEqual(new Set(subscriptions.subscribers(1)), new Set(["a", "b"]));
  assert.deepEqual([...subscriptions.subscribers(2)], ["a"]);
  assert.deepEqual([...subscriptions.subscribers(0)], ["c"]);
  assert.ok([0, 1, 2].every((type) => subscriptions.has(type)));
});

Deno.test("remove drops every subscription of that subscriber and no other", () => {
  const subscriptions = new Subscriptions<string>();
  subscriptions.add("a", 1);
  subscriptions.add("b", 1);
  subscriptions.add("a", 2);
  subscriptions.remove("a");
  assert.deepEqual([...subscriptions.subscribers(1)], ["b"]);
  assert.ok(subscriptions.has(1));
  assert.ok(!subscriptions.has(2), "a type without subscribers is gone");
  assert.equal(subscriptions.subscribers(2).size, 0);
  subscriptions.remove("b");
  assert.ok(!subscriptions.has(1));
});

Deno.test("removing an unknown subscriber changes nothing", () => {
  const subscriptions = new Subscriptions<string>();
  subscriptions.add("a", 1);
  subscriptions.remove("nobody");
  assert.deepEqual([...subscriptions.subscribers(1)], ["a"]);
});

Deno.test("a removed subscriber can subscribe again", () => {
  const subscriptions = new Subscriptions<object>();
  const connection = {};
  subscriptions.add(connection, 5);
  subscriptions.remove(connection);
  assert.ok(!subscriptions.has(5));
  subscriptions.add(connection, 6);
  assert.ok(!subscriptions.has(5), "the old subscription does not come back");
  assert.deepEqual([...subscriptions.subscribers(6)], [connection]);
});

Deno.test("subscriber identity is by reference, not by shape", () => {
  const subscriptions = new Subscriptions<object>();
  const first = { id: 1 };
  const second = { id: 1 };
  subscriptions.add(first, 9);
  subscriptions.add(second, 9);
  assert.equal(subscriptions.subscribers(9).size, 2);
  subscriptions.remove(first);
  assert.deepEqual([...subscriptions.subscribers(9)], [second]);
});
