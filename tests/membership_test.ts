/**
 * Unit tests of lib/protocol/membership.ts: active and passive views, dialling
 * tiers, verification by outbound sessions only, bootstrappers, backoff,
 * eviction and recommendation (sample).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { SocketAddress } from "../lib/address.ts";
import {
  type AddressedPeer,
  type KnownPeer,
  Membership,
  type MembershipOptions,
  type SavedPeer,
  WITHHOLDER_MERIT,
} from "../lib/protocol/membership.ts";
import { seededRandom } from "../lib/protocol/random.ts";

const SELF = "5e1f";
const SELF_ADDRESS: SocketAddress = { hostname: "10.0.0.1", port: 6001 };
const BOOTSTRAP: SocketAddress = { hostname: "10.0.0.254", port: 6001 };
const BOOTSTRAP_KEY = "10.0.0.254:6001";
const BOOTSTRAP2: SocketAddress = { hostname: "10.0.0.253", port: 6001 };
const BOOTSTRAP2_KEY = "10.0.0.253:6001";

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

/** Peers `from`..`to` as saved after this node dialled them (tried). */
function triedPeers(from: number, to: number): SavedPeer[] {
  return peers(from, to).map((p) => ({ ...p, tried: true }));
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
  view.connected({ identity, address: known.address, direction: "outbound" }, now);
  view.dialFinished(known.addressKey, true, now, identity);
}

function keys(list: readonly KnownPeer[]): string[] {
  return list.map((known) => known.addressKey).sort();
}

function identities(list: readonly AddressedPeer[]): string[] {
  return list.map((p) => p.identity).sort();
}

function passive(view: Membership, addressKey: string): KnownPeer | undefined {
  return view.passivePeers.find((known) => known.addressKey === addressKey);
}

// ---- bootstrappers --------------------------------------------------------------------

Deno.test("a bootstrapper is dialled first when nothing else is known", () => {
  const view = membership({ bootstrappers: [BOOTSTRAP] });
  assert.deepEqual(keys(view.passivePeers), [BOOTSTRAP_KEY]);
  assert.equal(view.bootstrapperCount, 1);
  const dials = view.nextDials(0);
  assert.deepEqual(keys(dials), [BOOTSTRAP_KEY]);
  assert.ok(dials[0].bootstrap);
  assert.equal(dials[0].source, "bootstrap");
  assert.equal(dials[0].identity, undefined);
  assert.equal(view.dialsInProgress, 1);
  assert.deepEqual(view.nextDials(0), [], "a dial in progress is not repeated");
});

Deno.test("a dial in flight stays counted until it ends, whoever connects meanwhile", () => {
  const view = membership({ degree: 1 });
  view.learn([peer(1), peer(2)], 0, "outbound");
  const [dial] = view.nextDials(0);
  const n = dial.addressKey === key(1) ? 1 : 2;
  // The dialled peer dials in meanwhile (a crossed dial), then leaves again.
  view.connected({ ...peer(n), direction: "inbound" }, 0);
  assert.equal(view.dialsInProgress, 1, "the crossed dial is still on its way");
  view.disconnected(`id${n}`, 0);
  assert.deepEqual(view.nextDials(1_000), [], "neither dialled twice nor a second peer");
  // A peer that said it is full is backed off; the dial in flight still counts.
  view.backOff(dial.addressKey, 1_000);
  assert.equal(view.dialsInProgress, 1);
  assert.ok(passive(view, dial.addressKey)!.nextAttemptAt > 1_000, "backed off");
  // Another identity answering at another address and advertising this one
  // does not end the dial either.
  view.connected({ identity: "id9", address: address(n), direction: "outbound" }, 1_000);
  assert.equal(view.dialsInProgress, 1);
  view.dialFinished(dial.addressKey, false, 1_000);
  assert.equal(view.dialsInProgress, 0);
});

Deno.test("without bootstrappers and with nothing known there is nothing to dial", () => {
  const view = membership();
  assert.deepEqual(view.nextDials(0), []);
  assert.deepEqual(view.passivePeers, []);
  assert.equal(view.bootstrapperCount, 0);
  assert.equal(view.bootstrappersFailing, false, "no bootstrapper cannot be failing");
});

Deno.test("several bootstrappers: duplicates and the own address are dropped", () => {
  const view = membership({
    bootstrappers: [BOOTSTRAP, { ...SELF_ADDRESS }, BOOTSTRAP2, { ...BOOTSTRAP }],
  });
  assert.deepEqual(keys(view.passivePeers), [BOOTSTRAP2_KEY, BOOTSTRAP_KEY].sort());
  assert.equal(view.bootstrapperCount, 2);
  assert.deepEqual(membership({ bootstrappers: [{ ...SELF_ADDRESS }] }).nextDials(0), []);
});

Deno.test("with nothing connected, one bootstrapper at a time is dialled, each in turn", () => {
  const chosen = new Set<string>();
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({
      degree: 3,
      bootstrappers: [BOOTSTRAP, BOOTSTRAP2],
      random: seededRandom(seed),
    });
    const first = view.nextDials(0);
    assert.equal(first.length, 1, "one bootstrapper, not the degree's worth");
    chosen.add(first[0].addressKey);
    view.dialFinished(first[0].addressKey, false, 0);
    const second = view.nextDials(0);
    assert.equal(second.length, 1);
    assert.notEqual(second[0].addressKey, first[0].addressKey, "the failed one backs off");
  }
  assert.deepEqual([...chosen].sort(), [BOOTSTRAP2_KEY, BOOTSTRAP_KEY].sort(), "random choice");
});

Deno.test("bootstrappersFailing: every bootstrapper failed at least once and none succeeded since", () => {
  const view = membership({ bootstrappers: [BOOTSTRAP, BOOTSTRAP2], random: () => 0.5 });
  assert.equal(view.bootstrappersFailing, false);
  view.dialFinished(BOOTSTRAP_KEY, false, 0);
  assert.equal(view.bootstrappersFailing, false, "the second has not failed yet");
  view.dialFinished(BOOTSTRAP2_KEY, false, 0);
  assert.equal(view.bootstrappersFailing, true);
  view.dialFinished(BOOTSTRAP2_KEY, true, 1_000);
  assert.equal(view.bootstrappersFailing, false, "a success clears it");
  view.dialFinished(BOOTSTRAP2_KEY, false, 2_000);
  assert.equal(view.bootstrappersFailing, true);
  // A session with a bootstrapper clears it too.
  view.connected({ identity: "b00t", address: BOOTSTRAP, direction: "outbound" }, 3_000);
  assert.equal(view.bootstrappersFailing, false);
});

Deno.test("a bootstrapper stays known after connecting and is retried forever", () => {
  const view = membership({ degree: 2, bootstrappers: [BOOTSTRAP], random: () => 0.5 });
  const [dial] = view.nextDials(0);
  connectOutbound(view, dial, "b00t");
  const kept = view.passivePeers.find((known) => known.bootstrap);
  assert.ok(kept, "still known");
  assert.equal(kept.identity, "b00t");
  assert.equal(kept.verifiedAt, 0);
  assert.deepEqual(view.nextDials(0), [], "not dialled while connected");
  const listed = view.sample(10, 0);
  assert.deepEqual(listed.map((p) => [p.identity, p.address]), [["b00t", BOOTSTRAP]], "once");

  view.disconnected("b00t", 0);
  let now = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    now += 1_000; // backoffMaxMs
    assert.deepEqual(keys(view.nextDials(now)), [BOOTSTRAP_KEY], `attempt ${attempt}`);
    view.dialFinished(BOOTSTRAP_KEY, false, now);
  }
  assert.equal(view.passivePeers[0].failures, 100);
  assert.equal(view.passivePeers[0].identity, "b00t");
});

Deno.test("bootstrappers are not dialled while regular peers fill the outbound slots", () => {
  const view = membership({ degree: 2, bootstrappers: [BOOTSTRAP, BOOTSTRAP2] });
  view.learn(peers(1, 5), 0);
  const dials = view.nextDials(0);
  assert.equal(dials.length, 2);
  assert.ok(dials.every((known) => !known.bootstrap));
});

