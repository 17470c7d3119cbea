/**
 * Unit tests of the simulator's parts: the virtual clock, wire sizes, the
 * WAN link model, the metrics' shortest-path bound and the CLI's ratio parser.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodePeerMessage,
  type PeerMessage,
  PeerMessageType,
} from "../lib/codec/peer_messages.ts";
import { GlobeLinks } from "../lib/sim/links.ts";
import {
  aggregate,
  eclipseCensus,
  eclipseTime,
  Metrics,
  shortestPaths,
  tagOf,
  TRACE_OFFSETS_MS,
} from "../lib/sim/metrics.ts";
import { Adversary } from "../lib/sim/hostile.ts";
import { ECLIPSE_RECHECK_MS, SimNetwork } from "../lib/sim/network.ts";
import { DEFAULT_BOOTSTRAPS_PER_NODE, World } from "../lib/sim/scenarios.ts";
import { VirtualClock } from "../lib/sim/virtual_clock.ts";
import { wireBytes } from "../lib/sim/wire_size.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import { parseRatio } from "../scripts/simulate.ts";

Deno.test("virtual clock: events run in time order, ties in scheduling order", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean()), { maxLength: 300 }),
      (timers) => {
        const clock = new VirtualClock();
        const ran: number[] = [];
        const handles = timers.map(([delay], i) => clock.setTimeout(() => ran.push(i), delay));
        timers.forEach(([, cancel], i) => cancel && clock.clearTimeout(handles[i]));
        assert.equal(clock.pending, timers.filter(([, cancel]) => !cancel).length);
        clock.runUntil(100);
        const expected = timers
          .map(([delay, cancel], i) => ({ delay, cancel, i }))
          .filter((t) => !t.cancel)
          .sort((a, b) => a.delay - b.delay || a.i - b.i)
          .map((t) => t.i);
        assert.deepEqual(ran, expected);
        assert.equal(clock.pending, 0);
        assert.equal(clock.now(), 100);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("virtual clock: timers scheduled while running, defer, stale handles", () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  const first = clock.setTimeout(() => {
    log.push(`a@${clock.now()}`);
    clock.defer(() => log.push(`deferred@${clock.now()}`));
    clock.setTimeout(() => log.push(`c@${clock.now()}`), 5);
  }, 10);
  clock.setTimeout(() => log.push(`b@${clock.now()}`), 10);
  clock.advance(12);
  assert.deepEqual(log, ["a@10", "b@10", "deferred@10"]);
  // A fired handle, an unknown one and a non-number are ignored.
  clock.clearTimeout(first);
  clock.clearTimeout(12345);
  clock.clearTimeout(-1);
  assert.equal(clock.pending, 1);
  clock.advance(10);
  assert.deepEqual(log.at(-1), "c@15");
  assert.equal(clock.eventsRun, 4);
  // NaN and negative delays run now; runUntil never moves time backwards.
  clock.setTimeout(() => log.push(`nan@${clock.now()}`), NaN);
  clock.setTimeout(() => log.push(`neg@${clock.now()}`), -5);
  clock.runUntil(0);
  assert.equal(clock.now(), 22);
  assert.equal(clock.pending, 2, "not due at time 0");
  clock.advance(0);
  assert.deepEqual(log.slice(-2), ["nan@22", "neg@22"]);
});

Deno.test("virtual clock: a runaway loop is stopped", () => {
  const clock = new VirtualClock();
  const loop = () => clock.defer(loop);
  loop();
  assert.throws(() => clock.runUntil(1, 1000), /more than 1000 events/);
});

Deno.test("wire sizes equal the encoded sizes plus frame and tag", () => {
  const identity = new Uint8Array(32).fill(7);
  const messages: PeerMessage[] = [
    { type: PeerMessageType.Ping, nonce: 5n },
    { type: PeerMessageType.Pong, nonce: 5n },
    { type: PeerMessageType.PullRequest, max: 16 },
    {
      type: PeerMessageType.Peers,
      peers: [
        { identity, address: { hostname: "10.1.2.1", port: 6001 } },
        { identity, address: { hostname: "2001:db8::1", port: 7 } },
      ],
    },
    { type: PeerMessageType.Push, peers: [] },
    {
      type: PeerMessageType.Push,
      marked: true,
      peers: Array.from({ length: 9 }, (_, i) => ({
        identity,
        address: { hostname: `10.1.2.${i + 1}`, port: 6001 },
        proven: i % 2 === 0,
      })),
    },
    { type: PeerMessageType.Goodbye, reason: 2 },
    { type: PeerMessageType.Delivery },
    {
      type: PeerMessageType.Item,
      id: 1n,
      nonce: 2n,
      ttl: 3,
      hops: 4,
      dataType: 5,
      data: new Uint8Array(1000),
    },
    { type: PeerMessageType.IHave, ids: [1n, 2n, 3n] },
    { type: PeerMessageType.IWant, ids: [9n] },
    {
      type: PeerMessageType.Hello,
      version: 2,
      puzzleBits: 8,
      flags: 0,
      ephemeralKey: new Uint8Array(32),
      nonce: new Uint8Array(32),
      powEpoch: 1,
      powNonce: 2n,
      listenAddress: { hostname: "example.org", port: 6001 },
      publicKey: new Uint8Array(294),
      credential: { key: new Uint8Array(32), expiry: 7, signature: new Uint8Array(256) },
    },
    { type: PeerMessageType.Auth, puzzleSolution: 5n, signature: new Uint8Array(64) },
  ];
  for (const message of messages) {
    assert.equal(
      wireBytes(message),
      encodePeerMessage(message).length + 20,
      `type ${message.type}`,
    );
  }
});

Deno.test("globe links: round trips within 10-300 ms, symmetric, jitter and loss only add", () => {
  const globe = new GlobeLinks();
  const random = seededRandom(3);
  for (let i = 0; i < 400; i++) globe.place(i, random);
  let far = 0;
  for (let i = 0; i < 400; i++) {
    for (let j = i + 1; j < 400; j += 7) {
      const oneWay = globe.latency(i, j);
      assert.ok(oneWay >= 5 && oneWay <= 150, `${oneWay}`);
      assert.equal(oneWay, globe.latency(j, i));
      assert.ok(globe.transit(i, j, 1000, random) >= oneWay);
      far = Math.max(far, oneWay);
    }
  }
  assert.ok(far > 100, "some pairs are continents apart");
  // Loss: about 1% of messages take at least a 200 ms retransmission.
  let late = 0;
  for (let k = 0; k < 20_000; k++) {
    if (globe.transit(0, 1, 100, random) - globe.latency(0, 1) >= 200) late++;
  }
  assert.ok(late > 100 && late < 350, `${late} of 20000 retransmitted`);
  const lossless = new GlobeLinks({ lossRate: 0, jitterFraction: 0 });
  lossless.place(0, random);
  lossless.place(1, random);
  assert.equal(lossless.transit(0, 1, 60_000, random), lossless.latency(0, 1));
});

Deno.test("globe links: a datacentre host is nearer to its region's nodes than they are to each other", () => {
  const globe = new GlobeLinks({ jitterFraction: 0, lossRate: 0 });
  const random = seededRandom(4);
  for (let i = 0; i < 300; i++) globe.place(i, random);
  for (let i = 300; i < 320; i++) globe.placeCentral(i, random);
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  for (let host = 300; host < 320; host++) {
    const region = globe.regionOf[host];
    const local = [...Array(300).keys()].filter((i) => globe.regionOf[i] === region);
    assert.ok(local.length >= 5, `region ${region} has nodes`);
    const toHost = local.map((i) => globe.latency(i, host));
    const between = local.flatMap((i) =>
      local.filter((j) => j > i).map((j) => globe.latency(i, j))
    );
    assert.ok(
      median(toHost) < median(between),
      `host ${host}: median ${median(toHost)} ms to it, ${
        median(between)
      } ms between its region's nodes`,
    );
  }
  // In a network, wellConnected nodes are placed that way.
  const net = new SimNetwork({ seed: 6, links: new GlobeLinks() });
  const node = net.addNode({ wellConnected: true });
  assert.equal(net.links.latency(node.index, node.index), 5, "no access delay: the 10 ms floor");
});

Deno.test("metrics: the shortest-path bound follows sessions and skips attackers as relays", () => {
  const net = new SimNetwork({ seed: 5, delay: () => 10 });
  const config = { degree: 1, passiveViewSize: 0 };
  // A line a - b - c, and an attacker m beside b: c is 2 hops (20 ms + one validation) away.
  const a = net.addNode({ config });
  const b = net.addNode({ config, bootstrap: [a] });
  const c = net.addNode({ config, bootstrap: [b] });
  const m = net.addNode({ config, bootstrap: [a], role: "attacker" });
  net.run(2_000);
  const dist = shortestPaths(net, a, 100, 3);
  assert.equal(dist[a.index], 0);
  assert.equal(dist[b.index], 10);
  assert.equal(dist[c.index], 23);
  assert.equal(dist[m.index], 10);
  // Had m been honest and linked to c, it would not change c: m is no relay.
  assert.equal(tagOf(new Uint8Array([0, 0, 1, 2, 9])), 258);
  assert.equal(tagOf(new Uint8Array([1])), -1);
});

Deno.test("metrics: eclipse census, and the eclipses expected by chance", () => {
  const net = new SimNetwork({ seed: 7, delay: () => 10 });
  const config = { degree: 1, passiveViewSize: 0 };
  // m is an attacker; a and b dial it, c dials a: a has peers {m, c}, b only {m}, c only {a}.
  const m = net.addNode({ config, role: "attacker" });
  const a = net.addNode({ config, bootstrap: [m] });
  const b = net.addNode({ config, bootstrap: [m] });
  net.addNode({ config, bootstrap: [a] });
  net.run(2_000);
  const census = eclipseCensus(net);
  assert.equal(census.honest, 3);
  assert.equal(census.isolated, 0);
  assert.equal(census.eclipsed, 1, "b");
  assert.equal(census.eclipsedMeanPeers, 1);
  assert.equal(census.eclipsedMeanInbound, 0, "b dialled m");
  assert.equal(census.eclipsedAttackerBootstrapped, 1, "b's only bootstrapper is m");
  assert.equal(census.eclipsedJustStarted, 1, "b is 2 s up");
  assert.equal(census.eclipsedRecently, 1, "b is 2 s up");
  assert.equal(census.eclipsedKnowingNoHonest, 1, "b knows only m (no passive view)");
  assert.equal(census.oneHonestPeer, 1, "a: m and one honest peer, c (c has no attacker)");
  net.run(30_000);
  const later = eclipseCensus(net);
  assert.equal(later.eclipsed, 1, "b still has only m");
  assert.equal(later.eclipsedJustStarted, 0, "b is 32 s up");
  assert.equal(later.eclipsedRecently, 0, "b has had only m for 32 s");
  // Attacker shares 1/2 (a), 1 (b), 0 (c): mean 1/2; by chance 1/2^2 + 1/2 + 1/2.
  assert.equal(census.attackerPeerShare, 0.5);
  assert.equal(census.eclipsedByChance, 1.25);
  assert.equal(eclipseCensus(net, [a, b]).eclipsed, 1);
  assert.equal(eclipseCensus(net, [a]).eclipsedMeanPeers, 0, "none eclipsed among them");
});

/**
 * An attacker m, an honest e, and d (degree 2) that joins through both: d's
 * peers are e and m once the network settles (`config`: degree 1, no view).
 */
