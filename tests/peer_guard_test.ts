/**
 * Unit and property tests of lib/core/peer_guard.ts: connection admission
 * (rates, range caps, pre-authentication slots, the loopback exemption),
 * session admission, budgets, scores, bans and their persistence.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  isExemptLoopback,
  OFFENCE_PENALTY,
  PeerGuard,
  type SecurityOptions,
} from "../lib/core/peer_guard.ts";
import { DEFAULT_SECURITY_OPTIONS } from "../lib/core/tuning.ts";
import { addressRange } from "../lib/protocol/rate_limit.ts";

/** Limits small enough to reach in a test; every test overrides what it checks. */
const TEST_OPTIONS: SecurityOptions = {
  ...DEFAULT_SECURITY_OPTIONS,
  connectionsPerIpPerSecond: 1,
  connectionBurstPerIp: 3,
  connectionsPerRangePerSecond: 1,
  connectionBurstPerRange: 100,
  maxInboundPerRange: 100,
  maxPreAuthConnections: 100,
  sessionsPerIdentityPerSecond: 1,
  sessionBurstPerIdentity: 2,
  messagesPerSecond: 10,
  messageBurst: 5,
  serveBytesPerSecond: 1_000,
  serveBurstBytes: 2_000,
  invalidItemsBeforeBan: 3,
  strikeWindowMs: 10_000,
  banDurationMs: 60_000,
  distrustScore: -20,
  banScore: -100,
  scoreHalfLifeMs: 1_000,
  limitLoopback: false,
};

function guard(options: Partial<SecurityOptions> = {}): PeerGuard {
  return new PeerGuard({ ...TEST_OPTIONS, ...options });
}

let nextConn = 1;

/** Admits a connection from `ip`; returns the refusal, if any. */
function admit(target: PeerGuard, ip: string, now = 0): string | undefined {
  return target.admitConnection(nextConn++, ip, now).refusal;
}

// ---- the loopback exemption -----------------------------------------------------------

Deno.test("exactly 127.0.0.1 and ::1 (also as ::ffff:127.0.0.1) are exempt", () => {
  for (const ip of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) assert.ok(isExemptLoopback(ip), ip);
  for (const ip of ["127.0.0.2", "127.1.2.3", "::2", "0:0:0:0:0:0:0:1", "10.0.0.1", "localhost"]) {
    assert.equal(isExemptLoopback(ip), false, ip);
  }
  const target = guard();
  assert.equal(target.isLimited("127.0.0.1"), false);
  assert.ok(target.isLimited("127.0.0.2"));
  assert.ok(guard({ limitLoopback: true }).isLimited("127.0.0.1"));
  assert.ok(guard({ limitLoopback: true }).isLimited("::1"));
});

Deno.test("exempt addresses are not rate limited; the rest of 127.0.0.0/8 is", () => {
  const target = guard({ maxInboundPerRange: 2 });
  for (let i = 0; i < 50; i++) {
    assert.equal(admit(target, "127.0.0.1"), undefined);
    assert.equal(admit(target, "::1"), undefined);
  }
  assert.equal(target.sizes.ipRateKeys, 0, "not even tracked");
  assert.equal(target.sizes.ranges, 0);
  assert.equal(admit(target, "127.0.0.2"), undefined);
  assert.equal(admit(target, "127.0.0.2"), undefined);
  assert.equal(admit(target, "127.0.0.2"), "too many peers from one range");
});

Deno.test("limitLoopback applies the limits to 127.0.0.1 too", () => {
  const target = guard({ limitLoopback: true });
  for (let i = 0; i < 3; i++) assert.equal(admit(target, "127.0.0.1"), undefined);
  assert.equal(admit(target, "127.0.0.1"), "connection rate");
});

// ---- connection admission -------------------------------------------------------------

Deno.test("connections per IP: a burst, then the sustained rate", () => {
  const target = guard({ connectionsPerIpPerSecond: 2, connectionBurstPerIp: 3 });
  for (let i = 0; i < 3; i++) assert.equal(admit(target, "192.0.2.1", 0), undefined);
  assert.equal(admit(target, "192.0.2.1", 0), "connection rate");
  assert.equal(admit(target, "192.0.2.2", 0), undefined, "another address is not affected");
  assert.equal(admit(target, "192.0.2.1", 499), "connection rate");
  assert.equal(admit(target, "192.0.2.1", 500), undefined, "one token per 500 ms");
  assert.deepEqual(target.stats.refused, { "connection rate": 2 });
});