Deno.test("a bootstrapper is dialled for rejoining when too few known peers can be dialled", () => {
  const view = membership({ degree: 2, bootstrappers: [BOOTSTRAP] });
  view.learn([peer(1)], 0);
  assert.deepEqual(keys(view.nextDials(0)), [key(1), BOOTSTRAP_KEY].sort(), "nothing connected");
});

Deno.test("a bootstrapper known by hostname is not redialled once its identity is known", () => {
  const view = membership({
    degree: 2,
    bootstrappers: [{ hostname: "boot.example", port: 6001 }],
    random: () => 0,
  });
  const [boot] = view.nextDials(0);
  assert.equal(boot.addressKey, "boot.example:6001");
  // It advertises its IP address, not the configured hostname.
  view.connected({
    identity: "b",
    address: { hostname: "192.0.2.1", port: 6001 },
    direction: "outbound",
  });
  view.dialFinished(boot.addressKey, true, 0, "b");
  assert.equal(passive(view, "boot.example:6001")?.identity, "b");
  assert.deepEqual(view.nextDials(10_000), [], "no second connection to the bootstrapper");
});

Deno.test("bootstrappers are never evicted and do not count towards passiveSize", () => {
  const view = membership({
    passiveSize: 3,
    bootstrappers: [BOOTSTRAP, BOOTSTRAP2],
    random: () => 0.5,
  });
  for (let round = 0; round < 5; round++) view.learn(peers(round * 10, round * 10 + 9), 0);
  assert.equal(view.passiveCount, 5);
  assert.ok(passive(view, BOOTSTRAP_KEY) && passive(view, BOOTSTRAP2_KEY));
  // Even failing ones.
  view.dialFinished(BOOTSTRAP_KEY, false, 0);
  view.dialFinished(BOOTSTRAP_KEY, false, 0);
  view.learn(peers(100, 110), 0);
  assert.ok(passive(view, BOOTSTRAP_KEY));
});

// ---- dialling -------------------------------------------------------------------------

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
  assert.deepEqual(view.nextDials(0), [], "two connected plus one dialling");

  view.dialFinished(first[2].addressKey, false, 0);
  const second = view.nextDials(0);
  assert.equal(second.length, 1, "replaces the failed dial");
  assert.notEqual(second[0].addressKey, first[2].addressKey, "the failed peer is backing off");
  connectOutbound(view, second[0], second[0].identity!);
  assert.equal(view.outboundCount, 3);
  assert.deepEqual(view.nextDials(1_000_000), [], "never beyond degree");
  assert.equal(view.activeCount, 3);
});

Deno.test("nextDials never returns connected peers or addresses in use", () => {
  const view = membership({ degree: 20 });
  view.learn(peers(1, 6), 0);
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  // A descriptor for an address claimed by a connected peer under another identity.
  view.learn([{ identity: "other", address: address(7) }], 0);
  view.connected({ identity: "id7", address: address(7), direction: "inbound" });
  const dials = view.nextDials(0);
  assert.deepEqual(keys(dials), [key(2), key(3), key(4), key(5), key(6)]);
  assert.deepEqual(view.nextDials(0), []);
});

/** Of 400 redials, 10 s apart, each succeeding, how many went to `identities`. */
function redialsTo(view: Membership, identities: string[]): number {
  let count = 0;
  for (let i = 0; i < 400; i++) {
    const [dial] = view.nextDials(i * 10_000);
    if (identities.includes(dial.identity!)) count++;
    view.dialFinished(dial.addressKey, true, i * 10_000);
  }
  return count;
}

Deno.test("never dials itself, by identity or by address", () => {
  const view = membership({ degree: 10 });
  const added = view.learn([
    { identity: SELF, address: address(1) },
    { identity: "other", address: { ...SELF_ADDRESS } },
    peer(2),
  ], 0);
  assert.equal(added, 1);
  assert.deepEqual(keys(view.nextDials(0)), [key(2)]);
  assert.equal(view.restore([{ identity: SELF, address: address(3) }], 0), 0);
});

Deno.test("dial tables: tried and new half each; in new, outbound tips before inbound ones", () => {
  const make = (degree: number, seed: number) => {
    const view = membership({ degree, random: seededRandom(seed) });
    view.learn(peers(1, 3), 0, "inbound");
    view.learn(peers(4, 6), 0, "outbound");
    view.restore(triedPeers(7, 9), 0);
    return view;
  };
  const tier = (n: number) => (n >= 7 ? 0 : n >= 4 ? 1 : 2);
  const tiersOf = (dials: KnownPeer[]) =>
    dials.map((d) => tier(Number(d.identity!.slice(2)))).sort();
  let triedFirst = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const [first] = tiersOf(make(1, seed).nextDials(0));
    assert.notEqual(first, 2, "an inbound tip waits while an outbound one is left");
    if (first === 0) triedFirst++;
    const three = tiersOf(make(3, seed).nextDials(0));
    assert.ok(!three.includes(2), `seed ${seed}: ${three}`);
    // Every candidate of the first two kinds before any of the third.
    assert.deepEqual(tiersOf(make(6, seed).nextDials(0)), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(tiersOf(make(8, seed).nextDials(0)), [0, 0, 0, 1, 1, 1, 2, 2]);
  }
  // A fair coin: 100 expected, 4.2 standard deviations either side.
  assert.ok(triedFirst > 70 && triedFirst < 130, `tried first in ${triedFirst} of 200`);
});

Deno.test("withholders (merit at or below WITHHOLDER_MERIT) are dialled after every other peer", () => {
  // Tried peers 1-3 withheld an item; 4 bears a milder mark, 5-6 none; 7-8
  // are new peers learned from inbound ones (the tier before last).
  const merit = new Map([["id1", -3], ["id2", WITHHOLDER_MERIT], ["id3", -40], ["id4", -2]]);
  for (let seed = 1; seed <= 50; seed++) {
    const make = (degree: number) => {
      const view = membership({
        degree,
        random: seededRandom(seed),
        merit: (identity) => merit.get(identity) ?? 0,
      });
      view.restore(triedPeers(1, 6), 0);
      view.learn(peers(7, 8), 0, "inbound");
      return view;
    };
    const dialled = (degree: number) =>
      make(degree).nextDials(0).map((d) => Number(d.identity!.slice(2)));
    assert.deepEqual(dialled(3).filter((n) => n <= 3), [], `seed ${seed}`);
    // A milder mark is no withholder: 4 comes before any of 1-3.
    assert.deepEqual(dialled(5).sort(), [4, 5, 6, 7, 8], `seed ${seed}`);
    const all = dialled(8);
    assert.deepEqual(all.slice(0, 5).sort(), [4, 5, 6, 7, 8], `seed ${seed}`);
    assert.deepEqual(all.slice(5).sort(), [1, 2, 3], `seed ${seed}: withholders last`);
  }
});

Deno.test("dialling only tried peers would not spread: new peers get half the dials", () => {
  // 1 tried peer and 50 new ones, degree 1, redialled 400 times: about 200
  // dials go to new peers (a node that only ever redials its old peers sends
  // everyone back to the few nodes they first reached).
  const view = membership({ degree: 1, random: seededRandom(3) });
  view.restore(triedPeers(1, 1), 0);
  view.learn(peers(2, 51), 0, "outbound");
  let fresh = 0;
  for (let i = 0; i < 400; i++) {
    const [dial] = view.nextDials(i * 10_000);
    if (dial.addressKey !== key(1)) fresh++;
    view.dialFinished(dial.addressKey, true, i * 10_000);
  }
  assert.ok(fresh > 160 && fresh < 240, `${fresh} of 400 dials to new peers`);
});

/** A view connected (outbound) to its bootstrapper "b00t", with degree `degree`. */
function viewWithBootstrapper(
  degree: number,
  seed: number,
  merit?: (identity: string) => number,
): Membership {
  const view = membership({
    degree,
    bootstrappers: [BOOTSTRAP],
    random: seededRandom(seed),
    passiveSize: 100,
    maxLearnPerMessage: 100,
    merit,
  });
  connectOutbound(view, view.nextDials(0)[0], "b00t");
  return view;
}

