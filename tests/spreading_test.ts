import assert from "node:assert/strict";
import type { GossipItem } from "../lib/protocol/item.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import {
  DEFAULT_SPREADING_OPTIONS,
  type PeerKey,
  Spreading,
  type SpreadingActions,
  type SpreadingOptions,
} from "../lib/protocol/spreading.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";

/** One call the engine made on its actions. */
type Call =
  | { readonly kind: "item"; readonly peer: PeerKey; readonly id: bigint; readonly ttl: number }
  | { readonly kind: "have"; readonly peer: PeerKey; readonly id: bigint }
  | { readonly kind: "want"; readonly peer: PeerKey; readonly id: bigint }
  | { readonly kind: "deliver"; readonly peer: PeerKey; readonly id: bigint; readonly ttl: number };

/** Fake environment recording every call the engine makes. */
class FakeActions implements SpreadingActions {
  readonly calls: Call[] = [];
  connected: PeerKey[];
  /** What `deliver` answers (false = no local subscriber). */
  subscribed = true;

  constructor(peers: readonly PeerKey[]) {
    this.connected = [...peers];
  }

  peers(): readonly PeerKey[] {
    return this.connected;
  }

  sendItem(peer: PeerKey, item: GossipItem): void {
    this.calls.push({ kind: "item", peer, id: item.id, ttl: item.ttl });
  }

  sendHave(peer: PeerKey, id: bigint): void {
    this.calls.push({ kind: "have", peer, id });
  }

  sendWant(peer: PeerKey, id: bigint): void {
    this.calls.push({ kind: "want", peer, id });
  }

  deliver(item: GossipItem, from: PeerKey): boolean {
    this.calls.push({ kind: "deliver", peer: from, id: item.id, ttl: item.ttl });
    return this.subscribed;
  }

  /** Peers that got `kind` for `id`, in call order. */
  peersOf(kind: Call["kind"], id?: bigint): PeerKey[] {
    return this.calls
      .filter((call) => call.kind === kind && (id === undefined || call.id === id))
      .map((call) => call.peer);
  }

  /** Item sends, as `peer:ttl`. */
  itemSends(id: bigint): string[] {
    return this.calls
      .filter((call) => call.kind === "item" && call.id === id)
      .map((call) => `${call.peer}:${(call as { ttl: number }).ttl}`);
  }

  clear(): void {
    this.calls.length = 0;
  }
}

const PEERS = ["a", "b", "c", "d", "e", "f"];

function makeItem(id: bigint, ttl = 0): GossipItem {
  return { id, ttl, dataType: 7, data: new Uint8Array([1, 2, 3]) };
}

function setup(
  options: Partial<SpreadingOptions> = {},
  peers: readonly PeerKey[] = PEERS,
  seed = 1,
): { engine: Spreading; actions: FakeActions; clock: FakeScheduler } {
  const clock = new FakeScheduler();
  const actions = new FakeActions(peers);
  const engine = new Spreading(
    {
      ...DEFAULT_SPREADING_OPTIONS,
      degree: 3,
      pullDelayMs: 25,
      maxPullDelayMs: 25, // fixed unless a test asks for the adaptive wait
      minPushes: options.degree ?? 3, // push to `degree` fresh peers unless a test asks otherwise
      pullTimeoutMs: 1_000,
      random: seededRandom(seed),
      scheduler: clock,
      ...options,
    },
    actions,
  );
  return { engine, actions, clock };
}

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

Deno.test("originate pushes to min(degree, peers) random peers and IHAVEs the rest", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { engine, actions, clock } = setup({ degree: 3 }, PEERS, seed);
    engine.originate(makeItem(1n));
    const pushed = actions.peersOf("item", 1n);
    const advertised = actions.peersOf("have", 1n);
    assert.equal(pushed.length, 3);
    assert.equal(new Set(pushed).size, 3);
    assert.equal(advertised.length, 3);
    assert.deepEqual(sorted([...pushed, ...advertised]), PEERS);
    assert.equal(actions.peersOf("deliver").length, 0, "a local item is not delivered back");
    assert.equal(engine.stats.originated, 1);
    assert.equal(engine.stats.itemsSent, 3);
    assert.ok(engine.has(1n));
    engine.close();
    assert.equal(clock.pendingCount, 0);
  }
  // The choice of pushed peers is random, not always the first ones.
  const firstPushed = new Set<string>();
  for (let seed = 1; seed <= 20; seed++) {
    const { engine, actions } = setup({ degree: 1 }, PEERS, seed);
    engine.originate(makeItem(1n));
    firstPushed.add(actions.peersOf("item")[0]);
    engine.close();
  }
  assert.ok(firstPushed.size > 2, `pushed only to ${[...firstPushed]}`);
});

