import assert from "node:assert/strict";
import type { SocketAddress } from "../lib/address.ts";
import {
  type AddressedPeer,
  type KnownPeer,
  Membership,
  type MembershipOptions,
} from "../lib/protocol/membership.ts";
import { seededRandom } from "../lib/protocol/random.ts";

const SELF = "5e1f";
const SELF_ADDRESS: SocketAddress = { hostname: "10.0.0.1", port: 6001 };
const BOOTSTRAP: SocketAddress = { hostname: "10.0.0.254", port: 6001 };
const BOOTSTRAP_KEY = "10.0.0.254:6001";

function address(n: number): SocketAddress {
  return { hostname: `10.0.1.${n}`, port: 6001 };
}

function key(n: number): string {
  return `10.0.1.${n}:6001`;
}

function peer(n: number): AddressedPeer {
  return { identity: `id${n}`, address: address(n) };
}

function peers(from: number, to: number): AddressedPeer[] {
  const result: AddressedPeer[] = [];
  for (let n = from; n <= to; n++) result.push(peer(n));
  return result;
}

function membership(options: Partial<MembershipOptions> = {}): Membership {
  return new Membership({
    selfIdentity: SELF,
    selfAddress: SELF_ADDRESS,
    degree: 3,
    passiveSize: 50,
    maxLearnPerMessage: 50,
    backoffBaseMs: 100,
    backoffMaxMs: 1_000,
    random: seededRandom(1),
    ...options,
  });
}

/** Completes an outbound dial of `known` with the given identity. */
function connectOutbound(view: Membership, known: KnownPeer, identity: string, now = 0): void {
  view.connected({ identity, address: known.address, direction: "outbound" });
  view.dialFinished(known.addressKey, true, now);
}

function keys(list: readonly KnownPeer[]): string[] {
  return list.map((known) => known.addressKey).sort();
}

Deno.test("the bootstrapper is dialed first when nothing else is known", () => {
  const view = membership({ bootstrapper: BOOTSTRAP });
  assert.deepEqual(keys(view.passivePeers), [BOOTSTRAP_KEY]);
  const dials = view.nextDials(0);
  assert.deepEqual(keys(dials), [BOOTSTRAP_KEY]);
  assert.ok(dials[0].bootstrap);
  assert.equal(dials[0].identity, undefined);
  assert.equal(view.dialsInProgress, 1);
  assert.deepEqual(view.nextDials(0), [], "a dial in progress is not repeated");
});

Deno.test("without a bootstrapper and with nothing known there is nothing to dial", () => {
  const view = membership();
  assert.deepEqual(view.nextDials(0), []);
  assert.deepEqual(view.passivePeers, []);
});

Deno.test("a bootstrapper equal to the own address is never dialed", () => {
  const view = membership({ bootstrapper: { ...SELF_ADDRESS } });
  assert.deepEqual(view.passivePeers, []);
  assert.deepEqual(view.nextDials(0), []);
});

Deno.test("nextDials fills outbound connections up to degree, counting dials in progress", () => {
  const view = membership({ degree: 3 });
  view.learn(peers(1, 10), 0);
  const first = view.nextDials(0);
  assert.equal(first.length, 3);
  assert.equal(new Set(keys(first)).size, 3);
  assert.equal(view.dialsInProgress, 3);
  assert.deepEqual(view.nextDials(0), [], "three dials in progress already");

  connectOutbound(view, first[0], first[0].identity!);
  connectOutbound(view, first[1], first[1].identity!);
  assert.equal(view.outboundCount, 2);
  assert.deepEqual(view.nextDials(0), [], "two connected plus one dialing");

  view.dialFinished(first[2].addressKey, false, 0);
  const second = view.nextDials(0);
  assert.equal(second.length, 1, "replaces the failed dial");
  assert.notEqual(second[0].addressKey, first[2].addressKey, "the failed peer is backing off");
  connectOutbound(view, second[0], second[0].identity!);
  assert.equal(view.outboundCount, 3);
  assert.deepEqual(view.nextDials(1_000_000), [], "never beyond degree");
  assert.equal(view.activeCount, 3);
});