Deno.test("connections per range: many addresses of one /24 share a rate", () => {
  const target = guard({
    connectionBurstPerIp: 100,
    connectionsPerRangePerSecond: 1,
    connectionBurstPerRange: 4,
  });
  for (let i = 1; i <= 4; i++) assert.equal(admit(target, `198.51.100.${i}`), undefined);
  assert.equal(admit(target, "198.51.100.5"), "range connection rate");
  assert.equal(admit(target, "198.51.101.5"), undefined, "the next /24 is another range");
  assert.equal(admit(target, "198.51.100.6", 1_000), undefined);
});

Deno.test("connections per range: a /48 for IPv6, whatever the spelling", () => {
  const target = guard({ connectionBurstPerIp: 100, connectionBurstPerRange: 3 });
  assert.equal(admit(target, "2001:db8:1::1"), undefined);
  assert.equal(admit(target, "2001:db8:1:2::3"), undefined);
  assert.equal(admit(target, "2001:0db8:0001:ffff:0:0:0:9"), undefined);
  assert.equal(admit(target, "2001:DB8:1::7"), "range connection rate");
  assert.equal(admit(target, "2001:db8:2::1"), undefined);
});

Deno.test("at most maxInboundPerRange connections and sessions per range", () => {
  const target = guard({ connectionBurstPerIp: 100, maxInboundPerRange: 3 });
  const conns = [1, 2, 3].map((n) => {
    const conn = 1000 + n;
    assert.equal(target.admitConnection(conn, `203.0.113.${n}`, 0).refusal, undefined);
    return conn;
  });
  assert.equal(admit(target, "203.0.113.9"), "too many peers from one range");
  // A handshake that completes turns the slot into a session: still counted.
  target.preAuthEnded(conns[0]);
  target.sessionAdmitted("peer1", "203.0.113.1", true, 0);
  assert.equal(admit(target, "203.0.113.9"), "too many peers from one range");
  // A handshake that fails frees its slot.
  target.preAuthEnded(conns[1]);
  assert.equal(admit(target, "203.0.113.9"), undefined);
  assert.equal(admit(target, "203.0.113.10"), "too many peers from one range");
  // A session that ends frees its slot.
  target.sessionClosed("peer1");
  assert.equal(admit(target, "203.0.113.10"), undefined);
});

Deno.test("outbound sessions and exempt addresses do not count against a range", () => {
  const target = guard({ maxInboundPerRange: 1 });
  target.sessionAdmitted("out", "203.0.113.1", false, 0);
  target.sessionAdmitted("local", "127.0.0.1", true, 0);
  assert.equal(target.sizes.ranges, 0);
  assert.equal(admit(target, "203.0.113.2"), undefined);
  target.sessionClosed("out");
  target.sessionClosed("local");
  target.sessionClosed("never-admitted");
  assert.equal(target.sizes.ranges, 1);
});

Deno.test("full pre-authentication slots evict the oldest unauthenticated connection", () => {
  const target = guard({ maxPreAuthConnections: 3, connectionBurstPerIp: 100 });
  for (const conn of [1, 2, 3]) {
    assert.deepEqual(target.admitConnection(conn, `192.0.2.${conn}`, 0), { evict: [] });
  }
  assert.equal(target.preAuthCount, 3);
  assert.deepEqual(target.admitConnection(4, "192.0.2.4", 0), { evict: [1] }, "oldest first");
  target.preAuthEnded(3); // finished its handshake
  assert.deepEqual(target.admitConnection(5, "192.0.2.5", 0), { evict: [] });
  assert.deepEqual(target.admitConnection(6, "127.0.0.1", 0), { evict: [2] }, "exempt too");
  assert.equal(target.preAuthCount, 3);
  assert.equal(target.stats.evicted, 2);
  target.preAuthEnded(1); // already evicted: ignored
  target.preAuthEnded(99);
  assert.equal(target.preAuthCount, 3);
});

Deno.test("an evicted connection's range slot is freed", () => {
  const target = guard({ maxPreAuthConnections: 1, maxInboundPerRange: 1 });
  target.admitConnection(1, "192.0.2.1", 0);
  assert.deepEqual(target.admitConnection(2, "192.0.2.2", 0), {
    refusal: "too many peers from one range",
    evict: [],
  }, "the range cap is checked before making room");
  assert.deepEqual(target.admitConnection(3, "198.51.100.1", 0), { evict: [1] });
  assert.equal(admit(target, "192.0.2.3", 2_000), undefined, "192.0.2.0/24 is free again");
});

