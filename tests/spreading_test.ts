/**
 * Unit and property tests of lib/protocol/spreading.ts over a real ItemStore
 * and PullTracker, with a recording environment and a fake clock.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type GossipItem, mayForward, newItem } from "../lib/protocol/item.ts";
import { ItemStore, type ItemStoreOptions } from "../lib/protocol/item_store.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import {
  DEFAULT_SPREADING_OPTIONS,
  type DeliveryOutcome,
  MAX_HOP_BUCKET,
  type PeerKey,
  Spreading,
  type SpreadingActions,
  type SpreadingOffence,
  type SpreadingOptions,
} from "../lib/protocol/spreading.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";
import { advanceStep } from "./support/arbitraries.ts";

/** One call the engine made on its actions. */
type Call =
  | { readonly kind: "item"; readonly peer: PeerKey; readonly id: bigint; readonly hops: number }
  | { readonly kind: "have"; readonly peer: PeerKey; readonly id: bigint }
  | { readonly kind: "want"; readonly peer: PeerKey; readonly id: bigint }
  | { readonly kind: "deliver"; readonly peer: PeerKey; readonly id: bigint };

/** Fake environment recording every call the engine makes. */
class FakeActions implements SpreadingActions {
  readonly calls: Call[] = [];
  readonly penalties: string[] = [];
  readonly credits: PeerKey[] = [];
  readonly relays: PeerKey[] = [];
  readonly served: { peer: PeerKey; bytes: number }[] = [];
  connected: PeerKey[];
  readonly distrusted = new Set<PeerKey>();
  readonly subscribed = new Set<number>([7]);
  /** What `deliver` answers for a subscribed type. */
  outcome: DeliveryOutcome = "validating";
  /** Bytes each peer may still be served. */
  serveBudget = Infinity;

  constructor(peers: readonly PeerKey[]) {
    this.connected = [...peers];
  }

  peers(): readonly PeerKey[] {
    return this.connected;
  }

  /** Measured round trips (none unless a test sets one). */
  readonly roundTrips = new Map<PeerKey, number>();

  roundTripMs(peer: PeerKey): number | undefined {
    return this.roundTrips.get(peer);
  }

  mayPull(peer: PeerKey): boolean {
    return this.connected.includes(peer);
  }

  isTrusted(peer: PeerKey): boolean {
    return !this.distrusted.has(peer);
  }

  /** Scores of peers (0 unless a test sets one). */
  readonly scores = new Map<PeerKey, number>();

  score(peer: PeerKey): number {
    return this.scores.get(peer) ?? 0;
  }

  sendItem(peer: PeerKey, item: GossipItem, hops: number): void {
    this.calls.push({ kind: "item", peer, id: item.id, hops });
  }

  sendHave(peer: PeerKey, id: bigint): void {
    this.calls.push({ kind: "have", peer, id });
  }

  sendWant(peer: PeerKey, id: bigint): void {
    this.calls.push({ kind: "want", peer, id });
  }

  deliver(item: GossipItem, from: PeerKey): DeliveryOutcome {
    this.calls.push({ kind: "deliver", peer: from, id: item.id });
    return this.subscribed.has(item.dataType) ? this.outcome : "unsubscribed";
  }

  isSubscribed(dataType: number): boolean {
    return this.subscribed.has(dataType);
  }

  mayServe(peer: PeerKey, bytes: number): boolean {
    if (bytes > this.serveBudget) return false;
    this.serveBudget -= bytes;
    this.served.push({ peer, bytes });
    return true;
  }

  penalize(peer: PeerKey, offence: SpreadingOffence): void {
    this.penalties.push(`${peer}:${offence}`);
  }

  credit(peer: PeerKey): void {
    this.credits.push(peer);
  }

  relayed(peer: PeerKey): void {
    this.relays.push(peer);
  }

  /** Peers that got `kind` (for `id`), in call order. */
  peersOf(kind: Call["kind"], id?: bigint): PeerKey[] {
    return this.calls
      .filter((call) => call.kind === kind && (id === undefined || call.id === id))
      .map((call) => call.peer);
  }

  /** Item sends of `id`, as `peer:hops`. */
  itemSends(id: bigint): string[] {
    return this.calls
      .filter((call) => call.kind === "item" && call.id === id)
      .map((call) => `${call.peer}:${(call as { hops: number }).hops}`);
  }

  clear(): void {
    this.calls.length = 0;
  }
}

const PEERS = ["a", "b", "c", "d", "e", "f"];

/** A real item (content-bound ID) of type 7, told apart by `n`. */
function item(n: number, ttl = 0, size = 3, dataType = 7): GossipItem {
  const data = new Uint8Array(size).fill(n & 0xff);
  data[0] = n & 0xff;
  return newItem(ttl, dataType, data, BigInt(n));
}

function setup(
  options: Partial<SpreadingOptions> = {},
  peers: readonly PeerKey[] = PEERS,
  seed = 1,
  storeOptions: Partial<ItemStoreOptions> = {},
) {
  const clock = new FakeScheduler();
  const actions = new FakeActions(peers);
  const store = new ItemStore({
    maxItems: 1_000,
    maxBytes: 1_000_000,
    maxTombstones: 1_000,
    tombstoneTtlMs: 60_000,
    ...storeOptions,
  });
  const engine = new Spreading(
    {
      ...DEFAULT_SPREADING_OPTIONS,
      degree: 3,
      pullDelayMs: 25,
      maxPullDelayMs: 25, // fixed unless a test asks for the adaptive wait
      minPushes: options.degree ?? 3, // push to `degree` fresh peers unless a test asks otherwise
      pullTimeoutMs: 1_000,
      // Eager advertising (IHAVE at once on receipt) unless a test asks for the
      // lazy default: the "lazy advertising" section below covers that.
      haveDelayMs: 0,
      random: seededRandom(seed),
      ...options,
    },
    store,
    clock,
    actions,
  );
  return { engine, actions, clock, store };
}

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

// ---- origination ----------------------------------------------------------------------

Deno.test("originate pushes to degree random peers and IHAVEs the rest", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { engine, actions, clock, store } = setup({ degree: 3 }, PEERS, seed);
    const x = item(1);
    assert.ok(engine.originate(x));
    const pushed = actions.peersOf("item", x.id);
    const advertised = actions.peersOf("have", x.id);
    assert.equal(pushed.length, 3);
    assert.equal(new Set(pushed).size, 3);
    assert.equal(advertised.length, 3);
    assert.deepEqual(sorted([...pushed, ...advertised]), PEERS);
    assert.deepEqual(actions.itemSends(x.id).map((s) => s.split(":")[1]), ["1", "1", "1"]);
    assert.equal(actions.peersOf("deliver").length, 0, "a local item is not delivered back");
    assert.equal(engine.stats.originated, 1);
    assert.equal(engine.stats.itemsSent, 3);
    assert.equal(store.get(x.id)?.state, "valid");
    assert.equal(store.get(x.id)?.hops, 0);
    assert.deepEqual(actions.credits, [], "nobody is credited for a local item");
    engine.close();
    assert.equal(clock.pendingCount, 0);
  }
  // The choice of pushed peers is random, not always the first ones.
  const firstPushed = new Set<string>();
  for (let seed = 1; seed <= 20; seed++) {
    const { engine, actions } = setup({ degree: 1 }, PEERS, seed);
    engine.originate(item(1));
    firstPushed.add(actions.peersOf("item")[0]);
    engine.close();
  }
  assert.ok(firstPushed.size > 2, `pushed only to ${[...firstPushed]}`);
});

Deno.test("originate with fewer peers than degree pushes to all and advertises to none", () => {
  const { engine, actions } = setup({ degree: 5 }, ["a", "b"]);
  const x = item(1, 4);
  engine.originate(x);
  assert.deepEqual(sorted(actions.itemSends(x.id)), ["a:1", "b:1"]);
  assert.deepEqual(actions.peersOf("have"), []);
  engine.close();
});

Deno.test("originate with no peers sends nothing but remembers the item", () => {
  const { engine, actions } = setup({}, []);
  const x = item(1);
  engine.originate(x);
  assert.deepEqual(actions.calls, []);
  // A later copy from a peer is a duplicate, not a new delivery.
  actions.connected = ["a"];
  engine.receiveItem("a", x, 1);
  assert.equal(engine.stats.duplicates, 1);
  assert.deepEqual(actions.peersOf("deliver"), []);
  engine.close();
});

Deno.test("originate fails for an item larger than the store's byte bound", () => {
  const { engine, actions, store } = setup({}, PEERS, 1, { maxBytes: 2 });
  assert.equal(engine.originate(item(2)), false);
  assert.deepEqual(actions.calls, []);
  assert.equal(engine.stats.originated, 0);
  assert.equal(store.size, 0);
  engine.close();
});

