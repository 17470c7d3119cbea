import assert from "node:assert/strict";
import {
  formatSocketAddress,
  isIPv6Literal,
  isLoopbackHostname,
  parseSocketAddress,
} from "../lib/address.ts";
import { ConfigError } from "../lib/errors.ts";

function assertConfigError(fn: () => unknown, key: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    assert.equal(error.key, key);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("parseSocketAddress accepts hostnames, IPv4 and bracketed IPv6", () => {
  const cases: [string, string, number][] = [
    ["localhost:7001", "localhost", 7001],
    ["p2psec.net.in.tum.de:6001", "p2psec.net.in.tum.de", 6001],
    ["a-b.c0:1", "a-b.c0", 1],
    ["1host.example:65535", "1host.example", 65535],
    ["131.159.15.61:7001", "131.159.15.61", 7001],
    ["0.0.0.0:0", "0.0.0.0", 0],
    ["[::1]:7001", "::1", 7001],
    ["[::]:7001", "::", 7001],
    ["[2001:db8::42]:443", "2001:db8::42", 443],
    ["[fe80:0:0:0:1:2:3:4]:1", "fe80:0:0:0:1:2:3:4", 1],
    ["[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80],
    ["[2001:db8::]:80", "2001:db8::", 80],
  ];
  for (const [text, hostname, port] of cases) {
    assert.deepEqual(parseSocketAddress(text, "api_address"), { hostname, port }, text);
  }
});

Deno.test("parseSocketAddress rejects bad addresses with the key and a reason", () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["localhost", /missing port/],
    ["localhost:", /missing port/],
    [":7001", /empty host/],
    ["::1:7001", /IPv6 addresses must be in brackets/],
    ["2001:db8::1:80", /IPv6 addresses must be in brackets/],
    ["[::1]", /missing port/],
    ["[::1]:", /missing port/],
    ["[::1]7001", /expected `:port` after `]`/],
    ["[::1:7001", /missing `]`/],
    ["[]:7001", /empty host/],
    ["[1.2.3.4]:7001", /not a valid IPv6/],
    ["[::1::2]:7001", /not a valid IPv6/],
    ["[12345::]:7001", /not a valid IPv6/],
    ["[1:2:3:4:5:6:7:8:9]:1", /not a valid IPv6/],
    ["[1:2:3:4:5:6:7]:1", /not a valid IPv6/],
    ["[fe80::1%eth0]:1", /zone/],
    ["host:70000", /out of range/],
    ["host:-1", /not a decimal number/],
    ["host:0x10", /not a decimal number/],
    ["host:1e3", /not a decimal number/],
    ["host:123456", /not a decimal number/],
    ["host:80a", /not a decimal number/],
    ["ho st:80", /whitespace/],
    [" host:80", /whitespace/],
    ["host_name:80", /neither a valid hostname/],
    ["-host:80", /neither a valid hostname/],
    ["host-:80", /neither a valid hostname/],
    ["a..b:80", /neither a valid hostname/],
    [".host:80", /neither a valid hostname/],
    ["host.:80", /neither a valid hostname/],
    [`${"a".repeat(64)}.com:80`, /neither a valid hostname/],
    [`${"abcdefghi.".repeat(26)}com:80`, /neither a valid hostname/],
    ["1.2.3.256:80", /neither a valid hostname/],
    ["1.2.3:80", /neither a valid hostname/],
    ["01.2.3.4:80", /neither a valid hostname/],
    ["host]:80", /misplaced bracket/],
    ["http://host:80", /IPv6 addresses must be in brackets/],
  ];
  for (const [text, pattern] of cases) {
    assertConfigError(() => parseSocketAddress(text, "p2p_address"), "p2p_address", pattern);
  }
});

Deno.test("parseSocketAddress errors mention the expected form and carry a line", () => {
  assert.throws(() => parseSocketAddress("nope", "bootstrapper", 7), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.line, 7);
    assert.match(error.message, /^bootstrapper: line 7: invalid address "nope"/);
    assert.match(error.message, /expected host:port/);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
});

Deno.test("formatSocketAddress brackets IPv6 and round-trips", () => {
  assert.equal(formatSocketAddress({ hostname: "::1", port: 7001 }), "[::1]:7001");
  assert.equal(formatSocketAddress({ hostname: "127.0.0.1", port: 0 }), "127.0.0.1:0");
  assert.equal(formatSocketAddress({ hostname: "example.org", port: 80 }), "example.org:80");
  for (const text of ["[2001:db8::1]:5", "10.0.0.1:65535", "host.example:1"]) {
    assert.equal(formatSocketAddress(parseSocketAddress(text, "k")), text);
  }
});

Deno.test("isIPv6Literal", () => {
  for (const host of ["::1", "::", "2001:db8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8"]) {
    assert.equal(isIPv6Literal(host), true, host);
  }
  for (const host of ["127.0.0.1", "localhost", "[::1]", ":::", "1:2", ""]) {
    assert.equal(isIPv6Literal(host), false, host);
  }
});

Deno.test("isLoopbackHostname", () => {
  for (
    const host of [
      "localhost",
      "LOCALHOST",
      "127.0.0.1",
      "127.1.2.3",
      "::1",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
    ]
  ) {
    assert.equal(isLoopbackHostname(host), true, host);
  }
  for (
    const host of [
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "128.0.0.1",
      "131.159.15.61",
      "::2",
      "example.org",
      "localhost.example",
      "::ffff:10.0.0.1",
    ]
  ) {
    assert.equal(isLoopbackHostname(host), false, host);
  }
});