Deno.test("a refused connection takes no slot", () => {
  const target = guard({ connectionBurstPerIp: 1, maxPreAuthConnections: 1 });
  assert.deepEqual(target.admitConnection(1, "192.0.2.1", 0), { evict: [] });
  assert.deepEqual(target.admitConnection(2, "192.0.2.1", 0), {
    refusal: "connection rate",
    evict: [],
  });
  assert.equal(target.preAuthCount, 1);
});

Deno.test("a banned address is refused, exempt or not", () => {
  const target = guard();
  target.ban("peer", "192.0.2.7", 0);
  assert.equal(admit(target, "192.0.2.7", 1), "banned address");
  assert.equal(admit(target, "192.0.2.8", 1), undefined);
  assert.equal(admit(target, "192.0.2.7", 60_000), undefined, "the ban ended");
  // A persisted ban on an exempt address (a hand-edited file, say) still applies.
  target.importBans([{ key: "127.0.0.1", until: 2_000_000 }], 0, 1_000_000);
  assert.equal(admit(target, "127.0.0.1", 1), "banned address");
});

// ---- session admission ----------------------------------------------------------------

Deno.test("sessions: banned identities, the session rate and the score floor", () => {
  const target = guard({ sessionBurstPerIdentity: 2, sessionsPerIdentityPerSecond: 1 });
  assert.equal(target.sessionRefusal("p", 0), undefined);
  assert.equal(target.sessionRefusal("p", 0), undefined);
  assert.equal(target.sessionRefusal("p", 0), "session rate");
  assert.equal(target.sessionRefusal("p", 1_000), undefined);
  assert.equal(target.sessionRefusal("q", 0), undefined, "per identity");

  // Sessions are refused below distrustScore (-20): a distrusted peer that was
  // dropped does not come straight back.
  for (let i = 0; i < 4; i++) target.penalize("low", "invalid-item", 0); // -20
  assert.equal(target.sessionRefusal("low", 0), undefined, "exactly at the threshold");
  target.penalize("low", "unsolicited-offer", 0); // -20.5
  assert.equal(target.sessionRefusal("low", 0), "low score");

  target.ban("bad", undefined, 0);
  assert.equal(target.sessionRefusal("bad", 0), "banned identity");
  assert.equal(target.sessionRefusal("bad", 60_000), undefined, "until the ban ends");
  assert.deepEqual(target.stats.refused, {
    "session rate": 1,
    "low score": 1,
    "banned identity": 1,
  });
});

Deno.test("message budget: a burst, then the rate; none without a session", () => {
  const target = guard({ messagesPerSecond: 10, messageBurst: 5 });
  assert.equal(target.takeMessage("p", 0), false, "no session admitted");
  target.sessionAdmitted("p", "192.0.2.1", true, 0);
  for (let i = 0; i < 5; i++) assert.ok(target.takeMessage("p", 0));
  assert.equal(target.takeMessage("p", 0), false);
  assert.ok(target.takeMessage("p", 100));
  target.sessionClosed("p");
  assert.equal(target.takeMessage("p", 10_000), false);
  assert.equal(target.sizes.messageBudgets, 0);
});

Deno.test("serve budget: bytes served in answer to IWANT", () => {
  const target = guard({ serveBytesPerSecond: 1_000, serveBurstBytes: 2_000 });
  assert.equal(target.takeServe("p", 1, 0), false, "no session admitted");
  target.sessionAdmitted("p", "192.0.2.1", false, 0);
  assert.ok(target.takeServe("p", 1_500, 0));
  assert.equal(target.takeServe("p", 600, 0), false);
  assert.ok(target.takeServe("p", 500, 0));
  assert.ok(target.takeServe("p", 1_000, 1_000));
  assert.equal(target.takeServe("p", 2_001, 1_000_000), false, "more than the burst never");
  target.sessionClosed("p");
  assert.equal(target.sizes.serveBudgets, 0);
});