Deno.test("nextDials never returns connected peers or peers being dialed", () => {
  const view = membership({ degree: 20 });
  view.learn(peers(1, 6), 0);
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  // A descriptor for a connected peer's address under another identity.
  view.learn([{ identity: "other", address: address(2) }], 0);
  view.connected({ identity: "id2", address: address(2), direction: "inbound" });
  const dials = view.nextDials(0);
  assert.deepEqual(keys(dials), [key(3), key(4), key(5), key(6)]);
  assert.deepEqual(view.nextDials(0), []);
});

Deno.test("never dials itself, by identity or by address", () => {
  const view = membership({ degree: 10 });
  const added = view.learn([
    { identity: SELF, address: address(1) },
    { identity: "other", address: { ...SELF_ADDRESS } },
    peer(2),
  ], 0);
  assert.equal(added, 1);
  assert.deepEqual(keys(view.nextDials(0)), [key(2)]);
  // Nor is it offered to others (nor is id2: it is only second-hand so far).
  assert.deepEqual(view.sample(10).map((p) => p.identity), []);
});

Deno.test("second-hand peers are dialed but passed on only once verified", () => {
  const view = membership({ degree: 10 });
  view.learn([peer(1), peer(2)], 0);
  assert.deepEqual(view.sample(10), [], "nothing verified yet");
  // A peer we were connected to, or restored from our own peers file, is verified.
  view.connected({ identity: "id1", address: address(1), direction: "outbound" });
  view.disconnected("id1", 0);
  view.restore([peer(3)], 0);
  assert.deepEqual(view.sample(10).map((p) => p.identity).sort(), ["id1", "id3"]);
  // A second-hand claim cannot rename who is at a known address.
  view.learn([{ identity: "liar", address: address(3) }], 0);
  assert.ok(view.passivePeers.some((p) => p.identity === "id3"));
  assert.ok(!view.passivePeers.some((p) => p.identity === "liar"));
});

Deno.test("learn accepts at most maxLearnPerMessage new descriptors per call", () => {
  const view = membership({ maxLearnPerMessage: 3 });
  assert.equal(view.learn(peers(1, 10), 0), 3);
  assert.equal(view.passivePeers.length, 3);
  assert.equal(view.learn(peers(1, 10), 0), 3);
  assert.equal(view.passivePeers.length, 6);
  // Already known descriptors do not count toward the limit.
  const known = view.passivePeers.map((p) => ({ identity: p.identity!, address: p.address }));
  assert.equal(view.learn([...known, peer(20)], 0), 1);
  assert.equal(view.passivePeers.length, 7);
});

Deno.test("learn keeps the passive view within passiveSize", () => {
  const view = membership({ passiveSize: 5, maxLearnPerMessage: 100, bootstrapper: BOOTSTRAP });
  view.learn(peers(1, 20), 0);
  assert.equal(view.passivePeers.length, 5);
  for (let round = 0; round < 5; round++) view.learn(peers(30 + round * 10, 39 + round * 10), 0);
  assert.equal(view.passivePeers.length, 5);
  assert.ok(keys(view.passivePeers).includes(BOOTSTRAP_KEY), "the bootstrapper is never evicted");
  assert.equal(membership({ passiveSize: 0 }).learn(peers(1, 3), 0), 0);
});

Deno.test("learn evicts the passive peer with most failures first", () => {
  const view = membership({ passiveSize: 3, degree: 3 });
  view.learn(peers(1, 3), 0);
  assert.equal(view.nextDials(0).length, 3);
  view.dialFinished(key(1), true, 0);
  view.dialFinished(key(2), false, 0);
  view.dialFinished(key(3), true, 0);
  view.learn([peer(4)], 0);
  assert.deepEqual(keys(view.passivePeers), [key(1), key(3), key(4)]);
});

