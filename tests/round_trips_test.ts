import assert from "node:assert/strict";
import { randomNonce, RoundTrips } from "../lib/protocol/round_trips.ts";

/** Nonces 1, 2, 3, ... so a test knows which PING a PONG answers. */
function counting(): () => bigint {
  let next = 0n;
  return () => ++next;
}

Deno.test("a PONG echoing the outstanding PING's nonce gives the round trip; the smallest sample counts", () => {
  const trips = new RoundTrips(counting());
  assert.equal(trips.rttMs("a"), undefined, "nothing before the first PONG");
  const first = trips.ping("a", 1_000);
  assert.equal(trips.pong("a", first, 1_080), 80);
  assert.equal(trips.rttMs("a"), 80);
  const second = trips.ping("a", 2_000);
  assert.equal(trips.pong("a", second, 2_200), 200, "a slower sample is returned ...");
  assert.equal(trips.rttMs("a"), 80, "... but queueing does not raise the estimate");
  const third = trips.ping("a", 3_000);
  trips.pong("a", third, 3_050);
  assert.equal(trips.rttMs("a"), 50, "a faster sample lowers it");
});

Deno.test("a PONG that answers no outstanding PING changes nothing", () => {
  const trips = new RoundTrips(counting());
  // Sent before any PING: the nonce an attacker guesses cannot match.
  assert.equal(trips.pong("a", 1n, 10), undefined);
  const nonce = trips.ping("a", 100);
  assert.equal(trips.pong("a", nonce + 1n, 101), undefined, "wrong nonce");
  assert.equal(trips.pong("b", nonce, 101), undefined, "another peer's nonce");
  assert.equal(trips.rttMs("a"), undefined);
  assert.equal(trips.rttMs("b"), undefined);
  assert.equal(trips.pong("a", nonce, 160), 60, "the right PONG still counts");
  assert.equal(trips.pong("a", nonce, 161), undefined, "and only once");
  // A PING superseded by a newer one: its late PONG no longer counts.
  const old = trips.ping("a", 1_000);
  const current = trips.ping("a", 1_500);
  assert.equal(trips.pong("a", old, 1_501), undefined);
  assert.equal(trips.pong("a", current, 1_540), 40);
  assert.equal(trips.rttMs("a"), 40);
});

Deno.test("a closed session's round trip is forgotten", () => {
  const trips = new RoundTrips(counting());
  trips.pong("a", trips.ping("a", 0), 30);
  trips.ping("b", 0);
  assert.equal(trips.size, 2);
  trips.forget("a");
  trips.forget("b");
  assert.equal(trips.rttMs("a"), undefined);
  assert.equal(trips.size, 0);
});

Deno.test("PING nonces are 64 random bits", () => {
  const nonces = new Set(Array.from({ length: 1000 }, randomNonce));
  assert.equal(nonces.size, 1000, "no repeats in 1000 draws");
  for (const nonce of nonces) assert.ok(nonce >= 0n && nonce < 1n << 64n);
  const highBitSet = [...nonces].filter((nonce) => nonce >= 1n << 63n).length;
  assert.ok(highBitSet > 400 && highBitSet < 600, `top bit set in ${highBitSet} of 1000`);
});