Deno.test("originate with fewer peers than degree pushes to all and advertises to none", () => {
  const { engine, actions } = setup({ degree: 5 }, ["a", "b"]);
  engine.originate(makeItem(1n, 4));
  assert.deepEqual(sorted(actions.itemSends(1n)), ["a:4", "b:4"], "origin sends the announced TTL");
  assert.deepEqual(actions.peersOf("have"), []);
  engine.close();
});

Deno.test("originate with no peers sends nothing but remembers the item", () => {
  const { engine, actions } = setup({}, []);
  engine.originate(makeItem(1n));
  assert.deepEqual(actions.calls, []);
  assert.ok(engine.has(1n));
  // A later copy from a peer is a duplicate, not a new delivery.
  actions.connected = ["a"];
  engine.receiveItem("a", makeItem(1n));
  assert.equal(engine.stats.duplicates, 1);
  assert.deepEqual(actions.peersOf("deliver"), []);
  engine.close();
});

Deno.test("receiveItem delivers once and sends IHAVE to the other peers before validation", () => {
  const { engine, actions } = setup();
  engine.receiveItem("a", makeItem(1n));
  assert.deepEqual(actions.calls[0], { kind: "deliver", peer: "a", id: 1n, ttl: 0 });
  assert.deepEqual(sorted(actions.peersOf("have", 1n)), ["b", "c", "d", "e", "f"]);
  assert.deepEqual(actions.peersOf("item"), [], "nothing pushed before the verdict");
  assert.equal(engine.stats.received, 1);
  assert.ok(engine.has(1n));

  actions.clear();
  engine.receiveItem("b", makeItem(1n));
  engine.receiveItem("a", makeItem(1n));
  assert.deepEqual(actions.calls, [], "duplicates are neither delivered nor advertised");
  assert.equal(engine.stats.duplicates, 2);
  assert.equal(engine.stats.received, 1);

  engine.validated(1n, "valid");
  engine.receiveItem("c", makeItem(1n));
  assert.equal(engine.stats.duplicates, 3);
  assert.equal(actions.peersOf("deliver").length, 0);
  engine.close();
});

Deno.test("valid verdict pushes to up to degree peers not known to hold it, never the sender", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { engine, actions } = setup({ degree: 2 }, PEERS, seed);
    engine.receiveItem("a", makeItem(1n));
    engine.receiveHave("b", [1n]); // b holds it
    engine.receiveItem("c", makeItem(1n)); // c holds it (duplicate)
    actions.clear();
    engine.validated(1n, "valid");
    const pushed = actions.peersOf("item", 1n);
    assert.equal(pushed.length, 2);
    assert.equal(new Set(pushed).size, 2);
    for (const peer of pushed) assert.ok(["d", "e", "f"].includes(peer), `pushed to ${peer}`);
    assert.deepEqual(actions.peersOf("have"), [], "no second round of IHAVE");
    engine.close();
  }
});

Deno.test("valid verdict with a large degree pushes to every peer except the holders", () => {
  const { engine, actions } = setup({ degree: 100 });
  engine.receiveItem("a", makeItem(1n));
  engine.receiveHave("b", [1n]);
  actions.clear();
  engine.validated(1n, "valid");
  assert.deepEqual(sorted(actions.peersOf("item", 1n)), ["c", "d", "e", "f"]);
  // A repeated verdict does nothing.
  actions.clear();
  engine.validated(1n, "valid");
  assert.deepEqual(actions.calls, []);
  engine.close();
});