Deno.test("bootstrapper tips get half the dials, however many claims other peers make", () => {
  // 3 peers a bootstrapper named, 60 named by an outbound peer (an attacker
  // names only attackers), degree 2 with one slot held by the bootstrapper,
  // 400 redials: about 200 go to the 3 tips, not 3 in 63.
  const view = viewWithBootstrapper(2, 5);
  view.learn(peers(1, 3), 0, "outbound", "b00t");
  view.learn(peers(4, 63), 0, "outbound", "id99");
  assert.deepEqual(
    view.passivePeers.filter((known) => known.bootstrapTip).map((known) => known.identity).sort(),
    ["id1", "id2", "id3"],
  );
  const tips = redialsTo(view, ["id1", "id2", "id3"]);
  assert.ok(tips > 160 && tips < 240, `${tips} of 400 dials to bootstrapper tips`);
});

Deno.test("a withholding bootstrapper's tips are no tips, and it is no anchor to re-dial", () => {
  // As in the test above, but the bootstrapper withheld an item: its 3 tips
  // rank with the other claims (about 3 in 63 of the dials, not half), and
  // nextBootstrapper skips it until its merit recovers.
  let bootstrapMerit = WITHHOLDER_MERIT;
  const view = viewWithBootstrapper(2, 5, (id) => id === "b00t" ? bootstrapMerit : 0);
  view.learn(peers(1, 3), 0, "outbound", "b00t");
  view.learn(peers(4, 63), 0, "outbound", "id99");
  view.disconnected("b00t", 0);
  const tips = redialsTo(view, ["id1", "id2", "id3"]);
  assert.ok(tips < 60, `${tips} of 400 dials to a withholder's tips`);
  const later = 10_000_000;
  assert.equal(view.nextBootstrapper(later), undefined, "a withholder is no anchor");
  bootstrapMerit = 0;
  assert.equal(view.nextBootstrapper(later)?.addressKey, BOOTSTRAP_KEY, "merit recovered");
});

Deno.test("once a connected peer is proven, bootstrapper tips rank with the other candidates", () => {
  // As above, but the bootstrapper has since brought this node an item first:
  // the 3 tips it gave before are 3 new peers of 63 (about 400 / 63 × 3 = 19
  // dials, not 200).
  let proven = false;
  const view = viewWithBootstrapper(2, 5, (identity) => proven && identity === "b00t" ? 1 : 0);
  view.learn(peers(1, 3), 0, "outbound", "b00t");
  view.learn(peers(4, 63), 0, "outbound", "id99");
  proven = true;
  const tips = redialsTo(view, ["id1", "id2", "id3"]);
  assert.ok(tips < 60, `${tips} of 400 dials to bootstrapper tips`);
  // The extra path for a local item is dialled only while no peer is proven;
  // asked anyway, it still takes a tip first.
  assert.ok(["id1", "id2", "id3"].includes(view.extraDial(4_000_000)!.identity!));
});

Deno.test("a known peer named again by a bootstrapper becomes a tip; three failed dials end that", () => {
  const view = viewWithBootstrapper(2, 7);
  view.learn([peer(1)], 0, "outbound", "id99");
  assert.equal(passive(view, key(1))?.bootstrapTip, false, "named by a peer");
  view.learn([peer(1)], 0, "outbound", "id98");
  assert.equal(passive(view, key(1))?.bootstrapTip, false, "named by another peer");
  view.learn([peer(1)], 0, "outbound", "b00t");
  assert.equal(passive(view, key(1))?.bootstrapTip, true, "named by the bootstrapper");
  // A claim for the same address with another identity is not made a tip.
  view.learn([{ identity: "other", address: address(1) }], 0, "outbound", "b00t");
  assert.equal(passive(view, key(1))?.identity, "id1");

  // With 20 tried and 20 new peers beside it, the tip gets half the dials (a
  // seeded coin); after three failures in a row it is one new peer of 21.
  view.restore(triedPeers(2, 21), 0);
  view.learn(peers(22, 41), 0, "outbound", "id99");
  let now = 0;
  for (let failure = 0; failure < 3; failure++) {
    let dial: KnownPeer | undefined;
    for (let attempt = 0; attempt < 50 && dial?.identity !== "id1"; attempt++) {
      [dial] = view.nextDials(now);
      if (dial.identity !== "id1") view.dialFinished(dial.addressKey, true, now);
    }
    assert.equal(dial?.identity, "id1", `dial ${failure + 1} of the tip`);
    view.dialFinished(dial!.addressKey, false, now);
    now = passive(view, key(1))!.nextAttemptAt;
  }
  let tipDials = 0;
  for (let i = 0; i < 200; i++) {
    const [dial] = view.nextDials(now + i * 10_000);
    if (dial.identity === "id1") tipDials++;
    view.dialFinished(dial.addressKey, dial.identity !== "id1", now + i * 10_000); // still dead
  }
  // As one new peer of 21 with half the dials: about 5 (a tip would get 100).
  assert.ok(tipDials < 25, `a dead tip dialled ${tipDials} times in 200`);
});

Deno.test("only a configured bootstrapper's word makes a tip", () => {
  const view = membership({ degree: 2, random: seededRandom(2) });
  view.connected({ identity: "b00t", address: BOOTSTRAP, direction: "outbound" }, 0);
  view.learn(peers(1, 3), 0, "outbound", "b00t");
  assert.ok(view.passivePeers.every((known) => !known.bootstrapTip), "not configured: no tips");
});

Deno.test("an extra path's dial takes a bootstrapper tip before tried and new peers", () => {
  for (let seed = 1; seed <= 50; seed++) {
    const view = viewWithBootstrapper(2, seed);
    view.restore(triedPeers(10, 19), 0);
    view.learn(peers(20, 39), 0, "outbound", "id99");
    view.learn([peer(1)], 0, "outbound", "b00t");
    assert.equal(view.extraDial(0)?.identity, "id1", `seed ${seed}`);
    assert.notEqual(view.extraDial(0)?.identity, "id1", "dialling now");
  }
});

Deno.test("a descriptor heard again from an outbound peer moves up a tier", () => {
  const view = membership({ degree: 1 });
  view.learn([peer(1), peer(2)], 0, "inbound");
  assert.equal(view.learn([peer(2)], 0, "outbound"), 0, "known already: not new");
  assert.equal(passive(view, key(2))?.source, "outbound");
  assert.equal(view.learn([peer(2)], 0, "inbound"), 0);
  assert.equal(passive(view, key(2))?.source, "outbound", "never down again");
  for (let seed = 1; seed <= 10; seed++) {
    const fresh = membership({ degree: 1, random: seededRandom(seed) });
    fresh.learn([peer(1), peer(2)], 0, "inbound");
    fresh.learn([peer(2)], 0, "outbound");
    assert.deepEqual(keys(fresh.nextDials(0)), [key(2)]);
  }
});

Deno.test("a peer verified only by a probe after dialling in is not tried", () => {
  const view = membership({ degree: 1 });
  view.connected({ identity: "id9", address: address(9), direction: "inbound" }, 5);
  view.markVerified("id9", key(9), 6, false); // the probe answered
  view.disconnected("id9", 10);
  const entry = passive(view, key(9));
  assert.equal(entry?.verifiedAt, 6, "its address is verified (it may be recommended)");
  assert.equal(entry?.tried, false, "but it chose this node, not the other way round");
  assert.deepEqual(view.knownPeers(), [{ ...peer(9), tried: false }]);
  // A dial of this node's own choosing makes it tried, also when it later dials in.
  view.markVerified("id9", key(9), 20, true);
  assert.equal(passive(view, key(9))?.tried, true);
  view.connected({ identity: "id9", address: address(9), direction: "inbound" }, 30);
  view.disconnected("id9", 40);
  assert.equal(passive(view, key(9))?.tried, true, "tried stays tried");
  assert.deepEqual(view.knownPeers(), [{ ...peer(9), tried: true }]);
});

