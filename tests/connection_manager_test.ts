/**
 * Unit tests of lib/core/connection_manager.ts decisions that the network
 * tests only show in aggregate: which outbound peer rotation replaces, that
 * proven peers (they brought items first) are dialled and recommended first,
 * and whose descriptors are heard.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { SocketAddress } from "../lib/address.ts";
import {
  GoodbyeReason,
  type PeerDescriptor,
  type PeerMessage,
  PeerMessageType,
} from "../lib/codec/peer_messages.ts";
import {
  type ConnectionActions,
  ConnectionManager,
  type ConnectionManagerOptions,
} from "../lib/core/connection_manager.ts";
import { hexToBytes } from "../lib/hex.ts";
import { silentLogger } from "../lib/log.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import { DEFAULT_SILENCE_WATCH_OPTIONS } from "../lib/protocol/silence_watch.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";

const SELF = "00".repeat(32);

function id(n: number): string {
  return n.toString(16).padStart(64, "0");
}

function address(n: number): SocketAddress {
  return { hostname: `10.0.2.${n}`, port: 6001 };
}

/** The manager options of these tests: `degree` 3, rotation every ~10 s. */
function managerOptions(
  overrides: Partial<ConnectionManagerOptions> = {},
): ConnectionManagerOptions {
  return {
    selfIdentity: SELF,
    selfAddress: { hostname: "10.0.2.254", port: 6001 },
    degree: 3,
    maxPeerConnections: 64,
    passiveViewSize: 30,
    membershipIntervalMs: 1000,
    bootstrappers: [],
    maxLearnPerRound: 100,
    establishedAfterMs: 60_000,
    joinWarningMs: 60_000,
    rotationIntervalMs: 10_000,
    random: seededRandom(1),
    ...overrides,
  };
}

/** A manager with `degree` 3 whose peers' scores come from `scores`. */
function manager(
  scores: Map<string, number>,
  seed = 1,
  bootstrappers: SocketAddress[] = [],
  overrides: Partial<ConnectionManagerOptions> = {},
) {
  const closed: string[] = [];
  const dialled: string[] = [];
  const delivering: string[] = [];
  const feeling: string[] = [];
  const sent: [string, PeerMessage][] = [];
  const goodbyes: number[] = [];
  const actions: ConnectionActions = {
    send: (peer, message) => sent.push([peer, message]),
    close: (peer, _reason, goodbye) => {
      closed.push(peer);
      goodbyes.push(goodbye);
    },
    dial: (_address, key, purpose) => {
      dialled.push(key);
      if (purpose === "deliver") delivering.push(key);
      if (purpose === "feel") feeling.push(key);
    },
    probe: () => {},
    forgotten: () => {},
    accepted: () => {},
    score: (peer) => scores.get(peer) ?? 0,
    isTrusted: (peer) => (scores.get(peer) ?? 0) >= -20,
  };
  const scheduler = new FakeScheduler();
  const connections = new ConnectionManager(
    managerOptions({ bootstrappers, random: seededRandom(seed), ...overrides }),
    actions,
    silentLogger,
    scheduler,
    0,
  );
  const open = (
    n: number,
    direction: "outbound" | "inbound",
    now = 0,
    deliver = false,
    feel = false,
  ) =>
    connections.sessionOpened(
      {
        peer: id(n),
        direction,
        address: address(n),
        ip: `10.0.2.${n}`,
        dialed: direction === "outbound" ? `10.0.2.${n}:6001` : undefined,
        deliver,
        feel,
      },
      now,
      undefined,
    );
  return { connections, closed, goodbyes, dialled, delivering, feeling, sent, open, scheduler };
}

Deno.test("rotation replaces the outbound peer with the lowest score", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const scores = new Map([[id(1), 3], [id(2), -2], [id(3), 7]]);
    const { connections, closed, open } = manager(scores, seed);
    for (const n of [1, 2, 3]) open(n, "outbound");
    connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "outbound");
    connections.round(20_000); // past any rotation delay (0.5-1.5 intervals)
    assert.deepEqual(closed, [id(2)], `seed ${seed}`);
  }
});

Deno.test("rotation picks at random among equally low scores, never a proven peer", () => {
  const victims = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) {
    const scores = new Map([[id(1), 0], [id(2), 0], [id(3), 4]]);
    const { connections, closed, open } = manager(scores, seed);
    for (const n of [1, 2, 3]) open(n, "outbound");
    connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "outbound");
    connections.round(20_000);
    assert.equal(closed.length, 1);
    assert.notEqual(closed[0], id(3), "the peer that brought items first stays");
    victims.add(closed[0]);
  }
  assert.deepEqual([...victims].sort(), [id(1), id(2)]);
});

Deno.test("a withholding outbound peer is replaced at the next round, a milder mark waits for the rotation", () => {
  for (let seed = 1; seed <= 10; seed++) {
    // id(2) advertised an item it did not deliver (5, decayed); id(1) bears a milder mark.
    const scores = new Map([[id(1), -2], [id(2), -4.8], [id(3), 7]]);
    const { connections, closed, dialled, open } = manager(scores, seed);
    for (const n of [1, 2, 3]) open(n, "outbound");
    connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "outbound");
    connections.round(1_000); // the rotation is due at 5 s at the earliest
    assert.deepEqual(closed, [id(2)], `seed ${seed}`);
    assert.deepEqual(dialled, ["10.0.2.9:6001"], "a peer that withheld nothing takes the slot");
    open(9, "outbound", 1_500);
    connections.round(2_000);
    assert.deepEqual(closed, [id(2)], `seed ${seed}: -2 is not withholding`);
    assert.equal(connections.stats.rotated, 1);
  }
});

Deno.test("after replacing a withholder a node re-anchors: it dials a bootstrapper once", () => {
  const bootstrapper = { hostname: "10.0.9.1", port: 6001 };
  const scores = new Map([[id(1), -2], [id(2), -4.8], [id(3), 7]]);
  const { connections, closed, dialled, open } = manager(scores, 1, [bootstrapper]);
  for (const n of [1, 2, 3]) open(n, "outbound");
  connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "outbound");
  const before = dialled.length;
  connections.round(1_000);
  assert.deepEqual(closed, [id(2)]);
  assert.deepEqual(dialled.slice(before), ["10.0.9.1:6001"], "a bootstrapper takes the slot");
  assert.equal(connections.stats.reanchored, 1);
  assert.equal(connections.stats.distrustedDropped, 0, "a withholder, not distrusted");
  // A milder mark neither rotates nor re-anchors before the rotation is due.
  open(8, "outbound", 1_500);
  connections.round(2_000);
  assert.equal(connections.stats.reanchored, 1);
});

Deno.test("a full node refers a newcomer rather than evict a session younger than 5 s", () => {
  // degree 3: six inbound slots; the two up longest are protected.
  const { connections, closed, open } = manager(new Map());
  for (let n = 1; n <= 6; n++) assert.equal(open(n, "inbound", 0).accept, true);
  const early = open(7, "inbound", 4_999);
  assert.equal(early.accept, false, "every unprotected session is younger than 5 s");
  assert.equal(early.accept === false && early.goodbye, GoodbyeReason.Full);
  assert.ok(early.accept === false && (early.referral?.length ?? 0) > 0, "referred");
  assert.deepEqual(closed, []);
  assert.equal(connections.stats.referred, 1);
  // Old enough: the newcomer takes an unprotected slot.
  assert.equal(open(8, "inbound", 5_000).accept, true);
  assert.equal(closed.length, 1);
  assert.ok([id(3), id(4), id(5), id(6)].includes(closed[0]), "not one of the two up longest");
  // The youngest goes first, but not while it is in its grace period.
  assert.equal(open(9, "inbound", 5_500).accept, true);
  assert.equal(closed.length, 2);
  assert.notEqual(closed[1], id(8), "8 is 0.5 s old");
  assert.equal(connections.stats.evicted, 2);
  assert.ok(connections.isConnected(id(8)) && connections.isConnected(id(9)));
});