Deno.test("reconfigure changes the budgets of sessions admitted afterwards", () => {
  const target = guard({ messageBurst: 5 });
  target.sessionAdmitted("old", "192.0.2.1", false, 0);
  target.reconfigure({ messageBurst: 1, banScore: -10 });
  assert.equal(target.limits.messageBurst, 1);
  target.sessionAdmitted("new", "192.0.2.2", false, 0);
  assert.ok(target.takeMessage("new", 0));
  assert.equal(target.takeMessage("new", 0), false);
  for (let i = 0; i < 5; i++) assert.ok(target.takeMessage("old", 0), "unchanged");
  assert.ok(target.penalize("p", "item-id-mismatch", 0), "the new ban threshold applies");
});

// ---- scores ---------------------------------------------------------------------------

Deno.test("scores: offences subtract their penalty, credits add, unknown peers are at 0", () => {
  const target = guard({ scoreHalfLifeMs: 1e12 });
  assert.equal(target.score("p", 0), 0);
  target.credit("p", 0);
  target.credit("p", 0);
  assert.equal(target.score("p", 0), 2);
  target.penalize("p", "invalid-item", 0);
  assert.equal(target.score("p", 0), 2 - OFFENCE_PENALTY["invalid-item"]);
  assert.deepEqual(target.stats.offences, { "invalid-item": 1 });
  for (const [offence, penalty] of Object.entries(OFFENCE_PENALTY)) {
    assert.ok(penalty > 0, offence);
  }
  assert.ok(OFFENCE_PENALTY["protocol-violation"] > OFFENCE_PENALTY["item-id-mismatch"]);
  assert.ok(OFFENCE_PENALTY["item-id-mismatch"] > OFFENCE_PENALTY["invalid-item"]);
});

Deno.test("scores are capped at 50, so good behaviour cannot bank unlimited credit", () => {
  const target = guard({ scoreHalfLifeMs: 1e12 });
  for (let i = 0; i < 500; i++) target.credit("p", 0);
  assert.equal(target.score("p", 0), 50);
  target.penalize("p", "protocol-violation", 0);
  assert.equal(target.score("p", 0), -50);
});

Deno.test("scores decay towards 0 with the half-life", () => {
  const target = guard({ scoreHalfLifeMs: 1_000 });
  for (let i = 0; i < 8; i++) target.credit("good", 0);
  target.penalize("bad", "item-id-mismatch", 0);
  assert.equal(target.score("good", 1_000), 4);
  assert.equal(target.score("good", 2_000), 2);
  assert.equal(target.score("bad", 1_000), -12.5);
  target.credit("good", 2_000); // 2 + 1
  assert.equal(target.score("good", 3_000), 1.5);
});

Deno.test("a score that decays to nearly 0 is forgotten", () => {
  const target = guard({ scoreHalfLifeMs: 1_000 });
  target.credit("p", 0);
  assert.equal(target.sizes.scores, 1);
  target.penalize("p", "unsolicited-offer", 0); // 1 - 0.5
  target.credit("q", 0);
  target.penalize("q", "unsolicited-offer", 0);
  target.penalize("q", "unsolicited-offer", 0); // 1 - 0.5 - 0.5 = 0
  assert.equal(target.sizes.scores, 1, "q's zero score is not kept");
  target.credit("p", 20_000); // 0.5 has decayed to ~0; + 1
  assert.ok(Math.abs(target.score("p", 20_000) - 1) < 1e-3);
});

Deno.test("distrust below distrustScore: neither pushed to nor pulled from", () => {
  const target = guard({ distrustScore: -20, scoreHalfLifeMs: 1_000 });
  assert.ok(target.isTrusted("p", 0));
  target.penalize("p", "invalid-item", 0);
  target.penalize("p", "invalid-item", 0);
  target.penalize("p", "invalid-item", 0);
  target.penalize("p", "invalid-item", 0); // -20: not below
  assert.ok(target.isTrusted("p", 0));
  target.penalize("p", "unsolicited-offer", 0); // -20.5
  assert.equal(target.isTrusted("p", 0), false);
  assert.ok(target.isTrusted("p", 100), "the score decays back above the threshold");
});

Deno.test("penalize asks for a ban once the score falls below banScore", () => {
  const target = guard({ banScore: -100, scoreHalfLifeMs: 1e12, invalidItemsBeforeBan: 1_000 });
  assert.equal(target.penalize("p", "protocol-violation", 0), false, "-100 is not below -100");
  assert.equal(target.penalize("p", "unsolicited-offer", 0), true);
  for (let i = 0; i < 3; i++) assert.equal(target.penalize("q", "item-id-mismatch", 0), false);
  assert.equal(target.penalize("q", "item-id-mismatch", 0), false, "-100");
  assert.equal(target.penalize("q", "item-id-mismatch", 0), true, "-125");
});

