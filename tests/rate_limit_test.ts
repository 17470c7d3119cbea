/**
 * Unit and property tests of lib/protocol/rate_limit.ts: TokenBucket,
 * KeyedRateLimiter, BanList, StrikeCounter and addressRange.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addressRange,
  BanList,
  KeyedRateLimiter,
  StrikeCounter,
  TokenBucket,
} from "../lib/protocol/rate_limit.ts";

// ---- TokenBucket ----------------------------------------------------------------------

Deno.test("a token bucket starts full and refuses once empty", () => {
  const bucket = new TokenBucket(10, 3, 0);
  assert.ok(bucket.take(0));
  assert.ok(bucket.take(0));
  assert.ok(bucket.take(0));
  assert.equal(bucket.take(0), false);
  assert.equal(bucket.take(0), false);
});

Deno.test("tokens refill continuously at the rate, up to the burst", () => {
  const bucket = new TokenBucket(10, 2, 0); // one token per 100 ms
  bucket.take(0);
  bucket.take(0);
  assert.equal(bucket.take(50), false, "half a token is not a token");
  assert.ok(bucket.take(100), "the half tokens add up");
  assert.equal(bucket.take(100), false);
  assert.ok(bucket.take(1_000_000));
  assert.ok(bucket.take(1_000_000));
  assert.equal(bucket.take(1_000_000), false, "a long idle time refills only the burst");
});

Deno.test("a take costs `cost` tokens; a refused take costs nothing", () => {
  const bucket = new TokenBucket(1_000, 100, 0);
  assert.ok(bucket.take(0, 60));
  assert.equal(bucket.take(0, 41), false);
  assert.ok(bucket.take(0, 40), "the refused take left the 40 tokens alone");
  assert.equal(bucket.take(0, 1), false);
  assert.equal(new TokenBucket(1_000, 100, 0).take(1e9, 101), false, "more than the burst never");
});

Deno.test("a clock that steps back does not refill the bucket at that moment", () => {
  const bucket = new TokenBucket(1, 1, 10_000);
  assert.ok(bucket.take(10_000));
  assert.equal(bucket.take(5_000), false);
  // Not asserted (see the report): the bucket then counts 5 s -> 9 s as elapsed,
  // although it was last refilled at 10 s. Clocks given to it are monotonic.
});

Deno.test("property: a bucket never grants more than burst + rate x time", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1_000 }),
      fc.integer({ min: 1, max: 50 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 5 })), {
        maxLength: 200,
      }),
      (rate, burst, steps) => {
        const bucket = new TokenBucket(rate, burst, 0);
        let now = 0;
        let granted = 0;
        for (const [gap, cost] of steps) {
          now += gap;
          if (bucket.take(now, cost)) granted += cost;
          assert.ok(granted <= burst + (rate * now) / 1000 + 1e-9, `${granted} by ${now} ms`);
        }
      },
    ),
  );
});

// ---- KeyedRateLimiter -----------------------------------------------------------------

Deno.test("each key has its own bucket", () => {
  const limiter = new KeyedRateLimiter(1, 2);
  assert.ok(limiter.take("a", 0));
  assert.ok(limiter.take("a", 0));
  assert.equal(limiter.take("a", 0), false);
  assert.ok(limiter.take("b", 0), "b is not limited by a");
  assert.ok(limiter.take("a", 1_000), "a refills at its rate");
  assert.equal(limiter.size, 2);
});

Deno.test("beyond maxKeys the least recently used key is forgotten (and starts full again)", () => {
  const limiter = new KeyedRateLimiter(1, 1, 2);
  assert.ok(limiter.take("a", 0));
  assert.ok(limiter.take("b", 0));
  assert.equal(limiter.take("a", 0), false); // a used again: b is now the oldest
  assert.ok(limiter.take("c", 0)); // forgets b
  assert.equal(limiter.size, 2);
  assert.equal(limiter.take("a", 0), false, "a was kept, still empty");
  assert.ok(limiter.take("b", 0), "b was forgotten: errs towards admitting");
  assert.equal(limiter.size, 2);
});

Deno.test("the default key bound is 10,000", () => {
  const limiter = new KeyedRateLimiter(1, 1);
  for (let i = 0; i < 10_050; i++) limiter.take(`k${i}`, 0);
  assert.equal(limiter.size, 10_000);
});

// ---- BanList --------------------------------------------------------------------------

Deno.test("a ban lasts until now + duration, exclusive", () => {
  const bans = new BanList();
  bans.ban("x", 1_000, 500);
  assert.ok(bans.isBanned("x", 1_000));
  assert.ok(bans.isBanned("x", 1_499));
  assert.equal(bans.isBanned("y", 1_000), false);
  assert.equal(bans.size, 1);
  assert.equal(bans.isBanned("x", 1_500), false);
  assert.equal(bans.size, 0, "an expired ban is forgotten when looked at");
});

Deno.test("a repeated ban sets a new end time", () => {
  const bans = new BanList();
  bans.ban("x", 0, 100);
  bans.ban("x", 50, 500);
  assert.ok(bans.isBanned("x", 549));
  assert.equal(bans.size, 1);
  bans.ban("x", 60, 10); // the end time is replaced, not extended
  assert.equal(bans.isBanned("x", 70), false);
});

Deno.test("beyond maxEntries the oldest ban is forgotten", () => {
  const bans = new BanList(2);
  bans.ban("a", 0, 1_000);
  bans.ban("b", 0, 1_000);
  bans.ban("a", 1, 1_000); // renewed: b is now the oldest
  bans.ban("c", 2, 1_000);
  assert.equal(bans.size, 2);
  assert.ok(bans.isBanned("a", 10));
  assert.equal(bans.isBanned("b", 10), false);
  assert.ok(bans.isBanned("c", 10));
});

Deno.test("entries lists bans in force with their end times and forgets expired ones", () => {
  const bans = new BanList();
  bans.ban("a", 0, 100);
  bans.ban("b", 0, 300);
  bans.ban("c", 50, 50);
  assert.equal(bans.size, 3);
  assert.deepEqual(bans.entries(100), [{ key: "b", until: 300 }]);
  assert.equal(bans.size, 1);
  assert.deepEqual(bans.entries(300), []);
  assert.equal(bans.size, 0);
});

// ---- StrikeCounter --------------------------------------------------------------------

Deno.test("the threshold-th strike within the window reports", () => {
  const strikes = new StrikeCounter(3, 1_000);
  assert.equal(strikes.strike("x", 0), false);
  assert.equal(strikes.strike("x", 400), false);
  assert.equal(strikes.strike("x", 999), true);
  assert.equal(strikes.strike("x", 999), true, "and every further one while the window holds");
  assert.equal(strikes.strike("y", 999), false, "keys are independent");
});

Deno.test("strikes older than the window do not count (the boundary is excluded)", () => {
  const strikes = new StrikeCounter(2, 1_000);
  strikes.strike("x", 0);
  assert.equal(strikes.strike("x", 1_000), false, "a strike exactly one window ago has expired");
  assert.equal(strikes.strike("x", 1_999), true);
});

Deno.test("clear forgets a key; maxKeys forgets the oldest key", () => {
  const strikes = new StrikeCounter(2, 1_000, 2);
  strikes.strike("a", 0);
  strikes.clear("a");
  assert.equal(strikes.size, 0);
  assert.equal(strikes.strike("a", 1), false, "counting starts afresh");
  strikes.strike("b", 2);
  strikes.strike("c", 3); // forgets a
  assert.equal(strikes.size, 2);
  assert.equal(strikes.strike("a", 4), false);
  assert.equal(strikes.strike("c", 5), true);
});

Deno.test("property: strike reports exactly when threshold strikes fall within the window", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 500 }),
      fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 100 }),
      (threshold, windowMs, gaps) => {
        const strikes = new StrikeCounter(threshold, windowMs);
        const history: number[] = [];
        let now = 0;
        for (const gap of gaps) {
          now += gap;
          history.push(now);
          const recent = history.filter((at) => at > now - windowMs).length;
          assert.equal(strikes.strike("k", now), recent >= threshold, `at ${now}`);
        }
      },
    ),
  );
});

// ---- addressRange ---------------------------------------------------------------------

Deno.test("addressRange: the /24 of an IPv4 address", () => {
  assert.equal(addressRange("192.0.2.77"), "192.0.2.0/24");
  assert.equal(addressRange("192.0.2.0"), "192.0.2.0/24");
  assert.equal(addressRange("127.0.0.1"), "127.0.0.0/24");
  assert.equal(addressRange("127.1.2.3"), "127.1.2.0/24");
  assert.notEqual(addressRange("10.0.1.1"), addressRange("10.0.2.1"));
});

Deno.test("addressRange: the /48 of an IPv6 address, whatever the spelling", () => {
  const cases: [string, string][] = [
    ["::1", "0:0:0::/48"],
    ["::", "0:0:0::/48"],
    ["2001:db8::1", "2001:db8:0::/48"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0::/48"],
    ["2001:db8:0:0:0:0:0:1", "2001:db8:0::/48"],
    ["2001:DB8::1", "2001:db8:0::/48"],
    ["2001:db8:abcd::", "2001:db8:abcd::/48"],
    ["2001:db8:abcd:12::5:6", "2001:db8:abcd::/48"],
    ["2001:db8::ab:0:5:6", "2001:db8:0::/48"],
    ["2001:db8:ABCD:FFFF:1:2:3:4", "2001:db8:abcd::/48"],
    ["fe80::1", "fe80:0:0::/48"],
    ["::ffff:1.2.3.4", "1.2.3.0/24"],
  ];
  for (const [ip, range] of cases) assert.equal(addressRange(ip), range, ip);
  assert.equal(addressRange("2001:db8:1::1"), addressRange("2001:db8:1:ffff::2"), "same /48");
  assert.notEqual(addressRange("2001:db8:1::1"), addressRange("2001:db8:2::1"));
  assert.notEqual(addressRange("::1"), addressRange("127.0.0.1"));
});

Deno.test("addressRange: an IPv4-mapped IPv6 address is in its IPv4 /24, whatever the spelling", () => {
  for (
    const ip of [
      "::ffff:1.2.3.4",
      "::FFFF:1.2.3.4",
      "0:0:0:0:0:ffff:1.2.3.4",
      "0000:0000:0000:0000:0000:FFFF:1.2.3.4",
      "::ffff:102:304",
      "::ffff:0102:0304",
      "0:0:0:0:0:ffff:102:304",
    ]
  ) assert.equal(addressRange(ip), "1.2.3.0/24", ip);
  assert.equal(addressRange("::ffff:127.0.0.1"), addressRange("127.0.0.1"));
});

/** Writes 8 groups as IPv6 text: optional padding, upper case, and a compressed zero run. */
function spell(
  groups: readonly number[],
  upper: boolean,
  pad: boolean,
  compress: readonly [number, number] | undefined,
): string {
  const hex = groups.map((g) => {
    const text = g.toString(16).padStart(pad ? 4 : 1, "0");
    return upper ? text.toUpperCase() : text;
  });
  if (!compress) return hex.join(":");
  const [start, length] = compress;
  return `${hex.slice(0, start).join(":")}::${hex.slice(start + length).join(":")}`;
}