Deno.test("learn ignores descriptors of connected peers", () => {
  const view = membership();
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  assert.equal(view.learn([peer(1)], 0), 0);
  assert.deepEqual(view.passivePeers, []);
});

Deno.test("failed dials back off exponentially up to backoffMaxMs; success resets", () => {
  // random() = 0.5 makes the jitter factor exactly 0.75.
  const view = membership({
    degree: 1,
    backoffBaseMs: 100,
    backoffMaxMs: 1_000,
    random: () => 0.5,
    bootstrapper: BOOTSTRAP,
  });
  let now = 0;
  const delays: number[] = [];
  for (let attempt = 0; attempt < 7; attempt++) {
    const dials = view.nextDials(now);
    assert.deepEqual(keys(dials), [BOOTSTRAP_KEY], `attempt ${attempt}`);
    view.dialFinished(BOOTSTRAP_KEY, false, now);
    const next = view.passivePeers[0].nextAttemptAt;
    delays.push(next - now);
    assert.deepEqual(view.nextDials(next - 1), [], "not before the backoff ends");
    now = next;
  }
  assert.deepEqual(delays, [75, 150, 300, 600, 750, 750, 750]);
  assert.equal(view.passivePeers[0].failures, 7);

  // A success resets the failure count: the next failure backs off by the base again.
  assert.equal(view.nextDials(now).length, 1);
  view.dialFinished(BOOTSTRAP_KEY, true, now);
  assert.equal(view.passivePeers[0].failures, 0);
  assert.equal(view.nextDials(now).length, 1);
  view.dialFinished(BOOTSTRAP_KEY, false, now);
  assert.equal(view.passivePeers[0].nextAttemptAt - now, 75);
});

Deno.test("backoff jitter stays between half and all of the nominal delay", () => {
  const view = membership({ degree: 1, random: seededRandom(9) });
  view.learn([peer(1)], 0);
  let now = 0;
  for (let failure = 1; failure <= 12; failure++) {
    assert.equal(view.nextDials(now).length, 1);
    view.dialFinished(key(1), false, now);
    const nominal = Math.min(1_000, 100 * 2 ** (failure - 1));
    const delay = view.passivePeers[0].nextAttemptAt - now;
    assert.ok(delay >= nominal / 2 && delay <= nominal, `failure ${failure}: ${delay}`);
    now += delay;
  }
});

Deno.test("a disconnected peer returns to the passive view and is dialed again", () => {
  const view = membership({ degree: 1 });
  view.learn([peer(1)], 0);
  const [dial] = view.nextDials(0);
  connectOutbound(view, dial, "id1");
  assert.deepEqual(view.passivePeers, []);
  assert.ok(view.isConnected("id1"));

  view.disconnected("id1", 5_000);
  assert.equal(view.isConnected("id1"), false);
  assert.equal(view.outboundCount, 0);
  assert.deepEqual(keys(view.passivePeers), [key(1)]);
  assert.deepEqual(view.nextDials(5_099), [], "after the base delay");
  assert.deepEqual(keys(view.nextDials(5_100)), [key(1)]);
  view.disconnected("unknown", 6_000); // ignored
});

Deno.test("an inbound peer that disconnects becomes dialable", () => {
  const view = membership({ degree: 1 });
  view.connected({ identity: "id7", address: address(7), direction: "inbound" });
  view.disconnected("id7", 0);
  assert.deepEqual(keys(view.nextDials(100)), [key(7)]);
});