Deno.test("peers that advertised an item before it arrived are not pushed to", () => {
  const { engine, actions } = setup({ degree: 100 });
  engine.receiveHave("b", [1n]);
  engine.receiveHave("c", [1n]);
  engine.receiveItem("a", makeItem(1n)); // arrives by push before the pull delay
  engine.validated(1n, "valid");
  assert.deepEqual(sorted(actions.peersOf("item", 1n)), ["d", "e", "f"]);
  assert.deepEqual(sorted(actions.peersOf("have", 1n)), ["d", "e", "f"]);
  engine.close();
});

Deno.test("invalid and unanswered items are neither pushed nor served", () => {
  for (const verdict of ["invalid", "unanswered"] as const) {
    const { engine, actions, clock } = setup({ degree: 100 });
    engine.receiveItem("a", makeItem(1n));
    engine.receiveWant("b", [1n]); // asked while validating
    engine.validated(1n, verdict);
    engine.receiveWant("c", [1n]); // asked after the verdict
    engine.validated(1n, "valid"); // a late contrary verdict is ignored
    assert.deepEqual(actions.peersOf("item"), [], verdict);
    assert.equal(engine.stats.invalid, verdict === "invalid" ? 1 : 0);
    assert.equal(engine.stats.unanswered, verdict === "unanswered" ? 1 : 0);
    // Still remembered: a copy is a duplicate and is not delivered again.
    engine.receiveItem("d", makeItem(1n));
    assert.equal(actions.peersOf("deliver").length, 1);
    assert.equal(engine.stats.duplicates, 1);
    engine.close();
    assert.equal(clock.pendingCount, 0);
  }
});

Deno.test("unsubscribed items are delivered nowhere further: no IHAVE, push or IWANT answer", () => {
  const { engine, actions } = setup({ degree: 100 });
  actions.subscribed = false;
  engine.receiveItem("a", makeItem(1n));
  assert.equal(engine.stats.unsubscribed, 1);
  engine.validated(1n, "valid");
  engine.receiveWant("b", [1n]);
  assert.deepEqual(actions.calls.map((call) => call.kind), ["deliver"]);
  engine.receiveItem("b", makeItem(1n));
  assert.equal(engine.stats.duplicates, 1);
  engine.close();
});

Deno.test("TTL 1: delivered but never advertised, forwarded or served", () => {
  const { engine, actions } = setup({ degree: 100 });
  engine.receiveItem("a", makeItem(1n, 1));
  assert.deepEqual(actions.calls, [{ kind: "deliver", peer: "a", id: 1n, ttl: 1 }]);
  engine.receiveWant("b", [1n]);
  engine.validated(1n, "valid");
  engine.receiveWant("c", [1n]);
  assert.equal(actions.calls.length, 1);
  engine.close();
});

Deno.test("TTL 3 is forwarded and served with 2; TTL 0 stays 0", () => {
  for (const [ttl, outgoing] of [[3, 2], [2, 1], [0, 0]]) {
    const { engine, actions } = setup({ degree: 2 });
    engine.receiveItem("a", makeItem(1n, ttl));
    assert.equal(actions.calls[0].kind, "deliver");
    assert.equal((actions.calls[0] as { ttl: number }).ttl, ttl, "delivered with the wire TTL");
    engine.receiveWant("b", [1n]);
    engine.validated(1n, "valid");
    engine.receiveWant("c", [1n]);
    const sends = actions.itemSends(1n);
    assert.equal(sends.length, 4, `b, c and two pushes (${sends})`);
    for (const send of sends) assert.ok(send.endsWith(`:${outgoing}`), `${ttl}: ${send}`);
    assert.ok(!sends.some((send) => send.startsWith("a:")), "never back to the sender");
    engine.close();
  }
});