Deno.test("an outbound session makes a peer tried; restore keeps what the file says", () => {
  const view = membership({ degree: 2 });
  view.connected({ identity: "out", address: address(1), direction: "outbound" }, 0);
  view.disconnected("out", 10);
  assert.equal(passive(view, key(1))?.tried, true);
  view.restore([{ ...peer(2), tried: true }, peer(3)], 20);
  assert.equal(passive(view, key(2))?.tried, true);
  assert.equal(passive(view, key(3))?.tried, false, "absent means not tried");
});

Deno.test("dialFinished with a different identity drops a false claim", () => {
  const view = membership({ degree: 1 });
  view.learn([{ identity: "claimed", address: address(1) }], 0);
  const [dial] = view.nextDials(0);
  view.dialFinished(dial.addressKey, false, 0, "someone-else");
  assert.equal(passive(view, key(1)), undefined, "whoever listens there is not who we were told");
  assert.equal(view.dialsInProgress, 0);

  // The same identity keeps its entry; an unknown address is ignored.
  view.learn([peer(2)], 0);
  view.nextDials(0);
  view.dialFinished(key(2), false, 0, "id2");
  assert.equal(passive(view, key(2))?.failures, 1);
  view.dialFinished("10.9.9.9:1", false, 0, "x");
});

Deno.test("dialFinished with a different identity renames a bootstrapper instead", () => {
  const view = membership({ bootstrappers: [BOOTSTRAP] });
  view.dialFinished(BOOTSTRAP_KEY, false, 0, "first");
  view.dialFinished(BOOTSTRAP_KEY, false, 0, "second");
  const boot = passive(view, BOOTSTRAP_KEY);
  assert.ok(boot);
  assert.equal(boot.identity, "second");
  assert.equal(boot.failures, 2);
});

Deno.test("failed dials back off exponentially up to backoffMaxMs; success resets", () => {
  // random() = 0.5 makes the jitter factor exactly 0.75.
  const view = membership({
    degree: 1,
    backoffBaseMs: 100,
    backoffMaxMs: 1_000,
    random: () => 0.5,
    bootstrappers: [BOOTSTRAP],
  });
  let now = 0;
  const delays: number[] = [];
  for (let attempt = 0; attempt < 7; attempt++) {
    assert.deepEqual(keys(view.nextDials(now)), [BOOTSTRAP_KEY], `attempt ${attempt}`);
    view.dialFinished(BOOTSTRAP_KEY, false, now);
    const next = view.passivePeers[0].nextAttemptAt;
    delays.push(next - now);
    assert.deepEqual(view.nextDials(next - 1), [], "not before the backoff ends");
    now = next;
  }
  assert.deepEqual(delays, [75, 150, 300, 600, 750, 750, 750]);
  assert.equal(view.passivePeers[0].failures, 7);

  assert.equal(view.nextDials(now).length, 1);
  view.dialFinished(BOOTSTRAP_KEY, true, now);
  assert.equal(view.passivePeers[0].failures, 0);
  assert.equal(view.nextDials(now).length, 1);
  view.dialFinished(BOOTSTRAP_KEY, false, now);
  assert.equal(view.passivePeers[0].nextAttemptAt - now, 75);
});

Deno.test("backoff jitter stays between half and all of the nominal delay, without overflow", () => {
  const view = membership({ degree: 1, random: seededRandom(9) });
  view.learn([peer(1)], 0);
  let now = 0;
  for (let failure = 1; failure <= 60; failure++) {
    assert.equal(view.nextDials(now).length, 1);
    view.dialFinished(key(1), false, now);
    const nominal = Math.min(1_000, 100 * 2 ** (failure - 1));
    const delay = view.passivePeers[0].nextAttemptAt - now;
    assert.ok(delay >= nominal / 2 && delay <= nominal, `failure ${failure}: ${delay}`);
    now += delay;
  }
});

Deno.test("a disconnected peer returns to the passive view and is dialled again", () => {
  const view = membership({ degree: 1 });
  view.learn([peer(1)], 0);
  const [dial] = view.nextDials(0);
  connectOutbound(view, dial, "id1");
  assert.deepEqual(view.passivePeers, []);
  assert.ok(view.isConnected("id1"));
  assert.equal(view.get("id1")?.direction, "outbound");

  view.disconnected("id1", 5_000);
  assert.equal(view.isConnected("id1"), false);
  assert.equal(view.outboundCount, 0);
  assert.deepEqual(keys(view.passivePeers), [key(1)]);
  assert.equal(passive(view, key(1))?.source, "outbound");
  assert.deepEqual(view.nextDials(5_099), [], "after the base delay");
  assert.deepEqual(keys(view.nextDials(5_100)), [key(1)]);
  view.disconnected("unknown", 6_000); // ignored
});

Deno.test("an inbound peer that disconnects becomes dialable, as learned from inbound", () => {
  const view = membership({ degree: 1 });
  view.connected({ identity: "id7", address: address(7), direction: "inbound" });
  view.disconnected("id7", 0);
  assert.equal(passive(view, key(7))?.source, "inbound");
  assert.equal(passive(view, key(7))?.verifiedAt, undefined);
  assert.deepEqual(keys(view.nextDials(100)), [key(7)]);
});

Deno.test("inbound peers do not count toward outbound connections", () => {
  const view = membership({ degree: 2 });
  for (let n = 1; n <= 5; n++) {
    view.connected({ identity: `in${n}`, address: address(100 + n), direction: "inbound" });
  }
  view.learn(peers(1, 4), 0, "outbound");
  assert.equal(view.activeCount, 5);
  assert.equal(view.outboundCount, 0);
  assert.equal(view.inboundCount, 5);
  const dials = view.nextDials(0);
  assert.equal(dials.length, 2);
  for (const dial of dials) connectOutbound(view, dial, dial.identity!);
  assert.equal(view.outboundCount, 2);
  assert.equal(view.inboundCount, 5);
  assert.equal(view.activeCount, 7);
  assert.deepEqual(view.nextDials(0), []);
});

Deno.test("a node with degree sessions does not dial claims made only by inbound peers", () => {
  const view = membership({ degree: 2 });
  view.learn(peers(1, 4), 0, "inbound");
  assert.equal(view.nextDials(0).length, 2, "with no session, any known peer will do");
  const fresh = membership({ degree: 2 });
  for (let n = 1; n <= 2; n++) {
    fresh.connected({ identity: `in${n}`, address: address(100 + n), direction: "inbound" });
  }
  fresh.learn(peers(1, 4), 0, "inbound");
  assert.deepEqual(fresh.nextDials(0), [], "two inbound sessions: inbound claims wait");
  fresh.learn(peers(5, 6), 0, "outbound");
  assert.deepEqual(keys(fresh.nextDials(0)), [key(5), key(6)], "learned from an outbound peer");
});

Deno.test("connecting removes the peer's other passive entries", () => {
  const view = membership();
  view.learn([peer(1), { identity: "id1", address: address(2) }], 0);
  view.connected({ identity: "id1", address: address(1), direction: "outbound" }, 0);
  assert.deepEqual(view.passivePeers, []);
});

// ---- verification ---------------------------------------------------------------------

Deno.test("only an outbound session verifies an address", () => {
  const view = membership();
  view.connected({ identity: "in", address: address(1), direction: "inbound" }, 100);
  view.connected({ identity: "out", address: address(2), direction: "outbound" }, 200);
  assert.equal(view.get("in")?.verifiedAt, undefined);
  assert.equal(view.get("out")?.verifiedAt, 200);
  assert.deepEqual(identities(view.knownPeers()), ["out"]);
  assert.deepEqual(identities(view.sample(10, 1_000_000)), ["out"]);
  view.disconnected("in", 300);
  view.disconnected("out", 300);
  assert.equal(passive(view, key(1))?.verifiedAt, undefined);
  assert.equal(passive(view, key(2))?.verifiedAt, 200, "kept across the disconnect");
  assert.deepEqual(identities(view.knownPeers()), ["out"]);
});