// ---- receipt --------------------------------------------------------------------------

Deno.test("receiveItem advertises to the other peers at once, then delivers once", () => {
  const { engine, actions, store } = setup();
  const x = item(1);
  engine.receiveItem("a", x, 1);
  assert.deepEqual(sorted(actions.peersOf("have", x.id)), ["b", "c", "d", "e", "f"]);
  assert.deepEqual(actions.calls.at(-1), { kind: "deliver", peer: "a", id: x.id });
  assert.deepEqual(actions.peersOf("item"), [], "nothing pushed before the verdict");
  assert.equal(engine.stats.received, 1);
  assert.equal(store.get(x.id)?.state, "validating");
  assert.deepEqual(store.get(x.id)?.holders, ["a"]);

  actions.clear();
  engine.receiveItem("b", x, 1);
  engine.receiveItem("a", x, 1);
  assert.deepEqual(actions.calls, [], "duplicates are neither delivered nor advertised");
  assert.equal(engine.stats.duplicates, 2);
  assert.equal(engine.stats.received, 1);
  assert.deepEqual(store.get(x.id)?.holders, ["a", "b"]);

  engine.validated(x.id, "valid");
  engine.receiveItem("c", x, 1);
  assert.equal(engine.stats.duplicates, 3);
  assert.equal(actions.peersOf("deliver").length, 0);
  engine.close();
});

Deno.test("an item whose ID does not match its content is penalised and not remembered", () => {
  const { engine, actions, store } = setup();
  const x = item(1);
  const forged = { ...x, data: new Uint8Array([9, 9, 9]) };
  engine.receiveItem("a", forged, 1);
  assert.deepEqual(actions.penalties, ["a:item-id-mismatch"]);
  assert.equal(engine.stats.mismatched, 1);
  assert.equal(engine.stats.received, 0);
  assert.deepEqual(actions.calls, [], "neither delivered nor advertised");
  assert.equal(store.get(x.id), undefined);
  for (const changed of [{ ...x, ttl: 5 }, { ...x, nonce: 2n }, { ...x, dataType: 8 }]) {
    engine.receiveItem("b", changed, 1);
  }
  assert.equal(engine.stats.mismatched, 4, "TTL, nonce and type are bound as well");
  // The honest copy is still new.
  engine.receiveItem("c", x, 1);
  assert.deepEqual(actions.peersOf("deliver"), ["c"]);
  assert.equal(engine.stats.duplicates, 0);
  engine.close();
});

Deno.test("a copy of a stored item with its content is reported as a relay, the first copy is not", () => {
  // The connection manager spares inbound sessions that relay from eviction;
  // the first copy is reported by the credit that follows its validation.
  const { engine, actions } = setup();
  const x = item(1);
  engine.receiveItem("a", x, 1);
  assert.deepEqual(actions.relays, [], "the first copy waits for its verdict (credit)");
  engine.receiveItem("b", x, 2);
  engine.receiveItem("b", x, 3);
  engine.validated(x.id, "valid");
  engine.receiveItem("c", x, 1);
  assert.deepEqual(actions.relays, ["b", "b", "c"]);
  assert.deepEqual(actions.credits, ["a"]);
  // An item this node never stored (an unknown ID is new, not a relay).
  engine.receiveItem("d", item(2), 1);
  assert.deepEqual(actions.relays, ["b", "b", "c"]);
  engine.close();
});

Deno.test("a forged copy of a stored item is penalised and its sender is no holder", () => {
  const { engine, actions, clock, store } = setup({ pullTimeoutMs: 500 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  for (
    const forged of [{ ...x, data: new Uint8Array([9]) }, { ...x, ttl: 5 }, { ...x, nonce: 2n }]
  ) {
    engine.receiveItem("b", forged, 0);
  }
  assert.deepEqual(actions.penalties, Array(3).fill("b:item-id-mismatch"));
  assert.equal(engine.stats.mismatched, 3);
  assert.equal(engine.stats.duplicates, 0);
  assert.deepEqual(actions.relays, [], "a forged copy is no relay");
  assert.equal(store.get(x.id)?.hops, 1, "a forged copy does not shorten the path");
  assert.deepEqual(store.get(x.id)?.holders, ["a"]);
  // Dropped unjudged: b is not asked for it (it never sent the real item).
  engine.dropped(x.id);
  clock.advance(10_000);
  assert.deepEqual(actions.peersOf("want"), []);
  // A true copy in a fresh buffer is a duplicate, and makes its sender a holder.
  engine.receiveItem("c", x, 1);
  engine.receiveItem("d", { ...x, data: new Uint8Array([0, ...x.data]).subarray(1) }, 1);
  assert.equal(engine.stats.duplicates, 1);
  assert.deepEqual(store.get(x.id)?.holders, ["c", "d"]);
  engine.close();
});

Deno.test("a forged copy does not end a pull: the advertisers are still asked", () => {
  const { engine, actions, clock } = setup();
  const x = item(1);
  engine.receiveHave("b", [x.id]);
  engine.receiveItem("a", { ...x, data: new Uint8Array([0]) }, 1);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want", x.id), ["b"]);
  engine.close();
});

Deno.test("valid verdict pushes to up to degree peers not known to hold it, never the sender", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { engine, actions } = setup({ degree: 2 }, PEERS, seed);
    const x = item(1);
    engine.receiveItem("a", x, 1);
    engine.receiveHave("b", [x.id]); // b holds it
    engine.receiveItem("c", x, 1); // c holds it (duplicate)
    actions.clear();
    engine.validated(x.id, "valid");
    const pushed = actions.peersOf("item", x.id);
    assert.equal(pushed.length, 2);
    assert.equal(new Set(pushed).size, 2);
    for (const peer of pushed) assert.ok(["d", "e", "f"].includes(peer), `pushed to ${peer}`);
    assert.deepEqual(actions.itemSends(x.id).map((s) => s.split(":")[1]), ["2", "2"]);
    assert.deepEqual(actions.peersOf("have"), [], "no second round of IHAVE");
    assert.deepEqual(actions.credits, ["a"], "the first sender is credited");
    engine.close();
  }
});