Deno.test("the bootstrapper stays known after connecting and is retried forever", () => {
  const view = membership({ degree: 2, bootstrapper: BOOTSTRAP, random: () => 0.5 });
  const [dial] = view.nextDials(0);
  connectOutbound(view, dial, "b00t");
  const kept = view.passivePeers.find((known) => known.bootstrap);
  assert.ok(kept, "still known");
  assert.equal(kept.identity, "b00t");
  assert.deepEqual(view.nextDials(0), [], "not dialed while connected");
  const listed = view.sample(10);
  assert.deepEqual(
    listed.map((p) => [p.identity, p.address]),
    [["b00t", BOOTSTRAP]],
    "listed once",
  );

  view.disconnected("b00t", 0);
  let now = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    now += 1_000; // backoffMaxMs
    const dials = view.nextDials(now);
    assert.deepEqual(keys(dials), [BOOTSTRAP_KEY], `attempt ${attempt}`);
    view.dialFinished(BOOTSTRAP_KEY, false, now);
  }
  assert.equal(view.passivePeers[0].failures, 100);
  assert.equal(view.passivePeers[0].identity, "b00t");
});

Deno.test("the bootstrapper is not dialed while regular peers fill the outbound slots", () => {
  const view = membership({ degree: 2, bootstrapper: BOOTSTRAP });
  view.learn(peers(1, 5), 0);
  const dials = view.nextDials(0);
  assert.equal(dials.length, 2);
  assert.ok(dials.every((known) => !known.bootstrap));
});

Deno.test("the bootstrapper is dialed for rejoining when no known peer can be dialed", () => {
  const view = membership({ degree: 2, bootstrapper: BOOTSTRAP });
  view.learn([peer(1)], 0);
  const dials = view.nextDials(0);
  assert.deepEqual(keys(dials), [key(1), BOOTSTRAP_KEY].sort(), "nothing connected yet");
});

Deno.test("inbound peers do not count toward outbound connections", () => {
  const view = membership({ degree: 2 });
  for (let n = 1; n <= 5; n++) {
    view.connected({ identity: `in${n}`, address: address(100 + n), direction: "inbound" });
  }
  view.learn(peers(1, 4), 0);
  assert.equal(view.activeCount, 5);
  assert.equal(view.outboundCount, 0);
  const dials = view.nextDials(0);
  assert.equal(dials.length, 2);
  for (const dial of dials) connectOutbound(view, dial, dial.identity!);
  assert.equal(view.outboundCount, 2);
  assert.equal(view.activeCount, 7);
  assert.deepEqual(view.nextDials(0), []);
});

Deno.test("sample excludes the requester and failing passive peers", () => {
  const view = membership({ degree: 1, random: seededRandom(4) });
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  view.connected({ identity: "id2", address: address(2), direction: "inbound" });
  view.restore(peers(3, 5), 0);
  const [dial] = view.nextDials(0);
  view.dialFinished(dial.addressKey, false, 0);
  for (let round = 0; round < 20; round++) {
    const listed = view.sample(10, "id1").map((p) => p.identity).sort();
    assert.equal(listed.length, 3);
    assert.ok(!listed.includes("id1"));
    assert.ok(!listed.includes(dial.identity!));
    assert.ok(!listed.includes(SELF));
  }
  assert.equal(view.sample(2).length, 2);
  assert.equal(view.sample(0).length, 0);
});

Deno.test("exchangePartner picks a connected peer", () => {
  const view = membership();
  assert.equal(view.exchangePartner(), undefined);
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  assert.equal(view.exchangePartner()?.identity, "id1");
});

Deno.test("a bootstrapper known by hostname is not redialed once its identity is known", () => {
  const membership = new Membership({
    selfIdentity: "self",
    degree: 2,
    passiveSize: 10,
    maxLearnPerMessage: 8,
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    bootstrapper: { hostname: "boot.example", port: 6001 },
    random: () => 0,
  });
  const [boot] = membership.nextDials(0);
  assert.equal(boot.addressKey, "boot.example:6001");
  // It advertises its IP address, not the configured hostname.
  membership.connected({
    identity: "b",
    address: { hostname: "192.0.2.1", port: 6001 },
    direction: "outbound",
  });
  membership.dialFinished(boot.addressKey, true, 0, "b");
  assert.deepEqual(membership.nextDials(10_000), [], "no second connection to the bootstrapper");
});
