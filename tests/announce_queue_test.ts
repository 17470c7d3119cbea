/** Unit and property tests of lib/protocol/announce_queue.ts: a bounded FIFO with overflow. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { AnnounceQueue } from "../lib/protocol/announce_queue.ts";

Deno.test("capacity must be a positive integer", () => {
  for (const capacity of [0, -1, 2.5, NaN, Infinity]) {
    assert.throws(() => new AnnounceQueue(capacity), RangeError, `capacity ${capacity}`);
  }
  assert.equal(new AnnounceQueue(1).capacity, 1);
});

Deno.test("entries come out in the order they went in", () => {
  const queue = new AnnounceQueue<string>(5);
  assert.deepEqual(queue.takeAll(), []);
  assert.ok(queue.push("a"));
  assert.ok(queue.push("b"));
  assert.ok(queue.push("c"));
  assert.equal(queue.length, 3);
  assert.deepEqual(queue.takeAll(), ["a", "b", "c"]);
  assert.equal(queue.length, 0);
  assert.deepEqual(queue.takeAll(), [], "taken entries are gone");
  assert.equal(queue.dropped, 0);
});

Deno.test("beyond capacity new entries are refused and counted, the old ones kept", () => {
  const queue = new AnnounceQueue<number>(2);
  assert.ok(queue.push(1));
  assert.ok(queue.push(2));
  assert.equal(queue.push(3), false);
  assert.equal(queue.push(4), false);
  assert.equal(queue.length, 2);
  assert.equal(queue.dropped, 2);
  assert.deepEqual(queue.takeAll(), [1, 2], "the oldest are kept, not the newest");
  // Taking frees the room; the drop count is cumulative.
  assert.ok(queue.push(5));
  assert.equal(queue.push(6), true);
  assert.equal(queue.push(7), false);
  assert.equal(queue.dropped, 3);
  assert.deepEqual(queue.takeAll(), [5, 6]);
});

Deno.test("takeAll hands over its array: later pushes do not change it", () => {
  const queue = new AnnounceQueue<number>(3);
  queue.push(1);
  const taken = queue.takeAll();
  queue.push(2);
  assert.deepEqual(taken, [1]);
  taken.push(99);
  assert.deepEqual(queue.takeAll(), [2], "mutating the taken array does not touch the queue");
});

Deno.test("property: the queue behaves like a capped array", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10 }),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant("take" as const)), {
        maxLength: 200,
      }),
      (capacity, ops) => {
        const queue = new AnnounceQueue<number>(capacity);
        let model: number[] = [];
        let dropped = 0;
        for (const op of ops) {
          if (op === "take") {
            assert.deepEqual(queue.takeAll(), model);
            model = [];
          } else {
            const fits = model.length < capacity;
            assert.equal(queue.push(op), fits);
            if (fits) model.push(op);
            else dropped++;
          }
          assert.equal(queue.length, model.length);
          assert.ok(queue.length <= capacity);
          assert.equal(queue.dropped, dropped);
        }
      },
    ),
  );
});