Deno.test("invalidItemsBeforeBan invalid items within strikeWindowMs ask for a ban", () => {
  const target = guard({ invalidItemsBeforeBan: 3, strikeWindowMs: 10_000, banScore: -1e9 });
  assert.equal(target.penalize("p", "invalid-item", 0), false);
  assert.equal(target.penalize("p", "invalid-item", 5_000), false);
  assert.equal(target.penalize("p", "invalid-item", 9_999), true);
  assert.equal(target.penalize("p", "invalid-item", 9_999), false, "the count starts afresh");
  // Spread out, they never add up.
  for (let i = 0; i < 10; i++) {
    assert.equal(target.penalize("slow", "invalid-item", i * 5_000), false, `strike ${i}`);
  }
  // Other offences are not strikes.
  for (let i = 0; i < 5; i++) assert.equal(target.penalize("r", "unanswered-want", 0), false);
});

// ---- bans -----------------------------------------------------------------------------

Deno.test("ban bans the identity and a limited address for banDurationMs, once", () => {
  const target = guard({ banDurationMs: 60_000 });
  target.credit("p", 0);
  assert.ok(target.ban("p", "192.0.2.7", 1_000));
  assert.ok(target.isBanned("p", 1_000));
  assert.ok(target.isBanned("192.0.2.7", 60_999));
  assert.equal(target.isBanned("192.0.2.7", 61_000), false);
  assert.equal(target.score("p", 1_000), 0, "its score is forgotten");
  assert.equal(target.ban("p", "192.0.2.8", 2_000), false, "banned already");
  assert.equal(target.isBanned("192.0.2.8", 2_000), false);
  assert.equal(target.stats.banned, 1);
  // An exempt address is never banned; without an address only the identity is.
  assert.ok(target.ban("q", "127.0.0.1", 0));
  assert.equal(target.isBanned("127.0.0.1", 0), false);
  assert.ok(target.ban("r", undefined, 0));
  assert.equal(target.sizes.bans, 3);
  assert.ok(guard({ limitLoopback: true }).ban("s", "127.0.0.1", 0));
});

Deno.test("exportBans gives wall-clock end times of bans in force", () => {
  const target = guard({ banDurationMs: 60_000 });
  target.ban("p", "192.0.2.7", 1_000); // until 61_000 monotonic
  target.ban("q", undefined, 30_000); // until 90_000
  const wall = 1_700_000_000_000;
  assert.deepEqual(target.exportBans(31_000, wall), [
    { key: "p", until: wall + 30_000 },
    { key: "192.0.2.7", until: wall + 30_000 },
    { key: "q", until: wall + 59_000 },
  ]);
  assert.deepEqual(target.exportBans(61_000, wall).map((b) => b.key), ["q"]);
});

Deno.test("importBans restores bans still in force, never longer than banDurationMs", () => {
  const target = guard({ banDurationMs: 60_000 });
  const wall = 1_700_000_000_000;
  const restored = target.importBans(
    [
      { key: "expired", until: wall - 1 },
      { key: "ending-now", until: wall },
      { key: "soon", until: wall + 10_000 },
      { key: "tampered", until: wall + 10 * 365 * 86_400_000 },
    ],
    500,
    wall,
  );
  assert.equal(restored, 2);
  assert.equal(target.isBanned("expired", 500), false);
  assert.equal(target.isBanned("ending-now", 500), false);
  assert.ok(target.isBanned("soon", 10_499));
  assert.equal(target.isBanned("soon", 10_500), false);
  assert.ok(target.isBanned("tampered", 60_499));
  assert.equal(target.isBanned("tampered", 60_500), false, "capped at banDurationMs");
});

Deno.test("a ban survives export and import across a restart, shortened by the downtime", () => {
  const before = guard({ banDurationMs: 600_000 });
  before.ban("p", "192.0.2.7", 5_000); // 600 s
  const saved = before.exportBans(65_000, 1_000_000_000); // 540 s left
  const after = guard({ banDurationMs: 600_000 });
  // Restarted 40 s of wall time later, with a fresh monotonic clock.
  assert.equal(after.importBans(saved, 0, 1_000_040_000), 2);
  assert.ok(after.isBanned("p", 499_999));
  assert.equal(after.isBanned("p", 500_000), false);
  assert.equal(admit(after, "192.0.2.7", 1), "banned address");
});