function honestBesideAttacker() {
  const net = new SimNetwork({ seed: 7, delay: () => 10 });
  const config = { degree: 1, passiveViewSize: 0 };
  const m = net.addNode({ config, role: "attacker" });
  const e = net.addNode({ config });
  const d = net.addNode({ config: { degree: 2, passiveViewSize: 0 }, bootstrap: [e, m] });
  return { net, config, m, e, d };
}

Deno.test("metrics: an honest session that is no member session (a feeler, a trial, a delivery) does not end an eclipse", () => {
  const { net, m, e, d } = honestBesideAttacker();
  net.resetEclipseTime();
  net.run(40_000);
  assert.deepEqual([...d.sessions.keys()].sort(), [e.identity, m.identity].sort());
  assert.equal(d.core.sessionKind(e.identity), "member");
  assert.equal(eclipseCensus(net, [d]).eclipsed, 0);
  // Seen as d's core would see a feeler to e: not a lasting peer.
  const kind = d.core.sessionKind.bind(d.core);
  d.core.sessionKind = (peer) => peer === e.identity ? "feeler" : kind(peer);
  const census = eclipseCensus(net, [d]);
  assert.equal(census.eclipsed, 1, "d's only member session is with m");
  assert.equal(census.eclipsedHonestShortLived, 1, "e, its feeler");
  assert.equal(census.eclipsedMeanPeers, 1);
  // The eclipsed time notices it at the next look, without a session change.
  assert.equal(d.eclipsedSince, undefined);
  net.run(ECLIPSE_RECHECK_MS);
  assert.ok(d.eclipsedSince !== undefined, "eclipsed from the next look on");
  d.core.sessionKind = kind;
  net.run(ECLIPSE_RECHECK_MS);
  assert.equal(d.eclipsedSince, undefined, "a member again");
  assert.equal(eclipseCensus(net, [d]).eclipsedHonestShortLived, 0);
});

