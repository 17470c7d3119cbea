/**
 * Unit and property tests of lib/protocol/item_store.ts: bounds by count and
 * bytes, tombstones, the unsubscribed memo, holder lists, recentValid,
 * forgetPeer and sweep.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { GossipItem } from "../lib/protocol/item.ts";
import {
  addOnce,
  ItemStore,
  type ItemStoreOptions,
  type StoredItemState,
} from "../lib/protocol/item_store.ts";

/** An item with `id` and `size` payload bytes (IDs need not match content here). */
function item(id: bigint, size = 10, dataType = 7): GossipItem {
  return { id, nonce: 0n, ttl: 0, dataType, data: new Uint8Array(size) };
}

function store(options: Partial<ItemStoreOptions> = {}): ItemStore {
  return new ItemStore({
    maxItems: 100,
    maxBytes: 1_000_000,
    maxTombstones: 100,
    tombstoneTtlMs: 1_000,
    ...options,
  });
}

function add(
  target: ItemStore,
  id: bigint,
  { size = 10, state = "valid" as StoredItemState, from = "p" as string | undefined, now = 0 } = {},
) {
  return target.add(item(id, size), { hops: 1, state, from, now });
}

function ids(target: ItemStore, candidates: readonly bigint[]): bigint[] {
  return candidates.filter((id) => target.get(id) !== undefined);
}

Deno.test("maxItems must be a positive integer", () => {
  for (const maxItems of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => store({ maxItems }), RangeError, `maxItems ${maxItems}`);
  }
  assert.equal(store({ maxItems: 1 }).size, 0);
});

Deno.test("add stores the item with its details; a local item has no sender or holder", () => {
  const target = store();
  const fromPeer = target.add(item(1n, 5), { hops: 3, state: "validating", from: "a", now: 42 });
  assert.ok(fromPeer);
  assert.equal(fromPeer.item.id, 1n);
  assert.equal(fromPeer.hops, 3);
  assert.equal(fromPeer.state, "validating");
  assert.equal(fromPeer.firstSeen, 42);
  assert.equal(fromPeer.from, "a");
  assert.deepEqual(fromPeer.holders, ["a"]);
  assert.deepEqual(fromPeer.advertised, []);
  assert.equal(fromPeer.requesters, undefined);
  assert.equal(target.get(1n), fromPeer);

  const local = target.add(item(2n, 7), { hops: 0, state: "valid", now: 43 });
  assert.ok(local);
  assert.equal(local.from, undefined);
  assert.deepEqual(local.holders, []);
  assert.equal(target.size, 1, "size counts validated items only");
  assert.equal(target.bytes, 7);
  assert.equal(target.validating, 1);
  assert.equal(target.validatingPayloadBytes, 5);
  assert.equal(target.get(3n), undefined);
  assert.ok(target.isKnown(1n) && target.isKnown(2n));
  assert.equal(target.isKnown(3n), false);
});

Deno.test("maxItems evicts the oldest settled item and leaves a tombstone", () => {
  const target = store({ maxItems: 3 });
  for (const id of [1n, 2n, 3n]) add(target, id, { now: Number(id) });
  assert.equal(target.evicted, 0);
  add(target, 4n, { now: 4 });
  assert.deepEqual(ids(target, [1n, 2n, 3n, 4n]), [2n, 3n, 4n]);
  assert.equal(target.size, 3);
  assert.equal(target.bytes, 30);
  assert.equal(target.evicted, 1);
  assert.equal(target.tombstoneCount, 1);
  assert.ok(target.isKnown(1n), "an evicted item is still recognised as seen");
});

Deno.test("maxBytes evicts as many old items as a large one needs", () => {
  const target = store({ maxBytes: 100 });
  for (const id of [1n, 2n, 3n, 4n]) add(target, id, { size: 25 });
  assert.equal(target.bytes, 100);
  add(target, 5n, { size: 60 });
  assert.deepEqual(ids(target, [1n, 2n, 3n, 4n, 5n]), [4n, 5n]);
  assert.equal(target.bytes, 85);
  assert.equal(target.evicted, 3);
  // Exactly the byte bound fits, by evicting everything else.
  add(target, 6n, { size: 100 });
  assert.deepEqual(ids(target, [4n, 5n, 6n]), [6n]);
  assert.equal(target.bytes, 100);
});