Deno.test("per-identity tables stay bounded", () => {
  const target = guard({ scoreHalfLifeMs: 1e12 });
  for (let i = 0; i < 10_100; i++) target.credit(`p${i}`, 0);
  assert.equal(target.sizes.scores, 10_000);
  assert.equal(target.score("p0", 0), 0, "the least recently scored were forgotten");
  assert.equal(target.score("p10099", 0), 1);
});

// ---- property test --------------------------------------------------------------------

type Op =
  | { kind: "admit"; ip: number }
  | { kind: "end"; pick: number }
  | { kind: "promote"; pick: number }
  | { kind: "close"; pick: number }
  | { kind: "tick"; ms: number };

const IPS = [
  "192.0.2.1",
  "192.0.2.2",
  "192.0.2.3",
  "198.51.100.1",
  "2001:db8:1::1",
  "2001:db8:1::2",
  "127.0.0.1",
  "::1",
];

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("admit" as const),
      ip: fc.integer({ min: 0, max: IPS.length - 1 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("end" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("promote" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("close" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.integer({ min: 0, max: 3_000 }),
    }),
  },
);

Deno.test("property: slots and range counts match the open connections and respect their caps", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(op, { maxLength: 100 }),
      (maxPreAuth, maxPerRange, ops) => {
        const target = guard({
          maxPreAuthConnections: maxPreAuth,
          maxInboundPerRange: maxPerRange,
          connectionsPerIpPerSecond: 2,
          connectionBurstPerIp: 3,
          connectionsPerRangePerSecond: 2,
          connectionBurstPerRange: 5,
        });
        /** Open pre-auth connections, oldest first, and sessions, with their IPs. */
        const preAuth = new Map<number, string>();
        const sessions = new Map<string, string>();
        let now = 0;
        let conn = 0;
        let peer = 0;
        const nth = <K, V>(map: Map<K, V>, n: number): [K, V] | undefined =>
          map.size === 0 ? undefined : [...map.entries()][n % map.size];
        for (const step of ops) {
          switch (step.kind) {
            case "admit": {
              const ip = IPS[step.ip];
              const id = ++conn;
              const result = target.admitConnection(id, ip, now);
              if (result.refusal) {
                assert.deepEqual(result.evict, []);
                break;
              }
              const expected = [...preAuth.keys()].slice(
                0,
                Math.max(0, preAuth.size + 1 - maxPreAuth),
              );
              assert.deepEqual(result.evict, expected, "the oldest are evicted, just enough");
              for (const victim of result.evict) preAuth.delete(victim);
              preAuth.set(id, ip);
              break;
            }
            case "end": {
              const entry = nth(preAuth, step.pick);
              if (!entry) break;
              target.preAuthEnded(entry[0]);
              preAuth.delete(entry[0]);
              break;
            }
            case "promote": {
              const entry = nth(preAuth, step.pick);
              if (!entry) break;
              target.preAuthEnded(entry[0]);
              preAuth.delete(entry[0]);
              const key = `peer${++peer}`;
              target.sessionAdmitted(key, entry[1], true, now);
              sessions.set(key, entry[1]);
              break;
            }
            case "close": {
              const entry = nth(sessions, step.pick);
              if (!entry) break;
              target.sessionClosed(entry[0]);
              sessions.delete(entry[0]);
              break;
            }
            case "tick":
              now += step.ms;
              break;
          }
          assert.equal(target.preAuthCount, preAuth.size);
          assert.ok(target.preAuthCount <= maxPreAuth, "pre-auth slots");
          const perRange = new Map<string, number>();
          for (const ip of [...preAuth.values(), ...sessions.values()]) {
            if (!target.isLimited(ip)) continue;
            perRange.set(addressRange(ip), (perRange.get(addressRange(ip)) ?? 0) + 1);
          }
          assert.equal(target.sizes.ranges, perRange.size, "ranges tracked = ranges in use");
          for (const [range, count] of perRange) {
            assert.ok(count <= maxPerRange, `${range}: ${count} > ${maxPerRange}`);
          }
        }
      },
    ),
    { numRuns: 400 },
  );
});
