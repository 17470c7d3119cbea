/**
 * Unit tests of lib/core/connection_manager.ts decisions that the network
 * tests only show in aggregate: which outbound peer rotation replaces, that
 * proven peers (they brought items first) are dialled and recommended first,
 * and whose descriptors are heard.
 */

import assert from "node:assert/strict";
import type { SocketAddress } from "../lib/address.ts";
import {
  type PeerDescriptor,
  type PeerMessage,
  PeerMessageType,
} from "../lib/codec/peer_messages.ts";
import { type ConnectionActions, ConnectionManager } from "../lib/core/connection_manager.ts";
import { hexToBytes } from "../lib/hex.ts";
import { silentLogger } from "../lib/log.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";

const SELF = "00".repeat(32);

function id(n: number): string {
  return n.toString(16).padStart(64, "0");
}

function address(n: number): SocketAddress {
  return { hostname: `10.0.2.${n}`, port: 6001 };
}

/** A manager with `degree` 3 whose peers' scores come from `scores`. */
function manager(scores: Map<string, number>, seed = 1, bootstrappers: SocketAddress[] = []) {
  const closed: string[] = [];
  const dialled: string[] = [];
  const sent: [string, PeerMessage][] = [];
  const actions: ConnectionActions = {
    send: (peer, message) => sent.push([peer, message]),
    close: (peer) => closed.push(peer),
    dial: (_address, key) => dialled.push(key),
    probe: () => {},
    forgotten: () => {},
    accepted: () => {},
    score: (peer) => scores.get(peer) ?? 0,
    isTrusted: (peer) => (scores.get(peer) ?? 0) >= -20,
  };
  const scheduler = new FakeScheduler();
  const connections = new ConnectionManager(
    {
      selfIdentity: SELF,
      selfAddress: { hostname: "10.0.2.254", port: 6001 },
      degree: 3,
      maxPeerConnections: 64,
      passiveViewSize: 30,
      membershipIntervalMs: 1000,
      bootstrappers,
      maxLearnPerRound: 100,
      establishedAfterMs: 60_000,
      joinWarningMs: 60_000,
      rotationIntervalMs: 10_000,
      random: seededRandom(seed),
    },
    actions,
    silentLogger,
    scheduler,
    0,
  );
  const open = (n: number, direction: "outbound" | "inbound", now = 0) =>
    connections.sessionOpened(
      {
        peer: id(n),
        direction,
        address: address(n),
        ip: `10.0.2.${n}`,
        dialed: direction === "outbound" ? `10.0.2.${n}:6001` : undefined,
      },
      now,
      undefined,
    );
  return { connections, closed, dialled, sent, open };
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