Deno.test("a full node evicts a silent inbound session before one that relayed items within a minute", () => {
  // degree 3: six inbound slots; the two up longest (1, 2) are protected.
  // Without the rule the youngest past its grace goes first: 6, then 5.
  const { connections, closed, open } = manager(new Map());
  for (let n = 1; n <= 6; n++) assert.equal(open(n, "inbound", n * 1_000).accept, true);
  connections.noteRelay(id(6), 15_000);
  connections.noteRelay(id(5), 15_000);
  connections.noteRelay(id(42), 15_000); // not connected: ignored
  assert.equal(open(7, "inbound", 20_000).accept, true);
  assert.deepEqual(closed, [id(4)], "the youngest silent session, not 6");
  // 7 is in its grace: of 3, 5 and 6 the silent one goes.
  assert.equal(open(8, "inbound", 24_000).accept, true);
  assert.deepEqual(closed, [id(4), id(3)]);
  // Only relaying sessions are left past their grace: the youngest of them.
  assert.equal(open(9, "inbound", 24_500).accept, true);
  assert.deepEqual(closed, [id(4), id(3), id(6)]);
  // A minute after its last relay, 5 is silent again: it goes before 7 and 8.
  connections.noteRelay(id(7), 70_000);
  connections.noteRelay(id(8), 70_000);
  connections.noteRelay(id(9), 70_000);
  assert.equal(open(10, "inbound", 75_000).accept, true);
  assert.deepEqual(closed, [id(4), id(3), id(6), id(5)]);
  assert.equal(connections.stats.evicted, 4);
});

Deno.test("a newcomer that brought items first before is let in past sessions in their grace that proved nothing", () => {
  // degree 3: six inbound slots; 1 and 2 up longest, 3-6 in their grace.
  const scores = new Map([[id(8), 1.5]]);
  const { connections, closed, goodbyes, open } = manager(scores);
  for (const n of [1, 2]) open(n, "inbound", 0);
  for (const n of [3, 4, 5, 6]) open(n, "inbound", 10_000 + (n - 3) * 500);
  const unproven = open(7, "inbound", 12_000);
  assert.equal(unproven.accept, false, "an unproven newcomer is referred, as before");
  assert.deepEqual(closed, []);
  // 8's score outlived its last session: it displaces the youngest in grace.
  assert.equal(open(8, "inbound", 12_000).accept, true);
  assert.deepEqual(closed, [id(6)]);
  assert.deepEqual(goodbyes, [GoodbyeReason.Full]);
  // A session in its grace that brought items first is not displaced: here
  // 5 has proven itself, and only 3 and 4 (and 8, proven) are left to choose from.
  scores.set(id(5), 1);
  scores.set(id(9), 1);
  assert.equal(open(9, "inbound", 12_100).accept, true);
  assert.deepEqual(closed, [id(6), id(4)]);
  assert.equal(connections.stats.evicted, 2);
});

Deno.test("a full node hears out newcomers that come to deliver, outside its views, displacing idle ones", () => {
  // degree 3: six inbound slots, and as many delivery sessions beyond them.
  const scores = new Map<string, number>();
  const { connections, closed, goodbyes, sent, open, scheduler } = manager(scores);
  for (let n = 1; n <= 6; n++) assert.equal(open(n, "inbound", 0).accept, true);
  // Every unprotected session is in its grace: a plain newcomer is referred...
  assert.equal(open(7, "inbound", 1_000).accept, false);
  // ...one that comes to deliver a local item is heard out, and told so.
  for (let n = 8; n <= 13; n++) assert.equal(open(n, "inbound", 1_000, true).accept, true);
  scheduler.advance(0);
  const told = sent.filter(([, message]) => message.type === PeerMessageType.Delivery);
  assert.deepEqual(told.map(([peer]) => peer), [8, 9, 10, 11, 12, 13].map(id), "DELIVERY to each");
  assert.equal(closed.length, 0, "nobody evicted for them");
  assert.equal(connections.stats.deliveries, 6);
  // Outside the views: not inbound peers, never recommended, never relayed to.
  assert.equal(connections.membership.inboundCount, 6);
  for (let n = 8; n <= 13; n++) {
    assert.ok(connections.isConnected(id(n)));
    assert.equal(connections.sessionKind(id(n)), "delivery");
    assert.ok(!connections.relayPeers.includes(id(n)));
    assert.ok(!connections.membership.sample(16, 1_000).some((p) => p.identity === id(n)));
  }
  // 8-12 brought an item first (score above 0); 13 nothing: a seventh
  // claimant displaces it (a referral, then GOODBYE full).
  for (let n = 8; n <= 12; n++) scores.set(id(n), 1);
  assert.equal(open(14, "inbound", 1_500, true).accept, true);
  assert.deepEqual(closed, [id(13)]);
  assert.equal(goodbyes[0], GoodbyeReason.Full);
  assert.ok(
    sent.some(([peer, message]) => peer === id(13) && message.type === PeerMessageType.Push),
  );
  assert.equal(connections.stats.deliveriesDisplaced, 1);
  // When every one has brought an item, a claimant is referred like anyone.
  scores.set(id(14), 1);
  const late = open(15, "inbound", 1_600, true);
  assert.equal(late.accept === false && late.goodbye, GoodbyeReason.Full);
  // A delivery session is never the victim of an eviction.
  assert.equal(open(16, "inbound", 5_500).accept, true);
  assert.equal(closed.length, 2);
  assert.ok([1, 2, 3, 4, 5, 6].map(id).includes(closed[1]), "an old session in the slots goes");
  // Rounds end them: after 2 s if they brought nothing, after 5 s at most.
  scores.set(id(12), 0);
  connections.round(2_999);
  assert.equal(closed.length, 2, "within 2 s every one stays");
  connections.round(3_000);
  assert.equal(closed.at(-1), id(12), "brought nothing in 2 s: ended");
  connections.round(5_999);
  assert.equal(closed.length, 3);
  connections.round(6_000);
  assert.deepEqual(closed.slice(3).sort(), [id(8), id(9), id(10), id(11)], "5 s at most");
  assert.ok(connections.isConnected(id(14)), "opened at 1.5 s");
  connections.round(6_500);
  assert.equal(connections.isConnected(id(14)), false);
});