Deno.test("metrics: a node eclipsed since its last honest peer left is eclipsed recently", () => {
  const { net, m, e, d } = honestBesideAttacker();
  net.run(40_000);
  assert.deepEqual([...d.sessions.keys()].sort(), [e.identity, m.identity].sort());
  assert.equal(eclipseCensus(net).eclipsed, 0);
  assert.equal(eclipseCensus(net, [d]).oneHonestPeer, 1, "d: e and m");
  net.kill(e);
  net.run(1_000);
  const census = eclipseCensus(net, [d]);
  assert.equal(census.eclipsed, 1, "d has only m");
  assert.equal(census.eclipsedJustStarted, 0, "d is 41 s up");
  assert.equal(census.eclipsedRecently, 1, "e left 1 s ago");
  assert.equal(census.oneHonestPeer, 0, "d eclipsed now");
  net.run(10_000);
  assert.equal(eclipseCensus(net, [d]).eclipsedRecently, 0, "e left 11 s ago");
});

Deno.test("metrics: time eclipsed is counted at every session change since the reset, which may come after T0", () => {
  const { net, config, m, e, d } = honestBesideAttacker();
  // b dials m only: eclipsed from its first session on, before the reset too.
  const b = net.addNode({ config, bootstrap: [m] });
  net.run(40_000);
  assert.equal(d.eclipsedSince, undefined, "d has e");
  assert.ok(b.eclipsedSince !== undefined && b.eclipsedMs === 0, "b eclipsed, in progress");
  const t0 = net.clock.now();
  net.resetEclipseTime();
  assert.equal(b.eclipsedSince, t0, "in progress: counted from the reset");
  assert.equal(net.eclipsedAtReset, 1, "b was eclipsed at the reset");
  net.run(5_000);
  net.kill(e);
  net.run(1_000);
  assert.notEqual(d.eclipsedSince, undefined, "d has only m since e's close reached it");
  const since = d.eclipsedSince!;
  assert.ok(since > t0 + 5_000 && since < t0 + 6_000);
  net.run(4_000);
  // b: 10 s in progress; d: from `since` to now, in progress; e is dead and was never eclipsed.
  const time = eclipseTime(net, t0);
  const dMs = t0 + 10_000 - since;
  assert.equal(time.fromSeconds, 0);
  assert.equal(time.eclipsedAtStart, 1);
  assert.equal(time.windowSeconds, 10);
  assert.equal(time.nodes, 2, "b and d");
  assert.equal(time.nodesLong, 1, "b: 10 s");
  assert.equal(time.nodeSeconds, Math.round(10_000 + dMs) / 1000);
  assert.equal(time.longestSeconds, 10);
  assert.equal(time.share, (10_000 + dMs) / (10_000 * 2), "honest live nodes: b and d");
  // Killing d closes its eclipse: its time stays, and its longest is that one.
  net.kill(d);
  assert.equal(d.eclipsedSince, undefined);
  assert.equal(d.eclipsedMs, dMs);
  assert.equal(d.longestEclipseMs, dMs);
  assert.equal(eclipseTime(net, t0).nodes, 2);
  // Counting again from now (the covert flash's turn): only b, still
  // eclipsed, counts, from the new start; the window is measured from there.
  const turn = net.clock.now();
  net.resetEclipseTime();
  assert.equal(net.eclipsedAtReset, 1, "b only: d is dead");
  net.run(2_000);
  const after = eclipseTime(net, turn, t0);
  assert.equal(after.fromSeconds, 10);
  assert.equal(after.windowSeconds, 2);
  assert.equal(after.nodes, 1);
  assert.equal(after.nodeSeconds, 2);
  assert.equal(after.longestSeconds, 2);
});