Deno.test("an item larger than maxBytes is refused without evicting anything", () => {
  const target = store({ maxBytes: 100 });
  add(target, 1n, { size: 50 });
  assert.equal(add(target, 2n, { size: 101 }), undefined);
  assert.deepEqual(ids(target, [1n, 2n]), [1n]);
  assert.equal(target.evicted, 0);
  assert.equal(target.bytes, 50);
  assert.equal(target.isKnown(2n), false, "a refused item leaves no trace");
});

Deno.test("items being validated are never evicted and not bounded by maxItems", () => {
  const target = store({ maxItems: 1 });
  add(target, 1n, { state: "validating" });
  add(target, 2n, { state: "valid" });
  add(target, 3n, { state: "validating" });
  add(target, 4n); // valid: evicts 2, the only other valid one
  assert.deepEqual(ids(target, [1n, 2n, 3n, 4n]), [1n, 3n, 4n]);
  assert.equal(target.size, 1);
  assert.equal(target.validating, 2);
  // Validation queues bound these, not the store: more are always accepted.
  for (let id = 10n; id < 20n; id++) assert.ok(add(target, id, { state: "validating" }));
  assert.equal(target.validating, 12);
  assert.equal(target.evicted, 1);
});

Deno.test("markValid moves an item into the bounded knowledge base, evicting older valid ones", () => {
  const target = store({ maxItems: 2, maxBytes: 100 });
  add(target, 1n, { state: "validating", size: 40, now: 1 });
  add(target, 2n, { size: 30, now: 2 });
  add(target, 3n, { size: 30, now: 3 });
  assert.ok(target.markValid(1n, 4));
  // 1 is the oldest by first sight, but it is the one joining: 2 goes instead.
  assert.deepEqual(ids(target, [1n, 2n, 3n]), [1n, 3n]);
  assert.equal(target.size, 2);
  assert.equal(target.bytes, 70);
  assert.equal(target.validating, 0);
  assert.ok(target.markValid(1n, 5), "marking a valid item again changes nothing");
  assert.equal(target.markValid(9n, 5), false, "unknown IDs are not marked");
  // A validated item larger than maxBytes cannot join: settled instead.
  add(target, 4n, { state: "validating", size: 101 });
  assert.equal(target.markValid(4n, 6), false);
  assert.equal(target.get(4n), undefined);
  assert.ok(target.isKnown(4n), "tombstoned");
  assert.deepEqual(ids(target, [1n, 3n]), [1n, 3n]);
});

Deno.test("settle removes an item and keeps its ID as a tombstone", () => {
  const target = store();
  add(target, 1n, { size: 30 });
  target.settle(1n, 5);
  assert.equal(target.get(1n), undefined);
  assert.equal(target.size, 0);
  assert.equal(target.bytes, 0);
  assert.equal(target.tombstoneCount, 1);
  assert.ok(target.isKnown(1n));
  assert.ok(target.isKnown(1n, () => true), "a tombstone does not depend on subscriptions");
  // Settling an ID that is not stored still records it as judged.
  target.settle(9n, 5);
  assert.ok(target.isKnown(9n));
  assert.equal(target.evicted, 0, "settling is not eviction");
});

Deno.test("a tombstoned ID can be stored again, which clears its tombstone", () => {
  const target = store();
  add(target, 1n);
  target.settle(1n, 0);
  assert.ok(add(target, 1n));
  assert.equal(target.tombstoneCount, 0);
  assert.equal(target.size, 1);
});

Deno.test("discard removes an item without a trace: a later copy is new", () => {
  const target = store();
  add(target, 1n, { size: 30 });
  target.discard(1n);
  assert.equal(target.get(1n), undefined);
  assert.equal(target.bytes, 0);
  assert.equal(target.tombstoneCount, 0);
  assert.equal(target.isKnown(1n), false);
  target.discard(1n); // unknown IDs are ignored
  target.discard(2n);
  assert.equal(target.bytes, 0);
});