Deno.test("learned descriptors are claims: dialled, but not recommended or persisted", () => {
  const view = membership({ degree: 10 });
  view.learn([peer(1), peer(2)], 0, "outbound");
  assert.deepEqual(view.sample(10, 1_000_000), []);
  assert.deepEqual(view.knownPeers(), []);
  assert.equal(view.nextDials(0).length, 2);
});

Deno.test("restored peers are verified (they come from this node's own peers file)", () => {
  const view = membership({ maxLearnPerMessage: 1 });
  assert.equal(view.restore(peers(1, 5), 7), 5, "no per-message limit");
  for (const known of view.passivePeers) {
    assert.equal(known.verifiedAt, 7);
    assert.equal(known.source, "outbound");
  }
  assert.deepEqual(identities(view.knownPeers()), ["id1", "id2", "id3", "id4", "id5"]);
  assert.equal(view.restore(peers(1, 2), 8), 0, "known already");
  assert.equal(passive(view, key(1))?.verifiedAt, 7, "the first verification time stays");
});

Deno.test("a second-hand claim cannot rename who is at a known address; first-hand can", () => {
  const view = membership();
  view.restore([peer(3)], 0);
  view.learn([{ identity: "liar", address: address(3) }], 0, "outbound");
  assert.equal(passive(view, key(3))?.identity, "id3");
  view.learn([peer(4)], 0);
  view.restore([{ identity: "real4", address: address(4) }], 5);
  assert.equal(passive(view, key(4))?.identity, "real4");
  assert.equal(passive(view, key(4))?.verifiedAt, 5);
});

Deno.test("an inbound peer already verified at its address keeps its verification", () => {
  const view = membership();
  view.restore([peer(1)], 50);
  view.connected({ identity: "id1", address: address(1), direction: "inbound" }, 100);
  assert.equal(view.get("id1")?.verifiedAt, 50);
  assert.deepEqual(identities(view.sample(10, 1_000_000)), ["id1"]);
});

Deno.test("an inbound claim to a known peer's address does not erase that peer", () => {
  const view = membership();
  view.restore([peer(1)], 50);
  view.connected({ identity: "intruder", address: address(1), direction: "inbound" }, 100);
  assert.equal(view.get("intruder")?.verifiedAt, undefined, "the claim proves nothing");
  const kept = passive(view, key(1));
  assert.equal(kept?.identity, "id1", "only first-hand knowledge names who is at an address");
  assert.equal(kept?.verifiedAt, 50);
  view.disconnected("intruder", 200);
  assert.equal(passive(view, key(1))?.identity, "id1");
  assert.deepEqual(identities(view.knownPeers()), ["id1"]);
  // The same holds for a merely learned (unverified) entry.
  view.learn([peer(2)], 0);
  view.connected({ identity: "intruder2", address: address(2), direction: "inbound" }, 300);
  assert.equal(passive(view, key(2))?.identity, "id2");
});

Deno.test("an identity verified at a configured hostname stays verified when it connects in", () => {
  const view = membership({ bootstrappers: [{ hostname: "boot.example", port: 6001 }] });
  const [boot] = view.nextDials(0);
  view.dialFinished(boot.addressKey, true, 0, "b");
  view.connected({ identity: "b", address: BOOTSTRAP, direction: "outbound" }, 10);
  view.disconnected("b", 20);
  // It dials us, advertising its IP address rather than the configured name.
  view.connected({ identity: "b", address: BOOTSTRAP, direction: "inbound" }, 30);
  assert.equal(view.get("b")?.verifiedAt, 10);
  assert.deepEqual(view.activePeers.map((p) => p.identity), ["b"]);
});

Deno.test({
  name: "an inbound peer's verification does not carry over to a new address",
  fn: () => {
    const view = membership();
    view.restore([peer(1), peer(3)], 50);
    view.connected({ identity: "id1", address: address(2), direction: "inbound" }, 100);
    // (peer 3 is verified, so the cold-start fallback to claims does not apply)
    assert.deepEqual(view.sample(10, 1_000_000), [peer(3)], "address 2 is only claimed");
    view.disconnected("id1", 200);
    assert.equal(passive(view, key(2))?.verifiedAt, undefined);
  },
});

// ---- learning and eviction ------------------------------------------------------------

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
  assert.equal(view.learn([], 0), 0);
});

Deno.test("learn picks the accepted descriptors at random, not the first ones", () => {
  const picked = new Set<string>();
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({ maxLearnPerMessage: 1, random: seededRandom(seed) });
    view.learn(peers(1, 10), 0);
    picked.add(view.passivePeers[0].addressKey);
  }
  assert.ok(picked.size > 3, `picked only ${[...picked]}`);
});

Deno.test("learn keeps the passive view within passiveSize", () => {
  const view = membership({ passiveSize: 5, maxLearnPerMessage: 100 });
  view.learn(peers(1, 20), 0);
  assert.equal(view.passivePeers.length, 5);
  for (let round = 0; round < 5; round++) view.learn(peers(30 + round * 10, 39 + round * 10), 0);
  assert.equal(view.passivePeers.length, 5);
  assert.equal(membership({ passiveSize: 0 }).learn(peers(1, 3), 0), 0);
  assert.equal(membership({ passiveSize: 0 }).restore(peers(1, 3), 0), 0);
});

Deno.test("learn without evict only fills free room: no known peer is displaced", () => {
  const view = membership({ passiveSize: 5, maxLearnPerMessage: 100 });
  assert.equal(view.learn(peers(1, 3), 0), 3);
  assert.equal(view.learn(peers(10, 19), 0, "outbound", "idX", false), 2, "the free room");
  const before = keys(view.passivePeers).sort();
  assert.equal(view.learn(peers(20, 29), 0, "outbound", "idX", false), 0);
  assert.deepEqual(keys(view.passivePeers).sort(), before, "nobody displaced");
  assert.ok(view.learn(peers(20, 29), 0, "outbound", "idX") > 0, "with evict, as before");
});

Deno.test("eviction takes the peer with most failures first", () => {
  const view = membership({ passiveSize: 3, degree: 3 });
  view.learn(peers(1, 3), 0);
  assert.equal(view.nextDials(0).length, 3);
  view.dialFinished(key(1), true, 0);
  view.dialFinished(key(2), false, 0);
  view.dialFinished(key(3), true, 0);
  view.learn([peer(4)], 0);
  assert.deepEqual(keys(view.passivePeers), [key(1), key(3), key(4)]);
});

Deno.test("eviction takes equals from the source that named most: one source cannot wash out another's", () => {
  // A full view of 10: 3 claims from id98 (say the referral of an honest node
  // that was full), then 200 more from id99, 8 at a time (the peers a node
  // exchanges with every round). id98's claims stay; random eviction among
  // equals lost all 3 at every seed tried.
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({ passiveSize: 10, maxLearnPerMessage: 8, random: seededRandom(seed) });
    view.learn(peers(1, 3), 0, "outbound", "id98");
    for (let from = 100; from < 300; from += 8) {
      view.learn(peers(from, from + 7), 0, "outbound", "id99");
    }
    assert.equal(view.passivePeers.length, 10);
    const kept = view.passivePeers.filter((known) => Number(known.identity!.slice(2)) <= 3);
    assert.equal(kept.length, 3, `seed ${seed}`);
  }
});

Deno.test("eviction by source spares bootstrapper tips: the most prolific source is the one to keep", () => {
  // A full view of 12: 8 tips from the bootstrapper, then claims of id99, 8
  // at a time. The bootstrapper named most, yet its tips stay; id99's claims
  // take turns in the other 4 places.
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({
      degree: 2,
      bootstrappers: [BOOTSTRAP],
      passiveSize: 12,
      maxLearnPerMessage: 8,
      random: seededRandom(seed),
    });
    connectOutbound(view, view.nextDials(0)[0], "b00t");
    view.learn(peers(1, 8), 0, "outbound", "b00t");
    for (let from = 100; from < 300; from += 8) {
      view.learn(peers(from, from + 7), 0, "outbound", "id99");
    }
    const tips = view.passivePeers.filter((known) => known.bootstrapTip);
    assert.equal(tips.length, 8, `seed ${seed}`);
    assert.equal(view.passivePeers.length, 13, "the bootstrapper is not counted");
  }
});