Deno.test("metrics: aggregate of item summaries", () => {
  const item = (t99: number | null, delivered: number, duplicatesPerDelivery = 2) => ({
    tag: 1,
    origin: 0,
    announcedAt: 0,
    eligible: 10,
    delivered,
    deliveryRatio: delivered / 10,
    t50: 10,
    t99,
    t100: t99,
    unreachable: 0,
    bound50: 5,
    bound99: 20,
    bound100: 20,
    duplicatesPerDelivery,
    maxHops: 4,
  });
  const summary = aggregate([item(30, 10), item(50, 10)]);
  assert.equal(summary.deliveryRatio, 1);
  assert.deepEqual(summary.t99, { mean: 40, max: 50 });
  assert.deepEqual(summary.t99OverBound, { mean: 2, max: 2.5 });
  const partial = aggregate([item(30, 10), item(null, 9)]);
  assert.equal(partial.deliveryRatio, 0.95);
  assert.equal(partial.fullyDelivered, 1);
  assert.deepEqual(partial.t99, { mean: null, max: null });
  // Duplicates per delivery are weighted by deliveries: an item that reached one
  // node in time (and many copies later) does not outweigh the others.
  const skewed = aggregate([item(30, 10, 2), item(null, 1, 500)]);
  assert.equal(skewed.duplicatesPerDelivery, Math.round((2 * 10 + 500) / 11 * 100) / 100);
  assert.equal(aggregate([item(30, 10), item(50, 10)]).duplicatesPerDelivery, 2);
});