Deno.test("a node with no proven peer dials its extra paths for a local item with the deliver flag", () => {
  const { connections, dialled, delivering, open } = manager(new Map(), 1, [address(40)]);
  for (const n of [1, 2, 3]) open(n, "outbound");
  connections.membership.learn(
    [5, 6, 7].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  connections.dialMore(0);
  assert.equal(delivering.length, 0, "ordinary dials do not ask for delivery");
  assert.equal(connections.reinforce(1_000), 2);
  assert.equal(delivering.length, 2);
  assert.ok(delivering.includes("10.0.2.40:6001"), "the bootstrapper among them");
  assert.deepEqual(dialled, delivering);
});

/** A node with three outbound peers whose extra path to its bootstrapper is open (at 1.1 s). */
function withExtraPath() {
  const bootstrapper = address(40);
  const setup = manager(new Map(), 1, [bootstrapper]);
  for (const n of [1, 2, 3]) setup.open(n, "outbound");
  setup.connections.membership.learn(
    [5, 6, 7].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  assert.equal(setup.connections.reinforce(1_000), 2);
  const extraPath = {
    peer: id(40),
    direction: "outbound" as const,
    address: bootstrapper,
    ip: "10.0.2.40",
    dialed: "10.0.2.40:6001",
    deliver: true,
  };
  assert.equal(setup.connections.sessionOpened(extraPath, 1_100, undefined).accept, true);
  assert.equal(setup.connections.membership.outboundCount, 4);
  return setup;
}

Deno.test("an origin granted a delivery session neither pulls from it nor backs off at its end", () => {
  const { connections, sent, open, scheduler } = withExtraPath();
  // The responder says DELIVERY before this node's PULL_REQUEST is sent.
  assert.equal(connections.deliveryGranted(id(40), 1_100), true);
  scheduler.advance(0);
  assert.ok(!sent.some(([peer]) => peer === id(40)), "no PULL_REQUEST to a delivery session");
  assert.equal(connections.session(id(40))?.delivery, true);
  assert.equal(connections.membership.outboundCount, 3, "out of the views");
  assert.ok(!connections.relayPeers.includes(id(40)));
  assert.equal(connections.stats.deliveriesGranted, 1);
  // Only once, and only on a session this node opened with the flag.
  assert.equal(connections.deliveryGranted(id(40), 1_200), false, "twice");
  assert.equal(connections.deliveryGranted(id(1), 1_200), false, "dialled without the flag");
  open(9, "inbound", 1_200, true);
  assert.equal(connections.deliveryGranted(id(9), 1_200), false, "an inbound session");
  assert.equal(connections.deliveryGranted(id(77), 1_200), false, "no session");
  // Its GOODBYE full after 5 s is its planned end: the bootstrapper may be
  // dialled again at once for the next local item; the referral's peers
  // replace the path, as after any referral.
  const dials = connections.stats.dials;
  connections.sessionClosed(id(40), 6_100, GoodbyeReason.Full);
  assert.equal(connections.stats.dials, dials + 1, "a replacement path");
  const again = connections.membership.nextBootstrapper(6_100);
  assert.equal(again?.addressKey, "10.0.2.40:6001");
  assert.equal(again?.failures, 0);
});

Deno.test("an extra path evicted with GOODBYE full (no DELIVERY) is backed off from and replaced", () => {
  // The contrast to the test above: the responder evicted this node.
  const { connections } = withExtraPath();
  const dials = connections.stats.dials;
  connections.sessionClosed(id(40), 6_100, GoodbyeReason.Full);
  assert.equal(connections.stats.dials, dials + 1, "a replacement path");
  assert.equal(connections.membership.nextBootstrapper(6_100), undefined, "backed off");
});

Deno.test("a proven peer is dialled before tried and new ones", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const scores = new Map([[id(5), 2]]);
    const { connections, dialled } = manager(scores, seed);
    connections.restore([
      { identity: id(4), address: address(4), tried: true },
      { identity: id(5), address: address(5), tried: false },
    ], 0);
    connections.membership.learn(
      [6, 7, 8].map((n) => ({ identity: id(n), address: address(n) })),
      0,
      "outbound",
    );
    connections.dialMore(0);
    assert.equal(dialled.length, 3);
    assert.equal(dialled[0], "10.0.2.5:6001", `seed ${seed}: proven first`);
  }
});

Deno.test("recommendations are up to half proven peers, the rest as before", () => {
  const scores = new Map<string, number>();
  for (let n = 1; n <= 6; n++) scores.set(id(n), 1); // 1..6 proven, 7..20 not
  const { connections } = manager(scores, 3);
  connections.restore(
    Array.from({ length: 20 }, (_, i) => ({ identity: id(i + 1), address: address(i + 1) })),
    0,
  );
  const sample = connections.membership.sample(8, 120_000);
  assert.equal(sample.length, 8);
  const proven = sample.filter((p) => scores.has(p.identity)).length;
  assert.equal(proven, 4, "half of 8");
  const small = connections.membership.sample(16, 120_000);
  assert.equal(small.length, 16);
  assert.equal(small.filter((p) => scores.has(p.identity)).length, 6, "all proven, then others");
});

/** `count` descriptors of peers `from`, `from + 1`, ... (identities as bytes, as on the wire). */
function descriptors(from: number, count: number): PeerDescriptor[] {
  return Array.from({ length: count }, (_, i) => ({
    identity: hexToBytes(id(from + i)),
    address: address(from + i),
  }));
}

Deno.test("descriptors are heard from dialled, proven and bootstrapper peers, not from other inbound ones", () => {
  const scores = new Map([[id(3), 0.5]]);
  const { connections, open } = manager(scores, 1, [address(4)]);
  open(1, "outbound");
  open(2, "inbound");
  open(3, "inbound"); // proven: it brought an item first
  open(4, "outbound"); // the bootstrapper answers as id(4)...
  connections.sessionClosed(id(4), 0);
  open(4, "inbound"); // ...and later dials in
  assert.equal(connections.membership.isBootstrapper(id(4)), true);
  assert.equal(connections.membership.isBootstrapper(id(2)), false);
  const known = () => new Set(connections.membership.passivePeers.map((p) => p.identity));
  const ignoredBefore = connections.stats.offersIgnored;
  assert.equal(connections.receiveOffer(id(2), "push", descriptors(100, 4), 0), "unvouched");
  assert.equal(connections.stats.offersIgnored, ignoredBefore + 1);
  for (const n of [100, 101, 102, 103]) assert.equal(known().has(id(n)), false, `${n} unknown`);
  assert.equal(connections.receiveOffer(id(1), "push", descriptors(110, 2), 0), "learned");
  assert.equal(connections.receiveOffer(id(3), "push", descriptors(120, 2), 0), "learned");
  assert.equal(connections.receiveOffer(id(4), "push", descriptors(130, 2), 0), "learned");
  for (const n of [110, 111, 120, 121, 130, 131]) assert.ok(known().has(id(n)), `${n} known`);
  // Unheard, but still counted: a third PUSH in a round is an offence as before.
  assert.equal(connections.receiveOffer(id(2), "push", descriptors(140, 1), 0), "unvouched");
  assert.equal(connections.receiveOffer(id(2), "push", descriptors(140, 1), 0), "unsolicited");
});

Deno.test("a round pulls only from a partner that may vouch, and pushes to any", () => {
  // One peer each, so it is the round's partner whatever the random draws.
  const unproven = manager(new Map());
  unproven.open(2, "inbound");
  unproven.connections.round(1000);
  const toInbound = unproven.sent.filter(([peer]) => peer === id(2)).map(([, m]) => m.type);
  assert.deepEqual(toInbound, [PeerMessageType.Push], "no pull from an inbound peer");
  const dialled = manager(new Map());
  dialled.open(1, "outbound");
  dialled.sent.length = 0;
  dialled.connections.round(1000);
  const toOutbound = dialled.sent.filter(([peer]) => peer === id(1)).map(([, m]) => m.type);
  assert.deepEqual(toOutbound, [PeerMessageType.PullRequest, PeerMessageType.Push]);
});

// ---- property: the manager's books agree with what it tells the node -------------------

type ManagerOp =
  | { kind: "dial-ok"; pick: number; liar: number | null }
  | { kind: "dial-fail"; pick: number }
  | { kind: "inbound"; n: number; refused: boolean; deliver: boolean }
  | { kind: "closed"; pick: number; full: boolean }
  | { kind: "drop"; pick: number }
  | { kind: "offer"; pick: number; push: boolean; ns: number[] }
  | { kind: "score"; n: number; score: number }
  | { kind: "probe"; pick: number; answer: number | null }
  | { kind: "round"; ms: number };