Deno.test("claims of a withholder are evicted first and dialled last", () => {
  const merit = (id: string) => id === "id99" ? WITHHOLDER_MERIT : 0;
  const view = membership({ passiveSize: 6, degree: 6, maxLearnPerMessage: 8, merit });
  view.learn(peers(1, 3), 0, "outbound", "id98");
  view.learn(peers(4, 6), 0, "outbound", "id99");
  view.learn(peers(7, 9), 0, "outbound", "id97");
  assert.deepEqual(keys(view.passivePeers), [1, 2, 3, 7, 8, 9].map(key).sort());
  const late = membership({ passiveSize: 10, degree: 3, maxLearnPerMessage: 8, merit });
  late.learn(peers(4, 9), 0, "outbound", "id99");
  late.learn(peers(1, 3), 0, "outbound", "id98");
  assert.deepEqual(keys(late.nextDials(0)), [1, 2, 3].map(key).sort());
});

Deno.test("eviction prefers untried and inbound-learned entries", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const view = membership({ passiveSize: 3, random: seededRandom(seed) });
    view.restore(triedPeers(1, 1), 0); // tried
    view.learn([peer(2)], 0, "outbound"); // unverified, from an outbound peer
    view.learn([peer(3)], 0, "inbound"); // unverified, from an inbound peer
    assert.equal(view.learn([peer(4)], 0, "outbound"), 1);
    assert.deepEqual(keys(view.passivePeers), [key(1), key(2), key(4)], "3 went first");
    assert.equal(view.learn([peer(5)], 0, "inbound"), 0, "an inbound claim displaces no better");
    assert.equal(view.restore(triedPeers(6, 6), 0), 1, "a tried peer displaces an untried one");
    assert.ok(passive(view, key(1)) && passive(view, key(6)));
  }
});

Deno.test("peers verified by probes rank with outbound tips, so they cannot crowd them out", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const view = membership({ passiveSize: 4, random: seededRandom(seed) });
    view.learn(peers(1, 4), 0, "outbound");
    // Peers dial in, get probed, and leave: each takes the place of a random
    // entry of equal rank, never more than one per arrival.
    for (let n = 10; n < 14; n++) {
      view.connected({ identity: `id${n}`, address: address(n), direction: "inbound" }, n);
      view.markVerified(`id${n}`, key(n), n, false);
      view.disconnected(`id${n}`, n + 1);
    }
    assert.equal(view.passiveCount, 4);
    // Compare: were probed peers ranked like tried ones, all four tips would be gone
    // and no later tip could enter.
    assert.equal(view.learn([peer(20)], 100, "outbound"), 1, "an outbound tip still gets in");
  }
});

Deno.test("eviction never displaces tried entries with untried ones", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 8 })), { maxLength: 20 }),
      fc.integer(),
      (size, rounds, seed) => {
        const view = membership({ passiveSize: size, random: seededRandom(seed) });
        view.restore(triedPeers(1, size), 0);
        let next = 100;
        for (const [fromOutbound, count] of rounds) {
          const batch = peers(next, next + count - 1);
          next += count;
          assert.equal(view.learn(batch, 0, fromOutbound ? "outbound" : "inbound"), 0);
        }
        for (let n = 1; n <= size; n++) assert.ok(passive(view, key(n)), `tried ${n} kept`);
        assert.equal(view.passiveCount, size);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test({
  name: "a tried entry with a failed dial is not displaced by a mere claim",
  fn: () => {
    const view = membership({ passiveSize: 1, degree: 1 });
    view.restore(triedPeers(1, 1), 0);
    view.nextDials(0);
    view.dialFinished(key(1), false, 0);
    assert.equal(view.learn([peer(2)], 0, "inbound"), 0);
    assert.ok(passive(view, key(1)));
  },
});

Deno.test("entries being dialled are not evicted", () => {
  const view = membership({ passiveSize: 2, degree: 2 });
  view.learn(peers(1, 2), 0);
  view.nextDials(0); // both being dialled
  assert.equal(view.learn([peer(3)], 0), 0);
  assert.deepEqual(keys(view.passivePeers), [key(1), key(2)]);
});

Deno.test("learn ignores descriptors of connected peers", () => {
  const view = membership();
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  assert.equal(view.learn([peer(1)], 0), 0);
  assert.deepEqual(view.passivePeers, []);
});

// ---- recommendation -------------------------------------------------------------------

Deno.test("sample recommends only verified peers, long-verified ones first", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({ degree: 5, random: seededRandom(seed) });
    view.restore(peers(1, 3), 0); // verified at 0
    view.connected({ identity: "fresh", address: address(4), direction: "outbound" }, 100_000);
    view.connected({ identity: "in", address: address(5), direction: "inbound" }, 0);
    view.learn(peers(6, 8), 0);
    // At 120 s, peers verified before 60 s are established.
    assert.deepEqual(identities(view.sample(3, 120_000)), ["id1", "id2", "id3"], `seed ${seed}`);
    assert.deepEqual(identities(view.sample(10, 120_000)), ["fresh", "id1", "id2", "id3"]);
    assert.equal(view.sample(2, 120_000).length, 2);
    assert.ok(view.sample(2, 120_000).every((p) => p.identity !== "fresh"));
    assert.deepEqual(view.sample(0, 120_000), []);
  }
  // Once established too, the fresh peer is drawn among the others.
  let drawn = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({ degree: 5, random: seededRandom(seed) });
    view.restore(peers(1, 3), 0);
    view.connected({ identity: "fresh", address: address(4), direction: "outbound" }, 100_000);
    if (view.sample(1, 160_000)[0].identity === "fresh") drawn++;
  }
  assert.ok(drawn > 0 && drawn < 20, `drawn ${drawn} of 20`);
});

Deno.test("establishedAfterMs sets the age of an established peer", () => {
  const view = membership({ establishedAfterMs: 10, random: () => 0 });
  view.restore([peer(1)], 0);
  view.connected({ identity: "new", address: address(2), direction: "outbound" }, 100);
  assert.deepEqual(identities(view.sample(1, 109)), ["id1"]);
  assert.equal(view.sample(1, 110).length, 1);
});

Deno.test("sample excludes the requester and passive peers whose last dial failed", () => {
  const view = membership({ degree: 1, random: seededRandom(4) });
  view.connected({ identity: "id1", address: address(1), direction: "outbound" }, 0);
  view.connected({ identity: "id2", address: address(2), direction: "outbound" }, 0);
  view.restore(peers(3, 5), 0);
  view.dialFinished(key(3), false, 0);
  for (let round = 0; round < 20; round++) {
    assert.deepEqual(identities(view.sample(10, 0, "id1")), ["id2", "id4", "id5"]);
  }
  assert.equal(view.sample(2, 0).length, 2);
  assert.equal(new Set(view.sample(4, 0).map((p) => p.identity)).size, 4, "no repeats");
  view.dialFinished(key(3), true, 0);
  assert.ok(identities(view.sample(10, 0)).includes("id3"), "listed again after a success");
});

Deno.test("exchangePartner picks a connected peer", () => {
  const view = membership({ random: seededRandom(3) });
  assert.equal(view.exchangePartner(), undefined);
  view.connected({ identity: "id1", address: address(1), direction: "inbound" });
  assert.equal(view.exchangePartner()?.identity, "id1");
  view.connected({ identity: "id2", address: address(2), direction: "outbound" });
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) seen.add(view.exchangePartner()!.identity);
  assert.deepEqual([...seen].sort(), ["id1", "id2"]);
});

Deno.test("knownPeers lists verified peers, connected ones first, each once", () => {
  const view = membership();
  view.restore(peers(1, 2), 0);
  view.connected({ identity: "out", address: address(3), direction: "outbound" }, 0);
  view.connected({ identity: "id2", address: address(2), direction: "inbound" }, 0);
  view.connected({ identity: "in", address: address(4), direction: "inbound" }, 0);
  const known = view.knownPeers().map((p) => p.identity);
  assert.deepEqual(known.slice(0, 2).sort(), ["id2", "out"], "connected first");
  assert.deepEqual(known.slice(2), ["id1"]);
});