Deno.test("IHAVE for an unknown id: IWANT after pullDelayMs, next holder after pullTimeoutMs", () => {
  const { engine, actions, clock } = setup({ pullDelayMs: 25, pullTimeoutMs: 1_000 });
  engine.receiveHave("a", [9n]);
  assert.equal(engine.has(9n), false, "a wanted id is not seen");
  assert.equal(engine.size, 1);
  engine.receiveHave("b", [9n]);
  engine.receiveHave("a", [9n]); // repeated holder is remembered once
  clock.advance(24);
  assert.deepEqual(actions.calls, []);
  clock.advance(1);
  assert.deepEqual(actions.calls, [{ kind: "want", peer: "a", id: 9n }]);
  engine.receiveHave("c", [9n]); // a holder heard after the first IWANT
  clock.advance(999);
  assert.equal(actions.calls.length, 1);
  clock.advance(1);
  assert.deepEqual(actions.peersOf("want"), ["a", "b"]);
  clock.advance(1_000);
  assert.deepEqual(actions.peersOf("want"), ["a", "b", "c"]);
  assert.equal(engine.stats.wantsSent, 3);
  clock.advance(1_000);
  assert.equal(actions.peersOf("want").length, 3, "no holder is asked twice");
  assert.equal(engine.size, 0, "forgotten once every holder was asked");
  assert.equal(clock.pendingCount, 0);

  // Forgotten: a later IHAVE starts afresh.
  engine.receiveHave("d", [9n]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want"), ["a", "b", "c", "d"]);

  // The answer to the IWANT is delivered and counts as pulled.
  engine.receiveItem("d", makeItem(9n));
  assert.equal(engine.stats.pulled, 1);
  assert.equal(actions.peersOf("deliver").length, 1);
  assert.equal(clock.pendingCount, 0, "the retry timer is cancelled");
  engine.close();
});

Deno.test("IWANT skips holders that disconnected meanwhile", () => {
  const { engine, actions, clock } = setup();
  engine.receiveHave("a", [9n]);
  engine.receiveHave("b", [9n]);
  actions.connected = PEERS.filter((peer) => peer !== "a");
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want"), ["b"]);
  engine.close();
});

Deno.test("maxPullCandidates bounds the holders remembered per missing item", () => {
  const { engine, actions, clock } = setup({ maxPullCandidates: 2 });
  for (const peer of PEERS) engine.receiveHave(peer, [9n]);
  clock.advance(25 + 5 * 1_000);
  assert.deepEqual(actions.peersOf("want"), ["a", "b"]);
  engine.close();
});

Deno.test("an item pushed before the pull delay ends the pull: no IWANT", () => {
  const { engine, actions, clock } = setup();
  engine.receiveHave("a", [9n]);
  clock.advance(10);
  engine.receiveItem("b", makeItem(9n));
  assert.equal(clock.pendingCount, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.peersOf("want"), []);
  assert.deepEqual(actions.peersOf("deliver"), ["b"]);
  assert.equal(engine.stats.pulled, 0);
  assert.equal(engine.stats.received, 1);
  engine.close();
});

Deno.test("IHAVE for a known item only records the holder", () => {
  const { engine, actions, clock } = setup({ degree: 100 });
  engine.originate(makeItem(1n));
  actions.clear();
  engine.receiveHave("a", [1n]);
  clock.advance(10_000);
  assert.deepEqual(actions.calls, []);
  engine.close();
});

Deno.test("IWANT while validating is served once after the valid verdict", () => {
  const { engine, actions } = setup({ degree: 1 });
  engine.receiveItem("a", makeItem(1n));
  engine.receiveWant("b", [1n]);
  engine.receiveWant("b", [1n]);
  engine.receiveWant("c", [1n]);
  assert.deepEqual(actions.peersOf("item"), [], "not served before validation");
  engine.validated(1n, "valid");
  const sends = actions.peersOf("item", 1n);
  assert.deepEqual(sends.slice(0, 2), ["b", "c"], "requesters first");
  assert.equal(sends.length, 3, "then one push (degree 1)");
  assert.ok(!["a", "b", "c"].includes(sends[2]), "the push skips peers now holding it");
  engine.close();
});

Deno.test("IWANT for a forwardable item is served; for unknown or wanted ids ignored", () => {
  const { engine, actions } = setup({ degree: 1 });
  engine.originate(makeItem(1n));
  engine.receiveHave("a", [2n]);
  actions.clear();
  engine.receiveWant("f", [1n, 2n, 3n]);
  assert.deepEqual(actions.calls, [{ kind: "item", peer: "f", id: 1n, ttl: 0 }]);
  engine.close();
});

Deno.test("maxWanted bounds the missing items tracked (IHAVE flood guard)", () => {
  const { engine, actions, clock } = setup({
    maxWanted: 2,
    maxWantedPerPeer: 2,
    pullTimeoutMs: 100,
  });
  engine.receiveHave("a", [1n, 2n, 3n, 4n]);
  assert.equal(engine.size, 2);
  clock.advance(25);
  assert.deepEqual(actions.calls.map((call) => call.id), [1n, 2n]);
  // Arrival of a wanted item frees a slot.
  engine.receiveItem("b", makeItem(1n));
  engine.receiveHave("a", [5n, 6n]);
  clock.advance(25);
  assert.deepEqual(actions.peersOf("want").length, 3);
  assert.equal(actions.calls.filter((call) => call.kind === "want" && call.id === 5n).length, 1);
  assert.equal(actions.calls.filter((call) => call.kind === "want" && call.id === 6n).length, 0);
  // Wants that fail are forgotten and free their slots too.
  clock.advance(200);
  engine.receiveHave("c", [7n, 8n, 10n]);
  clock.advance(25);
  const later = actions.calls.filter((call) => call.kind === "want" && call.peer === "c");
  assert.deepEqual(later.map((call) => call.id), [7n, 8n]);
  engine.close();
  assert.equal(clock.pendingCount, 0);
});

Deno.test("one peer can fill only its share of the missing-item table", () => {
  const { engine, actions, clock } = setup({ maxWanted: 8 }); // 2 per peer by default
  engine.receiveHave("a", [1n, 2n, 3n, 4n, 5n]);
  engine.receiveHave("b", [6n, 7n]);
  clock.advance(25);
  assert.deepEqual(actions.calls.map((call) => `${call.peer}:${call.id}`), [
    "a:1",
    "a:2",
    "b:6",
    "b:7",
  ]);
  // When a's entries arrive, a gets its share back.
  engine.receiveItem("c", makeItem(1n));
  engine.receiveHave("a", [9n]);
  clock.advance(25);
  assert.equal(actions.calls.filter((call) => call.peer === "a" && call.id === 9n).length, 1);
  engine.close();
});

Deno.test("payloads beyond maxRetainedBytes are dropped oldest first and no longer served", () => {
  const { engine, actions } = setup({ maxRetainedBytes: 250 });
  const big = (id: bigint): GossipItem => ({ ...makeItem(id), data: new Uint8Array(100) });
  engine.originate(big(1n));
  engine.originate(big(2n));
  assert.equal(engine.bytesRetained, 200);
  engine.originate(big(3n));
  assert.equal(engine.bytesRetained, 200, "the oldest payload was dropped");
  actions.clear();
  engine.receiveWant("x", [1n, 2n, 3n]);
  assert.deepEqual(actions.calls.map((call) => call.id), [2n, 3n]);
  assert.ok(engine.has(1n), "the id is still remembered as seen");
  engine.close();
  assert.equal(engine.bytesRetained, 0);
});

Deno.test("seenCapacity evicts the oldest id, which is then accepted again", () => {
  const { engine, actions } = setup({ seenCapacity: 2 });
  engine.receiveItem("a", makeItem(1n));
  engine.receiveItem("a", makeItem(2n));
  engine.receiveItem("a", makeItem(3n));
  assert.equal(engine.size, 2);
  assert.equal(engine.has(1n), false);
  assert.ok(engine.has(2n));
  assert.ok(engine.has(3n));
  engine.receiveItem("b", makeItem(3n));
  assert.equal(engine.stats.duplicates, 1);
  engine.receiveItem("b", makeItem(1n));
  assert.deepEqual(actions.calls.filter((call) => call.kind === "deliver").map((c) => c.id), [
    1n,
    2n,
    3n,
    1n,
  ]);
  assert.equal(engine.size, 2);
  engine.close();
});

Deno.test("sweep drops details after detailRetentionMs and ids after seenTtlMs", () => {
  const { engine, actions, clock } = setup({ detailRetentionMs: 100, seenTtlMs: 1_000 });
  engine.originate(makeItem(1n));
  clock.advance(50);
  engine.receiveItem("a", makeItem(2n));
  engine.validated(2n, "valid");
  const pushed = actions.peersOf("item", 2n);
  const asker = PEERS.find((peer) => peer !== "a" && !pushed.includes(peer))!;
  clock.advance(60); // item 1 is 110 ms old, item 2 is 60 ms old
  engine.sweep();
  actions.clear();
  engine.receiveWant(asker, [1n, 2n]);
  assert.deepEqual(actions.calls, [{ kind: "item", peer: asker, id: 2n, ttl: 0 }]);
  actions.clear();
  engine.receiveWant(asker, [2n]);
  assert.deepEqual(actions.calls, [], "a repeated IWANT is not served twice");
  assert.ok(engine.has(1n), "the id is still remembered");
  engine.receiveItem("c", makeItem(1n));
  assert.equal(engine.stats.duplicates, 1);
  assert.deepEqual(actions.peersOf("deliver"), []);

  clock.advance(890); // item 1 is 1000 ms old, item 2 is 950 ms old
  engine.sweep();
  assert.equal(engine.has(1n), false);
  assert.ok(engine.has(2n));
  assert.equal(engine.size, 1);
  clock.advance(50);
  engine.sweep();
  assert.equal(engine.size, 0);
  // Forgotten ids are new again.
  engine.receiveItem("c", makeItem(1n));
  assert.deepEqual(actions.peersOf("deliver"), ["c"]);
  engine.close();
});

Deno.test("sweep keeps items still being validated and lets them finish", () => {
  const { engine, actions, clock } = setup({ detailRetentionMs: 100, seenTtlMs: 1_000 });
  engine.receiveItem("a", makeItem(1n));
  clock.advance(500);
  engine.sweep();
  actions.clear();
  engine.validated(1n, "valid");
  assert.equal(actions.peersOf("item", 1n).length, 3);
  engine.close();
});

Deno.test("close cancels pending pulls", () => {
  const { engine, actions, clock } = setup();
  engine.receiveHave("a", [1n, 2n]);
  assert.equal(clock.pendingCount, 2);
  engine.close();
  assert.equal(clock.pendingCount, 0);
  assert.equal(engine.size, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.calls, []);
});

Deno.test("the pull wait adapts to how long pushes follow IHAVEs, within its bounds", () => {
  const { engine, actions, clock } = setup({ pullDelayMs: 10, maxPullDelayMs: 200 });
  assert.equal(engine.stats.pullDelayMs, 10);
  // Pushes keep arriving 40 ms after the first IHAVE: the wait grows past 40 ms.
  for (let i = 1n; i <= 20n; i++) {
    engine.receiveHave("a", [i]);
    clock.advance(40);
    engine.receiveItem("b", makeItem(i));
  }
  assert.ok(engine.stats.pullDelayMs > 40 && engine.stats.pullDelayMs <= 200);
  // A push as late as the usual lag now arrives before any pull is sent.
  actions.clear();
  engine.receiveHave("a", [100n]);
  clock.advance(40);
  assert.equal(actions.peersOf("want").length, 0);
  engine.receiveItem("b", makeItem(100n));
  // Fast pushes shrink it again, never below the minimum.
  for (let i = 200n; i < 260n; i++) {
    engine.receiveHave("a", [i]);
    clock.advance(1);
    engine.receiveItem("b", makeItem(i));
  }
  assert.equal(engine.stats.pullDelayMs, 10);
  engine.close();
});

Deno.test("peers known to hold an item count towards the degree, down to minPushes", () => {
  for (let seed = 1; seed <= 10; seed++) {
    // 8 peers, degree 5, at least 2 pushes.
    const peers = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const { engine, actions } = setup({ degree: 5, minPushes: 2 }, peers, seed);
    engine.receiveItem("a", makeItem(1n));
    engine.receiveHave("b", [1n]); // a and b hold it: 5 - 2 = 3 pushes
    actions.clear();
    engine.validated(1n, "valid");
    assert.equal(actions.peersOf("item", 1n).length, 3, `seed ${seed}`);
    // With 5 holders known, the floor of 2 applies.
    engine.receiveItem("a", makeItem(2n));
    engine.receiveHave("b", [2n]);
    engine.receiveHave("c", [2n]);
    engine.receiveHave("d", [2n]);
    engine.receiveHave("e", [2n]);
    actions.clear();
    engine.validated(2n, "valid");
    const pushed = actions.peersOf("item", 2n);
    assert.equal(pushed.length, 2);
    for (const peer of pushed) assert.ok(["f", "g", "h"].includes(peer));
    engine.close();
  }
});