Deno.test("simulate CLI: ratios", () => {
  assert.equal(parseRatio("1:10"), 0.1);
  assert.equal(parseRatio("4:1"), 4);
  assert.equal(parseRatio("0.5"), 0.5);
  assert.throws(() => parseRatio("many"));
  assert.throws(() => parseRatio(""));
  assert.throws(() => parseRatio("-1"));
});

Deno.test("metrics: a traced item's origin is looked at from its announcement to 15 s after", () => {
  const metrics = new Metrics();
  const net = new SimNetwork({ seed: 3, delay: () => 10, observer: metrics });
  metrics.attach(net);
  metrics.traceTags = new Set([2]);
  const config = { degree: 2, passiveViewSize: 0 };
  const a = net.addNode({ config });
  const b = net.addNode({ config, bootstrap: [a] });
  const m = net.addNode({ config, bootstrap: [a], role: "attacker" });
  net.run(2_000);
  metrics.announce(a, 1);
  metrics.announce(a, 2);
  net.run(20_000);
  assert.equal(metrics.traces.length, 1, "only item 2 is traced");
  const [trace] = metrics.traces;
  assert.equal(trace.tag, 2);
  assert.equal(trace.origin, a.index);
  assert.deepEqual(trace.bootstrappers, [], "a is the first node");
  assert.deepEqual(trace.snapshots.map((snap) => snap.afterMs), [...TRACE_OFFSETS_MS]);
  assert.equal(trace.snapshots[0].reached, 0, "nobody has it at the announcement");
  const last = trace.snapshots[trace.snapshots.length - 1];
  assert.equal(last.reached, 1, "b; m is not honest");
  assert.deepEqual(
    last.sessions.map((s) => [s.index, s.honest, s.direction, s.delivered]).sort(),
    [[b.index, true, "inbound", true], [m.index, false, "inbound", true]],
  );
  assert.ok(last.connections?.dials !== undefined, "the origin's counters");
});

Deno.test("scenarios: honest nodes join through bootstrapsPerNode distinct earlier nodes", () => {
  const bootstraps = (perNode?: number) => {
    const world = new World({ nodes: 12, seed: 3, bootstrapsPerNode: perNode, measurePow: false });
    world.build(12, 0);
    return world.honest.map((node) => (node.options.bootstrap ?? []).map((b) => b.index));
  };
  const one = bootstraps(1);
  assert.deepEqual(one.map((list) => list.length), [0, ...new Array(11).fill(1)]);
  const two = bootstraps();
  assert.equal(DEFAULT_BOOTSTRAPS_PER_NODE, 2);
  assert.deepEqual(two.map((list) => list.length), [0, 1, ...new Array(10).fill(2)]);
  two.forEach((list, i) => {
    assert.equal(new Set(list).size, list.length, `node ${i}: distinct`);
    assert.ok(list.every((index) => index < i), `node ${i}: joined before it`);
  });
});

Deno.test("scenarios: with trustedBootstrappers honest nodes join through honest nodes only", () => {
  const draw = (trustedBootstrappers: boolean) => {
    const world = new World({ nodes: 20, seed: 4, trustedBootstrappers, measurePow: false });
    world.adversary = new Adversary(world.net, { behaviour: {}, seed: 5 });
    world.build(20, 20);
    const honest = new Set(world.honest);
    const lists = world.honest.map((node) => node.options.bootstrap ?? []);
    return {
      attackerBootstrappers: lists.flat().filter((b) => !honest.has(b)).length,
      twoEach: lists.filter((list) => list.length === 2).length,
      attackersThroughAttackers:
        world.adversary.nodes.filter((node) =>
          (node.options.bootstrap ?? []).some((b) => !honest.has(b))
        ).length,
    };
  };
  const trusted = draw(true);
  assert.equal(trusted.attackerBootstrappers, 0);
  assert.equal(trusted.twoEach, 18, "two each but the first two honest nodes");
  assert.ok(trusted.attackersThroughAttackers > 0, "attackers still join through any node");
  assert.ok(draw(false).attackerBootstrappers > 0, "by default any node, attackers included");
});