Deno.test("tombstones expire after tombstoneTtlMs on sweep, oldest first", () => {
  const target = store({ tombstoneTtlMs: 1_000 });
  target.settle(1n, 0);
  target.settle(2n, 500);
  target.sweep(999);
  assert.equal(target.tombstoneCount, 2);
  target.sweep(1_000); // exactly the TTL: expired
  assert.equal(target.isKnown(1n), false);
  assert.ok(target.isKnown(2n));
  target.sweep(1_499);
  assert.ok(target.isKnown(2n));
  target.sweep(1_500);
  assert.equal(target.tombstoneCount, 0);
});

Deno.test("a re-settled ID is remembered from its latest time", () => {
  const target = store({ tombstoneTtlMs: 1_000 });
  target.settle(1n, 0);
  target.settle(2n, 100);
  target.settle(1n, 900); // renewed: now younger than 2
  target.sweep(1_100);
  assert.equal(target.isKnown(2n), false);
  assert.ok(target.isKnown(1n));
  assert.equal(target.tombstoneCount, 1);
});

Deno.test("sweep keeps stored items, whatever their age", () => {
  const target = store({ tombstoneTtlMs: 10 });
  add(target, 1n, { now: 0 });
  add(target, 2n, { now: 0, state: "validating" });
  target.sweep(1_000_000);
  assert.ok(target.get(1n) && target.get(2n));
});

Deno.test("maxTombstones forgets the oldest tombstone; 0 keeps none", () => {
  const target = store({ maxTombstones: 2 });
  for (const id of [1n, 2n, 3n]) target.settle(id, Number(id));
  assert.equal(target.tombstoneCount, 2);
  assert.equal(target.isKnown(1n), false);
  assert.ok(target.isKnown(2n) && target.isKnown(3n));

  const none = store({ maxTombstones: 0, maxItems: 1 });
  add(none, 1n);
  none.settle(1n, 0);
  assert.equal(none.isKnown(1n), false);
  add(none, 2n);
  add(none, 3n); // evicts 2
  assert.equal(none.evicted, 1);
  assert.equal(none.tombstoneCount, 0);
  assert.equal(none.isKnown(2n), false);
});

Deno.test("an item dropped for want of a subscriber is known until its type is subscribed", () => {
  const target = store();
  add(target, 1n, { size: 40 });
  target.dropUnsubscribed(1n, 7);
  assert.equal(target.get(1n), undefined);
  assert.equal(target.bytes, 0);
  assert.equal(target.unsubscribedCount, 1);
  assert.equal(target.tombstoneCount, 0);
  assert.ok(target.isKnown(1n), "default: nothing subscribed");
  assert.ok(target.isKnown(1n, (type) => type === 8), "another type subscribed");
  assert.equal(target.unsubscribedCount, 1);
  // A module subscribed to type 7: the drop said nothing about the content.
  assert.equal(target.isKnown(1n, (type) => type === 7), false);
  assert.equal(target.unsubscribedCount, 0, "the memo is released at once");
  assert.equal(target.isKnown(1n), false, "and stays released");
});

Deno.test("storing an ID clears its unsubscribed memo", () => {
  const target = store();
  target.dropUnsubscribed(1n, 7);
  assert.ok(add(target, 1n));
  assert.equal(target.unsubscribedCount, 0);
  target.discard(1n);
  assert.equal(target.isKnown(1n), false);
});

Deno.test("maxUnsubscribed bounds the memo (oldest first); 0 disables it; 4096 by default", () => {
  const target = store({ maxUnsubscribed: 2 });
  for (const id of [1n, 2n, 3n]) target.dropUnsubscribed(id, 7);
  assert.equal(target.unsubscribedCount, 2);
  assert.equal(target.isKnown(1n), false);
  assert.ok(target.isKnown(2n) && target.isKnown(3n));
  target.dropUnsubscribed(2n, 7); // a repeat refreshes without growing
  target.dropUnsubscribed(4n, 7);
  assert.ok(target.isKnown(2n) && target.isKnown(4n));
  assert.equal(target.isKnown(3n), false);

  const disabled = store({ maxUnsubscribed: 0 });
  disabled.dropUnsubscribed(1n, 7);
  assert.equal(disabled.unsubscribedCount, 0);
  assert.equal(disabled.isKnown(1n), false);

  const byDefault = store();
  for (let id = 0n; id < 4100n; id++) byDefault.dropUnsubscribed(id, 7);
  assert.equal(byDefault.unsubscribedCount, 4096);
});