Deno.test("knownPeers marks trusted outbound peers as anchors, not inbound or distrusted ones", () => {
  const view = membership({ welcome: (identity) => identity !== "bad" });
  view.connected({ identity: "out", address: address(1), direction: "outbound" }, 0);
  view.connected({ identity: "bad", address: address(2), direction: "outbound" }, 0);
  view.restore(peers(3, 3), 0);
  view.connected({ identity: "id3", address: address(3), direction: "inbound" }, 0);
  const anchors = view.knownPeers().filter((p) => p.anchor).map((p) => p.identity);
  assert.deepEqual(anchors, ["out"]);
});

Deno.test("a restarted node dials its anchors alone first, once each, the others at the next call", () => {
  // 2 anchors among 40 saved peers, degree 3: the first dials are exactly the
  // anchors at every seed (by chance, at 2 in 3 dials of 40: about 1 seed in
  // 260, and never without a third dial).
  const saved: SavedPeer[] = [
    ...triedPeers(1, 38),
    { ...peer(39), tried: true, anchor: true },
    { ...peer(40), anchor: true },
  ];
  for (let seed = 1; seed <= 50; seed++) {
    const view = membership({ degree: 3, random: seededRandom(seed) });
    view.restore(saved, 0);
    view.learn([{ identity: "tip", address: BOOTSTRAP2 }], 0, "bootstrap");
    assert.deepEqual(keys(view.nextDials(0)).sort(), [key(39), key(40)], `seed ${seed}`);
    // The third slot at the next call (an anchor's PEERS, or the next round).
    const next = keys(view.nextDials(0));
    assert.equal(next.length, 1);
    assert.ok(next[0] !== key(39) && next[0] !== key(40));
    // Both fail: backed off as usual, and no longer anchors.
    view.dialFinished(key(39), false, 0);
    view.dialFinished(key(40), false, 0);
    assert.equal(passive(view, key(39))?.anchor, false);
    assert.equal(passive(view, key(40))?.anchor, false);
  }
});

Deno.test("an anchor at a configured bootstrapper's address is dialled first as an anchor", () => {
  // The node's outbound peer before the restart was its bootstrapper: merged
  // into the bootstrapper's entry, it was dialled only when nothing else was.
  const saved: SavedPeer[] = [...triedPeers(1, 20), {
    identity: "boot",
    address: BOOTSTRAP,
    tried: true,
    anchor: true,
  }];
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({
      degree: 3,
      bootstrappers: [BOOTSTRAP],
      random: seededRandom(seed),
    });
    view.restore(saved, 0);
    assert.deepEqual(keys(view.nextDials(0)), [BOOTSTRAP_KEY], `seed ${seed}`);
  }
});

/**
 * Degree 2, one slot held by `connected`; the proven peer P named id1-id3 and
 * an outbound peer that has proven nothing named id4-id63.
 */
function viewWithProvenTips(options: Partial<MembershipOptions>, connected: string): Membership {
  const view = membership({
    degree: 2,
    maxLearnPerMessage: 100,
    merit: (identity) => identity === "P" ? 1 : 0,
    ...options,
  });
  view.connected({ identity: connected, address: address(200), direction: "outbound" }, 0);
  view.learn(peers(1, 3), 0, "outbound", "P");
  view.learn(peers(4, 63), 0, "outbound", "id99");
  return view;
}

Deno.test("a proven peer's tips get half the dials and outlast claims in the passive view", () => {
  // P brought this node items first and names 3 peers; an outbound peer that
  // has proven nothing names 60 (an attacker names only attackers). Degree 2,
  // one slot held by P: about 200 of 400 redials go to P's 3 tips.
  const view = viewWithProvenTips({ passiveSize: 20, random: seededRandom(11) }, "P");
  assert.deepEqual(
    view.passivePeers.filter((known) => known.vouchedBy === "P").map((known) => known.identity)
      .sort(),
    ["id1", "id2", "id3"],
    "the 60 claims (passive view of 20) did not evict the proven peer's tips",
  );
  const vouched = redialsTo(view, ["id1", "id2", "id3"]);
  assert.ok(vouched > 160 && vouched < 240, `${vouched} of 400 dials to a proven peer's tips`);
  // The extra path for a local item takes one first; three failed dials end that.
  assert.ok(["id1", "id2", "id3"].includes(view.extraDial(5_000_000)!.identity!));
  const tip = passive(view, key(1))!;
  for (let i = 0; i < 3; i++) view.dialFinished(tip.addressKey, false, 0);
  assert.equal(view.passivePeers.filter((k) => k.vouchedBy && k.failures < 3).length, 2);
});

Deno.test("a tip from a peer that has proven nothing is not a proven peer's tip", () => {
  const view = membership({ merit: (identity) => identity === "P" ? 1 : 0 });
  view.learn([peer(1)], 0, "outbound", "id99");
  assert.equal(passive(view, key(1))?.vouchedBy, undefined);
  view.learn([peer(1)], 0, "outbound", "P");
  assert.equal(passive(view, key(1))?.vouchedBy, "P", "named again by a proven peer");
  view.learn([{ identity: "other", address: address(1) }], 0, "outbound", "P");
  assert.equal(passive(view, key(1))?.identity, "id1", "a claim to its address changes nothing");
});

Deno.test("a proven peer's proven marks rank its marked tips with proven peers; others' marks are not heard", () => {
  // P brought this node items first and names id1 (marked proven: it brought
  // P items first), id2 and id3; an outbound peer that has proven nothing
  // marks all 60 of its tips proven (an attacker would). One slot is free:
  // it goes to id1 at every seed, before P's other tips and the claims.
  const marked = (from: number, to: number) => peers(from, to).map((p) => ({ ...p, proven: true }));
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({
      degree: 2,
      maxLearnPerMessage: 100,
      merit: (identity) => identity === "P" ? 1 : 0,
      random: seededRandom(seed),
    });
    view.connected({ identity: "Q", address: address(200), direction: "outbound" }, 0);
    view.learn([...marked(1, 1), ...peers(2, 3)], 0, "outbound", "P");
    view.learn(marked(4, 63), 0, "outbound", "id99");
    assert.equal(passive(view, key(1))?.provenTip, true);
    assert.equal(passive(view, key(2))?.provenTip, undefined, "not marked");
    assert.equal(
      passive(view, key(4))?.provenTip,
      undefined,
      "marked by a peer that proved nothing",
    );
    assert.deepEqual(view.nextDials(0).map((k) => k.identity), ["id1"], `seed ${seed}`);
  }
  // Once P is distrusted, its mark no longer counts.
  let firstDials = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const view = membership({
      degree: 2,
      maxLearnPerMessage: 100,
      merit: (identity) => identity === "P" ? 1 : 0,
      welcome: (identity) => identity !== "P",
      random: seededRandom(seed),
    });
    view.connected({ identity: "Q", address: address(200), direction: "outbound" }, 0);
    view.learn([...marked(1, 1), ...peers(2, 3)], 0, "outbound", "P");
    view.learn(marked(4, 63), 0, "outbound", "id99");
    if (view.nextDials(0)[0].identity === "id1") firstDials++;
  }
  assert.ok(firstDials < 10, `${firstDials} of 20 first dials to a distrusted peer's mark`);
});

Deno.test("recommendations mark the peers that brought this node items first", () => {
  const view = membership({ degree: 4, merit: (identity) => identity === "P" ? 1 : 0 });
  for (const [identity, n] of [["P", 300], ["Q", 301]] as const) {
    view.connected({ identity, address: address(n), direction: "outbound" }, 0);
    view.markVerified(identity, key(n), 0, true);
  }
  const sample = view.sample(16, 120_000);
  assert.deepEqual(sample.map((p) => [p.identity, p.proven === true]).sort(), [
    ["P", true],
    ["Q", false],
  ]);
});

