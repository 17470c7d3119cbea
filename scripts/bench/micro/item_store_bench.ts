/**
 * The item store on the hot path of every received copy: the duplicate check
 * of a known and of an unknown ID, the lookup that answers IWANT, and a new
 * item joining a full store (the oldest evicted, a tombstone made).
 *
 * @module
 */

import { DEFAULT_ITEM_STORE_OPTIONS, ItemStore } from "../../../lib/protocol/item_store.ts";
import type { GossipItem } from "../../../lib/protocol/item.ts";

const CACHE_SIZE = 1000;
const data = crypto.getRandomValues(new Uint8Array(1024));

function itemOf(id: bigint): GossipItem {
  return { id, nonce: id, ttl: 0, dataType: 1, data };
}

/** A store full of `CACHE_SIZE` valid items with IDs 1..CACHE_SIZE. */
function fullStore(): ItemStore {
  const store = new ItemStore({ ...DEFAULT_ITEM_STORE_OPTIONS, maxItems: CACHE_SIZE });
  for (let i = 1n; i <= BigInt(CACHE_SIZE); i++) {
    store.add(itemOf(i * 0x9e3779b97f4a7c15n), { hops: 1, state: "valid", now: 0 });
  }
  return store;
}

const store = fullStore();
const known = 500n * 0x9e3779b97f4a7c15n;
const unknown = 0x0123456789abcdefn;

Deno.bench("isKnown, a duplicate (1,000 stored)", { group: "lookup" }, () => {
  if (!store.isKnown(known)) throw new Error("expected a known ID");
});

Deno.bench("isKnown, a new ID (1,000 stored)", { group: "lookup" }, () => {
  if (store.isKnown(unknown)) throw new Error("expected an unknown ID");
});

Deno.bench("get, answering IWANT (1,000 stored)", { group: "lookup" }, () => {
  if (store.get(known) === undefined) throw new Error("expected a stored item");
});

const inserting = fullStore();
let next = 1n << 62n;
Deno.bench("add to a full store (evicts the oldest)", { group: "insert" }, () => {
  next++;
  inserting.add(itemOf(next), { hops: 1, state: "valid", now: 0 });
});