Deno.test("addHolder records each peer once and ignores unknown IDs", () => {
  const target = store();
  add(target, 1n, { from: "a" });
  target.addHolder(1n, "b");
  target.addHolder(1n, "a");
  target.addHolder(1n, "b");
  target.addHolder(2n, "c");
  assert.deepEqual(target.get(1n)!.holders, ["a", "b"]);
  assert.equal(target.get(2n), undefined);
});

Deno.test("addOnce appends only absent values", () => {
  const list = [1, 2];
  addOnce(list, 2);
  addOnce(list, 3);
  addOnce(list, 3);
  assert.deepEqual(list, [1, 2, 3]);
});

Deno.test("recentValid yields valid items first seen at or after `since`, oldest first", () => {
  const target = store();
  add(target, 1n, { now: 0 });
  add(target, 2n, { now: 10, state: "validating" });
  add(target, 3n, { now: 20 });
  add(target, 4n, { now: 30 });
  const recent = (since: number) => [...target.recentValid(since)].map((s) => s.item.id);
  assert.deepEqual(recent(0), [1n, 3n, 4n]);
  assert.deepEqual(recent(20), [3n, 4n]);
  assert.deepEqual(recent(21), [4n]);
  assert.deepEqual(recent(31), []);
  target.get(2n)!.state = "valid";
  assert.deepEqual(recent(5), [2n, 3n, 4n], "a validated item keeps its first-seen place");
  target.settle(3n, 40);
  assert.deepEqual(recent(0), [1n, 2n, 4n]);
});

Deno.test("forgetPeer removes a peer from every holder, advertised and requester list", () => {
  const target = store();
  const first = add(target, 1n, { from: "a" })!;
  const second = add(target, 2n, { from: "b" })!;
  first.holders.push("b");
  first.advertised.push("a", "c");
  first.requesters = ["a", "c"];
  second.advertised.push("a");
  target.forgetPeer("a");
  assert.deepEqual(first.holders, ["b"]);
  assert.deepEqual(first.advertised, ["c"]);
  assert.deepEqual(first.requesters, ["c"]);
  assert.deepEqual(second.holders, ["b"]);
  assert.deepEqual(second.advertised, []);
  assert.equal(second.requesters, undefined);
  assert.equal(first.from, "a", "the first sender is history, not a holder list");
});

Deno.test("clear empties items, tombstones and the memo", () => {
  const target = store();
  add(target, 1n);
  target.settle(2n, 0);
  target.dropUnsubscribed(3n, 7);
  target.clear();
  assert.equal(target.size, 0);
  assert.equal(target.bytes, 0);
  assert.equal(target.tombstoneCount, 0);
  assert.equal(target.unsubscribedCount, 0);
  for (const id of [1n, 2n, 3n]) assert.equal(target.isKnown(id), false);
});

// ---- property test --------------------------------------------------------------------