Deno.test("valid verdict with a large degree pushes to every peer except the holders", () => {
  const { engine, actions } = setup({ degree: 100 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.receiveHave("b", [x.id]);
  actions.clear();
  engine.validated(x.id, "valid");
  assert.deepEqual(sorted(actions.peersOf("item", x.id)), ["c", "d", "e", "f"]);
  // A repeated verdict does nothing.
  actions.clear();
  engine.validated(x.id, "valid");
  engine.validated(x.id, "invalid");
  assert.deepEqual(actions.calls, []);
  assert.deepEqual(actions.credits, ["a"]);
  engine.validated(item(99).id, "valid"); // unknown IDs are ignored
  engine.close();
});

Deno.test("distrusted peers are neither pushed to nor pulled from", () => {
  const { engine, actions, clock } = setup({ degree: 100 });
  actions.distrusted.add("d");
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.validated(x.id, "valid");
  assert.deepEqual(sorted(actions.peersOf("item", x.id)), ["b", "c", "e", "f"]);
  const y = item(2);
  engine.receiveHave("d", [y.id]);
  engine.receiveHave("e", [y.id]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want", y.id), ["e"]);
  engine.close();
});

Deno.test("peers that advertised an item before it arrived are not pushed to", () => {
  const { engine, actions } = setup({ degree: 100 });
  const x = item(1);
  engine.receiveHave("b", [x.id]);
  engine.receiveHave("c", [x.id]);
  engine.receiveItem("a", x, 1); // arrives by push before the pull delay
  engine.validated(x.id, "valid");
  assert.deepEqual(sorted(actions.peersOf("item", x.id)), ["d", "e", "f"]);
  assert.deepEqual(sorted(actions.peersOf("have", x.id)), ["d", "e", "f"]);
  engine.close();
});

Deno.test("peers known to hold an item count towards the degree, down to minPushes", () => {
  for (let seed = 1; seed <= 10; seed++) {
    // 8 peers, degree 5, at least 2 pushes.
    const peers = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const { engine, actions } = setup({ degree: 5, minPushes: 2 }, peers, seed);
    const x = item(1);
    engine.receiveItem("a", x, 1);
    engine.receiveHave("b", [x.id]); // a and b hold it: 5 - 2 = 3 pushes
    actions.clear();
    engine.validated(x.id, "valid");
    assert.equal(actions.peersOf("item", x.id).length, 3, `seed ${seed}`);
    // With 5 holders known, the floor of 2 applies.
    const y = item(2);
    engine.receiveItem("a", y, 1);
    for (const peer of ["b", "c", "d", "e"]) engine.receiveHave(peer, [y.id]);
    actions.clear();
    engine.validated(y.id, "valid");
    const pushed = actions.peersOf("item", y.id);
    assert.equal(pushed.length, 2);
    for (const peer of pushed) assert.ok(["f", "g", "h"].includes(peer));
    engine.close();
  }
});

Deno.test("by default a node pushes to degree peers, half of them (rounded up) the nearest once a peer is proven", () => {
  const peers = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
  const clock = new FakeScheduler();
  const actions = new FakeActions(peers);
  const store = new ItemStore({
    maxItems: 10,
    maxBytes: 1_000,
    maxTombstones: 10,
    tombstoneTtlMs: 1_000,
  });
  const engine = new Spreading({ ...DEFAULT_SPREADING_OPTIONS, degree: 5 }, store, clock, actions);
  for (const [peer, rtt] of [["l", 5], ["k", 6], ["j", 7], ["a", 1], ["b", 2]] as const) {
    actions.roundTrips.set(peer, rtt);
  }
  actions.scores.set("b", 1);
  const x = item(1);
  engine.receiveItem("a", x, 1);
  for (const peer of ["b", "c", "d", "e"]) engine.receiveHave(peer, [x.id]);
  actions.clear();
  engine.validated(x.id, "valid");
  const pushed = actions.peersOf("item", x.id);
  assert.equal(pushed.length, 5, "the degree, though 5 peers hold it");
  assert.deepEqual(pushed.slice(0, 3), ["l", "k", "j"], "ceil(5 / 2) nearest non-holders first");
  engine.close();
});

/**
 * The peers one valid item from "a" is pushed to, given measured round trips;
 * "a" has proven itself (a score above 0) unless `scores` says otherwise.
 */
function pushesWith(
  roundTrips: Record<PeerKey, number>,
  options: Partial<SpreadingOptions>,
  seed: number,
  scores: Record<PeerKey, number> = { a: 1 },
): PeerKey[] {
  const peers = ["a", "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
  const { engine, actions } = setup({ degree: 5, ...options }, peers, seed);
  for (const [peer, rtt] of Object.entries(roundTrips)) actions.roundTrips.set(peer, rtt);
  for (const [peer, score] of Object.entries(scores)) actions.scores.set(peer, score);
  const x = item(1);
  engine.receiveItem("a", x, 1);
  actions.clear();
  engine.validated(x.id, "valid");
  const pushed = actions.peersOf("item", x.id);
  engine.close();
  return pushed;
}

Deno.test("with nearPushes 3 of 5, the nearest peers by round trip get pushes first, the rest random ones", () => {
  // p7, p8 and p9 are the nearest; a is the sender (a holder, never pushed to), and is
  // nearer still.
  const roundTrips: Record<PeerKey, number> = { a: 1, p7: 12, p8: 9, p9: 30 };
  for (let i = 0; i <= 6; i++) roundTrips[`p${i}`] = 100 + 20 * i;
  const others = new Set<PeerKey>();
  for (let seed = 1; seed <= 20; seed++) {
    const pushed = pushesWith(roundTrips, { nearPushes: 3 }, seed);
    assert.equal(pushed.length, 5, `seed ${seed}`);
    assert.deepEqual(
      pushed.slice(0, 3),
      ["p8", "p7", "p9"],
      "the nearest first, nearest to farthest",
    );
    for (const peer of pushed.slice(3)) others.add(peer);
  }
  // p0 is the nearest of the rest: if the rest were by distance too it would always be there.
  assert.ok(others.size >= 5, `the other two pushes are random (${[...others].sort()})`);
  // With nearPushes 0 the nearest are no more likely than anyone.
  assert.equal(nearestEveryTime(roundTrips, { nearPushes: 0 }), false);
});

/** True when p7, p8 and p9 (the nearest of `roundTrips`) get pushes at each of 20 seeds. */
function nearestEveryTime(
  roundTrips: Record<PeerKey, number>,
  options: Partial<SpreadingOptions>,
  scores?: Record<PeerKey, number>,
): boolean {
  for (let seed = 1; seed <= 20; seed++) {
    const pushed = pushesWith(roundTrips, options, seed, scores);
    if (!["p7", "p8", "p9"].every((peer) => pushed.includes(peer))) return false;
  }
  return true;
}

Deno.test("near pushes wait for a proven peer: until a connected peer scores above 0, every push is random", () => {
  const roundTrips: Record<PeerKey, number> = { a: 1, p7: 12, p8: 9, p9: 30 };
  for (let i = 0; i <= 6; i++) roundTrips[`p${i}`] = 100 + 20 * i;
  // Nobody proven (new peers score 0; a distrusted one below): random pushes.
  assert.equal(nearestEveryTime(roundTrips, { nearPushes: 3 }, {}), false);
  assert.equal(nearestEveryTime(roundTrips, { nearPushes: 3 }, { a: 0, p8: -2 }), false);
  // Any connected peer proven, the sender or not, near or not: near pushes.
  assert.equal(nearestEveryTime(roundTrips, { nearPushes: 3 }, { a: 0.5 }), true);
  assert.equal(nearestEveryTime(roundTrips, { nearPushes: 3 }, { p3: 4 }), true);
});

Deno.test("peers whose round trip is not measured yet are never taken for near ones", () => {
  // Only p4 is measured (and far): it takes one near push, the other four are random.
  const chosen = new Map<PeerKey, number>();
  for (let seed = 1; seed <= 20; seed++) {
    const pushed = pushesWith({ p4: 250 }, { nearPushes: 3 }, seed);
    assert.equal(pushed[0], "p4", `seed ${seed}`);
    assert.equal(pushed.length, 5);
    for (const peer of pushed.slice(1)) chosen.set(peer, (chosen.get(peer) ?? 0) + 1);
  }
  assert.ok(chosen.size >= 8, `random among the unmeasured (${[...chosen.keys()].sort()})`);
  // Nothing measured: every push is random.
  const first = new Set<PeerKey>();
  for (let seed = 1; seed <= 20; seed++) first.add(pushesWith({}, { nearPushes: 3 }, seed)[0]);
  assert.ok(first.size >= 4);
});

Deno.test("a distrusted peer gets no push however near it is", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const peers = ["a", "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
    const { engine, actions } = setup({ degree: 5, nearPushes: 3 }, peers, seed);
    actions.roundTrips.set("p0", 1);
    actions.roundTrips.set("p1", 2);
    actions.distrusted.add("p0");
    actions.scores.set("a", 1); // near pushes on: a peer is proven
    const x = item(1);
    engine.receiveItem("a", x, 1);
    actions.clear();
    engine.validated(x.id, "valid");
    const pushed = actions.peersOf("item", x.id);
    assert.ok(!pushed.includes("p0"), `seed ${seed}`);
    assert.equal(pushed[0], "p1");
    engine.close();
  }
});

Deno.test("invalid and unanswered items are neither pushed nor served", () => {
  for (const verdict of ["invalid", "unanswered"] as const) {
    const { engine, actions, clock } = setup({ degree: 100 });
    const x = item(1);
    engine.receiveItem("a", x, 1);
    engine.receiveWant("b", [x.id]); // asked while validating
    engine.validated(x.id, verdict);
    engine.receiveWant("c", [x.id]); // asked after the verdict
    engine.validated(x.id, "valid"); // a late contrary verdict is ignored
    assert.deepEqual(actions.peersOf("item"), [], verdict);
    assert.equal(engine.stats.invalid, verdict === "invalid" ? 1 : 0);
    assert.equal(engine.stats.unanswered, verdict === "unanswered" ? 1 : 0);
    assert.deepEqual(actions.penalties, verdict === "invalid" ? ["a:invalid-item"] : []);
    assert.deepEqual(actions.credits, []);
    // Still remembered: a copy is a duplicate and is not delivered again.
    engine.receiveItem("d", x, 1);
    assert.equal(actions.peersOf("deliver").length, 1);
    assert.equal(engine.stats.duplicates, 1);
    engine.close();
    assert.equal(clock.pendingCount, 0);
  }
});

Deno.test("a judged item is forgotten once its tombstone expires", () => {
  const { engine, actions, clock } = setup({}, PEERS, 1, { tombstoneTtlMs: 1_000 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.validated(x.id, "invalid");
  clock.advance(999);
  engine.sweep();
  engine.receiveItem("b", x, 1);
  assert.equal(engine.stats.duplicates, 1);
  clock.advance(1);
  engine.sweep();
  engine.receiveItem("b", x, 1);
  assert.deepEqual(actions.peersOf("deliver"), ["a", "b"], "new again");
  engine.close();
});

Deno.test("sweep keeps items still being validated and lets them finish", () => {
  const { engine, actions, clock } = setup({}, PEERS, 1, { tombstoneTtlMs: 100 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  clock.advance(500);
  engine.sweep();
  actions.clear();
  engine.validated(x.id, "valid");
  assert.equal(actions.peersOf("item", x.id).length, 3);
  engine.close();
});

// ---- lazy advertising (the default) ---------------------------------------------------

const LAZY = { haveDelayMs: DEFAULT_SPREADING_OPTIONS.haveDelayMs };

Deno.test("lazy: the default waits haveDelayMs before advertising", () => {
  assert.ok(DEFAULT_SPREADING_OPTIONS.haveDelayMs > 0);
});

Deno.test("lazy: no IHAVE before the verdict; after it a push, then IHAVE to the rest after haveDelayMs", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const { engine, actions, clock } = setup({ ...LAZY, degree: 2 }, PEERS, seed);
    const x = item(1);
    engine.receiveItem("a", x, 1);
    assert.deepEqual(actions.peersOf("have"), [], "nothing advertised before the verdict");
    engine.receiveItem("b", x, 1); // b holds it
    engine.validated(x.id, "valid");
    const pushed = actions.peersOf("item", x.id);
    assert.equal(pushed.length, 2);
    assert.deepEqual(actions.peersOf("have"), [], "the IHAVEs wait");
    // During the wait e pushes its copy here: it holds the item and is not told.
    const rest = ["c", "d", "e", "f"].filter((p) => !pushed.includes(p));
    engine.receiveItem(rest[0], x, 2);
    clock.advance(LAZY.haveDelayMs - 1);
    assert.deepEqual(actions.peersOf("have"), []);
    clock.advance(1);
    assert.deepEqual(sorted(actions.peersOf("have", x.id)), sorted(rest.slice(1)), `seed ${seed}`);
    // Told once: the next round (another item's) does not repeat it.
    const y = item(2);
    engine.originate(y);
    clock.advance(LAZY.haveDelayMs);
    assert.equal(actions.peersOf("have", x.id).length, rest.length - 1);
    engine.close();
    assert.equal(clock.pendingCount, 0);
  }
});

Deno.test("lazy: one round advertises every item that waited, in one call per peer and item", () => {
  const { engine, actions, clock } = setup({ ...LAZY, degree: 1 }, ["a", "b", "c"]);
  const items = [item(1), item(2), item(3)];
  engine.originate(items[0]);
  clock.advance(LAZY.haveDelayMs / 2);
  engine.originate(items[1]);
  engine.originate(items[2]);
  assert.equal(clock.pendingCount, 1, "one timer for the round");
  assert.equal(engine.pendingAdvertisements, 3);
  clock.advance(LAZY.haveDelayMs / 2);
  // Each item was pushed to one peer and is advertised to the two others.
  for (const x of items) assert.equal(actions.peersOf("have", x.id).length, 2);
  assert.equal(engine.pendingAdvertisements, 0);
  assert.equal(clock.pendingCount, 0);
  engine.close();
});

Deno.test("lazy: piggyback sends a peer's waiting IHAVEs at once, and the round skips them", () => {
  const { engine, actions, clock } = setup({ ...LAZY, degree: 1 }, ["a", "b", "c"]);
  const x = item(1);
  engine.originate(x);
  const [pushed] = actions.peersOf("item", x.id);
  const others = ["a", "b", "c"].filter((p) => p !== pushed);
  engine.piggyback(pushed);
  assert.deepEqual(actions.peersOf("have"), [], "the push target holds it: nothing to add");
  engine.piggyback(others[0]);
  assert.deepEqual(actions.peersOf("have", x.id), [others[0]]);
  clock.advance(LAZY.haveDelayMs);
  assert.deepEqual(actions.peersOf("have", x.id), [others[0], others[1]], "each peer told once");
  engine.piggyback(others[0]);
  assert.equal(actions.peersOf("have").length, 2, "nothing waits after the round");
  engine.close();
});

Deno.test("lazy: an item gone from the store by the round is not advertised", () => {
  const { engine, actions, clock } = setup({ ...LAZY, degree: 1 }, ["a", "b", "c"], 1, {
    maxItems: 1,
  });
  const x = item(1);
  engine.originate(x);
  engine.originate(item(2)); // evicts x
  clock.advance(LAZY.haveDelayMs);
  assert.deepEqual(actions.peersOf("have", x.id), []);
  assert.equal(actions.peersOf("have", item(2).id).length, 2);
  engine.close();
});

Deno.test("lazy: invalid, unanswered and unsubscribed items are never advertised", () => {
  for (const verdict of ["invalid", "unanswered"] as const) {
    const { engine, actions, clock } = setup(LAZY);
    const x = item(1);
    engine.receiveItem("a", x, 1);
    engine.validated(x.id, verdict);
    clock.advance(LAZY.haveDelayMs * 2);
    assert.deepEqual(actions.peersOf("have"), [], verdict);
    engine.close();
  }
  const { engine, actions, clock } = setup(LAZY);
  engine.receiveItem("a", item(1, 0, 3, 8), 1);
  clock.advance(LAZY.haveDelayMs * 2);
  assert.deepEqual(actions.peersOf("have"), [], "unsubscribed");
  engine.close();
});

Deno.test("lazy: a copy with fewer hops while validating advertises nothing until the verdict", () => {
  const { engine, actions, clock } = setup({ ...LAZY, degree: 2 });
  const x = item(1, 2);
  engine.receiveItem("a", x, 2); // ends here
  engine.receiveItem("b", x, 1); // may travel on
  clock.advance(LAZY.haveDelayMs);
  assert.deepEqual(actions.peersOf("have"), []);
  engine.validated(x.id, "valid");
  assert.deepEqual(actions.itemSends(x.id).map((s) => s.split(":")[1]), ["2", "2"]);
  clock.advance(LAZY.haveDelayMs);
  assert.equal(actions.peersOf("have", x.id).length, 2, "6 peers - 2 holders - 2 pushed");
  engine.close();
});

Deno.test("lazy: the waiting list is bounded by maxOffer (a full list goes out at once)", () => {
  const { engine, actions, clock } = setup({ ...LAZY, degree: 1, maxOffer: 3 }, ["a", "b"]);
  for (let n = 1; n <= 3; n++) engine.originate(item(n));
  assert.equal(engine.pendingAdvertisements, 0);
  assert.equal(actions.peersOf("have").length, 3, "flushed when the third one waited");
  assert.equal(clock.pendingCount, 0);
  engine.originate(item(4));
  assert.equal(engine.pendingAdvertisements, 1);
  engine.close();
  assert.equal(engine.pendingAdvertisements, 0);
  assert.equal(clock.pendingCount, 0, "close cancels the round");
});

Deno.test("lazy (property): every valid item reaches every peer as a push, a copy it sent, or one IHAVE", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.constantFrom("receive", "copy", "valid", "originate", "tick", "piggyback"), {
        maxLength: 40,
      }),
      (seed, degree, steps) => {
        const { engine, actions, clock, store } = setup({ ...LAZY, degree }, PEERS, seed);
        const rng = seededRandom(seed);
        const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng() * xs.length)];
        let next = 1;
        const validating: GossipItem[] = [];
        const all: GossipItem[] = [];
        const copies = new Map<bigint, Set<PeerKey>>();
        for (const step of steps) {
          if (step === "receive") {
            const x = item(next++);
            const from = pick(PEERS);
            engine.receiveItem(from, x, 1);
            copies.set(x.id, new Set([from]));
            validating.push(x);
            all.push(x);
          } else if (step === "copy" && all.length > 0) {
            const x = pick(all);
            const from = pick(PEERS);
            engine.receiveItem(from, x, 1);
            if (!copies.has(x.id)) copies.set(x.id, new Set());
            copies.get(x.id)!.add(from);
          } else if (step === "valid" && validating.length > 0) {
            engine.validated(validating.shift()!.id, "valid");
          } else if (step === "originate") {
            const x = item(next++);
            engine.originate(x);
            all.push(x);
          } else if (step === "tick") {
            clock.advance(LAZY.haveDelayMs / 2);
          } else if (step === "piggyback") {
            engine.piggyback(pick(PEERS));
          }
        }
        clock.advance(LAZY.haveDelayMs);
        for (const x of all) {
          if (store.get(x.id)?.state !== "valid") continue;
          for (const peer of PEERS) {
            const haves = actions.calls.filter((c) =>
              c.kind === "have" && c.id === x.id && c.peer === peer
            ).length;
            const pushed = actions.peersOf("item", x.id).includes(peer);
            const sentIt = copies.get(x.id)?.has(peer) ?? false;
            assert.ok(haves <= 1, "at most one IHAVE per peer and item");
            assert.ok(haves === 1 || pushed || sentIt, `peer ${peer} never learned of the item`);
          }
        }
        engine.close();
        return clock.pendingCount === 0;
      },
    ),
    { numRuns: 200 },
  );
});