const peerNumber = fc.integer({ min: 1, max: 14 });
const managerOp: fc.Arbitrary<ManagerOp> = fc.oneof(
  fc.record({
    kind: fc.constant("dial-ok" as const),
    pick: fc.nat(),
    liar: fc.option(peerNumber, { freq: 5 }),
  }),
  fc.record({ kind: fc.constant("dial-fail" as const), pick: fc.nat() }),
  {
    // Weighted up, so that runs reach full inbound slots and delivery sessions.
    arbitrary: fc.record({
      kind: fc.constant("inbound" as const),
      n: peerNumber,
      refused: fc.boolean(),
      deliver: fc.boolean(),
    }),
    weight: 4,
  },
  fc.record({ kind: fc.constant("closed" as const), pick: fc.nat(), full: fc.boolean() }),
  fc.record({ kind: fc.constant("drop" as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant("offer" as const),
    pick: fc.nat(),
    push: fc.boolean(),
    ns: fc.array(peerNumber, { maxLength: 6 }),
  }),
  fc.record({
    kind: fc.constant("score" as const),
    n: peerNumber,
    score: fc.integer({ min: -40, max: 10 }),
  }),
  fc.record({ kind: fc.constant("probe" as const), pick: fc.nat(), answer: fc.option(peerNumber) }),
  fc.record({ kind: fc.constant("round" as const), ms: fc.integer({ min: 0, max: 20_000 }) }),
);

Deno.test("property: sessions, directions, limits and dials stay consistent under any order of events", () => {
  fc.assert(
    fc.property(
      fc.array(managerOp, { maxLength: 150, size: "max" }),
      fc.integer(),
      fc.boolean(),
      (ops, seed, withBootstrapper) => {
        const scores = new Map<string, number>();
        // What the node was told: accepted sessions and their direction.
        const told = new Map<string, "outbound" | "inbound">();
        const dialling = new Set<string>(); // address keys dialled, not yet finished
        const probing = new Set<string>();
        const sentToGone: string[] = [];
        const closedNow: string[] = [];
        const degree = 3;
        const actions: ConnectionActions = {
          send: (peer) => {
            if (!connections.isConnected(peer)) sentToGone.push(peer);
          },
          close: (peer) => {
            assert.ok(!connections.isConnected(peer), "closed only once forgotten");
            closedNow.push(peer);
          },
          dial: (_address, key) => {
            assert.ok(!dialling.has(key), `${key} dialled twice at once`);
            assert.notEqual(key, "10.0.2.254:6001", "never dials itself");
            dialling.add(key);
          },
          probe: (_address, key) => {
            probing.add(key);
          },
          forgotten: (peer) => {
            assert.ok(told.delete(peer), `${peer.slice(-2)} forgotten but never accepted`);
          },
          accepted: (peer, direction) => {
            assert.ok(!told.has(peer), `${peer.slice(-2)} accepted twice`);
            told.set(peer, direction);
          },
          score: (peer) => scores.get(peer) ?? 0,
          isTrusted: (peer) => (scores.get(peer) ?? 0) >= -20,
        };
        const scheduler = new FakeScheduler();
        const connections: ConnectionManager = new ConnectionManager(
          managerOptions({
            degree,
            maxPeerConnections: 5,
            passiveViewSize: 8,
            bootstrappers: withBootstrapper ? [address(1)] : [],
            maxLearnPerRound: 10,
            establishedAfterMs: 5_000,
            random: seededRandom(seed),
          }),
          actions,
          silentLogger,
          scheduler,
          0,
        );
        connections.membership.learn(
          [2, 3, 4, 5].map((n) => ({ identity: id(n), address: address(n) })),
          0,
          "outbound",
        );
        connections.dialMore(0);
        const at = <T>(list: readonly T[], pick: number) =>
          list.length === 0 ? undefined : list[pick % list.length];
        for (const op of ops) {
          const now = scheduler.now();
          sentToGone.length = 0;
          closedNow.length = 0;
          switch (op.kind) {
            case "dial-ok": {
              const key = at([...dialling], op.pick);
              if (key === undefined) break;
              dialling.delete(key);
              const n = Number(key.split(":")[0].split(".")[3]);
              // Usually the peer that was named answers; sometimes another one.
              const answer = op.liar ?? n;
              connections.sessionOpened(
                {
                  peer: id(answer),
                  direction: "outbound",
                  address: address(answer),
                  ip: `10.0.2.${n}`,
                  dialed: key,
                },
                now,
                undefined,
              );
              break;
            }
            case "dial-fail": {
              const key = at([...dialling], op.pick);
              if (key === undefined) break;
              dialling.delete(key);
              connections.dialFailed(key, now);
              break;
            }
            case "inbound":
              connections.sessionOpened(
                {
                  peer: id(op.n),
                  direction: "inbound",
                  address: address(op.n),
                  ip: `10.0.${op.n % 3}.${op.n}`,
                  deliver: op.deliver,
                },
                now,
                op.refused ? "banned" : undefined,
              );
              break;
            case "closed": {
              const peer = at(connections.peers, op.pick);
              if (peer !== undefined) {
                connections.sessionClosed(peer, now, op.full ? GoodbyeReason.Full : undefined);
              }
              break;
            }
            case "drop": {
              const peer = at(connections.peers, op.pick);
              if (peer !== undefined) {
                connections.drop(peer, now, "test", GoodbyeReason.ProtocolViolation);
              }
              break;
            }
            case "offer": {
              const peer = at(connections.peers, op.pick);
              if (peer === undefined) break;
              connections.receiveOffer(
                peer,
                op.push ? "push" : "peers",
                op.ns.map((n) => ({ identity: hexToBytes(id(n)), address: address(n) })),
                now,
              );
              break;
            }
            case "score":
              scores.set(id(op.n), op.score);
              break;
            case "probe": {
              const key = at([...probing], op.pick);
              if (key === undefined) break;
              probing.delete(key);
              connections.probeFinished(key, now, op.answer === null ? undefined : id(op.answer));
              break;
            }
            case "round":
              scheduler.advance(op.ms);
              connections.round(scheduler.now());
              break;
          }
          scheduler.advance(0); // deferred pulls
          // Messages to a peer no longer connected: only the referral PUSH to an
          // evicted peer, just before its GOODBYE.
          for (const peer of sentToGone) assert.ok(closedNow.includes(peer), "sent to a gone peer");
          // The manager's sessions are exactly those the node was told of.
          assert.deepEqual(new Set(connections.peers), new Set(told.keys()));
          for (const [peer, direction] of told) {
            assert.equal(connections.session(peer)?.direction, direction);
          }
          assert.ok(!told.has(SELF));
          const outbound = [...told.values()].filter((d) => d === "outbound").length;
          const inbound = told.size - outbound;
          assert.equal(connections.membership.outboundCount, outbound);
          // Delivery sessions: at most as many as the inbound slots, beyond
          // them, outside the views, none past its 5 s after a round.
          const delivering = connections.peers.map((p) => connections.session(p)!)
            .filter((session) => session.delivery);
          assert.equal(connections.membership.inboundCount, inbound - delivering.length);
          assert.ok(delivering.length <= 5, `${delivering.length} delivery sessions`);
          assert.equal(connections.relayPeers.length, connections.size - delivering.length);
          assert.ok(delivering.every((session) => session.direction === "inbound"));
          if (op.kind === "round") {
            assert.ok(delivering.every((session) => now + op.ms - session.since < 5_000));
          }
          const slots = inbound - delivering.length;
          assert.ok(slots <= Math.min(5, 2 * degree), `${slots} inbound in the slots`);
          assert.ok(connections.membership.passiveCount <= 8 + 1, "passive view bounded");
          assert.ok(connections.sizes.pullsOutstanding <= connections.size);
        }
        connections.closeAll(scheduler.now());
        assert.equal(told.size, 0, "every session forgotten at shutdown");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("a local item while no peer is proven adds a bootstrapper and a known peer beyond degree, once per interval", () => {
  const scores = new Map<string, number>();
  const { connections, dialled, open } = manager(scores, 1, [address(50)]);
  for (const n of [1, 2, 3]) open(n, "outbound"); // degree 3: outbound slots full
  connections.membership.learn(
    [7, 8].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  connections.dialMore(0);
  assert.deepEqual(dialled, [], "nothing to dial with full outbound slots");
  assert.equal(connections.reinforce(1_000), 2);
  assert.equal(dialled[0], "10.0.2.50:6001", "the bootstrapper");
  assert.ok(["10.0.2.7:6001", "10.0.2.8:6001"].includes(dialled[1]), "and a known peer");
  assert.equal(connections.stats.reinforced, 2);
  assert.equal(connections.reinforce(10_999), 0, "at most once per 10 s");
  // Both dials became sessions: two beyond degree, and no more however long
  // no peer proves itself (a node that only publishes).
  for (const key of dialled as string[]) { // (deepEqual above narrowed its type)
    const n = Number(key.split(":")[0].split(".")[3]);
    connections.sessionOpened(
      { peer: id(n), direction: "outbound", address: address(n), ip: `10.0.2.${n}`, dialed: key },
      11_000,
      undefined,
    );
  }
  assert.equal(connections.membership.outboundCount, 5);
  connections.membership.learn([{ identity: id(9), address: address(9) }], 11_000, "outbound");
  assert.equal(connections.reinforce(30_000), 0, "at most two extra outbound sessions");
  // Once a peer has brought an item first and still relays, its peers are trusted to relay.
  scores.set(id(2), 1);
  connections.noteRelay(id(2), 31_000);
  connections.sessionClosed(id(7), 31_000);
  connections.sessionClosed(id(8), 31_000);
  assert.equal(connections.reinforce(50_000), 0);
  assert.equal(dialled.length, 2);
  // A minute after its last item its score alone no longer counts: it may
  // have turned (it keeps the score it earned while items come elsewhere).
  assert.equal(connections.reinforce(90_999), 0, "id(2) relayed 59.999 s ago");
  // One path more (4 outbound with the bootstrapper, at most degree + 2):
  // a known peer, since the bootstrapper is one of its sessions.
  assert.equal(connections.reinforce(91_000), 1);
  assert.deepEqual(dialled.slice(2), ["10.0.2.9:6001"]);
});

Deno.test("while items have stopped, a local item's extra paths go to every bootstrapper before a known peer", () => {
  const run = (lastItemAt: number) => {
    const scores = new Map([[id(2), 1]]);
    const { connections, dialled, open } = manager(scores, 1, [address(50), address(51)]);
    for (const n of [1, 2, 3]) open(n, "outbound"); // degree 3: outbound slots full
    connections.membership.learn(
      [7, 8].map((n) => ({ identity: id(n), address: address(n) })),
      0,
      "outbound",
    );
    // id(2) brought items first, one a second: the usual gap is 1 s.
    for (let t = lastItemAt - 2_000; t <= lastItemAt; t += 1_000) {
      connections.noteRelay(id(2), t, true);
    }
    return { reinforced: connections.reinforce(20_000), dialled };
  };
  // 15 s of silence (5 s would do): id(2)'s relays no longer hold the paths
  // back, and both go to the bootstrappers.
  const silent = run(5_000);
  assert.equal(silent.reinforced, 2);
  assert.deepEqual([...silent.dialled].sort(), ["10.0.2.50:6001", "10.0.2.51:6001"]);
  // 4.9 s of silence: id(2) still relays, no extra path at all.
  assert.equal(run(15_100).reinforced, 0);
});

/**
 * A manager whose outbound peers 1, 2, 3 fill `degree`; id(2) brought items
 * first at 0, 1 and 2 s (feelers due from 12 s, the first alarm's wait; the
 * alarms themselves and rotation are off here). It knows id(7), named by its
 * connected peer id(1), and id(8), named by id(9), not connected.
 */
function silenced() {
  const scores = new Map([[id(2), 1]]);
  const silenceWatch = { ...DEFAULT_SILENCE_WATCH_OPTIONS, maxAlarms: 0 };
  const m = manager(scores, 1, [], { silenceWatch, rotationIntervalMs: 0 });
  for (const n of [1, 2, 3]) m.open(n, "outbound");
  m.connections.membership.learn([{ identity: id(7), address: address(7) }], 0, "outbound", id(1));
  m.connections.membership.learn([{ identity: id(8), address: address(8) }], 0, "outbound", id(9));
  for (const t of [0, 1_000, 2_000]) m.connections.noteRelay(id(2), t, true);
  return { ...m, scores };
}

Deno.test("while items have stopped, a feeler goes beyond degree to a peer no connected peer named", () => {
  const { connections, dialled, feeling } = silenced();
  connections.round(11_900);
  assert.equal(connections.stats.feelers, 0, "before the first alarm's wait");
  connections.round(12_000);
  assert.equal(connections.stats.feelers, 1);
  assert.equal(dialled.at(-1), "10.0.2.8:6001", "not id(7), named by a suspect");
  assert.deepEqual(feeling, ["10.0.2.8:6001"], "with HELLO's feel flag; no other dial has it");
  assert.equal(connections.membership.outboundCount, 3, "no slot given up for it");
});

/**
 * Fills the view of `connections` with `count` peers from id(40) on, named
 * by id(9) (not connected), 8 per message; returns a reader of the known
 * addresses, sorted.
 */
function knowing(connections: ConnectionManager, count: number): () => string[] {
  for (let from = 40; from < 40 + count; from += 8) {
    const peers = Array.from(
      { length: Math.min(8, 40 + count - from) },
      (_, i) => ({ identity: id(from + i), address: address(from + i) }),
    );
    connections.membership.learn(peers, 0, "outbound", id(9));
  }
  return () => connections.membership.passivePeers.map((p) => p.addressKey).sort();
}

Deno.test("while items have stopped, the tips of a session open when they stopped, or of a feeler, displace no known peer; a new peer's do", () => {
  const { connections, open, dialled } = silenced();
  // The view (30) holds id(7), id(8) and 27 more from id(9), not connected.
  const known = knowing(connections, 27);
  const before = known();
  assert.equal(before.length, 29);
  // 5 s after the last item, the peers' past relays are suspect: the push of
  // id(1), connected since before the silence, fills the one free place and
  // displaces nobody.
  assert.equal(connections.receiveOffer(id(1), "push", descriptors(100, 8), 7_100), "learned");
  const during = known();
  assert.equal(during.length, 30);
  assert.equal(during.filter((key) => !before.includes(key)).length, 1, "one newcomer");
  assert.ok(before.every((key) => during.includes(key)), "every peer known before is kept");
  // id(3) leaves; the dial that refills its slot is a new peer of the silence.
  connections.sessionClosed(id(3), 7_200);
  connections.round(8_000);
  const dialledPeer = () => Number(dialled.at(-1)?.match(/^10\.0\.2\.(\d+):/)?.[1]);
  const refill = dialledPeer();
  open(refill, "outbound", 8_100);
  assert.equal(connections.sessionKind(id(refill)), "member");
  const beforeRefill = known();
  assert.equal(
    connections.receiveOffer(id(refill), "push", descriptors(140, 8), 8_200),
    "learned",
  );
  assert.ok(beforeRefill.some((key) => !known().includes(key)), "a peer known before gave way");
  // The feeler: untested until it brings an item.
  connections.round(12_000);
  const feeler = dialledPeer();
  open(feeler, "outbound", 12_200);
  assert.equal(connections.sessionKind(id(feeler)), "feeler");
  const others = known();
  assert.equal(others.length, 29, "the feeler is no longer a known peer but a connected one");
  assert.equal(
    connections.receiveOffer(id(feeler), "push", descriptors(120, 8), 12_300),
    "learned",
  );
  const afterFeeler = known();
  assert.equal(afterFeeler.length, 30, "the feeler's tip filled the free place");
  assert.ok(others.every((key) => afterFeeler.includes(key)), "and displaced nobody");
});

Deno.test("after the silence, a session open before it displaces known peers again", () => {
  const { connections } = silenced();
  const known = knowing(connections, 28);
  const before = known();
  assert.equal(before.length, 30);
  assert.equal(connections.receiveOffer(id(1), "push", descriptors(100, 8), 7_100), "learned");
  assert.deepEqual(known(), before, "in the silence: nobody displaced");
  connections.noteRelay(id(2), 7_200, true);
  connections.round(8_000); // the next round: id(1) may push again
  assert.equal(connections.receiveOffer(id(1), "push", descriptors(120, 8), 8_100), "learned");
  assert.ok(before.some((key) => !known().includes(key)), "a peer known before gave way");
});

Deno.test("a feeler that brings an item first stays, and the lowest-scored other outbound peer makes room", () => {
  const { connections, closed, open, scores } = silenced();
  connections.round(12_000);
  open(8, "outbound", 12_200);
  assert.equal(connections.membership.outboundCount, 4, "beyond degree while it is tested");
  assert.equal(connections.sessionKind(id(8)), "feeler");
  assert.equal(connections.sessionKind(id(1)), "member");
  scores.set(id(8), 1);
  connections.noteRelay(id(8), 12_600, true); // anti-entropy: an item it offered
  connections.round(13_000);
  assert.equal(connections.stats.feelersKept, 1);
  assert.equal(connections.isConnected(id(8)), true);
  assert.equal(connections.sessionKind(id(8)), "member", "a lasting peer now");
  assert.equal(closed.length, 1);
  assert.ok([id(1), id(3)].includes(closed[0]), "a peer that earned nothing, not id(2)");
  assert.equal(connections.membership.outboundCount, 3);
});

Deno.test("a feeler that brings nothing is closed after 4 s; a lull costs dials, not slots", () => {
  const { connections, closed, open } = silenced();
  connections.round(12_000);
  open(8, "outbound", 12_200);
  connections.round(16_100);
  assert.equal(connections.isConnected(id(8)), true, "3.9 s: still being tested");
  connections.round(16_200);
  assert.equal(connections.isConnected(id(8)), false);
  assert.ok(closed.includes(id(8)));
  for (const n of [1, 2, 3]) assert.equal(connections.isConnected(id(n)), true, `id(${n}) kept`);
  assert.equal(connections.stats.feelersKept, 0);
});

Deno.test("the next feeler of a silence skips peers felt before and what a feeler that brought nothing named", () => {
  const { connections, dialled, open } = silenced();
  connections.round(12_000);
  assert.equal(dialled.at(-1), "10.0.2.8:6001");
  open(8, "outbound", 12_200);
  // The feeler answers its pull with id(10); id(11) comes from id(12), not a suspect.
  connections.membership.learn(
    [{ identity: id(10), address: address(10) }],
    12_300,
    "outbound",
    id(8),
  );
  connections.membership.learn(
    [{ identity: id(11), address: address(11) }],
    12_300,
    "outbound",
    id(12),
  );
  connections.round(16_200); // 4 s: the feeler brought nothing and is closed
  assert.equal(connections.isConnected(id(8)), false);
  connections.round(16_300);
  assert.equal(connections.stats.feelers, 2);
  assert.equal(dialled.at(-1), "10.0.2.11:6001", "not id(8) again, nor id(10) or id(7)");
});

Deno.test("a proven peer that relayed in its last session holds extra paths back once it reconnects, until a minute after that relay", () => {
  const scores = new Map([[id(2), 1]]);
  const { connections, dialled, open } = manager(scores, 1, [address(50)]);
  for (const n of [1, 2, 3]) open(n, "outbound");
  connections.membership.learn(
    [7, 8].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  connections.noteRelay(id(2), 1_000);
  // id(2) reconnects: it has relayed nothing in its new session yet.
  connections.sessionClosed(id(2), 2_000);
  open(2, "outbound", 3_000);
  const before = dialled.length;
  assert.equal(connections.reinforce(30_000), 0, "id(2) relayed 29 s ago, in its last session");
  assert.equal(dialled.length, before);
  assert.ok(connections.reinforce(61_000) > 0, "a minute after its last relay it may have turned");
  assert.ok(dialled.length > before, "an extra path dialled");
});

Deno.test("an extra path refused as full is replaced by a peer it referred to, at most twice", () => {
  const scores = new Map<string, number>();
  const { connections, dialled, open } = manager(scores, 1, [address(50)]);
  for (const n of [1, 2, 3]) open(n, "outbound"); // degree 3: outbound slots full
  assert.equal(connections.reinforce(1_000), 1, "only the bootstrapper is known");
  assert.deepEqual(dialled, ["10.0.2.50:6001"]);
  // The bootstrapper is full: the handshake completes, it refers this node
  // to two of its peers and says GOODBYE full.
  connections.sessionOpened(
    {
      peer: id(50),
      direction: "outbound",
      address: address(50),
      ip: "10.0.2.50",
      dialed: "10.0.2.50:6001",
    },
    1_100,
    undefined,
  );
  const referral = [20, 21].map((n) => ({ identity: hexToBytes(id(n)), address: address(n) }));
  assert.equal(connections.receiveOffer(id(50), "peers", referral, 1_100), "learned");
  connections.sessionClosed(id(50), 1_100, GoodbyeReason.Full);
  assert.equal(dialled.length, 2, "a replacement extra path");
  assert.ok(
    ["10.0.2.20:6001", "10.0.2.21:6001"].includes(dialled[1]),
    "one the bootstrapper named",
  );
  // The replacement fails too: one more, then no more until the next reinforcement.
  connections.dialFailed(dialled[1], 1_200);
  assert.equal(dialled.length, 3);
  assert.ok(["10.0.2.20:6001", "10.0.2.21:6001"].includes(dialled[2]));
  assert.notEqual(dialled[2], dialled[1]);
  connections.dialFailed(dialled[2], 1_300);
  assert.equal(dialled.length, 3, "at most two replacements");
  assert.equal(connections.stats.reinforced, 3);
  // A dial that was no extra path is not replaced by one.
  connections.membership.learn([{ identity: id(9), address: address(9) }], 1_300, "outbound");
  connections.dialFailed("10.0.2.9:6001", 1_400);
  assert.equal(dialled.length, 3);
});

/**
 * A manager (`degree` 3, bootstrapper 10.0.2.50) with one outbound slot free,
 * which it has filled with an ordinary dial of the bootstrapper; `referAsFull`
 * has the bootstrapper complete that handshake and say GOODBYE full.
 */
function bootstrapperDialled() {
  const setup = manager(new Map(), 1, [address(50)]);
  for (const n of [1, 2]) setup.open(n, "outbound");
  setup.connections.dialMore(0);
  const referAsFull = (at: number) => {
    const dialed = "10.0.2.50:6001";
    const info = {
      peer: id(50),
      direction: "outbound" as const,
      address: address(50),
      ip: "10.0.2.50",
      dialed,
    };
    setup.connections.sessionOpened(info, at, undefined);
    setup.connections.sessionClosed(id(50), at, GoodbyeReason.Full);
  };
  return { ...setup, referAsFull };
}

Deno.test("a bootstrapper that referred an ordinary dial is still dialled as an extra path", () => {
  const { connections, dialled, delivering, open, referAsFull } = bootstrapperDialled();
  assert.deepEqual(dialled, ["10.0.2.50:6001"], "an ordinary dial of the bootstrapper");
  // It is full: it completes the handshake and says GOODBYE full (back-off).
  referAsFull(100);
  open(3, "outbound", 110);
  connections.dialMore(120);
  assert.equal(dialled.length, 1, "backing off from ordinary dials");
  // A local item with no proven peer: a full bootstrapper may hear out a
  // delivery, so the back-off of the ordinary dial does not apply.
  assert.equal(connections.reinforce(200), 1);
  assert.deepEqual(dialled, ["10.0.2.50:6001", "10.0.2.50:6001"]);
  assert.deepEqual(delivering, ["10.0.2.50:6001"], "asking for a delivery session");
});

Deno.test("an extra path due while an ordinary dial of the bootstrapper is in flight follows that dial", () => {
  const { connections, dialled, delivering, referAsFull } = bootstrapperDialled();
  assert.deepEqual(dialled, ["10.0.2.50:6001"], "an ordinary dial (a re-anchoring)");
  // A local item while that dial is in flight: no second dial of the address.
  assert.equal(connections.reinforce(10), 0);
  assert.deepEqual(delivering, []);
  // The bootstrapper is full: it refers the ordinary dial, and at once the
  // extra path asks it for a delivery session.
  referAsFull(50);
  assert.deepEqual(delivering, ["10.0.2.50:6001"], "the delivery dial followed");
  assert.equal(connections.stats.reinforced, 1);
  // Only once: when that delivery dial is referred too, no further one follows.
  referAsFull(60);
  assert.equal(delivering.length, 1);
});

Deno.test("reinforcement never dials on an inbound peer's word alone", () => {
  const { connections, dialled, open } = manager(new Map());
  open(1, "inbound");
  connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "inbound");
  for (const n of [2, 3, 4]) open(n, "outbound");
  assert.equal(
    connections.reinforce(0),
    0,
    "no bootstrapper, and 9 only claimed by an inbound peer",
  );
  assert.deepEqual(dialled.filter((key) => key === "10.0.2.9:6001"), []);
});

Deno.test("while no peer is proven, a proven peer that can be dialled again is dialled beyond degree and takes a slot once it has answered", () => {
  for (let seed = 1; seed <= 10; seed++) {
    // id(9) brought items first and left; id(1)-id(3), which brought nothing, took the slots.
    const scores = new Map([[id(1), 0], [id(2), 0], [id(3), 0], [id(9), 5]]);
    const { connections, closed, dialled, open } = manager(scores, seed);
    for (const n of [1, 2, 3]) open(n, "outbound");
    connections.membership.learn([{ identity: id(8), address: address(8) }], 0, "outbound");
    connections.round(1_000); // the rotation is due at 5 s at the earliest
    assert.deepEqual(closed, [], `seed ${seed}: no proven peer to dial, nothing replaced`);
    assert.deepEqual(dialled, []);
    connections.membership.learn([{ identity: id(9), address: address(9) }], 1_000, "outbound");
    connections.round(2_000);
    assert.deepEqual(dialled, ["10.0.2.9:6001"], "the proven peer, dialled beyond degree");
    assert.deepEqual(closed, [], `seed ${seed}: nobody makes room before it answers`);
    // Still down: the dial fails, and nobody lost a slot for it.
    connections.dialFailed("10.0.2.9:6001", 2_100);
    connections.round(3_000); // past the first back-off
    assert.deepEqual(dialled, ["10.0.2.9:6001", "10.0.2.9:6001"], "dialled again");
    assert.deepEqual(closed, [], `seed ${seed}: a failed dial costs no peer`);
    assert.equal(connections.stats.provenReturned, 0);
    // Back: its session opens, and the next round makes room (not at once:
    // a full peer answers and then refers the dialler elsewhere).
    open(9, "outbound", 3_100);
    assert.deepEqual(closed, []);
    connections.round(4_000);
    assert.equal(closed.length, 1, `seed ${seed}`);
    assert.ok([id(1), id(2), id(3)].includes(closed[0]), "an outbound peer that brought nothing");
    assert.equal(connections.stats.provenReturned, 1);
    // With a proven peer connected, another proven candidate waits for the rotation.
    connections.membership.learn([{ identity: id(7), address: address(7) }], 4_000, "outbound");
    scores.set(id(7), 3);
    connections.round(4_500);
    assert.equal(closed.length, 1, `seed ${seed}: a proven peer is connected`);
    assert.equal(dialled.length, 2);
  }
});

Deno.test("a proven peer dialled again that answers and then refers the dialler elsewhere makes room for its referral", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const scores = new Map([[id(1), 0], [id(2), 0], [id(3), 0], [id(9), 5]]);
    const { connections, closed, dialled, open } = manager(scores, seed);
    for (const n of [1, 2, 3]) open(n, "outbound");
    connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "outbound");
    connections.round(1_000);
    assert.deepEqual(dialled, ["10.0.2.9:6001"]);
    // It is full: the handshake completes, its referral names id(7), then GOODBYE full.
    open(9, "outbound", 1_100);
    connections.receiveOffer(id(9), "push", descriptors(7, 1), 1_120);
    connections.sessionClosed(id(9), 1_150, GoodbyeReason.Full);
    assert.equal(closed.length, 1, `seed ${seed}: one outbound peer made room`);
    assert.ok([id(1), id(2), id(3)].includes(closed[0]));
    assert.equal(connections.stats.provenReturned, 1);
    assert.deepEqual(dialled, ["10.0.2.9:6001", "10.0.2.7:6001"], "for the peer it named");
    // A proven peer that does not answer at all costs no peer (the test above).
    connections.round(2_000);
    assert.equal(closed.length, 1);
  }
});

Deno.test("a node whose last proven peer goes away re-anchors: it dials a bootstrapper once", () => {
  const bootstrapper = { hostname: "10.0.9.1", port: 6001 };
  // id(1) and id(2) brought items first; id(3) brought nothing.
  const scores = new Map([[id(1), 5], [id(2), 3], [id(3), 0]]);
  const { connections, dialled, open } = manager(scores, 1, [bootstrapper]);
  for (const n of [1, 2, 3]) open(n, "outbound");
  for (const n of [1, 2]) connections.noteRelay(id(n), 500);
  connections.membership.learn(
    [7, 8, 9].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  // id(1) goes away: id(2) is still proven, the slot is refilled as usual.
  connections.sessionClosed(id(1), 1_000);
  assert.equal(dialled.length, 1);
  assert.notEqual(dialled[0], "10.0.9.1:6001");
  // id(3) goes away: it had proven nothing.
  connections.sessionClosed(id(3), 1_200);
  assert.equal(dialled.length, 2);
  assert.ok(!dialled.includes("10.0.9.1:6001"));
  // id(2), the last proven peer, goes away: a bootstrapper takes a slot.
  connections.sessionClosed(id(2), 1_300);
  assert.deepEqual(dialled.slice(2), ["10.0.9.1:6001"], "the bootstrapper");
  assert.equal(connections.stats.reanchored, 1);
});

Deno.test("a node re-anchors when its last proven peer that still relays goes away, though one proven long ago stays", () => {
  // id(2) relayed items first, then turned: it relays nothing, and keeps its
  // score while this node gets items elsewhere first. id(1) still relays.
  const bootstrapper = { hostname: "10.0.9.1", port: 6001 };
  const scores = new Map([[id(1), 5], [id(2), 3], [id(3), 0]]);
  const { connections, dialled, open } = manager(scores, 1, [bootstrapper]);
  for (const n of [1, 2, 3]) open(n, "outbound");
  connections.membership.learn(
    [7, 8, 9].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  connections.noteRelay(id(2), 1_000);
  connections.noteRelay(id(1), 50_000);
  // 61 s after id(2)'s last item, 11 s after id(1)'s: id(1) goes away.
  connections.sessionClosed(id(1), 61_000);
  assert.deepEqual(dialled.slice(0, 1), ["10.0.9.1:6001"], "the bootstrapper first");
  assert.equal(connections.stats.reanchored, 1);
  // Within the memory, a proven peer's item keeps it one that still relays.
  const again = manager(scores, 1, [bootstrapper]);
  for (const n of [1, 2, 3]) again.open(n, "outbound");
  again.connections.membership.learn(
    [7, 8, 9].map((n) => ({ identity: id(n), address: address(n) })),
    0,
    "outbound",
  );
  again.connections.noteRelay(id(2), 1_000);
  again.connections.sessionClosed(id(1), 60_999);
  assert.ok(!again.dialled.includes("10.0.9.1:6001"), "no re-anchoring");
  assert.equal(again.connections.stats.reanchored, 0);
});

/**
 * A manager with `degree` 3 (six inbound slots) whose inbound slots are all
 * taken by sessions past their grace, the quarter up longest (ids 1-2)
 * protected; ids 3-6 are unprotected.
 */
function fullInbound() {
  const m = manager(new Map(), 1, [], { rotationIntervalMs: 0, evictionGraceMs: 5_000 });
  for (let n = 1; n <= 6; n++) m.open(n, "inbound", n);
  return m;
}

Deno.test("a full node hears a feeler on trial beyond its slots and evicts nobody for it", () => {
  const { connections, closed, open } = fullInbound();
  assert.equal(open(20, "inbound", 20_000, false, true).accept, true);
  assert.deepEqual(closed, [], "no session evicted");
  assert.equal(connections.session(id(20))?.trial, true);
  assert.equal(connections.stats.feelersHeard, 1);
  assert.equal(connections.stats.evicted, 0);
  // The feeler's node closes it after 4 s (it brought nothing): no trace.
  connections.sessionClosed(id(20), 24_000);
  for (let n = 1; n <= 6; n++) assert.equal(connections.isConnected(id(n)), true, `id(${n}) kept`);
  // An ordinary newcomer still evicts, as before.
  assert.equal(open(21, "inbound", 25_000).accept, true);
  assert.equal(closed.length, 1);
  assert.equal(connections.stats.evicted, 1);
});

Deno.test("a feeler on trial does not make an ordinary newcomer evict a session the slots still had room for", () => {
  const { connections, closed, open } = manager(new Map(), 1, [], { rotationIntervalMs: 0 });
  for (let n = 1; n <= 5; n++) open(n, "inbound", n);
  open(20, "inbound", 1_000, false, true); // a slot free: an ordinary session, no trial
  assert.equal(connections.session(id(20))?.trial, undefined);
  open(21, "inbound", 20_000, false, true); // full now: on trial
  assert.equal(connections.session(id(21))?.trial, true);
  connections.sessionClosed(id(20), 20_100);
  assert.equal(open(22, "inbound", 20_200).accept, true, "the freed slot");
  assert.deepEqual(closed, [], "nobody evicted: the trial holds no slot");
});

Deno.test("a feeler its node keeps past the trial takes a slot: the session the eviction rules pick makes room", () => {
  const { connections, closed, goodbyes, open } = fullInbound();
  open(20, "inbound", 20_000, false, true);
  connections.round(29_900);
  assert.equal(connections.session(id(20))?.trial, true, "still on trial at 9.9 s");
  assert.equal(connections.sessionKind(id(20)), "trial");
  assert.deepEqual(closed, []);
  connections.round(30_000);
  assert.equal(connections.session(id(20))?.trial, false, "an ordinary session now");
  assert.equal(connections.sessionKind(id(20)), "member");
  assert.equal(closed.length, 1);
  assert.ok([3, 4, 5, 6].map(id).includes(closed[0]), "an unprotected session");
  assert.deepEqual(goodbyes, [GoodbyeReason.Full]);
  assert.equal(connections.stats.evicted, 1);
  assert.equal(connections.membership.inboundCount, 6);
});

Deno.test("a kept feeler is referred when every inbound session is protected at the end of its trial", () => {
  const { connections, closed, goodbyes, open, sent } = manager(new Map(), 1, [], {
    rotationIntervalMs: 0,
    evictionGraceMs: 60_000,
  });
  for (let n = 1; n <= 6; n++) open(n, "inbound", 1_000);
  open(20, "inbound", 2_000, false, true);
  connections.round(12_000);
  assert.deepEqual(closed, [id(20)], "the feeler goes; the sessions in their grace stay");
  assert.deepEqual(goodbyes, [GoodbyeReason.Full]);
  assert.ok(sent.some(([peer, m]) => peer === id(20) && m.type === PeerMessageType.Push));
});

Deno.test("a feeler beyond degree on trial at once is referred: a feeler never evicts on arrival", () => {
  const { connections, closed, open } = fullInbound();
  for (let n = 20; n < 23; n++) open(n, "inbound", 20_000, false, true);
  assert.equal(connections.stats.feelersHeard, 3);
  const fourth = open(23, "inbound", 20_000, false, true);
  assert.equal(fourth.accept, false);
  assert.ok(!fourth.accept && fourth.goodbye === GoodbyeReason.Full && fourth.referral);
  assert.equal(connections.stats.feelersHeard, 3, "the fourth is no trial");
  assert.deepEqual(closed, [], "nobody evicted");
  assert.equal(connections.stats.evicted, 0);
});

Deno.test("while items have stopped, rotation replaces nobody: nothing tells the peers apart", () => {
  const scores = new Map([[id(2), 1]]);
  const silenceWatch = { ...DEFAULT_SILENCE_WATCH_OPTIONS, feelerIntervalMs: 0 };
  const { connections, closed, open } = manager(scores, 1, [], { silenceWatch });
  for (const n of [1, 2, 3]) open(n, "outbound");
  connections.membership.learn([{ identity: id(9), address: address(9) }], 0, "outbound");
  for (const t of [0, 1_000, 2_000]) connections.noteRelay(id(2), t, true);
  // Past relays are suspect from 7 s (the 5 s floor after the last item).
  for (let t = 3_000; t <= 7_000; t += 1_000) connections.round(t);
  const before = closed.length;
  for (let t = 8_000; t <= 60_000; t += 1_000) connections.round(t);
  assert.equal(
    closed.length,
    before,
    "no rotation in 52 s of silence (one every 5-15 s otherwise)",
  );
  // Items again: rotation comes back.
  for (let t = 60_000; t <= 90_000; t += 1_000) {
    connections.noteRelay(id(2), t, true);
    connections.round(t);
  }
  assert.ok(closed.length > before, "rotation once items flow");
});