/** Every run of zero groups that `::` may replace. */
function zeroRuns(groups: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let start = 0; start < 8; start++) {
    for (let end = start; end < 8 && groups[end] === 0; end++) runs.push([start, end - start + 1]);
  }
  return runs;
}

const ipv6Groups = fc.array(
  fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  ),
  { minLength: 8, maxLength: 8 },
).filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff)); // not IPv4-mapped

Deno.test("property: addressRange is the same for every spelling of an IPv6 address", () => {
  fc.assert(
    fc.property(ipv6Groups, fc.boolean(), fc.boolean(), fc.nat(), (groups, upper, pad, pick) => {
      const expected = groups.slice(0, 3).map((g) => g.toString(16)).join(":") + "::/48";
      const runs = zeroRuns(groups);
      const compress = runs.length > 0 && pick % 3 !== 0 ? runs[pick % runs.length] : undefined;
      const text = spell(groups, upper, pad, compress);
      assert.equal(addressRange(text), expected, text);
    }),
    { numRuns: 2_000 },
  );
});

Deno.test("property: an IPv4-mapped address has its IPv4 range in every spelling", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      (octets, upper, pad, dotted) => {
        const [a, b, c, d] = octets;
        const expected = addressRange(`${a}.${b}.${c}.${d}`);
        assert.equal(expected, `${a}.${b}.${c}.0/24`);
        const groups = [0, 0, 0, 0, 0, 0xffff, (a << 8) | b, (c << 8) | d];
        const prefix = spell(groups.slice(0, 6), upper, pad, undefined);
        for (const head of [prefix, upper ? "::FFFF" : "::ffff"]) {
          const tail = dotted
            ? `${a}.${b}.${c}.${d}`
            : spell(groups.slice(6), upper, pad, undefined);
          const text = `${head}:${tail}`;
          assert.equal(addressRange(text), expected, text);
        }
      },
    ),
    { numRuns: 1_000 },
  );
});