// ---- subscriptions --------------------------------------------------------------------

Deno.test("unsubscribed items go nowhere further: no IHAVE, push or IWANT answer", () => {
  const { engine, actions, store } = setup({ degree: 100 });
  const x = item(1, 0, 3, 8); // type 8: nobody subscribed
  engine.receiveItem("a", x, 1);
  assert.equal(engine.stats.unsubscribed, 1);
  assert.equal(store.get(x.id), undefined);
  engine.validated(x.id, "valid");
  engine.receiveWant("b", [x.id]);
  assert.deepEqual(actions.calls.map((call) => call.kind), ["deliver"], "no IHAVE either");
  engine.receiveItem("b", x, 1);
  assert.equal(engine.stats.duplicates, 1, "remembered while nobody subscribes");
  engine.close();
});

Deno.test("the unsubscribed memo is released when a module subscribes to the type", () => {
  const { engine, actions, clock } = setup();
  const x = item(1, 0, 3, 8);
  engine.receiveItem("a", x, 1);
  engine.receiveHave("b", [x.id]);
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want"), [], "not pulled while nobody wants it");
  actions.subscribed.add(8);
  engine.receiveHave("c", [x.id]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want", x.id), ["c"], "now it is pulled");
  engine.receiveItem("c", x, 2);
  assert.deepEqual(actions.peersOf("deliver"), ["a", "c"]);
  assert.equal(engine.stats.pulled, 1);
  engine.close();
});

// ---- hops and TTL ---------------------------------------------------------------------

Deno.test("TTL n: forwarded while hops < n, each send one hop further; TTL 0 unlimited", () => {
  for (
    const [ttl, hops, forwarded] of [[3, 1, true], [3, 2, true], [3, 3, false], [0, 200, true]]
  ) {
    const { engine, actions } = setup({ degree: 2 });
    const x = item(1, ttl as number);
    engine.receiveItem("a", x, hops as number);
    assert.equal(actions.peersOf("have").length > 0, forwarded, `IHAVE ttl ${ttl} hops ${hops}`);
    engine.validated(x.id, "valid");
    const sends = actions.itemSends(x.id);
    assert.equal(sends.length, forwarded ? 2 : 0, `pushes ttl ${ttl} hops ${hops}`);
    for (const send of sends) assert.ok(send.endsWith(`:${(hops as number) + 1}`), send);
    assert.ok(!sends.some((send) => send.startsWith("a:")), "never back to the sender");
    engine.close();
  }
});

Deno.test("the hop count on the wire stops at 255", () => {
  const { engine, actions } = setup({ degree: 1 });
  const x = item(1, 0);
  engine.receiveItem("a", x, 255);
  engine.validated(x.id, "valid");
  assert.deepEqual(actions.itemSends(x.id).map((s) => s.split(":")[1]), ["255"]);
  engine.close();
});

Deno.test("received items are counted by hop count; the last bucket takes the rest", () => {
  const { engine } = setup();
  engine.receiveItem("a", item(1), 3);
  engine.receiveItem("a", item(2), 3);
  engine.receiveItem("a", item(3), MAX_HOP_BUCKET);
  engine.receiveItem("a", item(4), 40);
  engine.receiveItem("a", item(4), 1); // a duplicate is not counted
  assert.equal(engine.stats.hops.length, MAX_HOP_BUCKET + 1);
  assert.equal(engine.stats.hops[3], 2);
  assert.equal(engine.stats.hops[MAX_HOP_BUCKET], 2);
  assert.equal(engine.stats.hops[1], 0);
  assert.equal(engine.stats.maxHops, 40);
  engine.close();
});

Deno.test("a copy with fewer hops lets a valid item travel on (fewest-hops upgrade)", () => {
  const { engine, actions, store } = setup({ degree: 2 });
  const x = item(1, 2);
  engine.receiveItem("a", x, 2); // TTL 2 at 2 hops: ends here
  engine.validated(x.id, "valid");
  assert.deepEqual(actions.peersOf("have"), []);
  assert.deepEqual(actions.peersOf("item"), []);
  engine.receiveItem("b", x, 1); // an honest, shorter path
  assert.equal(store.get(x.id)?.hops, 1);
  const pushed = actions.peersOf("item", x.id);
  assert.equal(pushed.length, 2);
  assert.ok(!pushed.includes("a") && !pushed.includes("b"), "never to a holder");
  assert.deepEqual(actions.itemSends(x.id).map((s) => s.split(":")[1]), ["2", "2"]);
  assert.deepEqual(
    sorted([...pushed, ...actions.peersOf("have", x.id)]),
    ["c", "d", "e", "f"],
    "the rest hear IHAVE",
  );
  assert.equal(engine.stats.duplicates, 1);
  assert.equal(engine.stats.received, 1);
  engine.close();
});

Deno.test("a copy with fewer hops while validating advertises at once, pushes after the verdict", () => {
  const { engine, actions } = setup({ degree: 2 });
  const x = item(1, 2);
  engine.receiveItem("a", x, 2);
  engine.receiveItem("b", x, 1);
  assert.deepEqual(sorted(actions.peersOf("have", x.id)), ["c", "d", "e", "f"]);
  assert.deepEqual(actions.peersOf("item"), []);
  engine.validated(x.id, "valid");
  assert.equal(actions.peersOf("item", x.id).length, 2);
  engine.close();
});

Deno.test("a copy with more hops never shortens an item's reach", () => {
  const { engine, actions, store } = setup({ degree: 2 });
  const x = item(1, 3);
  engine.receiveItem("a", x, 1);
  engine.receiveItem("b", x, 9); // inflated by a relay
  assert.equal(store.get(x.id)?.hops, 1);
  engine.validated(x.id, "valid");
  assert.deepEqual(actions.itemSends(x.id).map((s) => s.split(":")[1]), ["2", "2"]);
  // Upgrading an item that could already travel changes nothing else.
  actions.clear();
  engine.receiveItem("c", x, 0);
  assert.equal(store.get(x.id)?.hops, 0);
  assert.deepEqual(actions.calls, []);
  engine.close();
});

Deno.test({
  name: "an item whose TTL ends here is not served in answer to IWANT",
  fn: () => {
    const { engine, actions } = setup({ degree: 100 });
    const x = item(1, 1);
    engine.receiveItem("a", x, 1);
    engine.receiveWant("b", [x.id]);
    engine.validated(x.id, "valid");
    engine.receiveWant("c", [x.id]);
    assert.deepEqual(actions.peersOf("item"), []);
    engine.close();
  },
});

// ---- pulls ----------------------------------------------------------------------------

Deno.test("the advertiser with the best score is asked first, then the next best", () => {
  const { engine, actions, clock } = setup({ pullDelayMs: 25, pullTimeoutMs: 1_000 });
  actions.scores.set("c", 3);
  actions.scores.set("d", -5);
  actions.scores.set("e", 1);
  const x = item(9);
  for (const peer of ["a", "b", "c", "d", "e"]) engine.receiveHave(peer, [x.id]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want", x.id), ["c"], "proven peer first, not the first heard");
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want", x.id), ["c", "e"]);
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want", x.id), ["c", "e", "a"], "then in the order heard");
  // Scores are read when asking: d earned trust meanwhile.
  actions.scores.set("d", 9);
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want", x.id), ["c", "e", "a", "d"]);
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want", x.id), ["c", "e", "a", "d", "b"]);
  engine.close();
});

Deno.test("IHAVE for an unknown ID: IWANT after pullDelayMs, next advertiser after pullTimeoutMs", () => {
  const { engine, actions, clock } = setup({ pullDelayMs: 25, pullTimeoutMs: 1_000 });
  const x = item(9);
  engine.receiveHave("a", [x.id]);
  assert.equal(engine.missing, 1);
  assert.equal(engine.missingAdvertisers, 1);
  engine.receiveHave("b", [x.id]);
  engine.receiveHave("a", [x.id]); // a repeated advertiser is remembered once
  clock.advance(24);
  assert.deepEqual(actions.calls, []);
  clock.advance(1);
  assert.deepEqual(actions.calls, [{ kind: "want", peer: "a", id: x.id }]);
  engine.receiveHave("c", [x.id]); // an advertiser heard after the first IWANT
  clock.advance(999);
  assert.equal(actions.calls.length, 1);
  clock.advance(1);
  assert.deepEqual(actions.peersOf("want"), ["a", "b"]);
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want"), ["a", "b", "c"]);
  assert.equal(engine.stats.wantsSent, 3);
  // Each advertiser that let its timeout pass is reported at once (a broken promise).
  assert.deepEqual(actions.penalties, ["a:unanswered-want", "b:unanswered-want"]);
  clock.advance(1_000);
  assert.equal(actions.peersOf("want").length, 3, "no advertiser is asked twice");
  assert.equal(engine.missing, 0, "forgotten once every advertiser was asked");
  assert.deepEqual(
    actions.penalties,
    ["a:unanswered-want", "b:unanswered-want", "c:unanswered-want"],
  );
  assert.equal(clock.pendingCount, 0);

  // Forgotten: a later IHAVE starts afresh.
  engine.receiveHave("d", [x.id]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want"), ["a", "b", "c", "d"]);

  // The answer to the IWANT is delivered and counts as pulled.
  engine.receiveItem("d", x, 2);
  assert.equal(engine.stats.pulled, 1);
  assert.equal(actions.peersOf("deliver").length, 1);
  assert.equal(clock.pendingCount, 0, "the retry timer is cancelled");
  engine.close();
});

Deno.test("IWANT skips advertisers that disconnected meanwhile, and does not blame them", () => {
  const { engine, actions, clock } = setup();
  const x = item(9);
  engine.receiveHave("a", [x.id]);
  engine.receiveHave("b", [x.id]);
  actions.connected = PEERS.filter((peer) => peer !== "a");
  engine.peerLeft("a");
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want"), ["b"]);
  clock.advance(1_000);
  assert.deepEqual(actions.penalties, ["b:unanswered-want"]);
  engine.close();
});

Deno.test("maxCandidates bounds the advertisers remembered per missing item", () => {
  const { engine, actions, clock } = setup({ maxCandidates: 2 });
  const x = item(9);
  for (const peer of PEERS) engine.receiveHave(peer, [x.id]);
  clock.advance(25 + 5 * 1_000);
  assert.deepEqual(actions.peersOf("want"), ["a", "b"]);
  engine.close();
});

Deno.test("an item pushed before the pull delay ends the pull: no IWANT", () => {
  const { engine, actions, clock } = setup();
  const x = item(9);
  engine.receiveHave("a", [x.id]);
  clock.advance(10);
  engine.receiveItem("b", x, 1);
  assert.equal(clock.pendingCount, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.peersOf("want"), []);
  assert.deepEqual(actions.peersOf("deliver"), ["b"]);
  assert.equal(engine.stats.pulled, 0);
  assert.equal(engine.stats.received, 1);
  assert.deepEqual(actions.penalties, []);
  engine.close();
});

Deno.test("IHAVE for a known item only records the holder", () => {
  const { engine, actions, clock, store } = setup({ degree: 100 });
  const x = item(1);
  engine.originate(x);
  actions.clear();
  engine.receiveHave("a", [x.id]);
  engine.receiveHave("a", [x.id]);
  clock.advance(10_000);
  assert.deepEqual(actions.calls, []);
  assert.equal(store.get(x.id)?.holders.filter((p) => p === "a").length, 1);
  engine.close();
});

Deno.test("maxWanted bounds the missing items tracked (IHAVE flood guard)", () => {
  const { engine, actions, clock } = setup({
    maxWanted: 2,
    maxWantedPerPeer: 2,
    pullTimeoutMs: 100,
  });
  const [x1, x2, x3, x4, x5, x6, x7, x8, x10] = [1, 2, 3, 4, 5, 6, 7, 8, 10].map((n) => item(n));
  engine.receiveHave("a", [x1.id, x2.id, x3.id, x4.id]);
  assert.equal(engine.missing, 2);
  clock.advance(25);
  assert.deepEqual(actions.calls.map((call) => call.id), [x1.id, x2.id]);
  // Arrival of a missing item frees a slot.
  engine.receiveItem("b", x1, 1);
  engine.receiveHave("a", [x5.id, x6.id]);
  clock.advance(25);
  assert.equal(actions.peersOf("want", x5.id).length, 1);
  assert.equal(actions.peersOf("want", x6.id).length, 0);
  // Wants that fail are forgotten and free their slots too.
  clock.advance(200);
  engine.receiveHave("c", [x7.id, x8.id, x10.id]);
  clock.advance(25);
  const later = actions.calls.filter((call) => call.kind === "want" && call.peer === "c");
  assert.deepEqual(later.map((call) => call.id), [x7.id, x8.id]);
  engine.close();
  assert.equal(clock.pendingCount, 0);
});

Deno.test("one peer can fill only its share of the missing-item table", () => {
  const { engine, actions, clock } = setup({ maxWanted: 8, maxWantedPerPeer: 2 });
  const ids = [1, 2, 3, 4, 5, 6, 7, 9].map((n) => item(n).id);
  engine.receiveHave("a", ids.slice(0, 5));
  engine.receiveHave("b", ids.slice(5, 7));
  clock.advance(25);
  assert.deepEqual(actions.calls.map((call) => `${call.peer}:${call.id}`), [
    `a:${ids[0]}`,
    `a:${ids[1]}`,
    `b:${ids[5]}`,
    `b:${ids[6]}`,
  ]);
  assert.equal(engine.missingAdvertisers, 2);
  // When a's entries arrive, a gets its share back.
  engine.receiveItem("c", item(1), 1);
  engine.receiveHave("a", [ids[7]]);
  clock.advance(25);
  assert.equal(actions.peersOf("want", ids[7]).length, 1);
  engine.close();
});

Deno.test("close cancels pending pulls", () => {
  const { engine, actions, clock } = setup();
  engine.receiveHave("a", [item(1).id, item(2).id]);
  assert.equal(clock.pendingCount, 2);
  engine.close();
  assert.equal(clock.pendingCount, 0);
  assert.equal(engine.missing, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.calls, []);
});

Deno.test("the pull wait adapts to how long pushes follow IHAVEs, within its bounds", () => {
  const { engine, actions, clock } = setup({
    pullDelayMs: 10,
    maxPullDelayMs: 200,
    maxWantedPerPeer: 1_000,
  });
  assert.equal(engine.stats.pullDelayMs, 10);
  // Pushes that arrive before the wait ends, 1 or 9 ms after the first IHAVE:
  // their lag and its deviation train the wait, which grows past the floor.
  for (let n = 1; n <= 20; n++) {
    const x = item(n);
    engine.receiveHave("a", [x.id]);
    clock.advance(n % 2 === 0 ? 1 : 9);
    engine.receiveItem("b", x, 1);
  }
  const grown = engine.stats.pullDelayMs;
  assert.ok(grown >= 12 && grown <= 200, `wait ${grown} ms`);
  assert.equal(engine.stats.pulled, 0);
  // A push 11 ms after its IHAVE now arrives before any pull is sent.
  actions.clear();
  const late = item(100);
  engine.receiveHave("a", [late.id]);
  clock.advance(11);
  assert.equal(actions.peersOf("want").length, 0);
  engine.receiveItem("b", late, 1);
  // Fast pushes shrink it again, never below the minimum.
  for (let n = 200; n < 260; n++) {
    const x = item(n);
    engine.receiveHave("a", [x.id]);
    clock.advance(1);
    engine.receiveItem("b", x, 1);
  }
  assert.equal(engine.stats.pullDelayMs, 10);
  engine.close();
});

Deno.test("pulled items never train the pull wait (Karn's rule)", () => {
  const { engine, clock } = setup({
    pullDelayMs: 10,
    maxPullDelayMs: 200,
    maxWantedPerPeer: 1_000,
  });
  // Items that only ever come by pull (answered 300 ms later), and their pushed
  // copies after that: the answer's lag includes the wait itself, so the wait stays.
  for (let n = 1; n <= 20; n++) {
    const x = item(n);
    engine.receiveHave("a", [x.id]);
    clock.advance(310);
    engine.receiveItem("a", x, 1);
    clock.advance(10);
    engine.receiveItem("b", x, 1);
  }
  assert.equal(engine.stats.pullDelayMs, 10);
  assert.equal(engine.stats.pulled, 20);
  engine.close();
});

Deno.test("a pulled item local delivery cannot take does not get its sender blamed", () => {
  const { engine, actions, clock } = setup();
  const x = item(2);
  engine.receiveHave("b", [x.id]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want", x.id), ["b"]);
  actions.outcome = "overloaded";
  engine.receiveItem("b", x, 1); // the answer; no room to validate it
  assert.equal(engine.stats.overloaded, 1);
  clock.advance(10_000);
  assert.deepEqual(actions.penalties, [], "b answered: nothing to blame");
  engine.close();
});

// ---- dropped for capacity -------------------------------------------------------------

Deno.test("an item dropped for lack of room is pulled again from another holder", () => {
  const { engine, actions, clock, store } = setup({ pullTimeoutMs: 500 });
  const x = item(1);
  engine.receiveHave("b", [x.id]);
  engine.receiveItem("a", x, 1);
  engine.receiveItem("c", x, 1); // c holds it too
  engine.dropped(x.id);
  assert.equal(store.get(x.id), undefined);
  assert.equal(store.isKnown(x.id), false, "no tombstone: nothing was judged");
  assert.equal(engine.stats.overloaded, 1);
  assert.equal(engine.missing, 1);
  clock.advance(499);
  assert.deepEqual(actions.peersOf("want"), [], "after pullTimeoutMs");
  clock.advance(1);
  const asked = actions.peersOf("want", x.id);
  assert.equal(asked.length, 1);
  assert.ok(["b", "c"].includes(asked[0]), "another holder, not the sender");
  engine.receiveItem(asked[0], x, 1);
  assert.deepEqual(actions.peersOf("deliver"), ["a", asked[0]], "delivered anew");
  assert.equal(engine.stats.received, 2);
  clock.advance(10_000);
  assert.deepEqual(actions.penalties, []);
  engine.close();
});

Deno.test("an item refused by local delivery as overloaded is dropped the same way", () => {
  const { engine, actions, clock, store } = setup();
  actions.outcome = "overloaded";
  const x = item(1);
  engine.receiveHave("b", [x.id]);
  engine.receiveItem("a", x, 1);
  assert.equal(store.get(x.id), undefined);
  assert.equal(engine.stats.overloaded, 1);
  actions.outcome = "validating";
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want", x.id), ["b"]);
  engine.close();
});

Deno.test("an item dropped with no other holder is simply forgotten", () => {
  const { engine, actions, clock } = setup();
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.dropped(x.id);
  assert.equal(engine.missing, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.peersOf("want"), []);
  engine.receiveItem("a", x, 1);
  assert.equal(actions.peersOf("deliver").length, 2, "a later copy is accepted");
  engine.close();
});

Deno.test("dropped() ignores items already judged and unknown IDs", () => {
  const { engine, store } = setup();
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.validated(x.id, "valid");
  engine.dropped(x.id);
  engine.dropped(item(2).id);
  assert.equal(store.get(x.id)?.state, "valid");
  assert.equal(engine.stats.overloaded, 0);
  engine.close();
});

Deno.test("items being validated do not count against cache_size", () => {
  const { engine, actions, store } = setup({}, PEERS, 1, { maxItems: 2 });
  for (let n = 1; n <= 5; n++) engine.receiveItem("a", item(n), 1);
  assert.equal(actions.peersOf("deliver").length, 5, "all five go to validation");
  assert.equal(store.validating, 5);
  for (let n = 1; n <= 5; n++) engine.validated(item(n).id, "valid");
  assert.equal(store.size, 2, "the knowledge base keeps the newest two");
  assert.equal(store.evicted, 3);
  engine.close();
});

Deno.test("evicted valid items are still duplicates but no longer served", () => {
  const { engine, actions } = setup({}, PEERS, 1, { maxBytes: 250 });
  const [x1, x2, x3] = [1, 2, 3].map((n) => item(n, 0, 100));
  engine.originate(x1);
  engine.originate(x2);
  engine.originate(x3); // evicts x1
  actions.clear();
  engine.receiveWant("x", [x1.id, x2.id, x3.id]);
  assert.deepEqual(actions.calls.map((call) => call.id), [x2.id, x3.id]);
  engine.receiveItem("a", x1, 1);
  assert.equal(engine.stats.duplicates, 1, "its tombstone still marks it as seen");
  assert.deepEqual(actions.peersOf("deliver"), []);
  engine.close();
});

// ---- IWANT answers --------------------------------------------------------------------

Deno.test("IWANT while validating is served once after the valid verdict", () => {
  const { engine, actions } = setup({ degree: 1 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.receiveWant("b", [x.id]);
  engine.receiveWant("b", [x.id]);
  engine.receiveWant("c", [x.id]);
  assert.deepEqual(actions.peersOf("item"), [], "not served before validation");
  engine.validated(x.id, "valid");
  const sends = actions.peersOf("item", x.id);
  assert.deepEqual(sends.slice(0, 2), ["b", "c"], "requesters first");
  assert.equal(sends.length, 3, "then one push (degree 1)");
  assert.ok(!["a", "b", "c"].includes(sends[2]), "the push skips peers now holding it");
  assert.equal(engine.stats.wantsServed, 2, "both deferred answers are counted");
  engine.close();
});

Deno.test("maxRequesters bounds the peers waiting for an item under validation", () => {
  const { engine, actions } = setup({ degree: 0, minPushes: 0, maxRequesters: 2 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.receiveWant("b", [x.id]);
  engine.receiveWant("c", [x.id]);
  engine.receiveWant("d", [x.id]);
  engine.validated(x.id, "valid");
  assert.deepEqual(actions.peersOf("item", x.id), ["b", "c"]);
  engine.close();
});

Deno.test("a requester that leaves before the verdict is not served", () => {
  const { engine, actions } = setup({ degree: 0, minPushes: 0 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.receiveWant("b", [x.id]);
  engine.peerLeft("b");
  engine.validated(x.id, "valid");
  assert.deepEqual(actions.peersOf("item"), []);
  engine.close();
});

Deno.test("IWANT for a valid item is served; unknown or missing IDs are ignored", () => {
  const { engine, actions } = setup({ degree: 1 });
  const x = item(1);
  engine.originate(x);
  engine.receiveHave("a", [item(2).id]);
  actions.clear();
  engine.receiveWant("f", [x.id, item(2).id, item(3).id]);
  assert.deepEqual(actions.calls, [{ kind: "item", peer: "f", id: x.id, hops: 1 }]);
  assert.equal(engine.stats.wantsServed, 1);
  assert.deepEqual(actions.served, [{ peer: "f", bytes: 3 }]);
  engine.close();
});

Deno.test("IWANT is answered again, also to a holder (it may have dropped the item)", () => {
  const { engine, actions } = setup({ degree: 1 });
  const x = item(1);
  engine.originate(x);
  actions.clear();
  engine.receiveWant("f", [x.id]);
  engine.receiveWant("f", [x.id]);
  assert.deepEqual(actions.peersOf("item", x.id), ["f", "f"]);
  assert.equal(engine.stats.wantsServed, 2);
  engine.close();
});

Deno.test("maxWantAnswerBytes bounds the payload sent for one IWANT", () => {
  const { engine, actions } = setup({ degree: 0, minPushes: 0, maxWantAnswerBytes: 250 });
  const items = [1, 2, 3, 4].map((n) => item(n, 0, 100));
  for (const x of items) engine.originate(x);
  actions.clear();
  engine.receiveWant("a", items.map((x) => x.id));
  assert.deepEqual(actions.peersOf("item"), ["a", "a"], "two fit in 250 bytes");
  assert.deepEqual(actions.calls.map((call) => call.id), [items[0].id, items[1].id]);
  actions.clear();
  engine.receiveWant("a", [items[3].id]);
  assert.deepEqual(actions.calls.map((call) => call.id), [items[3].id], "per message");
  engine.close();
});

Deno.test("the serving budget (mayServe) stops an IWANT answer", () => {
  const { engine, actions } = setup({ degree: 0, minPushes: 0 });
  const items = [1, 2, 3].map((n) => item(n, 0, 100));
  for (const x of items) engine.originate(x);
  actions.clear();
  actions.serveBudget = 150;
  engine.receiveWant("a", items.map((x) => x.id));
  assert.deepEqual(actions.calls.map((call) => call.id), [items[0].id]);
  assert.deepEqual(actions.served, [{ peer: "a", bytes: 100 }]);
  assert.equal(engine.stats.wantsServed, 1);
  engine.close();
});

// ---- anti-entropy ---------------------------------------------------------------------

Deno.test("offer advertises recent valid items a peer is not known to have", () => {
  const { engine, actions } = setup({ degree: 3 }, []);
  const items = [1, 2, 3].map((n) => item(n));
  for (const x of items) engine.originate(x); // no peers yet
  assert.deepEqual(actions.calls, []);
  actions.connected = ["a"];
  assert.equal(engine.offer("a"), 3);
  assert.deepEqual(actions.calls, items.map((x) => ({ kind: "have", peer: "a", id: x.id })));
  assert.equal(engine.stats.offered, 3);
  actions.clear();
  assert.equal(engine.offer("a"), 0, "told once");
  // A peer that left and came back may have lost them: offered again.
  engine.peerLeft("a");
  assert.equal(engine.offer("a"), 3);
  // The IWANT that follows is answered.
  actions.clear();
  engine.receiveWant("a", [items[0].id]);
  assert.deepEqual(actions.peersOf("item"), ["a"]);
  engine.close();
});

Deno.test("offer skips holders, items being validated, TTL-ended items and old items", () => {
  const { engine, actions, clock } = setup({ degree: 0, minPushes: 0, offerWindowMs: 1_000 }, []);
  const old = item(1);
  engine.originate(old);
  clock.advance(1_001);
  const held = item(2);
  engine.originate(held);
  engine.receiveHave("b", [held.id]);
  const validating = item(3);
  engine.receiveItem("a", validating, 1);
  const ended = item(4, 1);
  engine.receiveItem("a", ended, 1);
  engine.validated(ended.id, "valid");
  const fresh = item(5);
  engine.originate(fresh);
  assert.deepEqual(actions.calls.map((call) => call.kind), ["deliver", "deliver"]);
  actions.clear();
  actions.connected = ["a", "b"];
  assert.equal(engine.offer("b"), 1);
  assert.deepEqual(actions.calls, [{ kind: "have", peer: "b", id: fresh.id }]);
  engine.close();
});

Deno.test("pushOwn pushes this node's own recent items as ITEMs, not received ones, once", () => {
  const { engine, actions, clock } = setup({ degree: 0, minPushes: 0, offerWindowMs: 1_000 }, []);
  const old = item(1);
  engine.originate(old);
  clock.advance(1_001);
  const received = item(2);
  engine.receiveItem("a", received, 1);
  engine.validated(received.id, "valid");
  const own = item(3);
  engine.originate(own);
  const held = item(4);
  engine.originate(held);
  engine.receiveHave("b", [held.id]);
  actions.clear();
  actions.connected = ["a", "b"];
  assert.equal(engine.pushOwn("b"), 1, "only the recent own item b is not known to hold");
  assert.deepEqual(actions.calls.map((call) => [call.kind, call.peer, call.id]), [
    ["item", "b", own.id],
  ]);
  assert.equal(engine.pushOwn("b"), 0, "b holds it now");
  assert.equal(engine.offer("b"), 1, "the received item is still offered (IHAVE)");
  engine.close();
});

Deno.test("offer sends at most maxOffer IDs, oldest first", () => {
  const { engine, actions } = setup({ maxOffer: 2 }, []);
  const items = [1, 2, 3].map((n) => item(n));
  for (const x of items) engine.originate(x);
  assert.equal(engine.offer("a"), 2);
  assert.deepEqual(actions.calls.map((call) => call.id), [items[0].id, items[1].id]);
  assert.equal(engine.offer("a"), 1, "the rest next time");
  engine.close();
});

Deno.test("a peer that left is pushed to again: its holdings are forgotten", () => {
  const { engine, actions } = setup({ degree: 100 });
  const x = item(1);
  engine.receiveItem("a", x, 1);
  engine.receiveHave("b", [x.id]);
  engine.peerLeft("b");
  engine.validated(x.id, "valid");
  assert.deepEqual(sorted(actions.peersOf("item", x.id)), ["b", "c", "d", "e", "f"]);
  engine.close();
});

// ---- property test --------------------------------------------------------------------

type Op =
  | { kind: "item"; peer: number; n: number; hops: number; forged: boolean }
  | { kind: "have"; peer: number; n: number }
  | { kind: "want"; peer: number; n: number }
  | { kind: "verdict"; n: number; verdict: "valid" | "invalid" | "unanswered" }
  | { kind: "drop"; n: number }
  | { kind: "originate"; n: number }
  | { kind: "offer"; peer: number }
  | { kind: "toggle"; peer: number }
  | { kind: "distrust"; peer: number }
  | { kind: "advance"; ms: number };

const P = ["p0", "p1", "p2", "p3", "p4"];
const peerIndex = fc.integer({ min: 0, max: P.length - 1 });
const itemIndex = fc.integer({ min: 0, max: 7 });

const spreadingOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("item" as const),
      peer: peerIndex,
      n: itemIndex,
      hops: fc.integer({ min: 0, max: 4 }),
      forged: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("have" as const), peer: peerIndex, n: itemIndex }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("want" as const), peer: peerIndex, n: itemIndex }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("verdict" as const),
      n: itemIndex,
      verdict: fc.constantFrom("valid" as const, "invalid" as const, "unanswered" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), n: itemIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("originate" as const), n: itemIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("offer" as const), peer: peerIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("toggle" as const), peer: peerIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("distrust" as const), peer: peerIndex }) },
  advanceStep(1_500, 3),
);

Deno.test("property: only valid items are sent, IHAVEs only for forwardable items, IWANTs only to trusted advertisers or holders, blame only after an IWANT", () => {
  fc.assert(
    fc.property(fc.array(spreadingOp, { maxLength: 120 }), fc.integer(), (ops, seed) => {
      const items = Array.from({ length: 8 }, (_, n) => item(n, n % 3)); // TTLs 0, 1, 2
      const clock = new FakeScheduler();
      const store = new ItemStore({
        maxItems: 5,
        maxBytes: 1_000,
        maxTombstones: 4,
        tombstoneTtlMs: 2_000,
      });
      const connected = new Set(P);
      const distrusted = new Set<PeerKey>();
      // Peers that announced each item, by IHAVE or by sending it.
      const advertisedTo = new Map<bigint, Set<PeerKey>>();
      const advertise = (id: bigint, peer: PeerKey) => {
        if (!advertisedTo.has(id)) advertisedTo.set(id, new Set());
        advertisedTo.get(id)!.add(peer);
      };
      const asked = new Set<string>();
      let sends = 0;
      let wants = 0;
      const engine = new Spreading(
        {
          ...DEFAULT_SPREADING_OPTIONS,
          degree: 2,
          pullDelayMs: 10,
          maxPullDelayMs: 100,
          pullTimeoutMs: 300,
          maxWanted: 4,
          maxWantedPerPeer: 2,
          maxCandidates: 3,
          random: seededRandom(seed),
        },
        store,
        clock,
        {
          peers: () => [...connected],
          roundTripMs: () => undefined,
          mayPull: (peer) => connected.has(peer),
          isTrusted: (peer) => !distrusted.has(peer),
          score: (peer) => distrusted.has(peer) ? -30 : 0,
          sendItem: (_peer, sent, hops) => {
            sends++;
            const stored = store.get(sent.id);
            assert.ok(stored, "only stored items are sent");
            assert.equal(stored.state, "valid", "only valid items are sent");
            assert.equal(hops, Math.min(stored.hops + 1, 255));
          },
          sendHave: (peer, id) => {
            const stored = store.get(id);
            assert.ok(stored, "IHAVE only for a stored item");
            assert.ok(mayForward(stored.item.ttl, stored.hops), "IHAVE only if forwardable");
            assert.ok(!stored.holders.includes(peer), "never IHAVE to a holder");
          },
          sendWant: (peer, id) => {
            wants++;
            assert.ok(connected.has(peer) && !distrusted.has(peer), "IWANT to a trusted peer");
            assert.ok(advertisedTo.get(id)?.has(peer), "IWANT only to an advertiser or holder");
            assert.equal(store.get(id), undefined, "IWANT only for a missing item");
            asked.add(`${peer}:${id}`);
          },
          deliver: () => "validating",
          isSubscribed: () => true,
          mayServe: () => true,
          penalize: (peer, offence) => {
            if (offence === "unanswered-want") {
              assert.ok([...asked].some((key) => key.startsWith(`${peer}:`)), `${peer} blamed`);
            }
          },
          credit: () => {},
          relayed: () => {},
        },
      );
      for (const step of ops) {
        switch (step.kind) {
          case "item": {
            const x = items[step.n];
            const sent = step.forged ? { ...x, data: new Uint8Array([0xee]) } : x;
            // A peer that sent the real item holds it: if the item is dropped
            // unjudged for lack of room, it may be pulled again from that peer.
            if (!step.forged) advertise(x.id, P[step.peer]);
            engine.receiveItem(P[step.peer], sent, step.hops);
            break;
          }
          case "have": {
            const id = items[step.n].id;
            advertise(id, P[step.peer]);
            engine.receiveHave(P[step.peer], [id]);
            break;
          }
          case "want":
            engine.receiveWant(P[step.peer], [items[step.n].id]);
            break;
          case "verdict":
            engine.validated(items[step.n].id, step.verdict);
            break;
          case "drop":
            engine.dropped(items[step.n].id);
            break;
          case "originate":
            // Local items have fresh random IDs: never one a peer advertised.
            if (!store.isKnown(item(100 + step.n).id)) engine.originate(item(100 + step.n));
            break;
          case "offer":
            engine.offer(P[step.peer]);
            break;
          case "toggle": {
            const peer = P[step.peer];
            if (connected.delete(peer)) engine.peerLeft(peer);
            else connected.add(peer);
            break;
          }
          case "distrust": {
            const peer = P[step.peer];
            if (!distrusted.delete(peer)) distrusted.add(peer);
            break;
          }
          case "advance":
            clock.advance(step.ms);
            engine.sweep();
            break;
        }
        assert.equal(engine.stats.itemsSent, sends);
        assert.equal(engine.stats.wantsSent, wants);
        assert.ok(store.size <= 5);
        assert.ok(engine.missing <= 4);
      }
      engine.close();
      assert.equal(clock.pendingCount, 0);
    }),
    { numRuns: 300 },
  );
});