Deno.test("a proven peer's tips lose their rank once that peer is no longer proven", () => {
  // An attacker may relay items to earn a score, name attackers, then turn:
  // 4 items relayed, then one unanswered IWANT (5 points) leaves it at -1,
  // neither distrusted (-20) nor a withholder (-2.5), but no longer proven.
  let merit = 4;
  const viewOfP = () =>
    viewWithProvenTips({
      passiveSize: 100,
      random: seededRandom(12),
      merit: (identity) => identity === "P" ? merit : 0,
    }, "Q");
  const whileProven = redialsTo(viewOfP(), ["id1", "id2", "id3"]);
  assert.ok(whileProven > 160, `${whileProven} of 400 dials to a proven peer's tips`);
  const fresh = viewOfP();
  merit = -1;
  const tips = redialsTo(fresh, ["id1", "id2", "id3"]);
  // 3 new peers of 63: about 19 dials, not 200.
  assert.ok(tips < 60, `${tips} of 400 dials to the tips of a peer no longer proven`);
});

Deno.test("one proven peer vouches for at most a quarter of the passive view; its marks outrank its plain tips", () => {
  // P relayed items (merit 1) and names 12 peers, then 12 marked proven, then
  // 12 others marked proven (an attacker that turned: its exchanges name only
  // attackers, all marked). Of a view of 20, 5 are P's tips: first the plain
  // ones it named first, then as many marked ones, which no later mark moves.
  const view = membership({
    degree: 1,
    passiveSize: 20,
    maxLearnPerMessage: 100,
    merit: (identity) => identity === "P" ? 1 : 0,
  });
  view.connected({ identity: "P", address: address(200), direction: "outbound" }, 0);
  const vouched = () =>
    view.passivePeers.filter((known) => known.vouchedBy === "P").map((known) => known.identity!)
      .sort();
  view.learn(peers(1, 12), 0, "outbound", "P");
  assert.equal(vouched().length, 5);
  assert.ok(vouched().every((id) => Number(id.slice(2)) <= 12), "the first, plain tips");
  const marked = (from: number, to: number) => peers(from, to).map((p) => ({ ...p, proven: true }));
  view.learn(marked(21, 32), 1, "outbound", "P");
  const markedTips = vouched();
  assert.equal(markedTips.length, 5);
  assert.ok(
    markedTips.every((id) => Number(id.slice(2)) >= 21),
    "marks took the plain tips' places",
  );
  assert.ok(view.passivePeers.filter((k) => k.vouchedBy === "P").every((k) => k.provenTip));
  view.learn(marked(41, 52), 2, "outbound", "P");
  assert.deepEqual(vouched(), markedTips, "later marks take no place the first marks hold");
  // A tip that failed three dials in a row frees its place for the next one.
  view.passivePeers.find((known) => known.identity === markedTips[0])!.failures = 3;
  view.learn(marked(60, 60), 3, "outbound", "P");
  assert.equal(passive(view, key(60))?.vouchedBy, "P");
  assert.equal(passive(view, key(60))?.provenTip, true);
});

// ---- proven peers across departures and restarts ----------------------------------------

Deno.test("a proven peer that left keeps its place in a full passive view, even one that dialled in", () => {
  // P (proven: it brought this node items first) was an inbound peer, so its
  // address is only claimed; the passive view (2) is full of peers this node
  // tried. P still gets a place when it leaves, and 20 claims do not evict it.
  const view = membership({ passiveSize: 2, merit: (identity) => identity === "P" ? 1 : 0 });
  view.restore(triedPeers(1, 2), 0);
  view.connected({ identity: "P", address: address(50), direction: "inbound" }, 0);
  view.disconnected("P", 10);
  assert.ok(passive(view, key(50)), "P kept after it left");
  view.learn(peers(100, 119), 20, "outbound");
  view.learn(peers(120, 139), 20, "inbound");
  assert.ok(passive(view, key(50)), "claims do not evict P");
  // Down for a while: 8 failed dials in a row (a tried peer ranks with claims
  // after 3), and P still outranks a claim; after 9 it no longer does.
  passive(view, key(50))!.failures = 8;
  view.learn(peers(140, 149), 30, "outbound");
  assert.ok(passive(view, key(50)), "8 failures: P kept");
  passive(view, key(50))!.failures = 9;
  view.learn(peers(150, 159), 30, "outbound");
  assert.equal(passive(view, key(50)), undefined, "9 failures: a claim takes P's place");
});

Deno.test("without merit, the peer that dialled in does not displace tried peers when it leaves", () => {
  // The same as above for a peer that has proven nothing: the rule above is
  // about merit, not about having been connected.
  const view = membership({ passiveSize: 2 });
  view.restore(triedPeers(1, 2), 0);
  view.connected({ identity: "Q", address: address(50), direction: "inbound" }, 0);
  view.disconnected("Q", 10);
  assert.equal(passive(view, key(50)), undefined);
});

Deno.test("knownPeers marks proven peers, and once a peer is proven only proven outbound peers are anchors", () => {
  const merits = new Map<string, number>();
  const view = membership({ merit: (identity) => merits.get(identity) ?? 0 });
  view.connected({ identity: "H", address: address(1), direction: "outbound" }, 0);
  view.connected({ identity: "A", address: address(2), direction: "outbound" }, 0);
  view.connected({ identity: "I", address: address(3), direction: "inbound" }, 0);
  view.restore([{ ...peer(4), tried: true }], 0);
  const saved = () => view.knownPeers();
  const anchors = () => saved().filter((p) => p.anchor).map((p) => p.identity).sort();
  const proven = () => saved().filter((p) => p.proven).map((p) => p.identity).sort();
  // Before items flow nothing tells peers apart: every trusted outbound peer anchors.
  assert.deepEqual(anchors(), ["A", "H"]);
  assert.deepEqual(proven(), []);
  // H brings an item first: A, which brought nothing, is no longer an anchor.
  merits.set("H", 2);
  assert.deepEqual(anchors(), ["H"]);
  assert.deepEqual(proven(), ["H"]);
  // A proven peer that is not connected keeps its mark (id4 brought items before).
  merits.set("id4", 1);
  assert.deepEqual(proven(), ["H", "id4"]);
  assert.deepEqual(anchors(), ["H"], "an anchor is an outbound peer");
});

Deno.test("a peer restored as proven is dialled with proven peers until a dial reaches it", () => {
  // 1 proven peer among 40 saved, degree 1, no anchor: it is the first dial at
  // every seed (by chance, 1 seed in 40); a failed dial keeps the mark, a
  // successful one clears it (the guard's score then decides).
  const saved: SavedPeer[] = [...triedPeers(1, 39), { ...peer(40), tried: true, proven: true }];
  for (let seed = 1; seed <= 30; seed++) {
    const view = membership({ degree: 1, random: seededRandom(seed) });
    view.restore(saved, 0);
    assert.deepEqual(keys(view.nextDials(0)), [key(40)], `seed ${seed}`);
    view.dialFinished(key(40), false, 0);
    assert.equal(passive(view, key(40))?.provenBefore, true, "a failed dial keeps the mark");
    assert.equal(view.dialProven(0), undefined, "backing off");
    assert.equal(view.dialProven(10_000)?.addressKey, key(40), `seed ${seed}: after the backoff`);
    view.dialFinished(key(40), true, 10_000);
    assert.equal(passive(view, key(40))?.provenBefore, false, "reached: the mark is cleared");
    assert.equal(
      view.knownPeers().find((p) => p.identity === "id40")?.proven,
      undefined,
      "not saved as proven again without merit",
    );
  }
});

Deno.test("a proven peer that failed 9 dials in a row no longer counts as one to take a slot back for", () => {
  const view = membership({ degree: 1, merit: (identity) => identity === "id1" ? 1 : 0 });
  view.learn([peer(1)], 0, "outbound");
  let now = 0;
  for (let failures = 0; failures < 9; failures++) {
    now += 60_000; // past any back-off
    assert.equal(view.dialProven(now)?.addressKey, key(1), `${failures} failures`);
    view.dialFinished(key(1), false, now);
  }
  now += 60_000;
  assert.equal(view.dialProven(now), undefined, "9 failures: gone for good");
  assert.deepEqual(keys(view.nextDials(now)), [key(1)], "still dialled when a slot is free");
});