type Op =
  | { kind: "add"; id: number; size: number; validating: boolean }
  | { kind: "settle"; pick: number }
  | { kind: "discard"; pick: number }
  | { kind: "validate"; pick: number }
  | { kind: "unsubscribed"; pick: number }
  | { kind: "sweep" }
  | { kind: "tick"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      id: fc.integer({ min: 0, max: 60 }),
      size: fc.integer({ min: 1, max: 120 }),
      validating: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("settle" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("discard" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("validate" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("unsubscribed" as const), pick: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("sweep" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.integer({ min: 0, max: 400 }),
    }),
  },
);

Deno.test("property: bounds on valid items always hold, validating items are never evicted, eviction is oldest first", () => {
  fc.assert(
    fc.property(
      fc.record({
        maxItems: fc.integer({ min: 1, max: 8 }),
        maxBytes: fc.integer({ min: 1, max: 400 }),
        maxTombstones: fc.integer({ min: 0, max: 6 }),
        maxUnsubscribed: fc.integer({ min: 0, max: 4 }),
        tombstoneTtlMs: fc.integer({ min: 1, max: 1_000 }),
      }),
      fc.array(op, { maxLength: 80 }),
      (options, ops) => {
        const target = new ItemStore(options);
        /** The model: stored IDs in insertion order, with size and state. */
        const model = new Map<bigint, { size: number; state: StoredItemState }>();
        let now = 0;
        const pick = (n: number): bigint | undefined => {
          const keys = [...model.keys()];
          return keys.length === 0 ? undefined : keys[n % keys.length];
        };
        for (const step of ops) {
          switch (step.kind) {
            case "add": {
              const id = BigInt(step.id);
              if (model.has(id)) break; // the store's contract: not stored already
              const state: StoredItemState = step.validating ? "validating" : "valid";
              const before = [...model.entries()];
              const evictedBefore = target.evicted;
              const stored = target.add(item(id, step.size), { hops: 1, state, from: "p", now });
              // Validating items are always taken; a valid one unless larger than maxBytes.
              const fits = state === "validating" || step.size <= options.maxBytes;
              assert.equal(stored !== undefined, fits, "refused exactly when it cannot fit");
              // Whatever is gone now was settled, and every older settled item went too.
              const gone: bigint[] = [];
              let keptSettled = false;
              for (const [oldId, entry] of before) {
                if (target.get(oldId) !== undefined) {
                  if (entry.state === "valid") keptSettled = true;
                  continue;
                }
                assert.equal(entry.state, "valid", "a validating item was evicted");
                assert.ok(!keptSettled, "a newer settled item was evicted before an older one");
                gone.push(oldId);
                model.delete(oldId);
              }
              assert.equal(target.evicted - evictedBefore, gone.length, "evictions counted");
              if (gone.length > 0 && options.maxTombstones > 0) {
                assert.ok(target.isKnown(gone.at(-1)!), "an evicted item leaves a tombstone");
              }
              if (stored) model.set(id, { size: step.size, state });
              break;
            }
            case "settle": {
              const id = pick(step.pick);
              if (id === undefined) break;
              target.settle(id, now);
              model.delete(id);
              assert.ok(target.isKnown(id) || options.maxTombstones === 0);
              break;
            }
            case "discard": {
              const id = pick(step.pick);
              if (id === undefined) break;
              target.discard(id);
              model.delete(id);
              break;
            }
            case "validate": {
              const id = pick(step.pick);
              if (id === undefined) break;
              if (model.get(id)!.state === "valid") break;
              const before = [...model.entries()];
              const joined = target.markValid(id, now);
              assert.equal(joined, model.get(id)!.size <= options.maxBytes);
              if (!joined) {
                model.delete(id);
                break;
              }
              model.get(id)!.state = "valid";
              // Only older or newer valid items, never validating ones, made room.
              let keptSettled = false;
              for (const [oldId, entry] of before) {
                if (oldId === id) continue;
                if (target.get(oldId) !== undefined) {
                  if (entry.state === "valid") keptSettled = true;
                  continue;
                }
                assert.equal(entry.state, "valid", "a validating item was evicted");
                assert.ok(!keptSettled, "a newer valid item was evicted before an older one");
                model.delete(oldId);
              }
              break;
            }
            case "unsubscribed": {
              const id = pick(step.pick);
              if (id === undefined) break;
              target.dropUnsubscribed(id, 7);
              model.delete(id);
              break;
            }
            case "sweep":
              target.sweep(now);
              break;
            case "tick":
              now += step.ms;
              break;
          }
          // Invariants after every step.
          assert.ok(target.size <= options.maxItems, "count bound");
          assert.ok(target.bytes <= options.maxBytes, "byte bound");
          assert.ok(target.bytes >= 0);
          assert.ok(target.tombstoneCount <= options.maxTombstones, "tombstone bound");
          assert.ok(target.unsubscribedCount <= options.maxUnsubscribed, "memo bound");
          let valid = 0;
          let bytes = 0;
          for (const [id, entry] of model) {
            const stored = target.get(id);
            assert.ok(stored, `item ${id} missing`);
            assert.equal(stored.state, entry.state);
            if (entry.state === "valid") {
              valid++;
              bytes += entry.size;
            }
          }
          assert.equal(target.size, valid, "valid items match the model");
          assert.equal(target.validating, model.size - valid, "validating items match");
          assert.equal(target.bytes, bytes, "byte count is the sum of valid payloads");
        }
      },
    ),
    { numRuns: 400 },
  );
});
